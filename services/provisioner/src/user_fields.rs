//! Users written and read as typed fields (`UserFields`) instead of a SCIM document. Typed
//! input becomes the SCIM document a SCIM client would have sent, so both land in the same
//! desired state through the same normalisation; typed output is read from the stored
//! document, so it always agrees with `scim_json`.

use dirsync_proto::provisioner::v1 as pb;
use dirsync_scim::{SCHEMA_ENTERPRISE_USER, SCHEMA_USER};
use serde_json::{Map, Value, json};

fn put(map: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        map.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

/// The SCIM User document typed fields stand for.
pub(crate) fn to_document(fields: &pb::UserFields) -> Value {
    let mut user = Map::new();
    let mut schemas = vec![Value::String(SCHEMA_USER.to_owned())];
    put(&mut user, "userName", &fields.user_name);
    put(&mut user, "externalId", &fields.external_id);
    put(&mut user, "displayName", &fields.display_name);
    put(&mut user, "title", &fields.title);
    let mut name = Map::new();
    put(&mut name, "givenName", &fields.given_name);
    put(&mut name, "familyName", &fields.family_name);
    if !name.is_empty() {
        user.insert("name".to_owned(), Value::Object(name));
    }
    if !fields.emails.is_empty() {
        let emails = fields
            .emails
            .iter()
            .map(|email| {
                let mut entry = Map::new();
                put(&mut entry, "value", &email.value);
                put(&mut entry, "type", &email.r#type);
                if email.primary {
                    entry.insert("primary".to_owned(), Value::Bool(true));
                }
                Value::Object(entry)
            })
            .collect();
        user.insert("emails".to_owned(), Value::Array(emails));
    }
    user.insert(
        "active".to_owned(),
        Value::Bool(fields.active.unwrap_or(true)),
    );
    let mut enterprise = Map::new();
    put(&mut enterprise, "department", &fields.department);
    put(&mut enterprise, "employeeNumber", &fields.employee_number);
    if !fields.manager_id.is_empty() {
        enterprise.insert("manager".to_owned(), json!({ "value": fields.manager_id }));
    }
    if !enterprise.is_empty() {
        schemas.push(Value::String(SCHEMA_ENTERPRISE_USER.to_owned()));
        user.insert(SCHEMA_ENTERPRISE_USER.to_owned(), Value::Object(enterprise));
    }
    user.insert("schemas".to_owned(), Value::Array(schemas));
    Value::Object(user)
}

fn text(value: Option<&Value>) -> String {
    value.and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// The typed fields of a stored (normalised) SCIM User document.
pub(crate) fn from_document(document: &Value) -> pb::UserFields {
    let enterprise = document.get(SCHEMA_ENTERPRISE_USER);
    let emails = document
        .get("emails")
        .and_then(Value::as_array)
        .map(|emails| {
            emails
                .iter()
                .map(|email| pb::Email {
                    value: text(email.get("value")),
                    r#type: text(email.get("type")),
                    primary: email.get("primary").and_then(Value::as_bool) == Some(true),
                })
                .collect()
        })
        .unwrap_or_default();
    pb::UserFields {
        user_name: text(document.get("userName")),
        external_id: text(document.get("externalId")),
        display_name: text(document.get("displayName")),
        given_name: text(document.get("name").and_then(|name| name.get("givenName"))),
        family_name: text(document.get("name").and_then(|name| name.get("familyName"))),
        emails,
        active: Some(document.get("active").and_then(Value::as_bool) != Some(false)),
        title: text(document.get("title")),
        department: text(enterprise.and_then(|ext| ext.get("department"))),
        employee_number: text(enterprise.and_then(|ext| ext.get("employeeNumber"))),
        manager_id: text(
            enterprise
                .and_then(|ext| ext.get("manager"))
                .and_then(|manager| manager.get("value")),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn typed_fields_round_trip_through_the_normalised_document() {
        let fields = pb::UserFields {
            user_name: "ada@contoso.com".to_owned(),
            external_id: "ada".to_owned(),
            display_name: "Ada Lovelace".to_owned(),
            given_name: "Ada".to_owned(),
            family_name: "Lovelace".to_owned(),
            emails: vec![pb::Email {
                value: "ada@contoso.com".to_owned(),
                r#type: "work".to_owned(),
                primary: true,
            }],
            active: Some(false),
            title: "Engineer".to_owned(),
            department: "Engines".to_owned(),
            employee_number: "1815".to_owned(),
            manager_id: "42".to_owned(),
        };
        let document = dirsync_scim::normalize_user(to_document(&fields)).unwrap();
        assert_eq!(from_document(&document), fields);
    }

    #[test]
    fn unset_active_means_active() {
        let fields = pb::UserFields {
            user_name: "bob@contoso.com".to_owned(),
            ..Default::default()
        };
        let document = dirsync_scim::normalize_user(to_document(&fields)).unwrap();
        assert_eq!(document["active"], true);
        assert_eq!(from_document(&document).active, Some(true));
    }
}
