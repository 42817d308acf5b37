//! The directory-reader's one error vocabulary, and how it reads on the wire.
//!
//! A problem with the request is never INTERNAL or UNAVAILABLE: callers retry those. Every
//! refusal carries a stable reason ([`ErrorReason`]) that fixes its gRPC code, with the
//! google.rpc details a client needs (the field at fault, what was not found, when to retry);
//! see `dirsync_proto::errors`. Graph's failures are sorted by what the caller does next:
//! fix the connection (ENTRA_REFUSED), wait (ENTRA_THROTTLED, ENTRA_UNAVAILABLE). A refusal
//! by the provisioner travels on as the provisioner sent it: its details are dirsync's too.

use dirsync_graph::{AuthPart, GraphError};
use dirsync_proto::errors::{ApiError, ErrorReason};
use sea_orm::DbErr;
use tonic::Status;

pub(crate) use dirsync_proto::errors::quoted;

/// `ErrorInfo.metadata` key naming the part of an Entra connection that was refused:
/// `tenant`, `client`, `secret`, `certificate`, `permission`, `scope` or `other`.
pub(crate) const PART_KEY: &str = "part";

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The request, or the state it meets, is at fault; the reason says how.
    #[error("{0}")]
    Refused(Box<ApiError>),
    /// The provisioner answered with an error (passed on as it is), or could not be reached.
    #[error("provisioner: {}", .0.message())]
    Provisioner(Box<Status>),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    /// A fault on this side (a task that died, a stored value that does not parse).
    #[error("internal error: {0}")]
    Internal(String),
}

pub(crate) type Result<T, E = DirectoryError> = std::result::Result<T, E>;

impl DirectoryError {
    /// A malformed value in `field` (a `BadRequest` violation).
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Refused(Box::new(
            ApiError::new(ErrorReason::InvalidValue, message).field(field),
        ))
    }

    pub(crate) fn refused(reason: ErrorReason, message: impl Into<String>) -> Self {
        Self::Refused(Box::new(ApiError::new(reason, message)))
    }

    pub(crate) fn no_connection() -> Self {
        Self::refused(
            ErrorReason::NoEntraConnection,
            "the tenant has no Entra connection; set one with SetEntraConnection \
             (`dirsync tenant set-entra`)",
        )
    }

    /// A Graph failure of a read or a sync, for a connection that was already accepted.
    pub(crate) fn graph(error: &GraphError) -> Self {
        let message = format!("Microsoft Graph: {error}");
        let api = match error {
            GraphError::Auth { part, .. } => {
                ApiError::new(ErrorReason::EntraRefused, message).meta(PART_KEY, part_name(*part))
            }
            GraphError::Throttled { retry_after, .. } => {
                let api = ApiError::new(ErrorReason::EntraThrottled, message);
                match retry_after {
                    Some(wait) => api.retry_after(*wait),
                    None => api,
                }
            }
            GraphError::Transient { .. } | GraphError::InvalidResponse(_) => {
                ApiError::new(ErrorReason::EntraUnavailable, message)
            }
            GraphError::NotFound { .. } => ApiError::new(ErrorReason::EntraNotFound, message),
            GraphError::DeltaExpired { .. } | GraphError::Permanent { .. } => {
                ApiError::new(ErrorReason::EntraRefused, message)
            }
            GraphError::Config(_) => ApiError::new(ErrorReason::NoEntraConnection, message),
        };
        Self::Refused(Box::new(api))
    }

    /// The reason this error stands for, when it is a refusal.
    pub(crate) fn reason(&self) -> Option<ErrorReason> {
        match self {
            Self::Refused(error) => Some(error.reason()),
            Self::Provisioner(status) => dirsync_proto::errors::read(status).reason,
            _ => None,
        }
    }
}

/// How an [`AuthPart`] is named in `ErrorInfo.metadata` (see [`PART_KEY`]).
pub(crate) fn part_name(part: AuthPart) -> &'static str {
    match part {
        AuthPart::Tenant => "tenant",
        AuthPart::Application => "client",
        AuthPart::ClientSecret => "secret",
        AuthPart::Certificate => "certificate",
        AuthPart::Permission => "permission",
        AuthPart::Scope => "scope",
        AuthPart::AccessToken | AuthPart::Other => "other",
    }
}

impl From<Status> for DirectoryError {
    fn from(status: Status) -> Self {
        Self::Provisioner(Box::new(status))
    }
}

impl From<DbErr> for DirectoryError {
    fn from(error: DbErr) -> Self {
        match error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable(error.to_string()),
            other => Self::Database(other.to_string()),
        }
    }
}

impl From<DirectoryError> for Status {
    fn from(error: DirectoryError) -> Self {
        match error {
            DirectoryError::Refused(error) => error.into_status(),
            DirectoryError::Provisioner(status) => {
                dirsync_proto::errors::relay("provisioner", *status)
            }
            DirectoryError::Unavailable(_) => {
                tracing::warn!(error = %dirsync_proto::errors::bounded(&error.to_string()), "database unavailable");
                ApiError::new(
                    ErrorReason::DatabaseUnavailable,
                    "the directory-reader's database is unavailable; retry later",
                )
                .into_status()
            }
            DirectoryError::Database(_) | DirectoryError::Internal(_) => {
                tracing::error!(error = %dirsync_proto::errors::bounded(&error.to_string()), "internal error");
                ApiError::new(ErrorReason::Internal, "internal error").into_status()
            }
        }
    }
}
