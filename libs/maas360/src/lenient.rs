//! Tolerant reading of MaaS360 JSON, which is converted from XML on the server side: a
//! one-element list arrives as an object, an empty list as nothing or `""`, and numbers may
//! arrive as strings (`"12"`, or `""` for empty). Every accessor here accepts all of those.

use serde_json::Value;

/// Text of a scalar field; numbers and booleans are rendered, anything else is empty.
pub(crate) fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// Text of the first present field among `keys`, for fields whose name varies by API.
pub(crate) fn text_of(object: &Value, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| object.get(*k).filter(|v| !v.is_null()))
        .map(|v| text(Some(v)))
        .unwrap_or_default()
}

/// An unsigned number that may be a JSON number, a numeric string, or `""`/missing (`None`).
pub(crate) fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A signed number (error codes) with the same tolerance as [`number`].
pub(crate) fn signed(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The elements of a list that may be an array, a single object, or absent.
pub(crate) fn list(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Array(items)) => items.iter().filter(|v| v.is_object()).collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    }
}

/// The list under `outer.inner`, as in `{"groups":{"group":[…]}}`.
pub(crate) fn nested_list<'a>(object: &'a Value, outer: &str, inner: &str) -> Vec<&'a Value> {
    list(object.get(outer).and_then(|o| o.get(inner)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn one_element_list_as_object_is_a_list_of_one() {
        let v = json!({"users": {"user": {"userName": "a"}}});
        assert_eq!(nested_list(&v, "users", "user").len(), 1);
        let v = json!({"users": {"user": [{"userName": "a"}, {"userName": "b"}]}});
        assert_eq!(nested_list(&v, "users", "user").len(), 2);
        let v = json!({"users": ""});
        assert!(nested_list(&v, "users", "user").is_empty());
    }

    #[test]
    fn numbers_may_be_strings_or_empty() {
        assert_eq!(number(Some(&json!("12"))), Some(12));
        assert_eq!(number(Some(&json!(12))), Some(12));
        assert_eq!(number(Some(&json!(""))), None);
        assert_eq!(number(None), None);
        assert_eq!(signed(Some(&json!("-3"))), Some(-3));
        assert_eq!(text(Some(&json!(7))), "7");
        assert_eq!(text(Some(&json!(null))), "");
    }
}
