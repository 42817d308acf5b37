//! The client's error vocabulary, shaped around what a caller should do next.

use std::time::Duration;

/// Why a MaaS360 call failed, grouped by the caller's next move: fix configuration, pause the
/// tenant, retry later, adopt an existing object, or give up on this item. `status` is the HTTP
/// status of the answer when one arrived (MaaS360 reports many failures with HTTP 200).
#[derive(Clone, Debug, thiserror::Error)]
pub enum Maas360Error {
    /// Credentials or the token refused; `part` names what was refused when MaaS360 says
    /// (billing id, admin credentials, app access key, refresh token, token...).
    #[error("MaaS360 refused the {part}: {detail}")]
    Auth {
        part: String,
        detail: String,
        status: Option<u16>,
    },
    /// MaaS360's rate limit: HTTP 429 (or a limit named in a 403). `retry_after` from the
    /// Retry-After header (seconds or HTTP date), else from `X-Rate-Limit-ResetWindow`.
    #[error("MaaS360 rate limit reached: {detail}")]
    RateLimited {
        detail: String,
        retry_after: Option<Duration>,
        status: Option<u16>,
    },
    /// Worth retrying later: 5xx, timeouts, connection errors, texts that say "try again".
    #[error("MaaS360 call failed, retry later: {detail}")]
    Retryable {
        detail: String,
        retry_after: Option<Duration>,
        status: Option<u16>,
    },
    /// Will not succeed by retrying: other 4xx, a non-zero errorCode, a failed actionResponse
    /// (with its description), a malformed or unexpected answer.
    #[error("MaaS360 call failed (HTTP {}): {detail}", status.map_or_else(|| "-".to_owned(), |s| s.to_string()))]
    Permanent { status: Option<u16>, detail: String },
    /// A name or username that already exists, so the caller can adopt instead of create.
    #[error("already exists in MaaS360: {detail}")]
    AlreadyExists { detail: String, status: Option<u16> },
    #[error("not found in MaaS360: {detail}")]
    NotFound { detail: String, status: Option<u16> },
    /// MaaS360 refuses to delete a user while it has an active device (docs/maas360.md
    /// §4.5): someone must retire or wipe the device first.
    #[error("MaaS360 refused while the user has an active device: {detail}")]
    ActiveDevice { detail: String, status: Option<u16> },
    #[error("invalid MaaS360 client configuration: {0}")]
    Config(String),
}

impl Maas360Error {
    /// Whether the same call may succeed later without anything changing: rate limits,
    /// server errors and transport failures.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. } | Self::RateLimited { .. })
    }

    /// MaaS360 said to slow down; the caller should pause the whole tenant, not one item.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Self::RateLimited { .. })
    }

    /// How long MaaS360 asked to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retryable { retry_after, .. } | Self::RateLimited { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The HTTP status of the answer, when one arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Auth { status, .. }
            | Self::RateLimited { status, .. }
            | Self::Retryable { status, .. }
            | Self::Permanent { status, .. }
            | Self::AlreadyExists { status, .. }
            | Self::NotFound { status, .. }
            | Self::ActiveDevice { status, .. } => *status,
            Self::Config(_) => None,
        }
    }
}
