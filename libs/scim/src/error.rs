//! SCIM error responses (RFC 7644 §3.12).
//!
//! Every failure in this crate is a [`ScimError`] that already carries the
//! HTTP status and `scimType` the gateway should answer with, so the HTTP layer
//! never has to guess how to map a parse failure onto the wire.

use serde_json::{Value, json};

use crate::schema::SCHEMA_ERROR;

/// The `scimType` detail codes of RFC 7644 §3.12 (table 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScimType {
    /// The filter syntax was invalid or the operator is not supported.
    InvalidFilter,
    /// The filter yields more results than the server is willing to return.
    TooMany,
    /// A unique attribute value is already in use.
    Uniqueness,
    /// The attempted modification is not compatible with the attribute's mutability.
    Mutability,
    /// The request body structure was invalid.
    InvalidSyntax,
    /// The `path` attribute was invalid or malformed.
    InvalidPath,
    /// The `path` did not yield an attribute that could be operated on.
    NoTarget,
    /// A required value was missing or the value was not compatible.
    InvalidValue,
    /// The specified SCIM protocol version is not supported.
    InvalidVers,
    /// The request cannot be completed because of sensitive information in the URI.
    Sensitive,
}

impl std::str::FromStr for ScimType {
    type Err = ();

    /// The camelCase spelling RFC 7644 uses on the wire, back to the type.
    fn from_str(text: &str) -> Result<Self, ()> {
        Ok(match text {
            "invalidFilter" => ScimType::InvalidFilter,
            "tooMany" => ScimType::TooMany,
            "uniqueness" => ScimType::Uniqueness,
            "mutability" => ScimType::Mutability,
            "invalidSyntax" => ScimType::InvalidSyntax,
            "invalidPath" => ScimType::InvalidPath,
            "noTarget" => ScimType::NoTarget,
            "invalidValue" => ScimType::InvalidValue,
            "invalidVers" => ScimType::InvalidVers,
            "sensitive" => ScimType::Sensitive,
            _ => return Err(()),
        })
    }
}

impl ScimType {
    /// The camelCase spelling RFC 7644 uses on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

impl std::fmt::Display for ScimType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SCIM error: HTTP status, optional `scimType` and a human-readable detail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("SCIM error {status}{}: {detail}", .scim_type.map(|t| format!(" ({t})")).unwrap_or_default())]
pub struct ScimError {
    /// HTTP status code.
    pub status: u16,
    /// RFC 7644 `scimType`, only meaningful for 400 (and 409 uniqueness).
    pub scim_type: Option<ScimType>,
    /// Human-readable, actionable explanation.
    pub detail: String,
}

impl ScimError {
    /// An error with an arbitrary status.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 Bad Request with a `scimType`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }

    /// 404 Not Found.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// 409 Conflict with `scimType: uniqueness`, which is what Entra expects
    /// for a duplicate `userName` or group `displayName`.
    pub fn conflict_uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }

    /// 412 Precondition Failed (an `If-Match` that does not match).
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }

    /// 413 Payload Too Large.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(413, None, detail)
    }

    /// 500 Internal Server Error.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, None, detail)
    }

    /// 503 Service Unavailable.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, None, detail)
    }

    /// The RFC 7644 error body. `status` is a string, as the RFC requires.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [SCHEMA_ERROR],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(obj)) = (self.scim_type, body.as_object_mut()) {
            obj.insert("scimType".to_owned(), Value::String(t.as_str().to_owned()));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_string_status_and_scim_type() {
        let e = ScimError::bad_request(ScimType::InvalidFilter, "bad");
        assert_eq!(
            e.to_json(),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "bad"
            })
        );
    }

    #[test]
    fn scim_type_omitted_when_none() {
        let body = ScimError::not_found("Resource 1 not found").to_json();
        assert_eq!(body["status"], "404");
        assert!(body.get("scimType").is_none());
    }

    #[test]
    fn constructors_set_statuses() {
        assert_eq!(ScimError::conflict_uniqueness("x").status, 409);
        assert_eq!(
            ScimError::conflict_uniqueness("x").scim_type,
            Some(ScimType::Uniqueness)
        );
        assert_eq!(ScimError::unauthorized("x").status, 401);
        assert_eq!(ScimError::payload_too_large("x").status, 413);
        assert_eq!(ScimError::internal("x").status, 500);
        assert_eq!(ScimError::unavailable("x").status, 503);
        assert_eq!(ScimError::precondition_failed("x").status, 412);
    }

    #[test]
    fn all_scim_types_are_camel_case() {
        let all = [
            (ScimType::InvalidFilter, "invalidFilter"),
            (ScimType::TooMany, "tooMany"),
            (ScimType::Uniqueness, "uniqueness"),
            (ScimType::Mutability, "mutability"),
            (ScimType::InvalidSyntax, "invalidSyntax"),
            (ScimType::InvalidPath, "invalidPath"),
            (ScimType::NoTarget, "noTarget"),
            (ScimType::InvalidValue, "invalidValue"),
            (ScimType::InvalidVers, "invalidVers"),
            (ScimType::Sensitive, "sensitive"),
        ];
        for (t, s) in all {
            assert_eq!(t.as_str(), s);
        }
    }

    #[test]
    fn display_mentions_status_and_type() {
        let e = ScimError::bad_request(ScimType::NoTarget, "nothing");
        assert_eq!(e.to_string(), "SCIM error 400 (noTarget): nothing");
    }
}
