//! The provisioner's one error vocabulary, and how it reads on the wire.
//!
//! A problem with the request is never INTERNAL or UNAVAILABLE: callers (the gateway, and
//! Entra behind it) retry those, and a bad request retried for weeks helps nobody. Every
//! refusal carries a stable reason ([`ErrorReason`]) that fixes its gRPC code, and the
//! google.rpc details a client needs (the field at fault, what was not found, when to retry);
//! see `dirsync_proto::errors`.

use dirsync_proto::errors::{ApiError, ErrorReason, SCIM_TYPE_KEY};
use dirsync_scim::{ScimError, ScimType};
use sea_orm::{DbErr, SqlErr};
use tonic::Status;

pub(crate) use dirsync_proto::errors::quoted;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionerError {
    /// The request, or the state it meets, is at fault; the reason says how.
    #[error("{0}")]
    Refused(Box<ApiError>),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
}

/// The reason a SCIM error type stands for (and back, through `scimType` metadata, at the
/// gateway).
fn reason_of(scim_type: ScimType) -> ErrorReason {
    match scim_type {
        ScimType::InvalidFilter => ErrorReason::InvalidFilter,
        ScimType::TooMany => ErrorReason::TooMany,
        ScimType::Uniqueness => ErrorReason::AlreadyExists,
        ScimType::Mutability => ErrorReason::Mutability,
        ScimType::InvalidSyntax => ErrorReason::InvalidSyntax,
        ScimType::InvalidPath => ErrorReason::InvalidPath,
        ScimType::NoTarget => ErrorReason::NoTarget,
        ScimType::InvalidVers => ErrorReason::InvalidVersion,
        ScimType::InvalidValue | ScimType::Sensitive => ErrorReason::InvalidValue,
    }
}

impl ProvisionerError {
    /// A malformed value in `field` (a `BadRequest` violation; SCIM `invalidValue`).
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::scim_type(ScimType::InvalidValue, Some(field), message)
    }

    /// A refusal in SCIM's terms, for the gateway to answer with that `scimType`.
    pub(crate) fn scim_type(
        scim_type: ScimType,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        let mut error =
            ApiError::new(reason_of(scim_type), message).meta(SCIM_TYPE_KEY, scim_type.as_str());
        if let Some(field) = field {
            error = error.field(field);
        }
        Self::Refused(Box::new(error))
    }

    /// A SCIM library refusal of a document sent in `field`.
    pub(crate) fn scim(error: ScimError, field: &str) -> Self {
        Self::scim_type(
            error.scim_type.unwrap_or(ScimType::InvalidValue),
            Some(field),
            error.detail,
        )
    }

    /// `kind` `id` does not exist (`ResourceInfo` names it).
    pub(crate) fn not_found(reason: ErrorReason, kind: &str, id: &str) -> Self {
        Self::Refused(Box::new(
            ApiError::new(reason, format!("{kind} {} not found", quoted(id))).resource(kind, id),
        ))
    }

    /// A unique value taken (SCIM `uniqueness`).
    pub(crate) fn already_exists(field: &str, message: impl Into<String>) -> Self {
        Self::scim_type(ScimType::Uniqueness, Some(field), message)
    }

    /// The resource changed since the version the caller named.
    pub(crate) fn version_conflict(expected: i64, actual: i64) -> Self {
        Self::refused(
            ErrorReason::VersionConflict,
            format!("version conflict: expected {expected}, stored {actual}"),
        )
    }

    pub(crate) fn refused(reason: ErrorReason, message: impl Into<String>) -> Self {
        Self::Refused(Box::new(ApiError::new(reason, message)))
    }

    /// A MaaS360 read the caller asked for failed.
    pub(crate) fn maas360(error: &dirsync_maas360::Maas360Error) -> Self {
        let message = format!("MaaS360: {error}");
        let api = if error.is_rate_limited() {
            let api = ApiError::new(ErrorReason::Maas360Throttled, message);
            match error.retry_after() {
                Some(wait) => api.retry_after(wait),
                None => api,
            }
        } else if error.is_retryable() {
            ApiError::new(ErrorReason::Maas360Unavailable, message)
        } else if matches!(error, dirsync_maas360::Maas360Error::NotFound { .. }) {
            ApiError::new(ErrorReason::Maas360NotFound, message)
        } else {
            ApiError::new(ErrorReason::Maas360Refused, message)
        };
        Self::Refused(Box::new(api))
    }

    /// A unique-constraint failure, named for the caller: which field, which value.
    pub(crate) fn when_taken(self, field: &str, message: impl FnOnce() -> String) -> Self {
        match self.reason() {
            Some(ErrorReason::AlreadyExists) => Self::already_exists(field, message()),
            _ => self,
        }
    }

    /// The reason this error stands for, when it is a refusal.
    pub(crate) fn reason(&self) -> Option<ErrorReason> {
        match self {
            Self::Refused(error) => Some(error.reason()),
            _ => None,
        }
    }
}

impl From<DbErr> for ProvisionerError {
    fn from(error: DbErr) -> Self {
        // The database's own text may quote the client's value whole; callers name the field.
        if let Some(SqlErr::UniqueConstraintViolation(_)) = error.sql_err() {
            return Self::already_exists("", "the value is already taken");
        }
        match error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable(error.to_string()),
            other => Self::Database(other.to_string()),
        }
    }
}

impl From<ProvisionerError> for Status {
    fn from(error: ProvisionerError) -> Self {
        match error {
            ProvisionerError::Refused(error) => error.into_status(),
            ProvisionerError::Unavailable(_) => {
                tracing::warn!(error = %dirsync_proto::errors::bounded(&error.to_string()), "database unavailable");
                ApiError::new(
                    ErrorReason::DatabaseUnavailable,
                    "the provisioner's database is unavailable; retry later",
                )
                .into_status()
            }
            ProvisionerError::Database(_) => {
                tracing::error!(error = %dirsync_proto::errors::bounded(&error.to_string()), "database error");
                ApiError::new(ErrorReason::Internal, "internal storage error").into_status()
            }
        }
    }
}

pub(crate) type Result<T, E = ProvisionerError> = std::result::Result<T, E>;
