//! Normalising User and Group bodies from POST/PUT, and reading summaries of
//! stored resources.
//!
//! Normalisation is deliberately forgiving (Entra sends `null`s, `meta`,
//! string booleans, unknown URNs and odd casing) but it never reformats a
//! value: only keys are re-spelled and containers reshaped.

use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimType};
use crate::filter::parse_attr_path;
use crate::schema::{
    Returned, SCHEMA_ENTERPRISE_USER, SCHEMA_USER, core_attr, enterprise_attr, is_core_urn,
    is_enterprise_urn, looks_like_urn,
};
use crate::util::{as_bool_lenient, drop_nulls, find_key, get_ci, is_present, scalar_string};
use crate::values::{coerce_primary, manager_id, prepare};

type Obj = Map<String, Value>;

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidValue, detail)
}

/// Normalises a User body from POST or PUT into the stored form.
///
/// - drops `null`s (recursively), `id`, `meta`, `groups` and other server-owned data;
/// - `active`/`primary` string booleans become booleans; `active` defaults to `true`;
/// - known attribute and sub-attribute names get their canonical spelling;
/// - enterprise attributes end up under the canonical enterprise URN key, with
///   `manager` as `{"value": id}` (a top-level `manager` is moved there too);
/// - empty arrays and empty objects (`"roles": []`) are dropped: in SCIM an
///   empty multi-valued attribute and an absent one are the same thing;
/// - unknown attributes and unknown URNs are kept as sent;
/// - `schemas` is deduplicated, starts with the core User URN and lists the
///   enterprise URN exactly when enterprise attributes are present.
///
/// Attributes the schema marks returned "never" (`password`) are dropped here, so they are
/// never stored and so never returned, whatever a later read or PATCH asks: dirsync has no
/// use for them.
///
/// `userName` missing, empty or not a string is 400 `invalidValue`; a value over the bounds
/// of [`crate::limits`] is 400 `invalidValue` naming the attribute.
pub fn normalize_user(input: Value) -> Result<Value, ScimError> {
    let Value::Object(fields) = input else {
        return Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            "a User must be a JSON object",
        ));
    };
    let mut out = Obj::new();
    let mut enterprise = Obj::new();
    let mut schemas_in: Vec<String> = Vec::new();
    // Canonically spelled keys last, so that with both `UserName` and
    // `userName` present the canonical one wins regardless of map order.
    let mut entries: Vec<(String, Value)> = fields
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .collect();
    entries.sort_by_key(|(key, _)| core_attr(key).is_some_and(|known| known.name == key));
    for (key, value) in entries {
        let value = drop_nulls(value);
        if key.eq_ignore_ascii_case("schemas") {
            match value {
                Value::Array(items) => schemas_in.extend(
                    items
                        .iter()
                        .filter_map(|urn| urn.as_str().map(str::to_owned)),
                ),
                Value::String(urn) => schemas_in.push(urn),
                _ => {}
            }
        } else if ["id", "meta", "groups"]
            .iter()
            .any(|reserved| key.eq_ignore_ascii_case(reserved))
        {
            // server-owned
        } else if looks_like_urn(&key) {
            put_urn_key(&mut out, &mut enterprise, &key, value)?;
        } else {
            put_core(&mut out, &mut enterprise, &key, value)?;
        }
    }

    match out.get("userName") {
        Some(Value::String(user_name)) if !user_name.trim().is_empty() => {}
        Some(_) => return Err(invalid("userName must be a non-empty string")),
        None => return Err(invalid("userName is required")),
    }
    out.entry("active").or_insert(Value::Bool(true));

    let mut schemas = vec![SCHEMA_USER.to_owned()];
    let mut push = |urn: &str| {
        if !schemas
            .iter()
            .any(|listed| listed.eq_ignore_ascii_case(urn))
        {
            schemas.push(urn.to_owned());
        }
    };
    for urn in &schemas_in {
        if !is_enterprise_urn(urn) {
            push(urn);
        }
    }
    if !enterprise.is_empty() {
        push(SCHEMA_ENTERPRISE_USER);
        out.insert(SCHEMA_ENTERPRISE_USER.to_owned(), Value::Object(enterprise));
    }
    let extension_keys: Vec<String> = out
        .iter()
        .filter(|(key, value)| looks_like_urn(key) && value.is_object())
        .map(|(key, _)| key.clone())
        .collect();
    for key in &extension_keys {
        push(key);
    }
    out.insert(
        "schemas".to_owned(),
        Value::Array(schemas.into_iter().map(Value::String).collect()),
    );
    let user = Value::Object(out);
    crate::limits::check(&user)?;
    Ok(user)
}

