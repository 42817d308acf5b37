//! The mapping service's one error vocabulary, and how it reads on the wire.
//!
//! A problem with the request is never INTERNAL or UNAVAILABLE: callers retry those. Every
//! refusal carries a stable reason that fixes its gRPC code, with the google.rpc details a
//! client needs (see `dirsync_proto::errors`). A refusal by the provisioner or the
//! directory-reader travels on as that service sent it: its details are dirsync's too.

use dirsync_proto::errors::{ApiError, ErrorReason};
use sea_orm::DbErr;
use tonic::{Code, Status};

pub(crate) use dirsync_proto::errors::quoted;

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The request, or the state it meets, is at fault; the reason says how.
    #[error("{0}")]
    Refused(Box<ApiError>),
    /// Another dirsync service answered with an error (passed on as it is), or could not be
    /// reached.
    #[error("{service}: {}", .status.message())]
    Upstream {
        service: &'static str,
        status: Box<Status>,
    },
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    /// A fault on this side (a stored value that does not parse).
    #[error("internal error: {0}")]
    Internal(String),
}

pub(crate) type Result<T, E = MappingError> = std::result::Result<T, E>;

impl MappingError {
    /// A malformed or missing value in `field` (a `BadRequest` violation).
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Refused(Box::new(
            ApiError::new(ErrorReason::InvalidValue, message).field(field),
        ))
    }

    pub(crate) fn refused(reason: ErrorReason, message: impl Into<String>) -> Self {
        Self::Refused(Box::new(ApiError::new(reason, message)))
    }

    pub(crate) fn mapping_not_found(mapping_id: &str) -> Self {
        Self::Refused(Box::new(
            ApiError::new(
                ErrorReason::MappingNotFound,
                format!("no mapping {}", quoted(mapping_id)),
            )
            .resource("mapping", mapping_id),
        ))
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// Whether trying the same call again later may succeed: an unreachable or throttled
    /// service, a database that is away. A refusal is permanent.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Refused(_) | Self::Database(_) | Self::Internal(_) => false,
            Self::Unavailable(_) => true,
            Self::Upstream { status, .. } => matches!(
                status.code(),
                Code::Unavailable
                    | Code::ResourceExhausted
                    | Code::DeadlineExceeded
                    | Code::Aborted
                    | Code::Cancelled
                    | Code::Unknown
            ),
        }
    }

    pub(crate) fn provisioner(status: Status) -> Self {
        Self::Upstream {
            service: "provisioner",
            status: Box::new(status),
        }
    }

    pub(crate) fn directory(status: Status) -> Self {
        Self::Upstream {
            service: "directory-reader",
            status: Box::new(status),
        }
    }
}

impl From<DbErr> for MappingError {
    fn from(error: DbErr) -> Self {
        match error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable(error.to_string()),
            other => Self::Database(other.to_string()),
        }
    }
}

impl From<MappingError> for Status {
    fn from(error: MappingError) -> Self {
        match error {
            MappingError::Refused(error) => error.into_status(),
            MappingError::Upstream { service, status } => {
                dirsync_proto::errors::relay(service, *status)
            }
            MappingError::Unavailable(_) => {
                tracing::warn!(error = %dirsync_proto::errors::bounded(&error.to_string()), "database unavailable");
                ApiError::new(
                    ErrorReason::DatabaseUnavailable,
                    "the mapping service's database is unavailable; retry later",
                )
                .into_status()
            }
            MappingError::Database(_) | MappingError::Internal(_) => {
                tracing::error!(error = %dirsync_proto::errors::bounded(&error.to_string()), "internal error");
                ApiError::new(ErrorReason::Internal, "internal error").into_status()
            }
        }
    }
}
