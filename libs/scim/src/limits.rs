//! Bounds on what one resource may hold, checked before anything is stored, so that one
//! client's absurd value (a 300 KB userName, 3,000 copies of one email) is a 400 naming the
//! attribute rather than a row that every later read, index and MaaS360 call must carry.
//!
//! The bounds sit well above what Entra sends (a UPN is at most 113 characters, a display name
//! 256, a user has a handful of emails) and within what MaaS360's user fields take.

use serde_json::Value;

use crate::error::{ScimError, ScimType};

/// Characters in an identifying or display attribute (see [`short_limit`]).
pub const MAX_SHORT_CHARS: usize = 256;
/// Characters in any other string value.
pub const MAX_STRING_CHARS: usize = 4096;
/// Values of one multi-valued attribute.
pub const MAX_VALUES: usize = 100;
/// Attributes of one object (the resource, an extension, a complex value).
pub const MAX_ATTRIBUTES: usize = 200;
/// Members one group request may name.
pub const MAX_MEMBERS_PER_REQUEST: usize = 10_000;

/// The attributes (lower-case dotted paths, extensions by their last name) that identify a
/// resource or end up in a MaaS360 field with a short limit.
fn short_limit(path: &str) -> bool {
    matches!(
        path,
        "username"
            | "externalid"
            | "displayname"
            | "nickname"
            | "title"
            | "usertype"
            | "preferredlanguage"
            | "locale"
            | "timezone"
            | "emails.value"
            | "emails.type"
            | "phonenumbers.value"
            | "name.givenname"
            | "name.familyname"
            | "name.middlename"
            | "name.honorificprefix"
            | "name.honorificsuffix"
            | "name.formatted"
            | "employeenumber"
            | "costcenter"
            | "organization"
            | "division"
            | "department"
            | "manager.value"
    )
}

/// Refuses a value holding the NUL character. No store keeps one as sent (PostgreSQL's text
/// cannot hold it at all), and MaaS360 has no use for it; `what` names the value.
pub fn check_no_nul(what: &str, value: &str) -> Result<(), ScimError> {
    if value.contains('\0') {
        return Err(ScimError::bad_request(
            ScimType::InvalidValue,
            format!("{what} contains the NUL character (U+0000)"),
        ));
    }
    Ok(())
}

fn too_long(path: &str, limit: usize, chars: usize) -> ScimError {
    ScimError::bad_request(
        ScimType::InvalidValue,
        format!("{path} is longer than {limit} characters ({chars})"),
    )
}

/// Checks a normalised resource (or any JSON value under `path`) against the bounds above, and
/// that no string in it holds the NUL character.
pub fn check(resource: &Value) -> Result<(), ScimError> {
    check_value("", resource)
}

fn check_value(path: &str, value: &Value) -> Result<(), ScimError> {
    match value {
        Value::String(text) => {
            let limit = if short_limit(&path.to_ascii_lowercase()) {
                MAX_SHORT_CHARS
            } else {
                MAX_STRING_CHARS
            };
            // Count only as far as the limit: a huge value costs no more than a small one.
            let chars = text.chars().take(limit + 1).count();
            if chars > limit {
                return Err(too_long(path, limit, text.chars().count()));
            }
            check_no_nul(if path.is_empty() { "a value" } else { path }, text)
        }
        Value::Array(items) => {
            if items.len() > MAX_VALUES {
                return Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    format!(
                        "{path} has {} values; at most {MAX_VALUES} are accepted",
                        items.len()
                    ),
                ));
            }
            items.iter().try_for_each(|item| check_value(path, item))
        }
        Value::Object(attributes) => {
            if attributes.len() > MAX_ATTRIBUTES {
                let name = if path.is_empty() {
                    "the resource"
                } else {
                    path
                };
                return Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    format!(
                        "{name} has {} attributes; at most {MAX_ATTRIBUTES} are accepted",
                        attributes.len()
                    ),
                ));
            }
            for (key, value) in attributes {
                // Extension objects are named by their URN; their attributes by their own name.
                let child = if key.contains(':') {
                    String::new()
                } else if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                check_value(&child, value)?;
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// Checks the number of members one group request names.
pub fn check_member_count(count: usize) -> Result<(), ScimError> {
    if count > MAX_MEMBERS_PER_REQUEST {
        return Err(ScimError::bad_request(
            ScimType::InvalidValue,
            format!(
                "members names {count} members; at most {MAX_MEMBERS_PER_REQUEST} are accepted per request"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_long_user_name_is_refused_by_name() {
        let error = check(&json!({"userName": "a".repeat(30_000)})).unwrap_err();
        assert_eq!(error.status, 400);
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
        assert!(error.detail.contains("userName"), "{}", error.detail);
        assert!(error.detail.contains("256"), "{}", error.detail);
    }

    #[test]
    fn nested_and_extension_attributes_are_named() {
        let error = check(&json!({"name": {"givenName": "g".repeat(300)}})).unwrap_err();
        assert!(error.detail.contains("name.givenName"), "{}", error.detail);
        let error = check(&json!({
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "d".repeat(300)}
        }))
        .unwrap_err();
        assert!(error.detail.starts_with("department"), "{}", error.detail);
        let error = check(&json!({"emails": [{"value": "e".repeat(300)}]})).unwrap_err();
        assert!(error.detail.contains("emails.value"), "{}", error.detail);
    }

    #[test]
    fn nul_is_refused_by_name() {
        for (body, name) in [
            (json!({"userName": "a\u{0}b"}), "userName"),
            (json!({"name": {"givenName": "\u{0}"}}), "name.givenName"),
            (json!({"emails": [{"value": "x\u{0}"}]}), "emails.value"),
            (json!({"urn:x:custom:2.0:User": {"tag": "\u{0}"}}), "tag"),
        ] {
            let error = check(&body).unwrap_err();
            assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
            assert!(error.detail.starts_with(name), "{}", error.detail);
            assert!(error.detail.contains("NUL"), "{}", error.detail);
        }
        check(&json!({"userName": "tab\tand\u{1}control"})).unwrap();
    }

    #[test]
    fn too_many_values_are_refused() {
        let emails: Vec<Value> = (0..3000)
            .map(|_| json!({"value": "a@b.c", "type": "work"}))
            .collect();
        let error = check(&json!({ "emails": emails })).unwrap_err();
        assert!(
            error.detail.contains("emails has 3000 values"),
            "{}",
            error.detail
        );
    }

    #[test]
    fn what_entra_sends_passes() {
        check(&json!({
            "userName": "ada.lovelace@contoso.onmicrosoft.com",
            "displayName": "Ada Lovelace",
            "emails": [{"type": "work", "value": "ada@contoso.com", "primary": true}],
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Engines", "manager": {"value": "42"}
            }
        }))
        .unwrap();
        check_member_count(MAX_MEMBERS_PER_REQUEST).unwrap();
        assert!(check_member_count(MAX_MEMBERS_PER_REQUEST + 1).is_err());
    }
}
