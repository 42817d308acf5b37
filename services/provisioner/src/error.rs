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
        // The database's own text may quote the client's value whole; callers name the field.
        if let Some(SqlErr::UniqueConstraintViolation(_)) = error.sql_err() {
            return Self::AlreadyExists("the value is already taken".to_owned());
        }
        match error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable(error.to_string()),
            other => Self::Database(other.to_string()),
        }
    }
}

/// Longest status message sent: a message travels in an HTTP/2 trailer, which a peer refuses
/// (resetting the whole connection) past its header-list limit.
const MAX_STATUS_MESSAGE: usize = 1024;

fn bounded(message: &str) -> String {
    if message.len() <= MAX_STATUS_MESSAGE {
        return message.to_owned();
    }
    let mut end = MAX_STATUS_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

impl From<ProvisionerError> for Status {
    fn from(error: ProvisionerError) -> Self {
        let status = status_of(&error);
        if status.message().len() <= MAX_STATUS_MESSAGE {
            return status;
        }
        let mut bounded_status = Status::new(status.code(), bounded(status.message()));
        *bounded_status.metadata_mut() = status.metadata().clone();
        bounded_status
    }
}

fn status_of(error: &ProvisionerError) -> Status {
    match error {
        ProvisionerError::NotFound(message) => Status::not_found(message.clone()),
        ProvisionerError::AlreadyExists(message) => Status::already_exists(message.clone()),
        ProvisionerError::InvalidArgument { message, scim_type } => {
            let mut status = Status::invalid_argument(message.clone());
            if let Ok(value) = scim_type.parse() {
                status.metadata_mut().insert(SCIM_TYPE_METADATA, value);
            }
            status
        }
        ProvisionerError::VersionConflict { .. } => Status::failed_precondition(error.to_string()),
        ProvisionerError::Unimplemented(rpc) => {
            Status::unimplemented(format!("{rpc} is not implemented yet"))
        }
        ProvisionerError::Unavailable(_) => {
            tracing::warn!(error = %bounded(&error.to_string()), "database unavailable");
            Status::unavailable("the provisioner's database is unavailable; retry later")
        }
        ProvisionerError::Database(_) => {
            tracing::error!(error = %bounded(&error.to_string()), "database error");
            Status::new(Code::Internal, "internal storage error")
        }
    }
}

pub(crate) type Result<T, E = ProvisionerError> = std::result::Result<T, E>;

/// Longest piece of a client's value quoted back in an error message.
const QUOTED_CHARS: usize = 64;

/// A client-supplied value as an error message may quote it: in quotes, escaped, and cut to a
/// bounded prefix. A status message travels in an HTTP/2 trailer; a 30 KB userName quoted whole
/// broke the gateway's shared connection for every tenant.
pub(crate) fn quoted(value: &str) -> String {
    let mut chars = value.chars();
    let prefix: String = chars.by_ref().take(QUOTED_CHARS).collect();
    if chars.next().is_some() {
        format!("{prefix:?}… ({} characters)", value.chars().count())
    } else {
        format!("{prefix:?}")
    }
}
