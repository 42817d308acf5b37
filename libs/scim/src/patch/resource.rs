//! Applying PATCH operations to a stored resource: which attribute a path names (core,
//! an extension, a whole schema URN, `manager`), and the path-less form whose keys are paths
//! (`docs/entra-scim.md §6 Q4, Q7, Q8`). The edit of the attribute itself is in `attribute`.

use serde_json::{Map, Value, json};

use super::attribute::apply_attr;
use super::request::{PatchOpKind, PatchOperation, PatchRequest};
use super::{JsonObject, at_operation, bad_request};
use crate::error::{ScimError, ScimType};
use crate::filter::{AttrPath, parse_attr_path};
use crate::schema::{self, SCHEMA_ENTERPRISE_USER, is_core_urn, is_enterprise_urn, looks_like_urn};
use crate::util::{ensure_schema, find_key, remove_schema};
use crate::values::{is_blank, manager_id};

/// Applies every operation to `resource`, atomically: on error the resource
/// is left unchanged (RFC 7644 §3.5.2).
pub fn apply_patch(resource: &mut Value, request: &PatchRequest) -> Result<(), ScimError> {
    let Value::Object(current) = resource else {
        return Err(ScimError::internal(
            "apply_patch: the stored resource is not a JSON object",
        ));
    };
    let mut edited = current.clone();
    for (index, operation) in request.operations.iter().enumerate() {
        apply_operation(&mut edited, operation).map_err(|error| at_operation(index, error))?;
    }
    *current = edited;
    Ok(())
}

fn apply_operation(root: &mut JsonObject, operation: &PatchOperation) -> Result<(), ScimError> {
    match (&operation.path, operation.op) {
        (Some(path), kind) => apply_path(root, kind, path, operation.value.as_ref()),
        (None, PatchOpKind::Remove) => {
            Err(bad_request(ScimType::NoTarget, "remove requires a 'path'"))
        }
        (None, kind) => match &operation.value {
            Some(value) => apply_pathless(root, kind, value),
            None => Err(bad_request(
                ScimType::InvalidValue,
                format!("{} without a 'path' requires a value object", kind.as_str()),
            )),
        },
    }
}

/// A path-less add/replace: every key of the value object is a path (Entra
/// sends `"name.givenName"` and `"urn:…:User:employeeNumber"` keys).
fn apply_pathless(
    root: &mut JsonObject,
    kind: PatchOpKind,
    value: &Value,
) -> Result<(), ScimError> {
    let Value::Object(entries) = value else {
        return Err(bad_request(
            ScimType::InvalidValue,
            format!(
                "{} without a 'path' requires a JSON object as value",
                kind.as_str()
            ),
        ));
    };
    for (key, entry_value) in entries {
        let path = parse_attr_path(key)?;
        apply_path(root, kind, &path, Some(entry_value))?;
    }
    Ok(())
}

fn apply_path(
    root: &mut JsonObject,
    kind: PatchOpKind,
    path: &AttrPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let value = value.filter(|value| !value.is_null());
    if path.schema.is_none() && looks_like_urn(&path.name) {
        return apply_whole_schema(root, kind, &path.name, value);
    }
    match path.schema.as_deref().filter(|urn| !is_core_urn(urn)) {
        Some(urn) if is_enterprise_urn(urn) && path.name.eq_ignore_ascii_case("manager") => {
            apply_manager(root, kind, path, value)
        }
        Some(urn) => with_extension(root, urn, |extension| {
            apply_attr(
                extension,
                kind,
                path,
                value,
                schema::attr_in(Some(urn), &path.name),
            )
        }),
        None => {
            let name = path.name.as_str();
            // Server-owned attributes: Entra and testers echo them back, so
            // ignoring them is friendlier than a mutability error.
            if ["id", "meta", "schemas", "groups"]
                .iter()
                .any(|reserved| name.eq_ignore_ascii_case(reserved))
            {
                return Ok(());
            }
            if name.eq_ignore_ascii_case("members") {
                return Err(bad_request(
                    ScimType::InvalidPath,
                    "'members' cannot be patched as JSON; member operations go through plan_group_patch",
                ));
            }
            // Old Entra docs use the short `manager` path for the enterprise attribute.
            if name.eq_ignore_ascii_case("manager") {
                return apply_manager(root, kind, path, value);
            }
            apply_attr(root, kind, path, value, schema::core_attr(name))
        }
    }
}

