//! Small JSON helpers shared by the modules. Everything here is tolerant by
//! design: SCIM attribute names are case-insensitive (RFC 7643 §2.1).

use serde_json::{Map, Value};

/// The key in `map` equal to `name` ignoring ASCII case. An exact match wins
/// so that a resource holding both spellings behaves predictably.
pub(crate) fn find_key<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a String> {
    if let Some((k, _)) = map.get_key_value(name) {
        return Some(k);
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name))
}

pub(crate) fn get_ci<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    find_key(map, name).and_then(|k| map.get(k))
}

/// Entra sends booleans as `"True"`/`"False"` (any case) without the
/// `aadOptscim062020` flag.
pub(crate) fn parse_bool_str(s: &str) -> Option<bool> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A JSON boolean, or a string spelling one.
pub(crate) fn as_bool_lenient(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => parse_bool_str(s),
        _ => None,
    }
}

/// Recursively drops `null` members and `null` array elements: Entra (and
/// older Microsoft examples) send explicit nulls meaning "absent".
pub(crate) fn drop_nulls(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, drop_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .filter(|v| !v.is_null())
                .map(drop_nulls)
                .collect(),
        ),
        other => other,
    }
}

/// `pr` semantics (RFC 7644 §3.4.2.2): null, "", [] and {} are not present.
pub(crate) fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_present),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// A string or number rendered as a string; ids sometimes arrive as numbers.
pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Adds `urn` to the resource's `schemas` list unless present (any case).
pub(crate) fn ensure_schema(root: &mut Map<String, Value>, urn: &str) {
    let key = find_key(root, "schemas")
        .cloned()
        .unwrap_or_else(|| "schemas".to_owned());
    let entry = root.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    if let Value::Array(list) = entry {
        let present = list
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)));
        if !present {
            list.push(Value::String(urn.to_owned()));
        }
    }
}

/// Removes `urn` (any case) from the resource's `schemas` list.
pub(crate) fn remove_schema(root: &mut Map<String, Value>, urn: &str) {
    let Some(key) = find_key(root, "schemas").cloned() else {
        return;
    };
    if let Some(Value::Array(list)) = root.get_mut(&key) {
        list.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)));
    }
}

/// Character offset of a byte offset, for error messages people can count.
pub(crate) fn char_pos(s: &str, byte: usize) -> usize {
    s.get(..byte).map_or(byte, |p| p.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn find_key_prefers_exact() {
        let m = json!({"UserName": 1, "userName": 2});
        let map = m.as_object().unwrap();
        assert_eq!(
            find_key(map, "userName").map(String::as_str),
            Some("userName")
        );
        assert!(get_ci(map, "USERNAME").is_some());
    }

    #[test]
    fn drop_nulls_recurses() {
        let v = drop_nulls(json!({"a": null, "b": {"c": null, "d": 1}, "e": [null, 2]}));
        assert_eq!(v, json!({"b": {"d": 1}, "e": [2]}));
    }

    #[test]
    fn presence() {
        assert!(!is_present(&json!(null)));
        assert!(!is_present(&json!("")));
        assert!(!is_present(&json!([])));
        assert!(!is_present(&json!({})));
        assert!(is_present(&json!(false)));
        assert!(is_present(&json!([{"a": 1}])));
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool_str("TRUE"), Some(true));
        assert_eq!(parse_bool_str(" false "), Some(false));
        assert_eq!(parse_bool_str("yes"), None);
    }

    #[test]
    fn schema_list_helpers() {
        let mut m = json!({"schemas": ["a"]}).as_object().unwrap().clone();
        ensure_schema(&mut m, "B");
        ensure_schema(&mut m, "b");
        assert_eq!(m["schemas"], json!(["a", "B"]));
        remove_schema(&mut m, "A");
        assert_eq!(m["schemas"], json!(["B"]));
    }
}