/// A core attribute into `out` (or `manager` into `enterprise`), shaped and checked.
fn put_core(out: &mut Obj, enterprise: &mut Obj, key: &str, value: Value) -> Result<(), ScimError> {
    if key.eq_ignore_ascii_case("manager") {
        return put_enterprise(enterprise, key, value);
    }
    let def = core_attr(key);
    if def.is_some_and(|known| known.returned == Returned::Never) {
        return Ok(());
    }
    let name = def.map_or(key, |known| known.name);
    let value = prepare(def, name, &value)?;
    if is_present(&value) || matches!(value, Value::String(_)) {
        out.insert(name.to_owned(), value);
    }
    Ok(())
}

/// An enterprise extension attribute; `manager` in its one stored shape, `{"value": id}`.
fn put_enterprise(enterprise: &mut Obj, key: &str, value: Value) -> Result<(), ScimError> {
    if key.eq_ignore_ascii_case("manager") {
        if let Some(id) = manager_id(Some(&value))? {
            enterprise.insert("manager".to_owned(), json!({ "value": id }));
        }
        return Ok(());
    }
    let def = enterprise_attr(key);
    let name = def.map_or(key, |known| known.name);
    let value = prepare(def, name, &value)?;
    if is_present(&value) || matches!(value, Value::String(_)) {
        enterprise.insert(name.to_owned(), value);
    }
    Ok(())
}

/// A key that starts with a schema URN: a whole schema's object, a flattened
/// `urn:…:attr` key, or a custom extension kept as sent.
fn put_urn_key(
    out: &mut Obj,
    enterprise: &mut Obj,
    key: &str,
    value: Value,
) -> Result<(), ScimError> {
    if is_enterprise_urn(key) || is_core_urn(key) {
        let Value::Object(attrs) = value else {
            return Err(invalid(format!("'{key}' must be an object")));
        };
        for (attr, attr_value) in attrs {
            if is_enterprise_urn(key) {
                put_enterprise(enterprise, &attr, attr_value)?;
            } else {
                put_core(out, enterprise, &attr, attr_value)?;
            }
        }
        return Ok(());
    }
    // A flattened `urn:…:User:attr` key, as in path-less PATCH values.
    if let Ok(path) = parse_attr_path(key)
        && let Some(schema) = path.schema.as_deref()
        && path.value_filter.is_none()
    {
        let value = match &path.sub_attr {
            Some(sub) => json!({ sub.as_str(): value }),
            None => value,
        };
        if is_enterprise_urn(schema) {
            return put_enterprise(enterprise, &path.name, value);
        }
        if is_core_urn(schema) {
            return put_core(out, enterprise, &path.name, value);
        }
        let ext_key = find_key(out, schema)
            .cloned()
            .unwrap_or_else(|| schema.to_owned());
        let extension = out
            .entry(ext_key)
            .or_insert_with(|| Value::Object(Obj::new()));
        if let Value::Object(extension) = extension {
            extension.insert(path.name.clone(), coerce_primary(value));
        }
        return Ok(());
    }
    // A custom extension object (or anything else under a URN): as sent.
    let value = coerce_primary(value);
    if is_present(&value) {
        out.insert(key.to_owned(), value);
    }
    Ok(())
}

/// The fields of a stored User that the provisioner needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserSummary {
    /// `userName`
    pub user_name: String,
    /// `externalId`
    pub external_id: Option<String>,
    /// `displayName`
    pub display_name: Option<String>,
    /// `active` (default true)
    pub active: bool,
    /// The `work` email, else the primary one, else the first.
    pub email: Option<String>,
    /// `name.givenName`
    pub given_name: Option<String>,
    /// `name.familyName`
    pub family_name: Option<String>,
    /// Enterprise `manager.value`
    pub manager_id: Option<String>,
    /// Enterprise `department`
    pub department: Option<String>,
}

impl UserSummary {
    /// Reads a User resource (normalised or not; names case-insensitive).
    pub fn from_resource(resource: &Value) -> Result<UserSummary, ScimError> {
        let obj = resource.as_object().ok_or_else(|| {
            ScimError::bad_request(ScimType::InvalidSyntax, "a User must be a JSON object")
        })?;
        let text = |o: &Obj, k: &str| {
            get_ci(o, k)
                .and_then(scalar_string)
                .filter(|s| !s.is_empty())
        };
        let user_name = text(obj, "userName")
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| invalid("userName is required"))?;
        let name = get_ci(obj, "name").and_then(Value::as_object);
        let ent = get_ci(obj, SCHEMA_ENTERPRISE_USER).and_then(Value::as_object);
        let manager = ent
            .and_then(|e| get_ci(e, "manager"))
            .or_else(|| get_ci(obj, "manager"));
        Ok(UserSummary {
            external_id: text(obj, "externalId"),
            display_name: text(obj, "displayName"),
            active: get_ci(obj, "active")
                .and_then(as_bool_lenient)
                .unwrap_or(true),
            email: pick_email(get_ci(obj, "emails")),
            given_name: name.and_then(|n| text(n, "givenName")),
            family_name: name.and_then(|n| text(n, "familyName")),
            manager_id: manager_id(manager).ok().flatten(),
            department: ent.and_then(|e| text(e, "department")),
            user_name,
        })
    }
}

