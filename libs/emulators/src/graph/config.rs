//! How a Graph emulator is set up: the tenant and application it accepts, token and delta
//! lifetimes, page sizes, and the throttling it injects.

use std::collections::BTreeSet;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

/// The one tenant and application an emulator serves, and its behaviour switches.
#[derive(Clone, Debug)]
pub struct GraphEmulatorConfig {
    /// The tenant GUID; the token endpoint accepts it or [`Self::tenant_domain`] in its path.
    pub tenant_id: String,
    pub tenant_domain: String,
    pub client_id: String,
    pub client_secret: String,
    /// DER certificates registered on the application: client assertions signed with their
    /// keys are accepted (docs/graph.md §1.2).
    pub certificates: Vec<Vec<u8>>,
    /// Application permissions with admin consent; a token carries those granted when it was
    /// issued. Reads need one of the permissions docs/graph.md §2.1–§2.3 name, else 403.
    pub app_roles: BTreeSet<String>,
    /// `expires_in` of an access token; Entra gives about an hour (docs/graph.md §1.3).
    pub token_lifetime: Duration,
    /// A delta token older than this is refused as expired; 7 days in Entra (docs/graph.md §3.6).
    pub delta_token_ttl: Duration,
    /// How an expired delta token is refused (docs/graph.md §3.6 documents both).
    pub delta_expiry: DeltaExpiry,
    /// Objects per delta page (delta takes no `$top`, docs/graph.md §3.2).
    pub delta_page_size: usize,
    /// Members per delta page: a group with more is split across pages (docs/graph.md §3.4).
    pub delta_members_per_page: usize,
    /// Change-log entries one delta page reads at most; a page that finds nothing to report
    /// within them is empty but still carries a nextLink (docs/graph.md §3.1).
    pub delta_scan_per_page: usize,
    /// Replays: each deltaLink points this many change-log entries back, so the next round
    /// delivers those changes again, as Graph may (docs/graph.md §3.5). 0 for none.
    pub delta_replay: u64,
    pub throttle: Throttle,
    /// Tolerance when recording Retry-After violations: requests within this long after a
    /// throttled answer (already in flight) or of the end of the wait are not violations.
    pub retry_after_grace: Duration,
    /// Answer `$batch` items in a shuffled order, as Graph may (docs/graph.md §5).
    pub shuffle_batch: bool,
    /// Root used in nextLinks, deltaLinks and `@odata.context`; the request's `Host` when
    /// `None`.
    pub public_url: Option<String>,
}

impl GraphEmulatorConfig {
    /// Fixed test identity: tenant `0f3c2b1a-7d6e-4c5b-9a8f-1e2d3c4b5a69`
    /// (`contoso.onmicrosoft.com`), client `5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b`, secret
    /// `emulator-client-secret`; permissions `User.Read.All`, `GroupMember.Read.All` and
    /// `Organization.Read.All`; no throttling.
    pub fn for_tests() -> Self {
        Self {
            tenant_id: "0f3c2b1a-7d6e-4c5b-9a8f-1e2d3c4b5a69".to_owned(),
            tenant_domain: "contoso.onmicrosoft.com".to_owned(),
            client_id: "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b".to_owned(),
            client_secret: "emulator-client-secret".to_owned(),
            certificates: Vec::new(),
            app_roles: [
                "User.Read.All",
                "GroupMember.Read.All",
                "Organization.Read.All",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            token_lifetime: Duration::from_secs(3599),
            delta_token_ttl: Duration::from_secs(7 * 24 * 3600),
            delta_expiry: DeltaExpiry::Gone,
            delta_page_size: 200,
            delta_members_per_page: 1000,
            delta_scan_per_page: 10_000,
            delta_replay: 0,
            throttle: Throttle::default(),
            retry_after_grace: Duration::from_millis(250),
            shuffle_batch: true,
            public_url: None,
        }
    }
}

/// A certificate that cannot be registered.
#[derive(Debug, thiserror::Error)]
#[error("certificate PEM: {0}")]
pub struct CertificateError(String);

impl GraphEmulatorConfig {
    /// Registers every certificate of a PEM file on the application.
    pub fn with_certificate_pem(mut self, pem: &[u8]) -> Result<Self, CertificateError> {
        let mut found = 0;
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate = certificate.map_err(|e| CertificateError(e.to_string()))?;
            self.certificates.push(certificate.as_ref().to_vec());
            found += 1;
        }
        if found == 0 {
            return Err(CertificateError("no CERTIFICATE block".to_owned()));
        }
        Ok(self)
    }
}

/// The answer to an expired or unknown delta token (docs/graph.md §3.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeltaExpiry {
    /// `410 Gone` with a `Location` to restart from and code `resyncRequired`.
    #[default]
    Gone,
    /// `400` with code `syncStateNotFound`.
    SyncStateNotFound,
}

/// Throttling injected into Graph reads (not the token endpoint, not the `$batch` envelope:
/// each batch item is judged on its own, as Graph does, docs/graph.md §5); changeable at run time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Throttle {
    /// Probability (0–1) that a read is throttled.
    pub rate: f64,
    /// The next this-many reads are throttled, whatever `rate` says: a deterministic switch
    /// for tests.
    pub next: u32,
    /// 429, or 503/504 to inject a transient outage instead.
    pub status: u16,
    /// The Retry-After given; fractional values are sent as such (Graph does so in `$batch`,
    /// docs/graph.md §4.1). Zero sends no Retry-After at all.
    pub retry_after_secs: f64,
    /// Send Retry-After as an HTTP date rather than as seconds.
    pub http_date: bool,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            rate: 0.0,
            next: 0,
            status: 429,
            retry_after_secs: 1.0,
            http_date: false,
        }
    }
}

impl Throttle {
    /// A rate outside 0–1 (or NaN) means none or all; a status other than 429/503/504 is 429.
    pub(crate) fn sanitized(mut self) -> Self {
        self.rate = if self.rate.is_nan() {
            0.0
        } else {
            self.rate.clamp(0.0, 1.0)
        };
        if !matches!(self.status, 429 | 503 | 504) {
            self.status = 429;
        }
        if !self.retry_after_secs.is_finite() || self.retry_after_secs < 0.0 {
            self.retry_after_secs = 0.0;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_without_a_certificate_is_refused() {
        let config = GraphEmulatorConfig::for_tests();
        assert!(config.clone().with_certificate_pem(b"no pem here").is_err());
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(config.with_certificate_pem(key_only).is_err());
    }

    #[test]
    fn throttle_settings_are_sanitized() {
        let throttle = Throttle {
            rate: f64::NAN,
            status: 500,
            retry_after_secs: -1.0,
            ..Throttle::default()
        }
        .sanitized();
        assert_eq!(throttle.rate, 0.0);
        assert_eq!(throttle.status, 429);
        assert_eq!(throttle.retry_after_secs, 0.0);
    }
}
