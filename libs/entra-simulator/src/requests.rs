//! Pure construction of the requests Entra sends, and parsing of the replies
//! it reads. No I/O here, so every wire shape can be unit-tested.
//!
//! Shapes follow `docs/entra-scim.md` §4 (tutorial payloads) and the
//! `aadOptscim062020` comparison in Microsoft's SCIM compatibility article
//! (§1.4, §6 Q1/Q2/Q4/Q8/Q9).

use reqwest::Url;
use serde_json::{Map, Value, json};

use crate::directory::DirectoryUser;

pub const SCHEMA_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const SCHEMA_ENTERPRISE_USER: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const SCHEMA_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Entra lists this Microsoft-specific URN when it creates a group (docs/entra-scim.md §4.8).
pub const SCHEMA_ADSCIM_GROUP: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
pub const SCHEMA_PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

const MANAGER_PATH: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";

/// Which PATCH dialect the simulated provisioning job speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PatchShape {
    /// No flag in the tenant URL: capitalised ops, `"True"`/`"False"`
    /// strings, one operation per attribute, member removal as
    /// `path: "members"` plus a value array.
    #[default]
    Default,
    /// `?aadOptscim062020` in the tenant URL: lowercase ops, real booleans,
    /// several replaces merged into one path-less `replace` with dotted keys,
    /// member removal through `members[value eq "…"]`.
    AadOptscim062020,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

impl PatchShape {
    fn op(self, op: Op) -> &'static str {
        match (self, op) {
            (PatchShape::Default, Op::Add) => "Add",
            (PatchShape::Default, Op::Replace) => "Replace",
            (PatchShape::Default, Op::Remove) => "Remove",
            (PatchShape::AadOptscim062020, Op::Add) => "add",
            (PatchShape::AadOptscim062020, Op::Replace) => "replace",
            (PatchShape::AadOptscim062020, Op::Remove) => "remove",
        }
    }

    fn boolean(self, b: bool) -> Value {
        match (self, b) {
            (PatchShape::Default, true) => Value::from("True"),
            (PatchShape::Default, false) => Value::from("False"),
            (PatchShape::AadOptscim062020, b) => Value::from(b),
        }
    }
}

/// The SCIM-side values of one user, as Entra last wrote them or as the target
/// reported them. `None` means "not set"; Entra never writes `null` (docs/entra-scim.md §2), so a
/// `None` in the desired image never produces an operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserImage {
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub title: Option<String>,
    pub work_email: Option<String>,
    pub department: Option<String>,
    pub employee_number: Option<String>,
    pub active: Option<bool>,
}

fn non_empty(s: &str) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s.to_owned())
    }
}

/// Case-insensitive member lookup: attribute names are case-insensitive in
/// SCIM (RFC 7643 §2.1) and servers do not all echo Entra's casing.
fn get_ci<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    let map = object.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn get_str(object: &Value, key: &str) -> Option<String> {
    get_ci(object, key)
        .and_then(Value::as_str)
        .and_then(non_empty)
}

