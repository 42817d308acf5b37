//! Shaping incoming attribute values: canonical sub-attribute spelling,
//! string-boolean coercion, structural type checks and the `manager` shapes.
//! Shared by PATCH (`patch`) and POST/PUT normalisation (`resource`) so both
//! accept exactly the same inputs.

use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimType};
use crate::schema::{AttrDef, AttrType};
use crate::util::{as_bool_lenient, drop_nulls, find_key, get_ci, is_present};

fn invalid(detail: String) -> ScimError {
    ScimError::bad_request(ScimType::InvalidValue, detail)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `null` or `""`: both mean "clear" for Entra (gallery `SCIM_Null_Update_Test`).
pub(crate) fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Shapes a value for attribute `def` (`name` is used in error messages).
/// Unknown attributes are stored as sent, minus nulls, except that any
/// `primary` string boolean is still coerced.
pub(crate) fn prepare(
    def: Option<&'static AttrDef>,
    name: &str,
    v: &Value,
) -> Result<Value, ScimError> {
    let v = drop_nulls(v.clone());
    let Some(d) = def else {
        return Ok(coerce_primary(v));
    };
    if d.multi {
        let items = match v {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let item = prepare_element(d, name, item)?;
            if is_present(&item) {
                out.push(item);
            }
        }
        return Ok(Value::Array(out));
    }
    prepare_single(d, name, v)
}

/// One element of a multi-valued attribute.
pub(crate) fn prepare_element(
    d: &'static AttrDef,
    name: &str,
    item: Value,
) -> Result<Value, ScimError> {
    if !d.is_complex() {
        return prepare_scalar(d, name, item);
    }
    match item {
        Value::Object(o) => Ok(Value::Object(prepare_sub_map(d, name, o)?)),
        // A bare value for a complex multi-valued attribute, e.g. `"emails": ["a@b"]`.
        s @ (Value::String(_) | Value::Number(_)) => Ok(json!({ "value": s })),
        other => Err(invalid(format!(
            "elements of '{name}' must be objects, got {}",
            kind_of(&other)
        ))),
    }
}

fn prepare_single(d: &'static AttrDef, name: &str, v: Value) -> Result<Value, ScimError> {
    if !d.is_complex() {
        return prepare_scalar(d, name, v);
    }
    match v {
        Value::Object(o) => Ok(Value::Object(prepare_sub_map(d, name, o)?)),
        other => Err(invalid(format!(
            "'{name}' must be an object, got {}",
            kind_of(&other)
        ))),
    }
}

fn prepare_sub_map(
    d: &'static AttrDef,
    parent: &str,
    o: Map<String, Value>,
) -> Result<Map<String, Value>, ScimError> {
    let mut out = Map::new();
    for (k, v) in o {
        match d.sub_attr(&k) {
            Some(sd) => {
                let v = prepare_scalar(sd, &format!("{parent}.{}", sd.name), v)?;
                out.insert(sd.name.to_owned(), v);
            }
            None => {
                out.insert(k, v);
            }
        }
    }
    Ok(out)
}

/// A simple (non-complex) value. Booleans accept Entra's string spellings;
/// string-like attributes accept strings and numbers (numbers are stored as
/// sent, since values must not be reformatted).
pub(crate) fn prepare_scalar(d: &AttrDef, name: &str, v: Value) -> Result<Value, ScimError> {
    match d.ty {
        AttrType::Boolean => as_bool_lenient(&v).map(Value::Bool).ok_or_else(|| {
            invalid(format!(
                "'{name}' must be a boolean (true/false or \"True\"/\"False\"), got {}",
                kind_of(&v)
            ))
        }),
        AttrType::Complex => match v {
            Value::Object(_) => Ok(v),
            other => Err(invalid(format!(
                "'{name}' must be an object, got {}",
                kind_of(&other)
            ))),
        },
        AttrType::String | AttrType::Reference | AttrType::DateTime | AttrType::Binary => match v {
            Value::String(_) | Value::Number(_) => Ok(v),
            other => Err(invalid(format!(
                "'{name}' must be a string, got {}",
                kind_of(&other)
            ))),
        },
    }
}

/// Value of a sub-attribute set through a path such as `name.givenName`.
pub(crate) fn prepare_sub_value(
    sd: Option<&'static AttrDef>,
    name: &str,
    v: &Value,
) -> Result<Value, ScimError> {
    match sd {
        Some(sd) => prepare_scalar(sd, name, drop_nulls(v.clone())),
        None if name
            .rsplit('.')
            .next()
            .is_some_and(|n| n.eq_ignore_ascii_case("primary")) =>
        {
            prepare_scalar(&crate::schema::PRIMARY, name, v.clone())
        }
        None => Ok(coerce_primary(drop_nulls(v.clone()))),
    }
}

/// Coerces `"primary": "True"` anywhere inside a value of an attribute we do
/// not know (custom extensions), since Entra sends every boolean as a string.
pub(crate) fn coerce_primary(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("primary") {
                        as_bool_lenient(&v).map_or(v, Value::Bool)
                    } else {
                        coerce_primary(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(coerce_primary).collect()),
        other => other,
    }
}

/// The manager id from any shape Entra uses: a bare string, `{"value": id}`
/// (any key case), or a one-element array `[{"$ref": …, "value": id}]`.
/// `Ok(None)` means "clear the manager" (null, "", empty array).
pub(crate) fn manager_id(value: Option<&Value>) -> Result<Option<String>, ScimError> {
    let Some(v) = value else {
        return Ok(None);
    };
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_owned()))
        }
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Object(o) => match get_ci(o, "value") {
            Some(inner @ (Value::Null | Value::String(_) | Value::Number(_))) => {
                manager_id(Some(inner))
            }
            Some(other) => Err(invalid(format!(
                "manager.value must be a string, got {}",
                kind_of(other)
            ))),
            None => Err(invalid(
                "manager must carry the manager's id in 'value'".to_owned(),
            )),
        },
        Value::Array(items) => match items.as_slice() {
            [] => Ok(None),
            [first] => manager_id(Some(first)),
            _ => Err(invalid(
                "manager is single-valued; got an array of several managers".to_owned(),
            )),
        },
        Value::Bool(_) => Err(invalid(
            "manager must be an id string or an object with 'value'".to_owned(),
        )),
    }
}