/// A path or path-less key that is only a schema URN: the value is an object
/// of that schema's attributes.
fn apply_whole_schema(
    root: &mut JsonObject,
    kind: PatchOpKind,
    urn: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let clear = kind == PatchOpKind::Remove || value.is_none_or(is_blank);
    if is_core_urn(urn) {
        return match value {
            Some(attributes @ Value::Object(_)) if kind != PatchOpKind::Remove => {
                apply_pathless(root, kind, attributes)
            }
            _ => Err(bad_request(
                ScimType::InvalidPath,
                format!("'{urn}' can only be used with add/replace and an object value"),
            )),
        };
    }
    if clear {
        if let Some(key) = find_key(root, urn).cloned() {
            root.remove(&key);
        }
        remove_schema(root, urn);
        return Ok(());
    }
    let Some(Value::Object(attributes)) = value else {
        return Err(bad_request(
            ScimType::InvalidValue,
            format!("the value for '{urn}' must be an object"),
        ));
    };
    for (key, attribute_value) in attributes {
        let mut attribute_path = parse_attr_path(key)?;
        if attribute_path.schema.is_none() && !looks_like_urn(&attribute_path.name) {
            attribute_path.schema = Some(urn.to_owned());
        }
        apply_path(root, kind, &attribute_path, Some(attribute_value))?;
    }
    Ok(())
}

/// Runs `edit` on the extension object stored under `urn` (created if needed),
/// then keeps `schemas` in step: listed while the extension has attributes,
/// dropped once it is empty.
fn with_extension(
    root: &mut JsonObject,
    urn: &str,
    edit: impl FnOnce(&mut JsonObject) -> Result<(), ScimError>,
) -> Result<(), ScimError> {
    let key = find_key(root, urn).cloned().unwrap_or_else(|| {
        if is_enterprise_urn(urn) {
            SCHEMA_ENTERPRISE_USER.to_owned()
        } else {
            urn.to_owned()
        }
    });
    let existed = root.contains_key(&key);
    let mut extension = match root.remove(&key) {
        Some(Value::Object(attributes)) => attributes,
        _ => Map::new(),
    };
    // On error the half-edited copy is dropped by apply_patch, so losing the
    // key here is harmless.
    edit(&mut extension)?;
    if extension.is_empty() {
        if existed {
            remove_schema(root, &key);
        }
    } else {
        ensure_schema(root, &key);
        root.insert(key, Value::Object(extension));
    }
    Ok(())
}

/// `manager` is always stored as `{"value": id}` under the enterprise key:
/// returning any other shape makes Entra re-PATCH it every cycle.
fn apply_manager(
    root: &mut JsonObject,
    kind: PatchOpKind,
    path: &AttrPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    // Only the id is stored; `$ref` and `displayName` are readOnly (see `schema::MANAGER_SUBS`).
    if path
        .sub_attr
        .as_deref()
        .is_some_and(|sub| !sub.eq_ignore_ascii_case("value"))
    {
        return Ok(());
    }
    with_extension(root, SCHEMA_ENTERPRISE_USER, |extension| {
        let key = find_key(extension, "manager")
            .cloned()
            .unwrap_or_else(|| "manager".to_owned());
        match kind {
            PatchOpKind::Remove => {
                let selected = match (&path.value_filter, extension.get(&key)) {
                    (Some(value_filter), Some(current)) => {
                        let current = match current {
                            Value::String(id) => json!({ "value": id }),
                            other => other.clone(),
                        };
                        value_filter.matches(&current)
                    }
                    _ => true,
                };
                if selected {
                    extension.remove(&key);
                }
            }
            PatchOpKind::Add | PatchOpKind::Replace => match manager_id(value)? {
                Some(id) => {
                    extension.insert(key, json!({ "value": id }));
                }
                None => {
                    extension.remove(&key);
                }
            },
        }
        Ok(())
    })
}