fn as_bool_lenient(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

impl UserImage {
    /// The default Entra → SCIM attribute mapping (docs/entra-scim.md §5).
    pub fn from_directory(user: &DirectoryUser) -> Self {
        Self {
            user_name: non_empty(&user.user_principal_name),
            external_id: non_empty(&user.mail_nickname),
            display_name: non_empty(&user.display_name),
            given_name: non_empty(&user.given_name),
            family_name: non_empty(&user.surname),
            title: non_empty(&user.job_title),
            work_email: non_empty(&user.mail),
            department: non_empty(&user.department),
            employee_number: non_empty(&user.employee_id),
            active: Some(user.account_enabled),
        }
    }

    /// Reads a User resource returned by the target, tolerating the shapes a
    /// lenient server may echo (string booleans, any key casing).
    pub fn from_resource(resource: &Value) -> Self {
        let name = get_ci(resource, "name");
        let enterprise = get_ci(resource, SCHEMA_ENTERPRISE_USER);
        Self {
            user_name: get_str(resource, "userName"),
            external_id: get_str(resource, "externalId"),
            display_name: get_str(resource, "displayName"),
            given_name: name.and_then(|n| get_str(n, "givenName")),
            family_name: name.and_then(|n| get_str(n, "familyName")),
            title: get_str(resource, "title"),
            work_email: work_email(resource),
            department: enterprise.and_then(|e| get_str(e, "department")),
            employee_number: enterprise.and_then(|e| get_str(e, "employeeNumber")),
            active: get_ci(resource, "active").and_then(as_bool_lenient),
        }
    }

    /// `top`'s values where set, `self`'s otherwise: the target state after
    /// successfully writing the differences towards `top`.
    pub fn overlay(&self, top: &UserImage) -> UserImage {
        fn pick(top: &Option<String>, base: &Option<String>) -> Option<String> {
            top.clone().or_else(|| base.clone())
        }
        UserImage {
            user_name: pick(&top.user_name, &self.user_name),
            external_id: pick(&top.external_id, &self.external_id),
            display_name: pick(&top.display_name, &self.display_name),
            given_name: pick(&top.given_name, &self.given_name),
            family_name: pick(&top.family_name, &self.family_name),
            title: pick(&top.title, &self.title),
            work_email: pick(&top.work_email, &self.work_email),
            department: pick(&top.department, &self.department),
            employee_number: pick(&top.employee_number, &self.employee_number),
            active: top.active.or(self.active),
        }
    }
}

fn work_email(resource: &Value) -> Option<String> {
    let emails = get_ci(resource, "emails")?.as_array()?;
    let by_type = emails.iter().find(|e| {
        get_ci(e, "type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("work"))
    });
    let by_primary = || {
        emails.iter().find(|e| {
            get_ci(e, "primary")
                .and_then(as_bool_lenient)
                .unwrap_or(false)
        })
    };
    by_type
        .or_else(by_primary)
        .or_else(|| emails.first())
        .and_then(|e| get_str(e, "value"))
}

/// The manager id in a returned User, in any of the shapes servers use
/// (complex object, bare string, one-element array; docs/entra-scim.md §6 Q8).
pub fn manager_from_resource(resource: &Value) -> Option<String> {
    let manager = get_ci(get_ci(resource, SCHEMA_ENTERPRISE_USER)?, "manager")?;
    let manager = match manager {
        Value::Array(items) => items.first()?,
        other => other,
    };
    match manager {
        Value::String(s) => non_empty(s),
        Value::Object(_) => get_str(manager, "value"),
        _ => None,
    }
}

/// A user attribute in the default mapping, in the order Entra lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserAttribute {
    UserName,
    ExternalId,
    DisplayName,
    WorkEmail,
    GivenName,
    FamilyName,
    Title,
    Department,
    EmployeeNumber,
    Active,
}

impl UserAttribute {
    /// The PATCH path Entra uses, which is also the dotted key in a path-less
    /// value object.
    pub fn path(self) -> &'static str {
        match self {
            UserAttribute::UserName => "userName",
            UserAttribute::ExternalId => "externalId",
            UserAttribute::DisplayName => "displayName",
            UserAttribute::WorkEmail => "emails[type eq \"work\"].value",
            UserAttribute::GivenName => "name.givenName",
            UserAttribute::FamilyName => "name.familyName",
            UserAttribute::Title => "title",
            UserAttribute::Department => {
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
            }
            UserAttribute::EmployeeNumber => {
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
            }
            UserAttribute::Active => "active",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    Text(String),
    Bool(bool),
}

/// One attribute Entra must write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeChange {
    pub attribute: UserAttribute,
    /// Whether the target already had a value: Entra sends `Add` for a value
    /// that was absent and `Replace` for one that changed.
    pub previously_set: bool,
    pub value: AttributeValue,
}

/// The attributes that differ between what the target holds (`current`) and
/// what the directory wants (`desired`).
pub fn diff_user(current: &UserImage, desired: &UserImage) -> Vec<AttributeChange> {
    let texts = [
        (
            UserAttribute::UserName,
            &current.user_name,
            &desired.user_name,
        ),
        (
            UserAttribute::ExternalId,
            &current.external_id,
            &desired.external_id,
        ),
        (
            UserAttribute::DisplayName,
            &current.display_name,
            &desired.display_name,
        ),
        (
            UserAttribute::WorkEmail,
            &current.work_email,
            &desired.work_email,
        ),
        (
            UserAttribute::GivenName,
            &current.given_name,
            &desired.given_name,
        ),
        (
            UserAttribute::FamilyName,
            &current.family_name,
            &desired.family_name,
        ),
        (UserAttribute::Title, &current.title, &desired.title),
        (
            UserAttribute::Department,
            &current.department,
            &desired.department,
        ),
        (
            UserAttribute::EmployeeNumber,
            &current.employee_number,
            &desired.employee_number,
        ),
    ];
    let mut changes = Vec::new();
    for (attribute, have, want) in texts {
        if let Some(want) = want
            && have.as_ref() != Some(want)
        {
            changes.push(AttributeChange {
                attribute,
                previously_set: have.is_some(),
                value: AttributeValue::Text(want.clone()),
            });
        }
    }
    if let Some(want) = desired.active
        && current.active != Some(want)
    {
        changes.push(AttributeChange {
            attribute: UserAttribute::Active,
            previously_set: current.active.is_some(),
            value: AttributeValue::Bool(want),
        });
    }
    changes
}

fn patch_body(operations: Vec<Value>) -> Value {
    json!({ "schemas": [SCHEMA_PATCH_OP], "Operations": operations })
}

/// The PATCH body Entra sends for these attribute changes, or `None` when
/// there is nothing to send.
pub fn user_patch_body(shape: PatchShape, changes: &[AttributeChange]) -> Option<Value> {
    if changes.is_empty() {
        return None;
    }
    let value_of = |v: &AttributeValue| match v {
        AttributeValue::Text(s) => Value::from(s.as_str()),
        AttributeValue::Bool(b) => shape.boolean(*b),
    };
    let mut ops = Vec::new();
    match shape {
        PatchShape::Default => {
            for c in changes {
                let op = if c.previously_set {
                    Op::Replace
                } else {
                    Op::Add
                };
                ops.push(json!({"op": shape.op(op), "path": c.attribute.path(), "value": value_of(&c.value)}));
            }
        }
        PatchShape::AadOptscim062020 => {
            // Per the compatibility article: single-value adds keep their
            // path, the filtered email path and `active` stay separate
            // operations, and the remaining replaces merge into one path-less
            // object keyed by dotted/URN paths.
            let mut merged = Map::new();
            let mut tail = Vec::new();
            for c in changes {
                let value = value_of(&c.value);
                match (c.attribute, c.previously_set) {
                    (UserAttribute::Active, _) => tail.push(
                        json!({"op": shape.op(Op::Replace), "path": c.attribute.path(), "value": value}),
                    ),
                    (_, false) => ops.push(
                        json!({"op": shape.op(Op::Add), "path": c.attribute.path(), "value": value}),
                    ),
                    (UserAttribute::WorkEmail, true) => ops.push(
                        json!({"op": shape.op(Op::Replace), "path": c.attribute.path(), "value": value}),
                    ),
                    (_, true) => {
                        merged.insert(c.attribute.path().to_owned(), value);
                    }
                }
            }
            if !merged.is_empty() {
                ops.push(json!({"op": shape.op(Op::Replace), "value": Value::Object(merged)}));
            }
            ops.extend(tail);
        }
    }
    Some(patch_body(ops))
}

/// `POST /Users` body (docs/entra-scim.md §4.1). The manager is not part of it: Entra writes
/// references in a second round, once both users exist.
pub fn user_create_body(desired: &UserImage) -> Value {
    let mut body = Map::new();
    body.insert(
        "schemas".into(),
        json!([SCHEMA_USER, SCHEMA_ENTERPRISE_USER]),
    );
    if let Some(v) = &desired.external_id {
        body.insert("externalId".into(), json!(v));
    }
    if let Some(v) = &desired.user_name {
        body.insert("userName".into(), json!(v));
    }
    body.insert("active".into(), json!(desired.active.unwrap_or(true)));
    if let Some(v) = &desired.display_name {
        body.insert("displayName".into(), json!(v));
    }
    if let Some(v) = &desired.work_email {
        body.insert(
            "emails".into(),
            json!([{"primary": true, "type": "work", "value": v}]),
        );
    }
    body.insert("meta".into(), json!({"resourceType": "User"}));
    let mut name = Map::new();
    let formatted: Vec<&str> = [&desired.given_name, &desired.family_name]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if !formatted.is_empty() {
        name.insert("formatted".into(), json!(formatted.join(" ")));
    }
    if let Some(v) = &desired.family_name {
        name.insert("familyName".into(), json!(v));
    }
    if let Some(v) = &desired.given_name {
        name.insert("givenName".into(), json!(v));
    }
    if !name.is_empty() {
        body.insert("name".into(), Value::Object(name));
    }
    if let Some(v) = &desired.title {
        body.insert("title".into(), json!(v));
    }
    body.insert("roles".into(), json!([]));
    let mut enterprise = Map::new();
    if let Some(v) = &desired.department {
        enterprise.insert("department".into(), json!(v));
    }
    if let Some(v) = &desired.employee_number {
        enterprise.insert("employeeNumber".into(), json!(v));
    }
    if !enterprise.is_empty() {
        body.insert(SCHEMA_ENTERPRISE_USER.into(), Value::Object(enterprise));
    }
    Value::Object(body)
}

/// The reference-round PATCH for `manager`, or `None` if nothing changes.
/// Setting sends the target id as a bare string under the enterprise URN
/// path (docs/entra-scim.md §6 Q8); clearing uses the observed `manager[value eq "…"]` removal.
pub fn manager_patch_body(
    shape: PatchShape,
    previous: Option<&str>,
    desired: Option<&str>,
) -> Option<Value> {
    let op = match (previous, desired) {
        (prev, Some(new)) if prev != Some(new) => {
            let op = if prev.is_some() { Op::Replace } else { Op::Add };
            json!({"op": shape.op(op), "path": MANAGER_PATH, "value": new})
        }
        (Some(old), None) => {
            json!({"op": shape.op(Op::Remove), "path": format!("manager[value eq \"{}\"]", escape_filter_value(old))})
        }
        _ => return None,
    };
    Some(patch_body(vec![op]))
}

/// `POST /Groups` body (docs/entra-scim.md §4.8): created empty, members follow by PATCH.
pub fn group_create_body(display_name: &str, external_id: &str) -> Value {
    json!({
        "schemas": [SCHEMA_GROUP, SCHEMA_ADSCIM_GROUP],
        "externalId": external_id,
        "displayName": display_name,
        "meta": {"resourceType": "Group"},
    })
}

/// PATCH for changed group attributes (`None` = unchanged), or `None` when
/// both are unchanged.
pub fn group_attributes_patch_body(
    shape: PatchShape,
    display_name: Option<&str>,
    external_id: Option<&str>,
) -> Option<Value> {
    let attrs: Vec<(&str, &str)> = [("displayName", display_name), ("externalId", external_id)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    if attrs.is_empty() {
        return None;
    }
    let ops = match shape {
        PatchShape::Default => attrs
            .iter()
            .map(|(k, v)| json!({"op": shape.op(Op::Replace), "path": k, "value": v}))
            .collect(),
        PatchShape::AadOptscim062020 => {
            let merged: Map<String, Value> = attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                .collect();
            vec![json!({"op": shape.op(Op::Replace), "value": merged})]
        }
    };
    Some(patch_body(ops))
}

/// One PATCH adding these members (target user ids) in a single operation
/// (docs/entra-scim.md §4.11; Entra puts an explicit `"$ref": null` on each).
pub fn members_add_body(shape: PatchShape, member_ids: &[String]) -> Value {
    let value: Vec<Value> = member_ids
        .iter()
        .map(|id| match shape {
            PatchShape::Default => json!({"$ref": null, "value": id}),
            PatchShape::AadOptscim062020 => json!({"value": id}),
        })
        .collect();
    patch_body(vec![
        json!({"op": shape.op(Op::Add), "path": "members", "value": value}),
    ])
}

/// One PATCH removing these members: a value array under `path: members`
/// without the flag (meaning "remove these", not "remove all"), one
/// `members[value eq "…"]` operation per member with it (docs/entra-scim.md §4.12).
pub fn members_remove_body(shape: PatchShape, member_ids: &[String]) -> Value {
    let ops = match shape {
        PatchShape::Default => {
            let value: Vec<Value> = member_ids.iter().map(|id| json!({"value": id})).collect();
            vec![json!({"op": shape.op(Op::Remove), "path": "members", "value": value})]
        }
        PatchShape::AadOptscim062020 => member_ids
            .iter()
            .map(|id| {
                json!({"op": shape.op(Op::Remove), "path": format!("members[value eq \"{}\"]", escape_filter_value(id))})
            })
            .collect(),
    };
    patch_body(ops)
}

/// Escapes a value for a double-quoted SCIM filter literal.
pub fn escape_filter_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `base/<collection>` with any trailing slash of the base absorbed.
/// `None` if the base cannot carry a path (validated at construction).
pub fn collection_url(base: &Url, collection: &str) -> Option<Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .push(collection);
    Some(url)
}

/// `base/<collection>/<id>`, with the server-chosen id percent-encoded as one
/// path segment so that no id can redirect the request elsewhere.
pub fn resource_url(base: &Url, collection: &str, id: &str) -> Option<Url> {
    let mut url = collection_url(base, collection)?;
    url.path_segments_mut().ok()?.push(id);
    Some(url)
}

/// `GET /Users?filter=userName eq "<upn>"`, form-encoded (`+` for spaces) as
/// in observed Entra traffic (docs/entra-scim.md §4.3).
pub fn user_query_url(base: &Url, user_name: &str) -> Option<Url> {
    let mut url = collection_url(base, "Users")?;
    url.query_pairs_mut().append_pair(
        "filter",
        &format!("userName eq \"{}\"", escape_filter_value(user_name)),
    );
    Some(url)
}

/// `GET /Groups?excludedAttributes=members&filter=displayName eq "<name>"`
/// (docs/entra-scim.md §4.9), parameters in Entra's order.
pub fn group_query_url(base: &Url, display_name: &str) -> Option<Url> {
    let mut url = collection_url(base, "Groups")?;
    url.query_pairs_mut()
        .append_pair("excludedAttributes", "members")
        .append_pair(
            "filter",
            &format!("displayName eq \"{}\"", escape_filter_value(display_name)),
        );
    Some(url)
}

/// The `Resources` of a ListResponse body. An absent `Resources` is an empty
/// list (RFC 7644 allows omitting it when `totalResults` is 0).
pub fn list_resources(body: &[u8]) -> Result<Vec<Value>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("ListResponse is not JSON: {e}"))?;
    if !value.is_object() {
        return Err("ListResponse is not a JSON object".to_owned());
    }
    match get_ci(&value, "Resources") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err("ListResponse `Resources` is not an array".to_owned()),
    }
}