/// Sets `sub` in a complex element, keeping an existing key's spelling.
pub(crate) fn set_sub(item: &mut Value, sub: &str, v: Value) {
    if let Value::Object(o) = item {
        let key = find_key(o, sub).cloned().unwrap_or_else(|| sub.to_owned());
        o.insert(key, v);
    } else {
        let mut o = Map::new();
        o.insert(sub.to_owned(), v);
        *item = Value::Object(o);
    }
}

/// An element left with nothing but its `type`/`primary` labels carries no
/// data: it is what remains after clearing `emails[type eq "work"].value`.
pub(crate) fn is_hollow(item: &Value) -> bool {
    match item {
        Value::Object(o) => o
            .keys()
            .all(|k| k.eq_ignore_ascii_case("type") || k.eq_ignore_ascii_case("primary")),
        other => !is_present(other),
    }
}

/// Keeps at most one `primary: true` in a multi-valued attribute: the last
/// touched element that is primary wins (RFC 7643 §2.4).
pub(crate) fn settle_primary(items: &mut [Value], touched: &[usize]) {
    let is_primary = |v: &Value| {
        v.as_object()
            .and_then(|o| get_ci(o, "primary"))
            .and_then(Value::as_bool)
            == Some(true)
    };
    let Some(winner) = touched
        .iter()
        .rev()
        .copied()
        .find(|&i| items.get(i).is_some_and(is_primary))
    else {
        return;
    };
    for (j, item) in items.iter_mut().enumerate() {
        if j == winner || !is_primary(item) {
            continue;
        }
        if let Some(o) = item.as_object_mut()
            && let Some(k) = find_key(o, "primary").cloned()
        {
            o.insert(k, Value::Bool(false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::core_attr;

    #[test]
    fn manager_shapes() {
        assert_eq!(
            manager_id(Some(&json!("m1"))).unwrap().as_deref(),
            Some("m1")
        );
        assert_eq!(
            manager_id(Some(&json!({"Value": "m2"})))
                .unwrap()
                .as_deref(),
            Some("m2")
        );
        assert_eq!(
            manager_id(Some(
                &json!([{"$ref": "https://x/Users/m3", "value": "m3"}])
            ))
            .unwrap()
            .as_deref(),
            Some("m3")
        );
        assert_eq!(manager_id(Some(&json!(""))).unwrap(), None);
        assert_eq!(manager_id(Some(&json!({"value": null}))).unwrap(), None);
        assert_eq!(manager_id(Some(&json!([]))).unwrap(), None);
        assert!(manager_id(Some(&json!(true))).is_err());
        assert!(manager_id(Some(&json!({"$ref": "x"}))).is_err());
        assert!(manager_id(Some(&json!(["a", "b"]))).is_err());
    }

    #[test]
    fn prepare_canonicalises_and_coerces() {
        let d = core_attr("emails");
        let v = prepare(
            d,
            "emails",
            &json!([{"Value": "a@b", "Primary": "True", "Type": "work", "x": null}]),
        )
        .unwrap();
        assert_eq!(
            v,
            json!([{"value": "a@b", "primary": true, "type": "work"}])
        );
        let v = prepare(d, "emails", &json!({"value": "a@b"})).unwrap();
        assert_eq!(v, json!([{"value": "a@b"}]));
        assert!(prepare(d, "emails", &json!([[1]])).is_err());
        assert!(prepare(core_attr("active"), "active", &json!("maybe")).is_err());
        assert_eq!(
            prepare(core_attr("active"), "active", &json!("FALSE")).unwrap(),
            json!(false)
        );
        assert!(prepare(core_attr("name"), "name", &json!("x")).is_err());
        assert!(prepare(core_attr("userName"), "userName", &json!({"a": 1})).is_err());
        assert_eq!(
            prepare(None, "custom", &json!([{"primary": "true"}])).unwrap(),
            json!([{"primary": true}])
        );
    }

    #[test]
    fn primary_is_unique() {
        let mut items = vec![
            json!({"primary": true}),
            json!({"primary": true}),
            json!({"primary": false}),
        ];
        settle_primary(&mut items, &[1]);
        assert_eq!(
            items,
            vec![
                json!({"primary": false}),
                json!({"primary": true}),
                json!({"primary": false})
            ]
        );
    }

    #[test]
    fn hollow_elements() {
        assert!(is_hollow(&json!({"type": "work", "primary": true})));
        assert!(!is_hollow(&json!({"type": "work", "value": ""})));
    }
}
