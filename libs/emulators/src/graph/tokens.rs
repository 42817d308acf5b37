//! Access tokens the emulator has issued: opaque strings (a reader must never parse them,
//! docs/graph.md §8), each with its expiry and the permissions granted when it was issued.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use tokio::time::Instant;

/// Live tokens beyond this are evicted oldest-first, so a client that requests tokens in a
/// loop cannot grow the emulator without bound.
const MAX_TOKENS: usize = 10_000;

#[derive(Clone, Debug)]
struct Issued {
    expires: Instant,
    roles: Arc<BTreeSet<String>>,
}

/// What a bearer token is worth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Valid(Arc<BTreeSet<String>>),
    Unknown,
    Expired,
}

#[derive(Debug, Default)]
pub(crate) struct Tokens {
    issued: HashMap<String, Issued>,
}

impl Tokens {
    pub(crate) fn issue(&mut self, lifetime: Duration, roles: Arc<BTreeSet<String>>) -> String {
        let now = Instant::now();
        self.issued.retain(|_, t| t.expires > now);
        while self.issued.len() >= MAX_TOKENS {
            let oldest = self
                .issued
                .iter()
                .min_by_key(|(_, t)| t.expires)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(key) => self.issued.remove(&key),
                None => break,
            };
        }
        let bytes: [u8; 32] = rand::rng().random();
        // Shaped like a JWT's first segment so that logs look familiar; still opaque.
        let token = format!("eyJ0eXAiOiJKV1QifQ.{}", URL_SAFE_NO_PAD.encode(bytes));
        self.issued.insert(
            token.clone(),
            Issued {
                expires: now + lifetime,
                roles,
            },
        );
        token
    }

    pub(crate) fn check(&self, token: &str) -> TokenCheck {
        match self.issued.get(token) {
            None => TokenCheck::Unknown,
            Some(t) if t.expires <= Instant::now() => TokenCheck::Expired,
            Some(t) => TokenCheck::Valid(t.roles.clone()),
        }
    }

    /// Every token issued so far stops working now, as if its hour had passed.
    pub(crate) fn expire_all(&mut self) {
        let now = Instant::now();
        for t in self.issued.values_mut() {
            t.expires = now;
        }
    }
}