/// The `id` of a returned resource. Entra requires a string (docs/entra-scim.md §9).
pub fn resource_id(resource: &Value) -> Result<String, String> {
    match resource.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        Some(Value::String(_)) => Err("resource `id` is empty".to_owned()),
        Some(_) => Err("resource `id` is not a string".to_owned()),
        None => Err("resource has no `id`".to_owned()),
    }
}

/// A short description of an error reply: SCIM `scimType` and `detail` when
/// the body is a SCIM error, otherwise the start of the body.
pub fn error_detail(body: &[u8]) -> String {
    const MAX: usize = 200;
    if let Ok(value) = serde_json::from_slice::<Value>(body)
        && value.is_object()
    {
        let detail = get_str(&value, "detail");
        let scim_type = get_str(&value, "scimType");
        match (scim_type, detail) {
            (Some(t), Some(d)) => return format!("({t}) {}", truncate(&d, MAX)),
            (None, Some(d)) => return truncate(&d, MAX),
            (Some(t), None) => return format!("({t})"),
            (None, None) => {}
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        truncate(text, MAX)
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", &s[..idx]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(upn: &str) -> UserImage {
        UserImage {
            user_name: Some(upn.into()),
            external_id: Some("ada.lovelace".into()),
            display_name: Some("Ada Lovelace".into()),
            given_name: Some("Ada".into()),
            family_name: Some("Lovelace".into()),
            title: Some("Engineer".into()),
            work_email: Some(upn.into()),
            department: Some("Engineering".into()),
            employee_number: Some("100001".into()),
            active: Some(true),
        }
    }

    fn ops(body: &Value) -> &Vec<Value> {
        body["Operations"].as_array().expect("Operations array")
    }

    #[test]
    fn create_body_matches_tutorial_shape() {
        let body = user_create_body(&user("ada.lovelace@contoso.example"));
        assert_eq!(
            body["schemas"],
            json!([SCHEMA_USER, SCHEMA_ENTERPRISE_USER])
        );
        assert_eq!(body["userName"], "ada.lovelace@contoso.example");
        assert_eq!(body["externalId"], "ada.lovelace");
        assert_eq!(body["active"], true);
        assert_eq!(
            body["emails"],
            json!([{"primary": true, "type": "work", "value": "ada.lovelace@contoso.example"}])
        );
        assert_eq!(
            body["name"],
            json!({"formatted": "Ada Lovelace", "familyName": "Lovelace", "givenName": "Ada"})
        );
        assert_eq!(body["meta"], json!({"resourceType": "User"}));
        assert_eq!(body["roles"], json!([]));
        assert_eq!(
            body[SCHEMA_ENTERPRISE_USER],
            json!({"department": "Engineering", "employeeNumber": "100001"})
        );
        assert!(body[SCHEMA_ENTERPRISE_USER].get("manager").is_none());
    }

    #[test]
    fn create_body_skips_absent_values() {
        let body = user_create_body(&UserImage {
            user_name: Some("x@y".into()),
            active: Some(true),
            ..UserImage::default()
        });
        for key in [
            "emails",
            "name",
            "title",
            "displayName",
            SCHEMA_ENTERPRISE_USER,
        ] {
            assert!(body.get(key).is_none(), "{key} should be absent");
        }
    }

    #[test]
    fn diff_only_reports_set_and_changed_values() {
        let a = user("a@x");
        assert!(diff_user(&a, &a).is_empty());
        let mut b = a.clone();
        b.title = None; // Entra cannot flow null: no operation
        b.display_name = Some("Ada L.".into());
        b.active = Some(false);
        let changes = diff_user(&a, &b);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].attribute, UserAttribute::DisplayName);
        assert!(changes[0].previously_set);
        assert_eq!(changes[1].value, AttributeValue::Bool(false));

        let empty = UserImage::default();
        let changes = diff_user(&empty, &a);
        assert_eq!(changes.len(), 10);
        assert!(changes.iter().all(|c| !c.previously_set));
    }

    #[test]
    fn default_shape_disable_uses_string_false() {
        let mut after = user("a@x");
        after.active = Some(false);
        let body = user_patch_body(PatchShape::Default, &diff_user(&user("a@x"), &after))
            .expect("a change");
        assert_eq!(
            body,
            json!({"schemas": [SCHEMA_PATCH_OP],
                   "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
        );
        let body = user_patch_body(PatchShape::Default, &diff_user(&after, &user("a@x")))
            .expect("a change");
        assert_eq!(ops(&body)[0]["value"], "True");
    }

    #[test]
    fn flag_shape_disable_uses_boolean() {
        let mut after = user("a@x");
        after.active = Some(false);
        let body = user_patch_body(
            PatchShape::AadOptscim062020,
            &diff_user(&user("a@x"), &after),
        )
        .expect("a change");
        assert_eq!(
            ops(&body),
            &vec![json!({"op": "replace", "path": "active", "value": false})]
        );
    }

    #[test]
    fn default_shape_one_op_per_attribute() {
        let before = user("a@x");
        let mut after = user("b@x");
        after.family_name = Some("Byron".into());
        after.department = Some("Research".into());
        let body =
            user_patch_body(PatchShape::Default, &diff_user(&before, &after)).expect("changes");
        assert_eq!(
            ops(&body),
            &vec![
                json!({"op": "Replace", "path": "userName", "value": "b@x"}),
                json!({"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@x"}),
                json!({"op": "Replace", "path": "name.familyName", "value": "Byron"}),
                json!({"op": "Replace", "path": UserAttribute::Department.path(), "value": "Research"}),
            ]
        );
    }

    #[test]
    fn default_shape_add_for_previously_absent() {
        let mut before = user("a@x");
        before.title = None;
        let body = user_patch_body(PatchShape::Default, &diff_user(&before, &user("a@x")))
            .expect("changes");
        assert_eq!(
            ops(&body),
            &vec![json!({"op": "Add", "path": "title", "value": "Engineer"})]
        );
    }

    #[test]
    fn flag_shape_merges_replaces_into_pathless_dotted_keys() {
        let mut before = user("a@x");
        before.title = None;
        let mut after = user("b@x");
        after.given_name = Some("Augusta".into());
        after.employee_number = Some("9".into());
        after.active = Some(false);
        let body = user_patch_body(PatchShape::AadOptscim062020, &diff_user(&before, &after))
            .expect("changes");
        assert_eq!(
            ops(&body),
            &vec![
                json!({"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@x"}),
                json!({"op": "add", "path": "title", "value": "Engineer"}),
                json!({"op": "replace", "value": {
                    "userName": "b@x",
                    "name.givenName": "Augusta",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "9",
                }}),
                json!({"op": "replace", "path": "active", "value": false}),
            ]
        );
    }

    #[test]
    fn no_changes_no_body() {
        assert!(user_patch_body(PatchShape::Default, &[]).is_none());
        assert!(manager_patch_body(PatchShape::Default, None, None).is_none());
        assert!(manager_patch_body(PatchShape::Default, Some("m"), Some("m")).is_none());
        assert!(group_attributes_patch_body(PatchShape::Default, None, None).is_none());
    }

    #[test]
    fn manager_bodies() {
        let set = manager_patch_body(PatchShape::Default, None, Some("t1")).expect("body");
        assert_eq!(
            ops(&set),
            &vec![json!({"op": "Add", "path": MANAGER_PATH, "value": "t1"})]
        );
        let change =
            manager_patch_body(PatchShape::AadOptscim062020, Some("t1"), Some("t2")).expect("body");
        assert_eq!(
            ops(&change),
            &vec![json!({"op": "replace", "path": MANAGER_PATH, "value": "t2"})]
        );
        let clear = manager_patch_body(PatchShape::Default, Some("t\"1"), None).expect("body");
        assert_eq!(
            ops(&clear),
            &vec![json!({"op": "Remove", "path": "manager[value eq \"t\\\"1\"]"})]
        );
    }

    #[test]
    fn group_bodies() {
        let create = group_create_body("Engineering", "obj-1");
        assert_eq!(
            create,
            json!({"schemas": [SCHEMA_GROUP, SCHEMA_ADSCIM_GROUP], "externalId": "obj-1",
                   "displayName": "Engineering", "meta": {"resourceType": "Group"}})
        );
        assert!(create.get("members").is_none());

        let ids = vec!["u1".to_owned(), "u2".to_owned()];
        assert_eq!(
            members_add_body(PatchShape::Default, &ids),
            json!({"schemas": [SCHEMA_PATCH_OP], "Operations": [{"op": "Add", "path": "members",
                   "value": [{"$ref": null, "value": "u1"}, {"$ref": null, "value": "u2"}]}]})
        );
        assert_eq!(
            ops(&members_add_body(PatchShape::AadOptscim062020, &ids)),
            &vec![
                json!({"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]})
            ]
        );
        assert_eq!(
            ops(&members_remove_body(PatchShape::Default, &ids)),
            &vec![
                json!({"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]})
            ]
        );
        assert_eq!(
            ops(&members_remove_body(PatchShape::AadOptscim062020, &ids)),
            &vec![
                json!({"op": "remove", "path": "members[value eq \"u1\"]"}),
                json!({"op": "remove", "path": "members[value eq \"u2\"]"}),
            ]
        );
        assert_eq!(
            ops(
                &group_attributes_patch_body(PatchShape::Default, Some("New"), None).expect("body")
            ),
            &vec![json!({"op": "Replace", "path": "displayName", "value": "New"})]
        );
        assert_eq!(
            ops(
                &group_attributes_patch_body(PatchShape::AadOptscim062020, Some("New"), Some("e"))
                    .expect("body")
            ),
            &vec![json!({"op": "replace", "value": {"displayName": "New", "externalId": "e"}})]
        );
    }

    #[test]
    fn urls_are_form_encoded_and_segment_safe() {
        let base = Url::parse("http://127.0.0.1:8080/scim/v2/").expect("url");
        let q = user_query_url(&base, "ada.lovelace@contoso.example").expect("url");
        assert_eq!(
            q.as_str(),
            "http://127.0.0.1:8080/scim/v2/Users?filter=userName+eq+%22ada.lovelace%40contoso.example%22"
        );
        let g = group_query_url(&base, "Project Apollo").expect("url");
        assert_eq!(
            g.as_str(),
            "http://127.0.0.1:8080/scim/v2/Groups?excludedAttributes=members&filter=displayName+eq+%22Project+Apollo%22"
        );
        let r = resource_url(&base, "Users", "../../admin?x=1").expect("url");
        assert_eq!(r.path(), "/scim/v2/Users/..%2F..%2Fadmin%3Fx=1");
        assert!(r.query().is_none());
        let no_slash = Url::parse("http://h/scim").expect("url");
        assert_eq!(
            collection_url(&no_slash, "Groups").expect("url").as_str(),
            "http://h/scim/Groups"
        );
    }

    #[test]
    fn parses_lenient_resources() {
        let resource = json!({
            "id": "t1", "userName": "a@x", "Active": "False",
            "name": {"GivenName": "Ada"},
            "emails": [{"value": "home@x", "type": "home"}, {"value": "a@x", "type": "Work"}],
            SCHEMA_ENTERPRISE_USER: {"department": "R&D", "manager": [{"value": "m1"}]}
        });
        let image = UserImage::from_resource(&resource);
        assert_eq!(image.active, Some(false));
        assert_eq!(image.given_name.as_deref(), Some("Ada"));
        assert_eq!(image.work_email.as_deref(), Some("a@x"));
        assert_eq!(image.department.as_deref(), Some("R&D"));
        assert_eq!(manager_from_resource(&resource).as_deref(), Some("m1"));
        assert_eq!(
            manager_from_resource(&json!({SCHEMA_ENTERPRISE_USER: {"manager": "m2"}})).as_deref(),
            Some("m2")
        );
        assert_eq!(manager_from_resource(&json!({"id": 5})), None);
        assert_eq!(resource_id(&resource), Ok("t1".to_owned()));
        assert!(resource_id(&json!({"id": 5})).is_err());
        assert!(resource_id(&json!([])).is_err());
        assert!(resource_id(&json!({"id": ""})).is_err());
    }

    #[test]
    fn list_and_error_parsing_never_panics() {
        assert_eq!(
            list_resources(br#"{"totalResults":0,"Resources":[]}"#).map(|v| v.len()),
            Ok(0)
        );
        assert_eq!(
            list_resources(br#"{"totalResults":0}"#).map(|v| v.len()),
            Ok(0)
        );
        assert_eq!(
            list_resources(br#"{"resources":[{"id":"a"}]}"#).map(|v| v.len()),
            Ok(1)
        );
        assert!(list_resources(b"not json").is_err());
        assert!(list_resources(b"[1]").is_err());
        assert!(list_resources(br#"{"Resources":3}"#).is_err());
        assert_eq!(
            error_detail(br#"{"detail":"dup","scimType":"uniqueness","status":"409"}"#),
            "(uniqueness) dup"
        );
        assert_eq!(error_detail(b""), "(empty body)");
        let long = "é".repeat(500);
        assert!(error_detail(long.as_bytes()).chars().count() <= 201);
        assert_eq!(error_detail(&[0xff, 0xfe]), "\u{fffd}\u{fffd}");
    }
}
