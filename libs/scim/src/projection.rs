//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5).
//!
//! Entra reads every group with `excludedAttributes=members`, and the
//! reference tests ask for `attributes=emails[type eq "work"]`.

use serde_json::{Map, Value};

use crate::filter::{AttrPath, parse_attr_path};
use crate::schema::{is_core_urn, looks_like_urn};
use crate::util::find_key;

type Obj = Map<String, Value>;

/// Returns the resource narrowed to `attributes` (plus `id` and `schemas`,
/// which are always returned) and without `excluded_attributes` (which can
/// never remove `id` or `schemas`). Names are case-insensitive and may be
/// dotted (`name.givenName`) or URN-qualified. A value filter in a name
/// (`emails[type eq "work"]`) selects the whole attribute. Names that do not
/// parse are ignored rather than failing the read. `password` is never
/// returned.
pub fn project(resource: &Value, attributes: &[String], excluded_attributes: &[String]) -> Value {
    let Value::Object(obj) = resource else {
        return resource.clone();
    };
    let wanted: Vec<AttrPath> = attributes
        .iter()
        .filter_map(|a| parse_attr_path(a).ok())
        .collect();
    let mut out = if attributes.iter().any(|a| !a.trim().is_empty()) {
        let mut out = Obj::new();
        for always in ["id", "schemas"] {
            if let Some((k, v)) = find_key(obj, always).and_then(|k| obj.get_key_value(k)) {
                out.insert(k.clone(), v.clone());
            }
        }
        for path in &wanted {
            include(obj, &mut out, path);
        }
        out
    } else {
        obj.clone()
    };
    for path in excluded_attributes
        .iter()
        .filter_map(|a| parse_attr_path(a).ok())
    {
        exclude(&mut out, &path);
    }
    // `password` is returned "never" (RFC 7643 §4.1.1), whatever was asked.
    if let Some(k) = find_key(&out, "password").cloned() {
        out.remove(&k);
    }
    Value::Object(out)
}

/// Splits a comma-separated `attributes` parameter, ignoring commas inside
/// `[…]` and quoted strings; trims entries and drops empty ones.
pub fn parse_attribute_list(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else {
            match c {
                '"' => in_string = true,
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    push_trimmed(&mut out, &current);
                    current.clear();
                    continue;
                }
                _ => {}
            }
        }
        current.push(c);
    }
    push_trimmed(&mut out, &current);
    out
}

fn push_trimmed(out: &mut Vec<String>, s: &str) {
    let s = s.trim();
    if !s.is_empty() {
        out.push(s.to_owned());
    }
}

/// The key of the extension object holding `path`, if it lives in one.
/// Unqualified names not found at the top level are looked up in the
/// extensions (`attributes=department`).
fn extension_key(obj: &Obj, path: &AttrPath) -> Option<String> {
    match path.schema.as_deref() {
        Some(urn) if !is_core_urn(urn) => find_key(obj, urn).cloned(),
        Some(_) => None,
        None if find_key(obj, &path.name).is_some() => None,
        None => obj
            .iter()
            .filter(|(k, v)| {
                looks_like_urn(k)
                    && v.as_object()
                        .is_some_and(|e| find_key(e, &path.name).is_some())
            })
            .map(|(k, _)| k.clone())
            .next(),
    }
}

fn include(obj: &Obj, out: &mut Obj, path: &AttrPath) {
    if path.schema.is_none() && looks_like_urn(&path.name) {
        if let Some((k, v)) = find_key(obj, &path.name).and_then(|k| obj.get_key_value(k)) {
            out.insert(k.clone(), v.clone());
        }
        return;
    }
    let (source, target) = match extension_key(obj, path) {
        Some(ext_key) => {
            let Some(Value::Object(ext)) = obj.get(&ext_key) else {
                return;
            };
            let target = out
                .entry(ext_key)
                .or_insert_with(|| Value::Object(Obj::new()));
            if !target.is_object() {
                *target = Value::Object(Obj::new());
            }
            let Value::Object(target) = target else {
                return;
            };
            (ext, target)
        }
        None => (obj, &mut *out),
    };
    let Some((key, value)) = find_key(source, &path.name).and_then(|k| source.get_key_value(k))
    else {
        return;
    };
    let selected = match (&path.sub_attr, &path.value_filter) {
        (Some(sub), None) => narrow(value, sub),
        _ => Some(value.clone()),
    };
    if let Some(selected) = selected {
        match target.get_mut(key) {
            Some(existing) => merge(existing, selected),
            None => {
                target.insert(key.clone(), selected);
            }
        }
    }
}

/// Only `sub` of a complex value (or of each element of a multi-valued one).
fn narrow(value: &Value, sub: &str) -> Option<Value> {
    let pick = |o: &Obj| {
        find_key(o, sub)
            .and_then(|k| o.get_key_value(k))
            .map(|(k, v)| {
                let mut m = Obj::new();
                m.insert(k.clone(), v.clone());
                Value::Object(m)
            })
    };
    match value {
        Value::Object(o) => pick(o),
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .map(|i| {
                    i.as_object()
                        .and_then(pick)
                        .unwrap_or_else(|| Value::Object(Obj::new()))
                })
                .collect(),
        )),
        _ => None,
    }
}

