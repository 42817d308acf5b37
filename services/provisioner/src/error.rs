//! The provisioner's one error vocabulary, and how it reads on the wire.
//!
//! A problem with the request is never INTERNAL or UNAVAILABLE: callers (the
//! gateway, and Entra behind it) retry those, and a bad request retried for
//! weeks helps nobody.

use sea_orm::{DbErr, SqlErr};
use tonic::{Code, Status};

/// gRPC metadata key carrying the SCIM `scimType` of an INVALID_ARGUMENT, so
/// the gateway can answer in SCIM's own terms.
pub const SCIM_TYPE_METADATA: &str = "dirsync-scim-type";

#[derive(Debug, thiserror::Error)]
pub enum ProvisionerError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{message}")]
    InvalidArgument {
        message: String,
        /// The SCIM scimType this maps to (`invalidFilter`, `invalidValue`, …).
        scim_type: &'static str,
    },
    #[error("version conflict: expected {expected}, stored {actual}")]
    VersionConflict { expected: i64, actual: i64 },
    #[error("{0} is not implemented yet")]
    Unimplemented(&'static str),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
}

impl ProvisionerError {
    pub fn invalid(scim_type: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            message: message.into(),
            scim_type,
        }
    }
}

impl From<DbErr> for ProvisionerError {
    fn from(error: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = error.sql_err() {
            return Self::AlreadyExists(detail);
        }
        match error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable(error.to_string()),
            other => Self::Database(other.to_string()),
        }
    }
}

impl From<ProvisionerError> for Status {
    fn from(error: ProvisionerError) -> Self {
        match &error {
            ProvisionerError::NotFound(message) => Status::not_found(message.clone()),
            ProvisionerError::AlreadyExists(message) => Status::already_exists(message.clone()),
            ProvisionerError::InvalidArgument { message, scim_type } => {
                let mut status = Status::invalid_argument(message.clone());
                if let Ok(value) = scim_type.parse() {
                    status.metadata_mut().insert(SCIM_TYPE_METADATA, value);
                }
                status
            }
            ProvisionerError::VersionConflict { .. } => {
                Status::failed_precondition(error.to_string())
            }
            ProvisionerError::Unimplemented(rpc) => {
                Status::unimplemented(format!("{rpc} is not implemented yet"))
            }
            ProvisionerError::Unavailable(_) => {
                tracing::warn!(%error, "database unavailable");
                Status::unavailable("the provisioner's database is unavailable; retry later")
            }
            ProvisionerError::Database(_) => {
                tracing::error!(%error, "database error");
                Status::new(Code::Internal, "internal storage error")
            }
        }
    }
}

pub(crate) type Result<T, E = ProvisionerError> = std::result::Result<T, E>;
