//! Small JSON helpers shared by the modules. Everything here is tolerant by
//! design: SCIM attribute names are case-insensitive (RFC 7643 §2.1).

use serde_json::{Map, Value};

/// The key in `map` equal to `name` ignoring ASCII case. An exact match wins
/// so that a resource holding both spellings behaves predictably.
pub(crate) fn find_key<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a String> {
    if let Some((key, _)) = map.get_key_value(name) {
        return Some(key);
    }
    map.keys().find(|key| key.eq_ignore_ascii_case(name))
}

pub(crate) fn get_ci<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    find_key(map, name).and_then(|key| map.get(key))
}

/// Entra sends booleans as `"True"`/`"False"` (any case) without the
/// `aadOptscim062020` flag.
pub(crate) fn parse_bool_str(text: &str) -> Option<bool> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A JSON boolean, or a string spelling one.
pub(crate) fn as_bool_lenient(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => parse_bool_str(text),
        _ => None,
    }
}

/// Recursively drops `null` members and `null` array elements: Entra (and
/// older Microsoft examples) send explicit nulls meaning "absent".
pub(crate) fn drop_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, member)| !member.is_null())
                .map(|(key, member)| (key, drop_nulls(member)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .filter(|item| !item.is_null())
                .map(drop_nulls)
                .collect(),
        ),
        other => other,
    }
}

/// `pr` semantics (RFC 7644 §3.4.2.2): null, "", [] and {} are not present.
pub(crate) fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(fields) => !fields.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// A string or number rendered as a string; ids sometimes arrive as numbers.
pub(crate) fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
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
        let present = list.iter().any(|listed| {
            listed
                .as_str()
                .is_some_and(|listed| listed.eq_ignore_ascii_case(urn))
        });
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
        list.retain(|listed| {
            !listed
                .as_str()
                .is_some_and(|listed| listed.eq_ignore_ascii_case(urn))
        });
    }
}

/// Character offset of a byte offset, for error messages people can count.
pub(crate) fn char_pos(text: &str, byte: usize) -> usize {
    text.get(..byte)
        .map_or(byte, |prefix| prefix.chars().count())
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