/// Merges two narrowings of the same attribute (`name.givenName,name.familyName`).
fn merge(existing: &mut Value, new: Value) {
    match (existing, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(old) => merge(old, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (x, y) in a.iter_mut().zip(b) {
                merge(x, y);
            }
        }
        (slot, new) => *slot = new,
    }
}

fn exclude(out: &mut Obj, path: &AttrPath) {
    if path.schema.is_none() && looks_like_urn(&path.name) {
        if let Some(k) = find_key(out, &path.name).cloned() {
            out.remove(&k);
        }
        return;
    }
    match extension_key(out, path) {
        Some(ext_key) => {
            let now_empty = match out.get_mut(&ext_key) {
                Some(Value::Object(ext)) => {
                    remove_from(ext, path);
                    ext.is_empty()
                }
                _ => false,
            };
            if now_empty {
                out.remove(&ext_key);
            }
        }
        None => {
            if path.sub_attr.is_none()
                && (path.name.eq_ignore_ascii_case("id")
                    || path.name.eq_ignore_ascii_case("schemas"))
            {
                return;
            }
            remove_from(out, path);
        }
    }
}

fn remove_from(container: &mut Obj, path: &AttrPath) {
    let Some(key) = find_key(container, &path.name).cloned() else {
        return;
    };
    let sub = match (&path.sub_attr, &path.value_filter) {
        (Some(sub), None) => sub,
        _ => {
            container.remove(&key);
            return;
        }
    };
    let strip = |v: &mut Value| {
        if let Value::Object(o) = v
            && let Some(k) = find_key(o, sub).cloned()
        {
            o.remove(&k);
        }
    };
    match container.get_mut(&key) {
        Some(Value::Array(items)) => items.iter_mut().for_each(strip),
        Some(v) => strip(v),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "1",
            "meta": {"resourceType": "User"},
            "userName": "u",
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "w@x", "type": "work"}, {"value": "h@x", "type": "home"}],
            ENT: {"department": "D", "employeeNumber": "7"}
        })
    }

    fn list(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn attributes_keep_id_and_schemas() {
        let p = project(&user(), &list(&["USERNAME"]), &[]);
        assert_eq!(
            p,
            json!({"schemas": user()["schemas"], "id": "1", "userName": "u"})
        );
    }

    #[test]
    fn sub_attributes_and_merging() {
        let p = project(
            &user(),
            &list(&["name.givenName", "emails.value", "emails.type"]),
            &[],
        );
        assert_eq!(p["name"], json!({"givenName": "G"}));
        assert_eq!(p["emails"], user()["emails"]);
        let p = project(&user(), &list(&["emails.value"]), &[]);
        assert_eq!(p["emails"], json!([{"value": "w@x"}, {"value": "h@x"}]));
    }

    #[test]
    fn extension_attributes() {
        let p = project(&user(), &list(&[&format!("{ENT}:department")]), &[]);
        assert_eq!(p[ENT], json!({"department": "D"}));
        let p = project(&user(), &list(&["employeeNumber"]), &[]);
        assert_eq!(p[ENT], json!({"employeeNumber": "7"}));
        let p = project(&user(), &list(&[ENT]), &[]);
        assert_eq!(p[ENT], user()[ENT]);
        let p = project(
            &user(),
            &[],
            &list(&[&format!("{ENT}:department"), "employeenumber"]),
        );
        assert!(p.get(ENT).is_none());
    }

    #[test]
    fn excluded_never_removes_id_or_schemas() {
        let p = project(
            &user(),
            &[],
            &list(&["id", "schemas", "meta", "name.familyName", "emails.type"]),
        );
        assert_eq!(p["id"], "1");
        assert!(p.get("schemas").is_some());
        assert!(p.get("meta").is_none());
        assert_eq!(p["name"], json!({"givenName": "G"}));
        assert_eq!(p["emails"], json!([{"value": "w@x"}, {"value": "h@x"}]));
    }

    #[test]
    fn attribute_list_parsing() {
        assert_eq!(
            parse_attribute_list("userName, emails"),
            list(&["userName", "emails"])
        );
        assert_eq!(
            parse_attribute_list(r#"emails[type eq "work" or type eq "a,b"],name.givenName,,"#),
            list(&[
                r#"emails[type eq "work" or type eq "a,b"]"#,
                "name.givenName"
            ])
        );
        assert!(parse_attribute_list(" , ").is_empty());
    }

    #[test]
    fn password_is_never_returned() {
        let mut u = user();
        u["Password"] = json!("secret");
        assert!(project(&u, &[], &[]).get("Password").is_none());
        assert!(
            project(&u, &list(&["password"]), &[])
                .get("Password")
                .is_none()
        );
    }

    #[test]
    fn non_object_passthrough() {
        assert_eq!(project(&json!([1]), &list(&["a"]), &[]), json!([1]));
    }
}
