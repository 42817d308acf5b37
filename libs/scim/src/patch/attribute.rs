//! The edit of one attribute of a resource or extension: set, merge, append or remove its
//! value, or one sub-attribute of it. Paths with a value filter go to `filtered`.

use serde_json::{Map, Value};

use super::filtered::apply_filtered;
use super::request::PatchOpKind;
use super::{JsonObject, bad_request};
use crate::error::{ScimError, ScimType};
use crate::filter::AttrPath;
use crate::schema::AttrDef;
use crate::util::{find_key, get_ci, scalar_string};
use crate::values::{is_blank, is_hollow, prepare, prepare_sub_value, set_sub, settle_primary};

/// Applies one operation to the attribute `path` names in `container` (the resource or an
/// extension object), described by `attr_def` when the schema knows it.
pub(super) fn apply_attr(
    container: &mut JsonObject,
    kind: PatchOpKind,
    path: &AttrPath,
    value: Option<&Value>,
    attr_def: Option<&'static AttrDef>,
) -> Result<(), ScimError> {
    // Keep an existing key's spelling; use the canonical one for new keys.
    let key = find_key(container, &path.name).cloned().unwrap_or_else(|| {
        attr_def.map_or_else(|| path.name.clone(), |known| known.name.to_owned())
    });
    if let Some(value_filter) = &path.value_filter {
        return apply_filtered(
            container,
            &key,
            attr_def,
            kind,
            value_filter,
            path.sub_attr.as_deref(),
            value,
        );
    }
    if let Some(sub) = &path.sub_attr {
        return apply_sub(container, &key, attr_def, kind, sub, value);
    }
    if let Some(required) = attr_def.filter(|known| known.required) {
        // RFC 7644 §3.5.2.2: a required attribute removed or left unassigned is `mutability`.
        if kind == PatchOpKind::Remove || value.is_none_or(is_blank) {
            return Err(bad_request(
                ScimType::Mutability,
                format!(
                    "{} is required: it cannot be removed or emptied",
                    required.name
                ),
            ));
        }
        if value
            .and_then(Value::as_str)
            .is_none_or(|text| text.trim().is_empty())
        {
            return Err(bad_request(
                ScimType::InvalidValue,
                format!(
                    "{} is required and must stay a non-empty string",
                    required.name
                ),
            ));
        }
    }
    if kind == PatchOpKind::Remove {
        match (value, container.get_mut(&key)) {
            // Entra's members-style removal applied to any multi-valued
            // attribute: remove only the listed values.
            (Some(listed), Some(Value::Array(items))) => {
                remove_listed(items, listed);
                if items.is_empty() {
                    container.remove(&key);
                }
            }
            _ => {
                container.remove(&key);
            }
        }
        return Ok(());
    }
    let Some(new_value) = value.filter(|value| !is_blank(value)) else {
        container.remove(&key);
        return Ok(());
    };
    let new_value = prepare(attr_def, &key, new_value)?;
    let multi_valued = attr_def.map_or(new_value.is_array(), |known| known.multi);
    if multi_valued {
        let new_items = match new_value {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut items = match (kind, container.remove(&key)) {
            (PatchOpKind::Add, Some(Value::Array(existing))) => existing,
            _ => Vec::new(),
        };
        let mut touched = Vec::new();
        for item in new_items {
            match items.iter().position(|existing| *existing == item) {
                Some(index) => touched.push(index),
                None => {
                    items.push(item);
                    touched.push(items.len() - 1);
                }
            }
        }
        settle_primary(&mut items, &touched);
        if !items.is_empty() {
            container.insert(key, Value::Array(items));
        }
        return Ok(());
    }
    let merge = match attr_def {
        Some(known) => known.is_complex(),
        None => new_value.is_object() && container.get(&key).is_some_and(Value::is_object),
    };
    match new_value {
        // RFC 7644 §3.5.2.1/3: sub-attributes not mentioned are left unchanged.
        Value::Object(new_fields) if merge => merge_object(container, &key, new_fields),
        other => {
            container.insert(key, other);
        }
    }
    Ok(())
}

/// Merges `new_fields` into the complex value under `key`: blank fields clear, others set.
fn merge_object(container: &mut JsonObject, key: &str, new_fields: JsonObject) {
    let mut target = match container.remove(key) {
        Some(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    for (field, field_value) in new_fields {
        let target_key = find_key(&target, &field).cloned().unwrap_or(field);
        if is_blank(&field_value) {
            target.remove(&target_key);
        } else {
            target.insert(target_key, field_value);
        }
    }
    if !target.is_empty() {
        container.insert(key.to_owned(), Value::Object(target));
    }
}

/// Removes the elements whose `value` (or whole JSON) is listed in `listed`.
fn remove_listed(items: &mut Vec<Value>, listed: &Value) {
    let listed: Vec<&Value> = match listed {
        Value::Array(entries) => entries.iter().collect(),
        other => vec![other],
    };
    let ids: Vec<String> = listed
        .iter()
        .filter_map(|entry| match entry {
            Value::Object(fields) => get_ci(fields, "value").and_then(scalar_string),
            other => scalar_string(other),
        })
        .collect();
    items.retain(|item| {
        let id = item
            .as_object()
            .and_then(|fields| get_ci(fields, "value"))
            .and_then(scalar_string);
        let by_id = id.is_some_and(|id| ids.contains(&id));
        !(by_id || listed.contains(&item))
    });
}

/// `attr.sub` without a filter: the sub-attribute of a complex value, or of every element
/// of a multi-valued one.
fn apply_sub(
    container: &mut JsonObject,
    key: &str,
    attr_def: Option<&'static AttrDef>,
    kind: PatchOpKind,
    sub: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let sub_def = attr_def.and_then(|known| known.sub_attr(sub));
    let sub_name = sub_def.map_or(sub, |known| known.name);
    let new_sub_value = match (kind, value.filter(|value| !is_blank(value))) {
        (PatchOpKind::Remove, _) | (_, None) => None,
        (_, Some(value)) => Some(prepare_sub_value(
            sub_def,
            &format!("{key}.{sub_name}"),
            value,
        )?),
    };
    let multi_valued = attr_def.map_or_else(
        || matches!(container.get(key), Some(Value::Array(_))),
        |known| known.multi,
    );
    match container.get_mut(key) {
        Some(Value::Array(items)) => {
            match new_sub_value {
                // No filter: the sub-attribute of every element.
                Some(new_sub_value) if items.is_empty() => {
                    items.push(object_with(sub_name, new_sub_value));
                }
                Some(new_sub_value) => items
                    .iter_mut()
                    .for_each(|item| set_sub(item, sub_name, new_sub_value.clone())),
                None => {
                    for item in items.iter_mut() {
                        remove_sub(item, sub_name);
                    }
                    items.retain(|item| !is_hollow(item));
                }
            }
            if items.is_empty() {
                container.remove(key);
            }
        }
        Some(Value::Object(fields)) => {
            match new_sub_value {
                Some(new_sub_value) => {
                    let field = find_key(fields, sub_name)
                        .cloned()
                        .unwrap_or_else(|| sub_name.to_owned());
                    fields.insert(field, new_sub_value);
                }
                None => remove_field(fields, sub_name),
            }
            if fields.is_empty() {
                container.remove(key);
            }
        }
        _ => {
            if let Some(new_sub_value) = new_sub_value {
                let element = object_with(sub_name, new_sub_value);
                container.insert(
                    key.to_owned(),
                    if multi_valued {
                        Value::Array(vec![element])
                    } else {
                        element
                    },
                );
            }
        }
    }
    Ok(())
}

/// `{name: value}`.
fn object_with(name: &str, value: Value) -> Value {
    let mut fields = Map::new();
    fields.insert(name.to_owned(), value);
    Value::Object(fields)
}

/// Removes the sub-attribute `sub` (any casing) from an element that is an object.
pub(super) fn remove_sub(element: &mut Value, sub: &str) {
    if let Value::Object(fields) = element {
        remove_field(fields, sub);
    }
}

fn remove_field(fields: &mut JsonObject, name: &str) {
    if let Some(key) = find_key(fields, name).cloned() {
        fields.remove(&key);
    }
}
