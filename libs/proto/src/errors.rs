//! dirsync's errors on the wire, written once for every service and client: a gRPC status whose
//! code follows from a stable [`ErrorReason`], with google.rpc details (`ErrorInfo` with the
//! reason and domain, `BadRequest` field violations, `ResourceInfo`, `RetryInfo`).
//!
//! Messages are for people and bounded in length; programs branch on the reason. A message
//! travels in an HTTP/2 trailer, and a peer that receives a trailer past its header-list limit
//! resets the whole connection (every other request on it fails too), so nothing here quotes
//! a client's value whole.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub use crate::common::v1::ErrorReason;

/// `ErrorInfo.domain` of every dirsync error.
pub const DOMAIN: &str = "dirsync";
/// `ErrorInfo.metadata` key carrying the SCIM `scimType` an INVALID_ARGUMENT stands for, so
/// that the SCIM gateway answers in SCIM's own terms.
pub const SCIM_TYPE_KEY: &str = "scimType";
/// Longest status message sent.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest piece of a client's value quoted in a message.
const QUOTED_CHARS: usize = 64;

/// The gRPC code every error of a reason carries.
pub fn code_of(reason: ErrorReason) -> Code {
    use ErrorReason as R;
    match reason {
        R::InvalidValue
        | R::InvalidSyntax
        | R::InvalidFilter
        | R::InvalidPath
        | R::NoTarget
        | R::Mutability
        | R::TooMany
        | R::InvalidVersion => Code::InvalidArgument,
        R::TenantNotFound
        | R::UserNotFound
        | R::GroupNotFound
        | R::Maas360NotFound
        | R::MappingNotFound
        | R::EntraNotFound => Code::NotFound,
        R::AlreadyExists => Code::AlreadyExists,
        R::VersionConflict
        | R::NoMaas360Connection
        | R::Maas360Refused
        | R::NoEntraConnection
        | R::EntraRefused
        | R::WrongMode
        | R::StalePlan
        | R::SafetyLimit => Code::FailedPrecondition,
        R::Maas360Throttled | R::EntraThrottled => Code::ResourceExhausted,
        R::DatabaseUnavailable | R::Maas360Unavailable | R::EntraUnavailable => Code::Unavailable,
        R::TokenInvalid => Code::Unauthenticated,
        R::Internal | R::Unspecified => Code::Internal,
    }
}

/// The reason's name as `ErrorInfo.reason` carries it: `INVALID_FILTER`, `TENANT_NOT_FOUND`.
pub fn reason_name(reason: ErrorReason) -> &'static str {
    let name = reason.as_str_name();
    name.strip_prefix("ERROR_REASON_").unwrap_or(name)
}

fn reason_from_name(name: &str) -> Option<ErrorReason> {
    ErrorReason::from_str_name(&format!("ERROR_REASON_{name}"))
}

/// One dirsync error, built up and then turned into a [`Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    reason: ErrorReason,
    message: String,
    /// (field, description) pairs for `BadRequest`.
    violations: Vec<(String, String)>,
    /// (resource type, resource name) for `ResourceInfo`.
    resource: Option<(String, String)>,
    retry_after: Option<Duration>,
    metadata: HashMap<String, String>,
}

impl ApiError {
    pub fn new(reason: ErrorReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            violations: Vec::new(),
            resource: None,
            retry_after: None,
            metadata: HashMap::new(),
        }
    }

    /// Names the request field at fault (a `BadRequest` field violation, described by the
    /// message).
    pub fn field(mut self, field: impl Into<String>) -> Self {
        let description = self.message.clone();
        self.violations.push((field.into(), description));
        self
    }

    /// Names what was not found (`ResourceInfo`).
    pub fn resource(mut self, kind: impl Into<String>, name: impl AsRef<str>) -> Self {
        self.resource = Some((kind.into(), bounded_quote(name.as_ref())));
        self
    }

    /// How long to wait before retrying (`RetryInfo`).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Adds an `ErrorInfo.metadata` entry.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    pub fn reason(&self) -> ErrorReason {
        self.reason
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn code(&self) -> Code {
        code_of(self.reason)
    }

    pub fn into_status(self) -> Status {
        let mut details = ErrorDetails::new();
        details.set_error_info(reason_name(self.reason), DOMAIN, self.metadata);
        for (field, description) in &self.violations {
            details.add_bad_request_violation(field.clone(), bounded(description));
        }
        if let Some((kind, name)) = &self.resource {
            details.set_resource_info(kind.clone(), name.clone(), "", "");
        }
        if let Some(wait) = self.retry_after {
            details.set_retry_info(Some(wait));
        }
        Status::with_error_details(code_of(self.reason), bounded(&self.message), details)
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        error.into_status()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// What a client reads back from a dirsync status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadError {
    pub reason: Option<ErrorReason>,
    pub metadata: HashMap<String, String>,
    pub violations: Vec<(String, String)>,
    pub retry_after: Option<Duration>,
}

