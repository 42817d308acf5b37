//! The client's error vocabulary, shaped around what the caller does next: fix the named part
//! of the configuration, wait and retry, run a full resync, skip the object, or give up.

use std::fmt;
use std::time::Duration;

/// Which part of the app's setup Entra ID or Graph refused, so an operator knows what to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthPart {
    /// The tenant id or domain is unknown to Entra ID (AADSTS90002).
    Tenant,
    /// The client (application) id is unknown in that tenant (AADSTS700016).
    Application,
    /// The client secret is wrong or expired (AADSTS7000215).
    ClientSecret,
    /// The certificate is not registered on the application, or the assertion signed with it
    /// was refused.
    Certificate,
    /// The requested scope is not `{graph}/.default` of this cloud (AADSTS70011, AADSTS1002012).
    Scope,
    /// The token works but the application lacks a Graph permission or its admin consent
    /// (403 `Authorization_RequestDenied`, docs/graph.md §2.6, §8).
    Permission,
    /// Graph refused an access token the client had just obtained.
    AccessToken,
    /// Refused for a reason this client does not recognise; the message says more.
    Other,
}

impl fmt::Display for AuthPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthPart::Tenant => "tenant",
            AuthPart::Application => "application (client id)",
            AuthPart::ClientSecret => "client secret",
            AuthPart::Certificate => "certificate",
            AuthPart::Scope => "scope",
            AuthPart::Permission => "permission (admin consent)",
            AuthPart::AccessToken => "access token",
            AuthPart::Other => "credentials",
        })
    }
}

/// Why a Graph call failed. No variant ever holds a secret, a token or a client assertion.
#[derive(Clone, Debug, thiserror::Error)]
pub enum GraphError {
    /// Entra ID or Graph refused the app; `part` names what to fix. `code` is the AADSTS code
    /// (`AADSTS7000215`) or Graph's error code (`Authorization_RequestDenied`).
    #[error("refused: {part}: {code}: {message}")]
    Auth {
        part: AuthPart,
        code: String,
        message: String,
    },
    /// HTTP 429 still, after the retries allowed, or with a Retry-After longer than the client
    /// is configured to wait.
    #[error("throttled by Microsoft Graph{}: {detail}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    Throttled {
        retry_after: Option<Duration>,
        detail: String,
    },
    /// 5xx, timeouts and connection failures still failing after the retries allowed.
    #[error("Microsoft Graph unavailable{}: {detail}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Transient {
        status: Option<u16>,
        retry_after: Option<Duration>,
        detail: String,
    },
    /// The delta token expired or Graph wants a resync (410 Gone, `syncStateNotFound`,
    /// `resyncRequired`, docs/graph.md §3.6): drop the stored deltaLink, enumerate in full and
    /// reconcile deletions. `location` is the restart URL a 410 carries.
    #[error("delta token no longer valid (HTTP {status} {code}); a full resync is needed")]
    DeltaExpired {
        status: u16,
        code: String,
        message: String,
        location: Option<String>,
    },
    /// 404: the object (a group, usually) does not exist (any more).
    #[error("not found: {code}: {message}")]
    NotFound { code: String, message: String },
    /// Will not succeed by retrying: Graph's error code and message.
    #[error("Microsoft Graph refused the request (HTTP {status}) {code}: {message}")]
    Permanent {
        status: u16,
        code: String,
        message: String,
    },
    /// A response that breaks the protocol: not JSON, no `value`, a nextLink to another host.
    #[error("unexpected response from Microsoft Graph: {0}")]
    InvalidResponse(String),
    /// The client cannot be built as configured (URL, certificate, options).
    #[error("invalid Microsoft Graph client configuration: {0}")]
    Config(String),
}

impl GraphError {
    /// Worth trying again later (throttled or transient).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Transient { .. })
    }

    /// The wait Graph asked for, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } | Self::Transient { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The refused part of an authentication or authorisation failure.
    pub fn auth_part(&self) -> Option<AuthPart> {
        match self {
            Self::Auth { part, .. } => Some(*part),
            _ => None,
        }
    }

    /// The caller must drop its deltaLink and resync in full.
    pub fn needs_resync(&self) -> bool {
        matches!(self, Self::DeltaExpired { .. })
    }
}

/// The Graph error codes that mean "this delta token is gone, resync", compared
/// case-insensitively because Graph itself spells them both ways (docs/graph.md §3.6).
pub(crate) const RESYNC_CODES: [&str; 2] = ["syncStateNotFound", "resyncRequired"];

pub(crate) fn is_resync_code(code: &str) -> bool {
    RESYNC_CODES.iter().any(|c| c.eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_codes_ignore_case() {
        assert!(is_resync_code("SyncStateNotFound"));
        assert!(is_resync_code("syncStateNotFound"));
        assert!(is_resync_code("RESYNCREQUIRED"));
        assert!(!is_resync_code("Request_BadRequest"));
    }

    #[test]
    fn classification_helpers() {
        let throttled = GraphError::Throttled {
            retry_after: Some(Duration::from_secs(3)),
            detail: "x".to_owned(),
        };
        assert!(throttled.is_retryable());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
        let auth = GraphError::Auth {
            part: AuthPart::Tenant,
            code: "AADSTS90002".to_owned(),
            message: "Tenant not found".to_owned(),
        };
        assert_eq!(auth.auth_part(), Some(AuthPart::Tenant));
        assert!(!auth.is_retryable());
        assert!(auth.to_string().contains("tenant"));
    }
}
