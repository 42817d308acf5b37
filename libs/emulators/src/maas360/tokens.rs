//! Auth and refresh tokens the emulator has issued, with their expiry.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Live tokens beyond this are evicted oldest-first, so a client that authenticates in a loop
/// cannot grow the emulator without bound.
const MAX_TOKENS: usize = 10_000;
/// MaaS360's refresh-token lifetime is undocumented [gap]; a day keeps it longer than tokens.
const REFRESH_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Default)]
pub(crate) struct Tokens {
    access: HashMap<String, Issued>,
    refresh: HashMap<String, Issued>,
}

#[derive(Clone, Debug)]
struct Issued {
    billing_id: String,
    expires: Instant,
}

/// Why a token was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Valid,
    Unknown,
    Expired,
    OtherAccount,
}

/// A token shaped like the documented examples: a UUID plus a short suffix (docs/maas360.md §2.2).
fn new_token() -> String {
    let suffix: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(6)
        .collect();
    format!("{}-{suffix}", uuid::Uuid::new_v4())
}

fn insert(map: &mut HashMap<String, Issued>, billing_id: &str, ttl: Duration) -> String {
    let now = Instant::now();
    map.retain(|_, t| t.expires > now);
    while map.len() >= MAX_TOKENS {
        let oldest = map
            .iter()
            .min_by_key(|(_, t)| t.expires)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(key) => map.remove(&key),
            None => break,
        };
    }
    let token = new_token();
    map.insert(
        token.clone(),
        Issued {
            billing_id: billing_id.to_owned(),
            expires: now + ttl,
        },
    );
    token
}

impl Tokens {
    pub(crate) fn issue(&mut self, billing_id: &str, ttl: Duration) -> String {
        insert(&mut self.access, billing_id, ttl)
    }

    pub(crate) fn issue_refresh(&mut self, billing_id: &str) -> String {
        insert(&mut self.refresh, billing_id, REFRESH_TTL)
    }

    pub(crate) fn check(&self, token: &str, billing_id: &str) -> TokenCheck {
        match self.access.get(token) {
            None => TokenCheck::Unknown,
            Some(t) if t.expires <= Instant::now() => TokenCheck::Expired,
            Some(t) if t.billing_id != billing_id => TokenCheck::OtherAccount,
            Some(_) => TokenCheck::Valid,
        }
    }

    /// Spends a refresh token; each can be used once (rotation is assumed, [inferred]).
    pub(crate) fn redeem_refresh(&mut self, token: &str, billing_id: &str) -> bool {
        match self.refresh.remove(token) {
            Some(t) => t.expires > Instant::now() && t.billing_id == billing_id,
            None => false,
        }
    }

    /// Every access token stops working now, as if an hour had passed.
    pub(crate) fn expire_access(&mut self) {
        let now = Instant::now();
        for t in self.access.values_mut() {
            t.expires = now;
        }
    }

    pub(crate) fn expire_refresh(&mut self) {
        self.refresh.clear();
    }
}
