//! The client's error vocabulary, shaped around what a caller should do next.

use std::time::Duration;

/// Why a MaaS360 call failed, grouped by the caller's next move: fix configuration, retry
/// later, adopt an existing object, or give up on this item.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Maas360Error {
    /// Credentials refused; `part` names what was refused when known.
    #[error("MaaS360 refused the credentials ({part}): {detail}")]
    Auth { part: String, detail: String },
    /// Worth retrying later: 429, 5xx, timeouts, connection errors. `retry_after` from the
    /// Retry-After header.
    #[error("MaaS360 call failed, retry later: {detail}")]
    Retryable {
        detail: String,
        retry_after: Option<Duration>,
    },
    /// Will not succeed by retrying: other 4xx, HTTP 200 with a non-zero errorCode or an
    /// actionResponse status "Failure" (with its description), malformed responses.
    #[error("MaaS360 call failed (HTTP {}): {detail}", status.map_or_else(|| "-".to_owned(), |s| s.to_string()))]
    Permanent { status: Option<u16>, detail: String },
    /// A name or username that already exists, so the caller can adopt instead of create.
    #[error("already exists in MaaS360: {detail}")]
    AlreadyExists { detail: String },
    #[error("not found in MaaS360: {detail}")]
    NotFound { detail: String },
    #[error("invalid MaaS360 client configuration: {0}")]
    Config(String),
}

impl Maas360Error {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
