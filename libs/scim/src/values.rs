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

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `null` or `""`: both mean "clear" for Entra (gallery `SCIM_Null_Update_Test`).
pub(crate) fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        _ => false,
    }
}

/// Shapes a value for attribute `def` (`name` is used in error messages).
/// Unknown attributes are stored as sent, minus nulls, except that any
/// `primary` string boolean is still coerced.
pub(crate) fn prepare(
    def: Option<&'static AttrDef>,
    name: &str,
    value: &Value,
) -> Result<Value, ScimError> {
    let value = drop_nulls(value.clone());
    let Some(def) = def else {
        return Ok(coerce_primary(value));
    };
    if def.multi {
        let items = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let item = prepare_element(def, name, item)?;
            if is_present(&item) {
                out.push(item);
            }
        }
        return Ok(Value::Array(out));
    }
    prepare_single(def, name, value)
}

/// One element of a multi-valued attribute.
pub(crate) fn prepare_element(
    def: &'static AttrDef,
    name: &str,
    item: Value,
) -> Result<Value, ScimError> {
    if !def.is_complex() {
        return prepare_scalar(def, name, item);
    }
    match item {
        Value::Object(fields) => Ok(Value::Object(prepare_sub_map(def, name, fields)?)),
        // A bare value for a complex multi-valued attribute, e.g. `"emails": ["a@b"]`.
        bare @ (Value::String(_) | Value::Number(_)) => Ok(json!({ "value": bare })),
        other => Err(invalid(format!(
            "elements of '{name}' must be objects, got {}",
            kind_of(&other)
        ))),
    }
}

fn prepare_single(def: &'static AttrDef, name: &str, value: Value) -> Result<Value, ScimError> {
    if !def.is_complex() {
        return prepare_scalar(def, name, value);
    }
    match value {
        Value::Object(fields) => Ok(Value::Object(prepare_sub_map(def, name, fields)?)),
        other => Err(invalid(format!(
            "'{name}' must be an object, got {}",
            kind_of(&other)
        ))),
    }
}

fn prepare_sub_map(
    def: &'static AttrDef,
    parent: &str,
    fields: Map<String, Value>,
) -> Result<Map<String, Value>, ScimError> {
    let mut out = Map::new();
    for (field, field_value) in fields {
        match def.sub_attr(&field) {
            Some(sub_def) => {
                let field_value =
                    prepare_scalar(sub_def, &format!("{parent}.{}", sub_def.name), field_value)?;
                out.insert(sub_def.name.to_owned(), field_value);
            }
            None => {
                out.insert(field, field_value);
            }
        }
    }
    Ok(out)
}

/// A simple (non-complex) value. Booleans accept Entra's string spellings;
/// string-like attributes accept strings and numbers (numbers are stored as
/// sent, since values must not be reformatted).
pub(crate) fn prepare_scalar(def: &AttrDef, name: &str, value: Value) -> Result<Value, ScimError> {
    match def.ty {
        AttrType::Boolean => as_bool_lenient(&value).map(Value::Bool).ok_or_else(|| {
            invalid(format!(
                "'{name}' must be a boolean (true/false or \"True\"/\"False\"), got {}",
                kind_of(&value)
            ))
        }),
        AttrType::Complex => match value {
            Value::Object(_) => Ok(value),
            other => Err(invalid(format!(
                "'{name}' must be an object, got {}",
                kind_of(&other)
            ))),
        },
        AttrType::String | AttrType::Reference | AttrType::DateTime | AttrType::Binary => {
            match value {
                Value::String(_) | Value::Number(_) => Ok(value),
                other => Err(invalid(format!(
                    "'{name}' must be a string, got {}",
                    kind_of(&other)
                ))),
            }
        }
    }
}

/// Value of a sub-attribute set through a path such as `name.givenName`.
pub(crate) fn prepare_sub_value(
    sub_def: Option<&'static AttrDef>,
    name: &str,
    value: &Value,
) -> Result<Value, ScimError> {
    match sub_def {
        Some(sub_def) => prepare_scalar(sub_def, name, drop_nulls(value.clone())),
        None if name
            .rsplit('.')
            .next()
            .is_some_and(|last| last.eq_ignore_ascii_case("primary")) =>
        {
            prepare_scalar(&crate::schema::PRIMARY, name, value.clone())
        }
        None => Ok(coerce_primary(drop_nulls(value.clone()))),
    }
}

/// Coerces `"primary": "True"` anywhere inside a value of an attribute we do
/// not know (custom extensions), since Entra sends every boolean as a string.
pub(crate) fn coerce_primary(value: Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(field, field_value)| {
                    let field_value = if field.eq_ignore_ascii_case("primary") {
                        as_bool_lenient(&field_value).map_or(field_value, Value::Bool)
                    } else {
                        coerce_primary(field_value)
                    };
                    (field, field_value)
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
    let Some(value) = value else {
        return Ok(None);
    };
    match value {
        Value::Null => Ok(None),
        Value::String(id) => {
            let id = id.trim();
            Ok((!id.is_empty()).then(|| id.to_owned()))
        }
        Value::Number(number) => Ok(Some(number.to_string())),
        Value::Object(fields) => match get_ci(fields, "value") {
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
pub(crate) fn set_sub(item: &mut Value, sub: &str, value: Value) {
    if let Value::Object(fields) = item {
        let key = find_key(fields, sub)
            .cloned()
            .unwrap_or_else(|| sub.to_owned());
        fields.insert(key, value);
    } else {
        let mut fields = Map::new();
        fields.insert(sub.to_owned(), value);
        *item = Value::Object(fields);
    }
}

/// An element left with nothing but its `type`/`primary` labels carries no
/// data: it is what remains after clearing `emails[type eq "work"].value`.
pub(crate) fn is_hollow(item: &Value) -> bool {
    match item {
        Value::Object(fields) => fields.keys().all(|field| {
            field.eq_ignore_ascii_case("type") || field.eq_ignore_ascii_case("primary")
        }),
        other => !is_present(other),
    }
}

/// Keeps at most one `primary: true` in a multi-valued attribute: the last
/// touched element that is primary wins (RFC 7643 §2.4).
pub(crate) fn settle_primary(items: &mut [Value], touched: &[usize]) {
    let is_primary = |element: &Value| {
        element
            .as_object()
            .and_then(|fields| get_ci(fields, "primary"))
            .and_then(Value::as_bool)
            == Some(true)
    };
    let Some(winner) = touched
        .iter()
        .rev()
        .copied()
        .find(|&index| items.get(index).is_some_and(is_primary))
    else {
        return;
    };
    for (index, item) in items.iter_mut().enumerate() {
        if index == winner || !is_primary(item) {
            continue;
        }
        if let Some(fields) = item.as_object_mut()
            && let Some(key) = find_key(fields, "primary").cloned()
        {
            fields.insert(key, Value::Bool(false));
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