/// The details of a status a dirsync service sent (empty for one it did not).
pub fn read(status: &Status) -> ReadError {
    let details = status.get_error_details();
    let info = details.error_info().filter(|info| info.domain == DOMAIN);
    ReadError {
        reason: info.and_then(|info| reason_from_name(&info.reason)),
        metadata: info.map(|info| info.metadata.clone()).unwrap_or_default(),
        violations: details
            .bad_request()
            .map(|bad| {
                bad.field_violations
                    .iter()
                    .map(|violation| (violation.field.clone(), violation.description.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        retry_after: details.retry_info().and_then(|retry| retry.retry_delay),
    }
}

/// What a service answers when its call to another dirsync service (`service`) failed: that
/// service's own refusal travels on as it was sent (its details are dirsync's too); a status the
/// client made up (the service could not be reached, or did not answer in time) keeps its code
/// and says which service it was.
pub fn relay(service: &str, status: Status) -> Status {
    if read(&status).reason.is_some() {
        return status;
    }
    tracing::warn!(service, code = ?status.code(), message = %bounded(status.message()), "call failed");
    Status::new(
        status.code(),
        format!(
            "the {service} did not answer: {}",
            bounded(status.message())
        ),
    )
}

/// `text` cut to [`MAX_MESSAGE_BYTES`] on a character boundary.
pub fn bounded(text: &str) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A client's value as a message may quote it: in quotes, escaped, cut to a short prefix.
pub fn quoted(value: &str) -> String {
    let mut chars = value.chars();
    let prefix: String = chars.by_ref().take(QUOTED_CHARS).collect();
    if chars.next().is_some() {
        format!("{prefix:?}… ({} characters)", value.chars().count())
    } else {
        format!("{prefix:?}")
    }
}

fn bounded_quote(value: &str) -> String {
    value.chars().take(QUOTED_CHARS * 4).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_reason_round_trips_with_its_code() {
        for value in 0..100 {
            let Ok(reason) = ErrorReason::try_from(value) else {
                continue;
            };
            if reason == ErrorReason::Unspecified {
                continue;
            }
            let status = ApiError::new(reason, "why").into_status();
            assert_eq!(status.code(), code_of(reason));
            assert_eq!(read(&status).reason, Some(reason), "{reason:?}");
        }
    }

    #[test]
    fn details_survive_the_wire_form() {
        let status = ApiError::new(ErrorReason::InvalidFilter, "bad filter")
            .field("filter")
            .meta(SCIM_TYPE_KEY, "invalidFilter")
            .into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = read(&status);
        assert_eq!(details.metadata[SCIM_TYPE_KEY], "invalidFilter");
        assert_eq!(
            details.violations,
            vec![("filter".to_owned(), "bad filter".to_owned())]
        );
        let status = ApiError::new(ErrorReason::Maas360Throttled, "slow down")
            .retry_after(Duration::from_secs(30))
            .into_status();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(read(&status).retry_after, Some(Duration::from_secs(30)));
        let status = ApiError::new(ErrorReason::UserNotFound, "no such user")
            .resource("user", "42")
            .into_status();
        assert_eq!(
            status
                .get_error_details()
                .resource_info()
                .unwrap()
                .resource_name,
            "42"
        );
    }

    #[test]
    fn messages_and_quotes_are_bounded() {
        let long = "x".repeat(30_000);
        let status = ApiError::new(ErrorReason::InvalidValue, &long).into_status();
        assert!(status.message().len() <= MAX_MESSAGE_BYTES + 3);
        assert!(quoted(&long).len() < 100);
        assert_eq!(quoted("ada"), "\"ada\"");
        assert_eq!(reason_name(ErrorReason::TenantNotFound), "TENANT_NOT_FOUND");
    }
}
