//! Edits through a value filter: `attr[filter]` and `attr[filter].sub`. Where the RFC
//! answers `noTarget` because nothing matches, an `add` or `replace` creates the element the
//! filter describes, as Entra needs for `emails[type eq "work"].value`
//! (`docs/entra-scim.md §6 Q3`).

use serde_json::{Map, Value};

use super::attribute::remove_sub;
use super::request::PatchOpKind;
use super::{JsonObject, bad_request};
use crate::error::{ScimError, ScimType};
use crate::filter::{CompValue, CompareOp, Filter};
use crate::schema::{AttrDef, AttrType};
use crate::util::{drop_nulls, find_key, parse_bool_str};
use crate::values::{
    is_blank, is_hollow, prepare_element, prepare_sub_value, set_sub, settle_primary,
};

/// Operations on `attr[filter]` and `attr[filter].sub`.
pub(super) fn apply_filtered(
    container: &mut JsonObject,
    key: &str,
    attr_def: Option<&'static AttrDef>,
    kind: PatchOpKind,
    value_filter: &Filter,
    sub: Option<&str>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let (mut items, was_single) = match container.get(key) {
        None => (Vec::new(), false),
        Some(Value::Array(elements)) => (elements.clone(), false),
        Some(element @ Value::Object(_)) => (vec![element.clone()], true),
        Some(_) if kind == PatchOpKind::Remove => return Ok(()),
        Some(_) => {
            return Err(bad_request(
                ScimType::InvalidPath,
                format!("'{key}' is not multi-valued, so a [filter] cannot select elements of it"),
            ));
        }
    };
    let matched: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, element)| value_filter.matches(element))
        .map(|(index, _)| index)
        .collect();
    let sub_def = attr_def.and_then(|known| sub.and_then(|sub| known.sub_attr(sub)));
    let sub = sub.map(|sub| sub_def.map_or(sub, |known| known.name));
    // `add` with "" must still create the element (Entra sends it, Q&A
    // 708183); `replace` with "" or null clears (gallery null-update test).
    let clearing = match (kind, value) {
        (PatchOpKind::Remove, _) | (_, None) => true,
        (PatchOpKind::Replace, Some(value)) => is_blank(value),
        (PatchOpKind::Add, Some(_)) => false,
    };
    let mut touched = Vec::new();
    match (sub, clearing, value) {
        (None, true, _) => {
            items = items
                .into_iter()
                .enumerate()
                .filter(|(index, _)| !matched.contains(index))
                .map(|(_, element)| element)
                .collect();
        }
        (Some(sub), true, _) => {
            for &index in &matched {
                if let Some(element) = items.get_mut(index) {
                    remove_sub(element, sub);
                }
            }
            items = items
                .into_iter()
                .enumerate()
                .filter(|(index, element)| !(matched.contains(index) && is_hollow(element)))
                .map(|(_, element)| element)
                .collect();
        }
        (Some(sub), false, Some(value)) => {
            let sub_value = prepare_sub_value(sub_def, &format!("{key}.{sub}"), value)?;
            if matched.is_empty() {
                let mut element = template_from_filter(value_filter, attr_def)
                    .ok_or_else(|| no_target(key, value_filter))?;
                element.insert(sub.to_owned(), sub_value);
                items.push(Value::Object(element));
                touched.push(items.len() - 1);
            } else {
                for &index in &matched {
                    if let Some(element) = items.get_mut(index) {
                        set_sub(element, sub, sub_value.clone());
                        touched.push(index);
                    }
                }
            }
        }
        (None, false, Some(value)) => {
            let value = match value {
                Value::Array(elements) if elements.len() == 1 => {
                    elements.first().cloned().unwrap_or(Value::Null)
                }
                other => other.clone(),
            };
            let value = match attr_def {
                Some(known) => prepare_element(known, key, drop_nulls(value))?,
                None => drop_nulls(value),
            };
            let Value::Object(new_fields) = value else {
                return Err(bad_request(
                    ScimType::InvalidValue,
                    format!("the value for '{key}[…]' must be an object"),
                ));
            };
            let template = template_from_filter(value_filter, attr_def);
            if matched.is_empty() {
                let mut element = template.ok_or_else(|| no_target(key, value_filter))?;
                element.extend(new_fields);
                items.push(Value::Object(element));
                touched.push(items.len() - 1);
            } else {
                for &index in &matched {
                    let Some(element) = items.get_mut(index) else {
                        continue;
                    };
                    if kind == PatchOpKind::Replace {
                        let mut replacement = template.clone().unwrap_or_default();
                        replacement.extend(new_fields.clone());
                        *element = Value::Object(replacement);
                    } else if let Value::Object(fields) = element {
                        for (field, field_value) in &new_fields {
                            let target_key = find_key(fields, field)
                                .cloned()
                                .unwrap_or_else(|| field.clone());
                            fields.insert(target_key, field_value.clone());
                        }
                    }
                    touched.push(index);
                }
            }
        }
        (_, false, None) => {}
    }
    settle_primary(&mut items, &touched);
    if items.is_empty() {
        container.remove(key);
    } else if was_single && items.len() == 1 {
        container.insert(
            key.to_owned(),
            items.into_iter().next().unwrap_or(Value::Null),
        );
    } else {
        container.insert(key.to_owned(), Value::Array(items));
    }
    Ok(())
}

fn no_target(key: &str, value_filter: &Filter) -> ScimError {
    bad_request(
        ScimType::NoTarget,
        format!(
            "no element of '{key}' matches [{value_filter}], and a new one can only be created from 'eq' comparisons joined by 'and'"
        ),
    )
}

/// The element a value filter describes: `type eq "work"` gives
/// `{"type":"work"}`, so `add emails[type eq "work"].value` can create it.
fn template_from_filter(filter: &Filter, attr_def: Option<&'static AttrDef>) -> Option<JsonObject> {
    fn collect(
        filter: &Filter,
        attr_def: Option<&'static AttrDef>,
        template: &mut JsonObject,
    ) -> bool {
        match filter {
            Filter::And(left, right) => {
                collect(left, attr_def, template) && collect(right, attr_def, template)
            }
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } if path.schema.is_none()
                && path.sub_attr.is_none()
                && path.value_filter.is_none() =>
            {
                let sub_def = attr_def.and_then(|known| known.sub_attr(&path.name));
                let name = sub_def.map_or_else(|| path.name.clone(), |known| known.name.to_owned());
                let boolean = sub_def.map_or(name.eq_ignore_ascii_case("primary"), |known| {
                    known.ty == AttrType::Boolean
                });
                let field_value = match value {
                    CompValue::Str(text) if boolean => match parse_bool_str(text) {
                        Some(flag) => Value::Bool(flag),
                        None => return false,
                    },
                    CompValue::Str(text) => Value::String(text.clone()),
                    CompValue::Num(number) => Value::Number(number.clone()),
                    CompValue::Bool(flag) => Value::Bool(*flag),
                    CompValue::Null => return false,
                };
                template.insert(name, field_value);
                true
            }
            _ => false,
        }
    }
    let mut template = Map::new();
    collect(filter, attr_def, &mut template).then_some(template)
}