fn pick_email(emails: Option<&Value>) -> Option<String> {
    let items: Vec<&Obj> = match emails? {
        Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
        Value::Object(o) => vec![o],
        _ => return None,
    };
    fn value(o: &Obj) -> Option<String> {
        get_ci(o, "value")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
    fn is_work(o: &Obj) -> bool {
        get_ci(o, "type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("work"))
    }
    fn is_primary(o: &Obj) -> bool {
        get_ci(o, "primary").and_then(as_bool_lenient) == Some(true)
    }
    let first = |keep: fn(&Obj) -> bool| items.iter().filter(|o| keep(o)).find_map(|o| value(o));
    first(is_work)
        .or_else(|| first(is_primary))
        .or_else(|| first(|_| true))
}

/// A Group body from POST or PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInput {
    /// `displayName` as sent.
    pub display_name: String,
    /// `externalId` (Entra's group objectId).
    pub external_id: Option<String>,
    /// Member ids, trimmed and deduplicated.
    pub member_ids: Vec<String>,
}

/// Parses a Group body. Tolerates the ADSCIM schema URN, `meta`, `id` and
/// nulls; `displayName` is required (400 `invalidValue`).
pub fn parse_group(input: &Value) -> Result<GroupInput, ScimError> {
    let obj = input.as_object().ok_or_else(|| {
        ScimError::bad_request(ScimType::InvalidSyntax, "a Group must be a JSON object")
    })?;
    let display_name = match get_ci(obj, "displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(invalid("displayName is required"));
        }
        Some(_) => return Err(invalid("displayName must be a string")),
    };
    let external_id = match get_ci(obj, "externalId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(scalar_string(v).ok_or_else(|| invalid("externalId must be a string"))?),
    }
    .filter(|s| !s.is_empty());
    let mut member_ids: Vec<String> = Vec::new();
    let members: Vec<&Value> = match get_ci(obj, "members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        Some(_) => {
            return Err(invalid(
                "members must be an array of {\"value\": id} objects",
            ));
        }
    };
    crate::limits::check_member_count(members.len())?;
    let mut seen = std::collections::HashSet::new();
    for m in members {
        let id = match m {
            Value::Null => continue,
            Value::Object(o) => get_ci(o, "value").and_then(scalar_string),
            other => scalar_string(other),
        };
        let id = id
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                invalid("each member needs a non-empty 'value' holding the member id")
            })?;
        crate::limits::check_no_nul("a member id", &id)?;
        if seen.insert(id.clone()) {
            member_ids.push(id);
        }
    }
    crate::limits::check(&json!({
        "displayName": display_name,
        "externalId": external_id,
    }))?;
    Ok(GroupInput {
        display_name,
        external_id,
        member_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_user_gets_defaults() {
        let u = normalize_user(json!({"userName": "a"})).unwrap();
        assert_eq!(
            u,
            json!({"userName": "a", "active": true, "schemas": [SCHEMA_USER]})
        );
    }

    #[test]
    fn password_is_never_kept() {
        for body in [
            json!({"userName": "a", "password": "Secr3t!"}),
            json!({"userName": "a", "Password": "Secr3t!"}),
            json!({"userName": "a", "urn:ietf:params:scim:schemas:core:2.0:User:password": "Secr3t!"}),
            json!({"userName": "a", "urn:ietf:params:scim:schemas:core:2.0:User": {"password": "Secr3t!"}}),
        ] {
            let user = normalize_user(body.clone()).unwrap();
            assert!(
                !user.to_string().contains("Secr3t!"),
                "{body} kept as {user}"
            );
        }
    }

    #[test]
    fn user_name_validation() {
        for body in [
            json!({}),
            json!({"userName": ""}),
            json!({"userName": "  "}),
            json!({"userName": 5}),
            json!({"userName": null}),
        ] {
            let e = normalize_user(body).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
            assert!(e.detail.contains("userName"));
        }
        let e = normalize_user(json!("x")).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    }

    #[test]
    fn canonical_names_win_and_case_folds() {
        let u = normalize_user(json!({"UserName": "wrong", "userName": "right", "NAME": {"FamilyName": "F"}, "Emails": [{"Value": "a@b", "Primary": "true"}]})).unwrap();
        assert_eq!(u["userName"], "right");
        assert_eq!(u["name"], json!({"familyName": "F"}));
        assert_eq!(u["emails"], json!([{"value": "a@b", "primary": true}]));
    }

    #[test]
    fn top_level_manager_and_flat_urn_keys_move_to_enterprise() {
        let u = normalize_user(json!({
            "userName": "a",
            "manager": "m1",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "7",
            "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:tag": "t"
        }))
        .unwrap();
        assert_eq!(
            u[SCHEMA_ENTERPRISE_USER],
            json!({"manager": {"value": "m1"}, "employeeNumber": "7"})
        );
        assert_eq!(
            u["urn:ietf:params:scim:schemas:extension:Custom:2.0:User"],
            json!({"tag": "t"})
        );
        let schemas = u["schemas"].as_array().unwrap();
        assert_eq!(schemas.len(), 3);
    }

    #[test]
    fn enterprise_urn_dropped_from_schemas_when_empty() {
        let u = normalize_user(json!({
            "schemas": [SCHEMA_USER, SCHEMA_ENTERPRISE_USER, SCHEMA_USER],
            "userName": "a",
            SCHEMA_ENTERPRISE_USER: {"manager": null, "department": null}
        }))
        .unwrap();
        assert_eq!(u["schemas"], json!([SCHEMA_USER]));
        assert!(u.get(SCHEMA_ENTERPRISE_USER).is_none());
    }

    #[test]
    fn invalid_shapes() {
        assert!(normalize_user(json!({"userName": "a", "active": "sometimes"})).is_err());
        assert!(normalize_user(json!({"userName": "a", "name": "x"})).is_err());
        assert!(normalize_user(json!({"userName": "a", SCHEMA_ENTERPRISE_USER: "x"})).is_err());
        assert!(
            normalize_user(json!({"userName": "a", SCHEMA_ENTERPRISE_USER: {"manager": true}}))
                .is_err()
        );
    }

    #[test]
    fn summary_reads_everything() {
        let u = json!({
            "userName": "a@x", "externalId": "e", "displayName": "A", "active": "False",
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "h@x", "type": "home"}, {"value": "p@x", "primary": true}, {"value": "w@x", "type": "Work"}],
            SCHEMA_ENTERPRISE_USER: {"manager": {"value": "m"}, "department": "D"}
        });
        let s = UserSummary::from_resource(&u).unwrap();
        assert_eq!(
            s,
            UserSummary {
                user_name: "a@x".into(),
                external_id: Some("e".into()),
                display_name: Some("A".into()),
                active: false,
                email: Some("w@x".into()),
                given_name: Some("G".into()),
                family_name: Some("F".into()),
                manager_id: Some("m".into()),
                department: Some("D".into()),
            }
        );
        let s = UserSummary::from_resource(&json!({"userName": "a", "emails": [{"value": "h@x"}, {"value": "p@x", "primary": "True"}]})).unwrap();
        assert_eq!(s.email.as_deref(), Some("p@x"));
        assert!(s.active);
        let s = UserSummary::from_resource(&json!({"userName": "a", "emails": [{"value": "h@x"}]}))
            .unwrap();
        assert_eq!(s.email.as_deref(), Some("h@x"));
        assert!(UserSummary::from_resource(&json!({})).is_err());
    }

    #[test]
    fn group_parsing() {
        let g = parse_group(&json!({
            "schemas": [crate::schema::SCHEMA_GROUP, crate::schema::SCHEMA_ADSCIM_GROUP],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"},
            "members": [{"value": " u1 ", "display": "x"}, {"value": "u1"}, {"value": "u2", "$ref": null}, null]
        }))
        .unwrap();
        assert_eq!(g.display_name, "displayName");
        assert_eq!(
            g.external_id.as_deref(),
            Some("8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")
        );
        assert_eq!(g.member_ids, vec!["u1", "u2"]);
        for bad in [
            json!({}),
            json!({"displayName": ""}),
            json!({"displayName": 1}),
            json!({"displayName": "g", "members": [{"display": "x"}]}),
            json!({"displayName": "g", "members": 3}),
        ] {
            assert_eq!(
                parse_group(&bad).unwrap_err().scim_type,
                Some(ScimType::InvalidValue),
                "{bad}"
            );
        }
        assert_eq!(
            parse_group(&json!([])).unwrap_err().scim_type,
            Some(ScimType::InvalidSyntax)
        );
    }
}
