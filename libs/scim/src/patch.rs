//! The PATCH engine (RFC 7644 §3.5.2) with Entra's quirks.
//!
//! [`apply_patch`] edits a stored User (or a Group without its members) as
//! JSON. Group membership is *not* edited as JSON: [`plan_group_patch`] turns
//! the member operations into explicit id sets, because the store applies
//! membership as set operations and a group may have far more members than
//! we want to load.
//!
//! Where the RFC and Entra disagree, Entra wins:
//! - `op` is matched case-insensitively (`"Replace"` without `aadOptscim062020`).
//! - `add`/`replace` on `emails[type eq "work"].value` creates the element when
//!   nothing matches, instead of the RFC's 400 `noTarget`.
//! - path-less values may use dotted and URN-qualified keys as paths.
//! - `remove` + `members` + a value array removes only those members.
//! - `""` and `null` clear an attribute.

use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimType};
use crate::filter::{AttrPath, CompValue, CompareOp, Filter, parse_attr_path};
use crate::schema::{
    self, AttrDef, AttrType, SCHEMA_ENTERPRISE_USER, is_core_urn, is_enterprise_urn, looks_like_urn,
};
use crate::util::{ensure_schema, find_key, get_ci, parse_bool_str, remove_schema, scalar_string};
use crate::values::{
    is_blank, is_hollow, manager_id, prepare, prepare_element, prepare_sub_value, set_sub,
    settle_primary,
};

/// PATCH operation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    /// `add`
    Add,
    /// `remove`
    Remove,
    /// `replace`
    Replace,
}

impl PatchOpKind {
    /// Lower-case RFC spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Remove => "remove",
            PatchOpKind::Replace => "replace",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        [PatchOpKind::Add, PatchOpKind::Remove, PatchOpKind::Replace]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// One PATCH operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// add, remove or replace
    pub op: PatchOpKind,
    /// Target path; `None` for path-less add/replace.
    pub path: Option<AttrPath>,
    /// Value; a JSON `null` is stored as `None`.
    pub value: Option<Value>,
}

/// A parsed PatchOp message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PatchRequest {
    /// Operations in request order.
    pub operations: Vec<PatchOperation>,
}

fn bad(t: ScimType, detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(t, detail)
}

fn at_op(i: usize, e: ScimError) -> ScimError {
    ScimError {
        detail: format!("Operations[{i}]: {}", e.detail),
        ..e
    }
}

impl PatchRequest {
    /// Parses a PatchOp body. Tolerant of `op` case, `Operations` key case, a
    /// missing or unknown `schemas`, and `value: null`.
    pub fn parse(body: &Value) -> Result<PatchRequest, ScimError> {
        let obj = body.as_object().ok_or_else(|| {
            bad(
                ScimType::InvalidSyntax,
                "the PATCH body must be a JSON object",
            )
        })?;
        let ops = get_ci(obj, "Operations").ok_or_else(|| {
            bad(
                ScimType::InvalidSyntax,
                "the PATCH body has no 'Operations' array",
            )
        })?;
        let items: Vec<&Value> = match ops {
            Value::Array(items) => items.iter().collect(),
            single @ Value::Object(_) => vec![single],
            _ => {
                return Err(bad(
                    ScimType::InvalidSyntax,
                    "'Operations' must be an array",
                ));
            }
        };
        let operations = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| parse_operation(item).map_err(|e| at_op(i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PatchRequest { operations })
    }
}

fn parse_operation(item: &Value) -> Result<PatchOperation, ScimError> {
    let obj = item.as_object().ok_or_else(|| {
        bad(
            ScimType::InvalidSyntax,
            "an operation must be a JSON object",
        )
    })?;
    let op = match get_ci(obj, "op") {
        Some(Value::String(s)) => PatchOpKind::parse(s).ok_or_else(|| {
            bad(
                ScimType::InvalidSyntax,
                format!("unknown op '{s}' (expected add, remove or replace)"),
            )
        })?,
        Some(_) => return Err(bad(ScimType::InvalidSyntax, "'op' must be a string")),
        None => return Err(bad(ScimType::InvalidSyntax, "the operation has no 'op'")),
    };
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_attr_path(s)?),
        Some(_) => return Err(bad(ScimType::InvalidPath, "'path' must be a string")),
    };
    let value = get_ci(obj, "value").filter(|v| !v.is_null()).cloned();
    Ok(PatchOperation { op, path, value })
}

/// Applies every operation to `resource`, atomically: on error the resource
/// is left unchanged (RFC 7644 §3.5.2).
pub fn apply_patch(resource: &mut Value, request: &PatchRequest) -> Result<(), ScimError> {
    let Value::Object(current) = resource else {
        return Err(ScimError::internal(
            "apply_patch: the stored resource is not a JSON object",
        ));
    };
    let mut work = current.clone();
    for (i, op) in request.operations.iter().enumerate() {
        apply_operation(&mut work, op).map_err(|e| at_op(i, e))?;
    }
    *current = work;
    Ok(())
}

type Obj = Map<String, Value>;

fn apply_operation(root: &mut Obj, op: &PatchOperation) -> Result<(), ScimError> {
    match (&op.path, op.op) {
        (Some(path), kind) => apply_path(root, kind, path, op.value.as_ref()),
        (None, PatchOpKind::Remove) => Err(bad(ScimType::NoTarget, "remove requires a 'path'")),
        (None, kind) => match &op.value {
            Some(value) => apply_pathless(root, kind, value),
            None => Err(bad(
                ScimType::InvalidValue,
                format!("{} without a 'path' requires a value object", kind.as_str()),
            )),
        },
    }
}

/// A path-less add/replace: every key of the value object is a path (Entra
/// sends `"name.givenName"` and `"urn:…:User:employeeNumber"` keys).
fn apply_pathless(root: &mut Obj, kind: PatchOpKind, value: &Value) -> Result<(), ScimError> {
    let Value::Object(map) = value else {
        return Err(bad(
            ScimType::InvalidValue,
            format!(
                "{} without a 'path' requires a JSON object as value",
                kind.as_str()
            ),
        ));
    };
    for (key, v) in map {
        let path = parse_attr_path(key)?;
        apply_path(root, kind, &path, Some(v))?;
    }
    Ok(())
}

fn apply_path(
    root: &mut Obj,
    kind: PatchOpKind,
    path: &AttrPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let value = value.filter(|v| !v.is_null());
    if path.schema.is_none() && looks_like_urn(&path.name) {
        return apply_whole_schema(root, kind, &path.name, value);
    }
    match path.schema.as_deref().filter(|s| !is_core_urn(s)) {
        Some(urn) if is_enterprise_urn(urn) && path.name.eq_ignore_ascii_case("manager") => {
            apply_manager(root, kind, path, value)
        }
        Some(urn) => with_extension(root, urn, |ext| {
            apply_attr(
                ext,
                kind,
                path,
                value,
                schema::attr_in(Some(urn), &path.name),
            )
        }),
        None => {
            let n = path.name.as_str();
            // Server-owned attributes: Entra and testers echo them back, so
            // ignoring them is friendlier than a mutability error.
            if ["id", "meta", "schemas", "groups"]
                .iter()
                .any(|r| n.eq_ignore_ascii_case(r))
            {
                return Ok(());
            }
            if n.eq_ignore_ascii_case("members") {
                return Err(bad(
                    ScimType::InvalidPath,
                    "'members' cannot be patched as JSON; member operations go through plan_group_patch",
                ));
            }
            // Old Entra docs use the short `manager` path for the enterprise attribute.
            if n.eq_ignore_ascii_case("manager") {
                return apply_manager(root, kind, path, value);
            }
            apply_attr(root, kind, path, value, schema::core_attr(n))
        }
    }
}

/// A path or path-less key that is only a schema URN: the value is an object
/// of that schema's attributes.
fn apply_whole_schema(
    root: &mut Obj,
    kind: PatchOpKind,
    urn: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let clear = kind == PatchOpKind::Remove || value.is_none_or(is_blank);
    if is_core_urn(urn) {
        return match value {
            Some(v @ Value::Object(_)) if kind != PatchOpKind::Remove => {
                apply_pathless(root, kind, v)
            }
            _ => Err(bad(
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
    let Some(Value::Object(attrs)) = value else {
        return Err(bad(
            ScimType::InvalidValue,
            format!("the value for '{urn}' must be an object"),
        ));
    };
    for (k, v) in attrs {
        let mut p = parse_attr_path(k)?;
        if p.schema.is_none() && !looks_like_urn(&p.name) {
            p.schema = Some(urn.to_owned());
        }
        apply_path(root, kind, &p, Some(v))?;
    }
    Ok(())
}

/// Runs `f` on the extension object stored under `urn` (created if needed),
/// then keeps `schemas` in step: listed while the extension has attributes,
/// dropped once it is empty.
fn with_extension(
    root: &mut Obj,
    urn: &str,
    f: impl FnOnce(&mut Obj) -> Result<(), ScimError>,
) -> Result<(), ScimError> {
    let key = find_key(root, urn).cloned().unwrap_or_else(|| {
        if is_enterprise_urn(urn) {
            SCHEMA_ENTERPRISE_USER.to_owned()
        } else {
            urn.to_owned()
        }
    });
    let existed = root.contains_key(&key);
    let mut ext = match root.remove(&key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    // On error the half-edited copy is dropped by apply_patch, so losing the
    // key here is harmless.
    f(&mut ext)?;
    if ext.is_empty() {
        if existed {
            remove_schema(root, &key);
        }
    } else {
        ensure_schema(root, &key);
        root.insert(key, Value::Object(ext));
    }
    Ok(())
}

/// `manager` is always stored as `{"value": id}` under the enterprise key:
/// returning any other shape makes Entra re-PATCH it every cycle.
fn apply_manager(
    root: &mut Obj,
    kind: PatchOpKind,
    path: &AttrPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    // Only the id is stored; `$ref` and `displayName` are readOnly (see `schema::MANAGER_SUBS`).
    if path
        .sub_attr
        .as_deref()
        .is_some_and(|s| !s.eq_ignore_ascii_case("value"))
    {
        return Ok(());
    }
    with_extension(root, SCHEMA_ENTERPRISE_USER, |ext| {
        let key = find_key(ext, "manager")
            .cloned()
            .unwrap_or_else(|| "manager".to_owned());
        match kind {
            PatchOpKind::Remove => {
                let selected = match (&path.value_filter, ext.get(&key)) {
                    (Some(vf), Some(current)) => {
                        let current = match current {
                            Value::String(s) => json!({ "value": s }),
                            other => other.clone(),
                        };
                        vf.matches(&current)
                    }
                    _ => true,
                };
                if selected {
                    ext.remove(&key);
                }
            }
            PatchOpKind::Add | PatchOpKind::Replace => match manager_id(value)? {
                Some(id) => {
                    ext.insert(key, json!({ "value": id }));
                }
                None => {
                    ext.remove(&key);
                }
            },
        }
        Ok(())
    })
}

fn apply_attr(
    c: &mut Obj,
    kind: PatchOpKind,
    path: &AttrPath,
    value: Option<&Value>,
    def: Option<&'static AttrDef>,
) -> Result<(), ScimError> {
    // Keep an existing key's spelling; use the canonical one for new keys.
    let key = find_key(c, &path.name)
        .cloned()
        .unwrap_or_else(|| def.map_or_else(|| path.name.clone(), |d| d.name.to_owned()));
    if let Some(vf) = &path.value_filter {
        return apply_filtered(c, &key, def, kind, vf, path.sub_attr.as_deref(), value);
    }
    if let Some(sub) = &path.sub_attr {
        return apply_sub(c, &key, def, kind, sub, value);
    }
    if let Some(d) = def.filter(|d| d.required) {
        // RFC 7644 §3.5.2.2: a required attribute removed or left unassigned is `mutability`.
        if kind == PatchOpKind::Remove || value.is_none_or(is_blank) {
            return Err(bad(
                ScimType::Mutability,
                format!("{} is required: it cannot be removed or emptied", d.name),
            ));
        }
        if value
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
        {
            return Err(bad(
                ScimType::InvalidValue,
                format!("{} is required and must stay a non-empty string", d.name),
            ));
        }
    }
    if kind == PatchOpKind::Remove {
        match (value, c.get_mut(&key)) {
            // Entra's members-style removal applied to any multi-valued
            // attribute: remove only the listed values.
            (Some(v), Some(Value::Array(items))) => {
                remove_listed(items, v);
                if items.is_empty() {
                    c.remove(&key);
                }
            }
            _ => {
                c.remove(&key);
            }
        }
        return Ok(());
    }
    let Some(v) = value.filter(|v| !is_blank(v)) else {
        c.remove(&key);
        return Ok(());
    };
    let v = prepare(def, &key, v)?;
    let multi = def.map_or(v.is_array(), |d| d.multi);
    if multi {
        let new_items = match v {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut items = match (kind, c.remove(&key)) {
            (PatchOpKind::Add, Some(Value::Array(existing))) => existing,
            _ => Vec::new(),
        };
        let mut touched = Vec::new();
        for item in new_items {
            match items.iter().position(|e| *e == item) {
                Some(i) => touched.push(i),
                None => {
                    items.push(item);
                    touched.push(items.len() - 1);
                }
            }
        }
        settle_primary(&mut items, &touched);
        if !items.is_empty() {
            c.insert(key, Value::Array(items));
        }
        return Ok(());
    }
    let merge = match def {
        Some(d) => d.is_complex(),
        None => v.is_object() && c.get(&key).is_some_and(Value::is_object),
    };
    match v {
        // RFC 7644 §3.5.2.1/3: sub-attributes not mentioned are left unchanged.
        Value::Object(new) if merge => merge_object(c, &key, new),
        other => {
            c.insert(key, other);
        }
    }
    Ok(())
}

fn merge_object(c: &mut Obj, key: &str, new: Obj) {
    let mut target = match c.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (k, v) in new {
        let tk = find_key(&target, &k).cloned().unwrap_or(k);
        if is_blank(&v) {
            target.remove(&tk);
        } else {
            target.insert(tk, v);
        }
    }
    if !target.is_empty() {
        c.insert(key.to_owned(), Value::Object(target));
    }
}

/// Removes the elements whose `value` (or whole JSON) is listed in `listed`.
fn remove_listed(items: &mut Vec<Value>, listed: &Value) {
    let listed: Vec<&Value> = match listed {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let ids: Vec<String> = listed
        .iter()
        .filter_map(|l| match l {
            Value::Object(o) => get_ci(o, "value").and_then(scalar_string),
            other => scalar_string(other),
        })
        .collect();
    items.retain(|item| {
        let id = item
            .as_object()
            .and_then(|o| get_ci(o, "value"))
            .and_then(scalar_string);
        let by_id = id.is_some_and(|id| ids.contains(&id));
        !(by_id || listed.contains(&item))
    });
}

fn apply_sub(
    c: &mut Obj,
    key: &str,
    def: Option<&'static AttrDef>,
    kind: PatchOpKind,
    sub: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let sub_def = def.and_then(|d| d.sub_attr(sub));
    let sub_name = sub_def.map_or(sub, |d| d.name);
    let new_val = match (kind, value.filter(|v| !is_blank(v))) {
        (PatchOpKind::Remove, _) | (_, None) => None,
        (_, Some(v)) => Some(prepare_sub_value(sub_def, &format!("{key}.{sub_name}"), v)?),
    };
    let multi = def.map_or_else(|| matches!(c.get(key), Some(Value::Array(_))), |d| d.multi);
    match c.get_mut(key) {
        Some(Value::Array(items)) => {
            match new_val {
                // No filter: the sub-attribute of every element.
                Some(nv) if items.is_empty() => items.push(single(sub_name, nv)),
                Some(nv) => items
                    .iter_mut()
                    .for_each(|it| set_sub(it, sub_name, nv.clone())),
                None => {
                    for it in items.iter_mut() {
                        remove_sub(it, sub_name);
                    }
                    items.retain(|it| !is_hollow(it));
                }
            }
            if items.is_empty() {
                c.remove(key);
            }
        }
        Some(Value::Object(o)) => {
            match new_val {
                Some(nv) => {
                    let k = find_key(o, sub_name)
                        .cloned()
                        .unwrap_or_else(|| sub_name.to_owned());
                    o.insert(k, nv);
                }
                None => remove_sub_map(o, sub_name),
            }
            if o.is_empty() {
                c.remove(key);
            }
        }
        _ => {
            if let Some(nv) = new_val {
                let obj = single(sub_name, nv);
                c.insert(
                    key.to_owned(),
                    if multi { Value::Array(vec![obj]) } else { obj },
                );
            }
        }
    }
    Ok(())
}

fn single(k: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(k.to_owned(), v);
    Value::Object(m)
}

fn remove_sub(item: &mut Value, sub: &str) {
    if let Value::Object(o) = item {
        remove_sub_map(o, sub);
    }
}

fn remove_sub_map(o: &mut Obj, sub: &str) {
    if let Some(k) = find_key(o, sub).cloned() {
        o.remove(&k);
    }
}

/// Operations on `attr[filter]` and `attr[filter].sub`.
fn apply_filtered(
    c: &mut Obj,
    key: &str,
    def: Option<&'static AttrDef>,
    kind: PatchOpKind,
    vf: &Filter,
    sub: Option<&str>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let (mut items, was_single) = match c.get(key) {
        None => (Vec::new(), false),
        Some(Value::Array(a)) => (a.clone(), false),
        Some(v @ Value::Object(_)) => (vec![v.clone()], true),
        Some(_) if kind == PatchOpKind::Remove => return Ok(()),
        Some(_) => {
            return Err(bad(
                ScimType::InvalidPath,
                format!("'{key}' is not multi-valued, so a [filter] cannot select elements of it"),
            ));
        }
    };
    let matched: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, e)| vf.matches(e))
        .map(|(i, _)| i)
        .collect();
    let sub_def = def.and_then(|d| sub.and_then(|s| d.sub_attr(s)));
    let sub = sub.map(|s| sub_def.map_or(s, |d| d.name));
    // `add` with "" must still create the element (Entra sends it, Q&A
    // 708183); `replace` with "" or null clears (gallery null-update test).
    let clearing = match (kind, value) {
        (PatchOpKind::Remove, _) | (_, None) => true,
        (PatchOpKind::Replace, Some(v)) => is_blank(v),
        (PatchOpKind::Add, Some(_)) => false,
    };
    let mut touched = Vec::new();
    match (sub, clearing, value) {
        (None, true, _) => {
            items = items
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !matched.contains(i))
                .map(|(_, e)| e)
                .collect();
        }
        (Some(s), true, _) => {
            for &i in &matched {
                if let Some(item) = items.get_mut(i) {
                    remove_sub(item, s);
                }
            }
            items = items
                .into_iter()
                .enumerate()
                .filter(|(i, e)| !(matched.contains(i) && is_hollow(e)))
                .map(|(_, e)| e)
                .collect();
        }
        (Some(s), false, Some(v)) => {
            let v = prepare_sub_value(sub_def, &format!("{key}.{s}"), v)?;
            if matched.is_empty() {
                let mut el = template_from_filter(vf, def).ok_or_else(|| no_target(key, vf))?;
                el.insert(s.to_owned(), v);
                items.push(Value::Object(el));
                touched.push(items.len() - 1);
            } else {
                for &i in &matched {
                    if let Some(item) = items.get_mut(i) {
                        set_sub(item, s, v.clone());
                        touched.push(i);
                    }
                }
            }
        }
        (None, false, Some(v)) => {
            let v = match v {
                Value::Array(a) if a.len() == 1 => a.first().cloned().unwrap_or(Value::Null),
                other => other.clone(),
            };
            let v = match def {
                Some(d) => prepare_element(d, key, crate::util::drop_nulls(v))?,
                None => crate::util::drop_nulls(v),
            };
            let Value::Object(new) = v else {
                return Err(bad(
                    ScimType::InvalidValue,
                    format!("the value for '{key}[…]' must be an object"),
                ));
            };
            let template = template_from_filter(vf, def);
            if matched.is_empty() {
                let mut el = template.ok_or_else(|| no_target(key, vf))?;
                el.extend(new);
                items.push(Value::Object(el));
                touched.push(items.len() - 1);
            } else {
                for &i in &matched {
                    let Some(item) = items.get_mut(i) else {
                        continue;
                    };
                    if kind == PatchOpKind::Replace {
                        let mut el = template.clone().unwrap_or_default();
                        el.extend(new.clone());
                        *item = Value::Object(el);
                    } else if let Value::Object(o) = item {
                        for (k, nv) in &new {
                            let tk = find_key(o, k).cloned().unwrap_or_else(|| k.clone());
                            o.insert(tk, nv.clone());
                        }
                    }
                    touched.push(i);
                }
            }
        }
        (_, false, None) => {}
    }
    settle_primary(&mut items, &touched);
    if items.is_empty() {
        c.remove(key);
    } else if was_single && items.len() == 1 {
        c.insert(
            key.to_owned(),
            items.into_iter().next().unwrap_or(Value::Null),
        );
    } else {
        c.insert(key.to_owned(), Value::Array(items));
    }
    Ok(())
}

fn no_target(key: &str, vf: &Filter) -> ScimError {
    bad(
        ScimType::NoTarget,
        format!(
            "no element of '{key}' matches [{vf}], and a new one can only be created from 'eq' comparisons joined by 'and'"
        ),
    )
}

/// The element a value filter describes: `type eq "work"` gives
/// `{"type":"work"}`, so `add emails[type eq "work"].value` can create it.
fn template_from_filter(f: &Filter, def: Option<&'static AttrDef>) -> Option<Obj> {
    fn collect(f: &Filter, def: Option<&'static AttrDef>, m: &mut Obj) -> bool {
        match f {
            Filter::And(a, b) => collect(a, def, m) && collect(b, def, m),
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } if path.schema.is_none()
                && path.sub_attr.is_none()
                && path.value_filter.is_none() =>
            {
                let sd = def.and_then(|d| d.sub_attr(&path.name));
                let name = sd.map_or_else(|| path.name.clone(), |d| d.name.to_owned());
                let boolean = sd.map_or(name.eq_ignore_ascii_case("primary"), |d| {
                    d.ty == AttrType::Boolean
                });
                let v = match value {
                    CompValue::Str(s) if boolean => match parse_bool_str(s) {
                        Some(b) => Value::Bool(b),
                        None => return false,
                    },
                    CompValue::Str(s) => Value::String(s.clone()),
                    CompValue::Num(n) => Value::Number(n.clone()),
                    CompValue::Bool(b) => Value::Bool(*b),
                    CompValue::Null => return false,
                };
                m.insert(name, v);
                true
            }
            _ => false,
        }
    }
    let mut m = Map::new();
    collect(f, def, &mut m).then_some(m)
}

// ---------------------------------------------------------------------------
// Groups

/// What a group PATCH asks the store to do. Membership changes are applied as
/// set operations in one transaction, in this order: clear all members if
/// `remove_all_members`, then `remove_members`, then `add_members`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupPatch {
    /// New display name.
    pub display_name: Option<String>,
    /// `Some(None)` clears externalId, `Some(Some(x))` sets it.
    pub external_id: Option<Option<String>>,
    /// Clear all members first.
    pub remove_all_members: bool,
    /// Member ids to remove (trimmed, deduplicated).
    pub remove_members: Vec<String>,
    /// Member ids to add (trimmed, deduplicated).
    pub add_members: Vec<String>,
}

impl GroupPatch {
    /// True when the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none()
            && self.external_id.is_none()
            && !self.remove_all_members
            && self.remove_members.is_empty()
            && self.add_members.is_empty()
    }
}

/// A [`GroupPatch`] while it is planned: each member's latest change, in the order the
/// changes were made, so that thousands of members plan in linear time.
#[derive(Debug, Default)]
struct Planner {
    plan: GroupPatch,
    /// Member id → (sequence of its latest change, added).
    members: std::collections::HashMap<String, (usize, bool)>,
    sequence: usize,
}

impl Planner {
    fn add(&mut self, id: String) {
        self.change(id, true);
    }

    fn remove(&mut self, id: String) {
        if self.plan.remove_all_members {
            // Everyone is removed already; only an earlier add in this request is undone.
            self.members.remove(&id);
        } else {
            self.change(id, false);
        }
    }

    fn change(&mut self, id: String, added: bool) {
        match self.members.get_mut(&id) {
            Some((_, current)) if *current == added => {}
            Some(entry) => {
                self.sequence += 1;
                *entry = (self.sequence, added);
            }
            None => {
                self.sequence += 1;
                self.members.insert(id, (self.sequence, added));
            }
        }
    }

    fn clear(&mut self) {
        self.plan.remove_all_members = true;
        self.members.clear();
    }

    fn finish(mut self) -> GroupPatch {
        let mut changes: Vec<(String, (usize, bool))> = self.members.into_iter().collect();
        changes.sort_by_key(|(_, (sequence, _))| *sequence);
        for (id, (_, added)) in changes {
            if added {
                self.plan.add_members.push(id);
            } else {
                self.plan.remove_members.push(id);
            }
        }
        self.plan
    }
}

/// Turns a group PATCH into a [`GroupPatch`], collapsing the operations in
/// order with set semantics.
pub fn plan_group_patch(request: &PatchRequest) -> Result<GroupPatch, ScimError> {
    let named: usize = request
        .operations
        .iter()
        .map(|op| match &op.value {
            Some(Value::Array(values)) => values.len(),
            _ => 1,
        })
        .sum();
    crate::limits::check_member_count(named)?;
    let mut plan = Planner::default();
    for (i, op) in request.operations.iter().enumerate() {
        plan_operation(&mut plan, op).map_err(|e| at_op(i, e))?;
    }
    let plan = plan.finish();
    // The bounds a POSTed group's attributes meet (see `parse_group`).
    crate::limits::check(&json!({
        "displayName": plan.display_name,
        "externalId": plan.external_id.clone().flatten(),
    }))?;
    Ok(plan)
}

fn plan_operation(plan: &mut Planner, op: &PatchOperation) -> Result<(), ScimError> {
    match (&op.path, op.op) {
        (Some(path), kind) => plan_path(plan, kind, path, op.value.as_ref()),
        (None, PatchOpKind::Remove) => Err(bad(ScimType::NoTarget, "remove requires a 'path'")),
        (None, kind) => {
            let Some(Value::Object(map)) = &op.value else {
                return Err(bad(
                    ScimType::InvalidValue,
                    format!(
                        "{} without a 'path' requires a JSON object as value",
                        kind.as_str()
                    ),
                ));
            };
            for (key, v) in map {
                let path = parse_attr_path(key)?;
                plan_path(plan, kind, &path, Some(v))?;
            }
            Ok(())
        }
    }
}

fn plan_path(
    plan: &mut Planner,
    kind: PatchOpKind,
    path: &AttrPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let value = value.filter(|v| !v.is_null());
    let unsupported = || {
        bad(
            ScimType::InvalidPath,
            format!(
                "'{path}' is not a supported group attribute (members, displayName, externalId)"
            ),
        )
    };
    if path
        .schema
        .as_deref()
        .is_some_and(|s| !s.eq_ignore_ascii_case(schema::SCHEMA_GROUP))
    {
        return Err(unsupported());
    }
    let name = path.name.as_str();
    // `description` is not kept (MaaS360 user groups have no use for it),
    // but Entra's gallery mapping sends it on every group update: refusing it
    // would fail the group every cycle, so it is ignored like read-only data.
    if ["id", "meta", "schemas", "description"]
        .iter()
        .any(|r| name.eq_ignore_ascii_case(r))
    {
        return Ok(());
    }
    if name.eq_ignore_ascii_case("members") {
        if path.sub_attr.is_some() {
            return Err(unsupported());
        }
        if let Some(vf) = &path.value_filter {
            if kind != PatchOpKind::Remove {
                return Err(bad(
                    ScimType::InvalidPath,
                    format!("'{path}': a members filter is only supported with remove"),
                ));
            }
            for id in ids_from_filter(vf)? {
                plan.remove(id);
            }
            return Ok(());
        }
        match kind {
            PatchOpKind::Add => {
                let v = value
                    .ok_or_else(|| bad(ScimType::InvalidValue, "add members requires a value"))?;
                for id in member_ids(v)? {
                    plan.add(id);
                }
            }
            // Entra's default shape: `Remove` + `members` + value array means
            // "remove these", never "remove all".
            PatchOpKind::Remove => match value {
                Some(v) => {
                    for id in member_ids(v)? {
                        plan.remove(id);
                    }
                }
                None => plan.clear(),
            },
            PatchOpKind::Replace => {
                plan.clear();
                if let Some(v) = value {
                    for id in member_ids(v)? {
                        plan.add(id);
                    }
                }
            }
        }
        return Ok(());
    }
    if path.sub_attr.is_some() || path.value_filter.is_some() {
        return Err(unsupported());
    }
    if name.eq_ignore_ascii_case("displayName") {
        // RFC 7644 §3.5.2.2: a required attribute removed or left unassigned is `mutability`.
        let required = || {
            bad(
                ScimType::Mutability,
                "displayName is required: it cannot be removed or emptied",
            )
        };
        match (kind, value) {
            (PatchOpKind::Remove, _) | (_, None) => return Err(required()),
            (_, Some(Value::String(s))) if s.is_empty() => return Err(required()),
            (_, Some(Value::String(s))) if s.trim().is_empty() => {
                return Err(bad(ScimType::InvalidValue, "displayName must not be blank"));
            }
            (_, Some(Value::String(s))) => plan.plan.display_name = Some(s.clone()),
            (_, Some(_)) => {
                return Err(bad(ScimType::InvalidValue, "displayName must be a string"));
            }
        }
        return Ok(());
    }
    if name.eq_ignore_ascii_case("externalId") {
        plan.plan.external_id = match (kind, value) {
            (PatchOpKind::Remove, _) | (_, None) => Some(None),
            (_, Some(Value::String(s))) if s.is_empty() => Some(None),
            (_, Some(v)) => {
                Some(Some(scalar_string(v).ok_or_else(|| {
                    bad(ScimType::InvalidValue, "externalId must be a string")
                })?))
            }
        };
        return Ok(());
    }
    Err(unsupported())
}

/// Ids in `members[value eq "a" or value eq "b"]`.
fn ids_from_filter(f: &Filter) -> Result<Vec<String>, ScimError> {
    match f {
        Filter::Or(a, b) => {
            let mut ids = ids_from_filter(a)?;
            ids.extend(ids_from_filter(b)?);
            Ok(ids)
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::Str(id),
        } if path.is("value") && path.schema.is_none() => non_empty_id(id),
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::Num(n),
        } if path.is("value") && path.schema.is_none() => Ok(vec![n.to_string()]),
        _ => Err(bad(
            ScimType::InvalidPath,
            format!(
                "unsupported members filter [{f}]: only 'value eq \"id\"' (optionally joined with 'or') is supported"
            ),
        )),
    }
}

fn non_empty_id(id: &str) -> Result<Vec<String>, ScimError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(bad(
            ScimType::InvalidValue,
            "a member value must be a non-empty id",
        ));
    }
    crate::limits::check_no_nul("a member id", id)?;
    Ok(vec![id.to_owned()])
}

/// Member ids from `[{"value": id, …}, …]`, a single object, or a bare id
/// string (the reference tests' "garbage" shape).
fn member_ids(v: &Value) -> Result<Vec<String>, ScimError> {
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut ids: Vec<String> = Vec::new();
    for item in items {
        let id = match item {
            Value::Null => continue,
            Value::Object(o) => match get_ci(o, "value") {
                Some(v) => scalar_string(v),
                None => {
                    return Err(bad(
                        ScimType::InvalidValue,
                        "each member needs a 'value' holding the member id",
                    ));
                }
            },
            other => scalar_string(other),
        };
        let id = id.ok_or_else(|| {
            bad(
                ScimType::InvalidValue,
                "a member value must be an id string",
            )
        })?;
        for id in non_empty_id(&id)? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ops: Value) -> PatchRequest {
        PatchRequest::parse(
            &json!({"schemas": [crate::schema::SCHEMA_PATCH_OP], "Operations": ops}),
        )
        .unwrap()
    }

    fn patched(mut resource: Value, ops: Value) -> Value {
        apply_patch(&mut resource, &req(ops)).unwrap();
        resource
    }

    fn base() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u1",
            "userName": "a@x",
            "active": true,
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"value": "a@x", "type": "work", "primary": true}]
        })
    }

    #[test]
    fn parse_tolerates_shapes() {
        let r = PatchRequest::parse(
            &json!({"operations": [{"OP": "REPLACE", "Path": "active", "Value": false}]}),
        )
        .unwrap();
        assert_eq!(r.operations[0].op, PatchOpKind::Replace);
        assert!(r.operations[0].path.as_ref().unwrap().is("active"));
        assert_eq!(r.operations[0].value, Some(json!(false)));
        let r = PatchRequest::parse(&json!({"schemas": ["urn:x"], "Operations": [{"op": "add", "path": "", "value": null}]})).unwrap();
        assert_eq!(r.operations[0].path, None);
        assert_eq!(r.operations[0].value, None);
    }

    #[test]
    fn parse_errors() {
        let e = PatchRequest::parse(&json!({"schemas": []})).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        let e = PatchRequest::parse(&json!({"Operations": [{"op": "merge", "path": "a"}]}))
            .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        assert!(
            e.detail.contains("Operations[0]") && e.detail.contains("merge"),
            "{}",
            e.detail
        );
        let e = PatchRequest::parse(&json!({"Operations": [{"op": "add", "path": "a b"}]}))
            .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        let e = PatchRequest::parse(&json!([1])).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        let e = PatchRequest::parse(&json!({"Operations": "x"})).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        let e = PatchRequest::parse(&json!({"Operations": [{"path": "a"}]})).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    }

    #[test]
    fn replace_simple_and_sub() {
        let r = patched(
            base(),
            json!([
                {"op": "replace", "path": "userName", "value": "b@x"},
                {"op": "replace", "path": "name.familyName", "value": "C"},
                {"op": "add", "path": "NAME.middleName", "value": "M"}
            ]),
        );
        assert_eq!(r["userName"], "b@x");
        assert_eq!(
            r["name"],
            json!({"givenName": "A", "familyName": "C", "middleName": "M"})
        );
    }

    #[test]
    fn remove_paths() {
        let r = patched(
            base(),
            json!([
                {"op": "remove", "path": "name.givenName"},
                {"op": "remove", "path": "name.familyName"},
                {"op": "remove", "path": "nickName"},
                {"op": "remove", "path": "emails[type eq \"work\"]"}
            ]),
        );
        assert!(
            r.get("name").is_none(),
            "empty complex attribute is dropped"
        );
        assert!(r.get("emails").is_none());
    }

    #[test]
    fn multi_valued_add_appends_and_settles_primary() {
        let r = patched(
            base(),
            json!([
                {"op": "add", "path": "emails", "value": [{"value": "h@x", "type": "home", "Primary": "true"}]}
            ]),
        );
        assert_eq!(
            r["emails"],
            json!([
                {"value": "a@x", "type": "work", "primary": false},
                {"value": "h@x", "type": "home", "primary": true}
            ])
        );
        let r = patched(
            base(),
            json!([{"op": "replace", "path": "emails", "value": [{"value": "z@x"}]}]),
        );
        assert_eq!(r["emails"], json!([{"value": "z@x"}]));
        let r = patched(
            base(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "a@x", "type": "work", "primary": true}]}]),
        );
        assert_eq!(
            r["emails"].as_array().unwrap().len(),
            1,
            "no duplicate on add"
        );
    }

    #[test]
    fn filtered_replace_existing_and_replace_element() {
        let r = patched(
            base(),
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@x"}
            ]),
        );
        assert_eq!(
            r["emails"],
            json!([{"value": "new@x", "type": "work", "primary": true}])
        );
        let r = patched(
            base(),
            json!([
                {"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "w@x"}}
            ]),
        );
        assert_eq!(r["emails"], json!([{"type": "work", "value": "w@x"}]));
        let r = patched(
            base(),
            json!([
                {"op": "add", "path": "emails[type eq \"work\"]", "value": {"display": "W"}}
            ]),
        );
        assert_eq!(
            r["emails"],
            json!([{"value": "a@x", "type": "work", "primary": true, "display": "W"}])
        );
    }

    #[test]
    fn filtered_without_template_is_no_target() {
        let mut r = base();
        let e = apply_patch(
            &mut r,
            &req(json!([
                {"op": "replace", "path": "emails[value co \"zzz\"].display", "value": "x"}
            ])),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::NoTarget));
        assert_eq!(r, base(), "atomic: unchanged on error");
    }

    #[test]
    fn sub_attr_on_multi_without_filter() {
        let r = patched(
            json!({"userName": "u"}),
            json!([{"op": "add", "path": "phoneNumbers.value", "value": "1"}]),
        );
        assert_eq!(r["phoneNumbers"], json!([{"value": "1"}]));
        let r = patched(base(), json!([{"op": "remove", "path": "emails.value"}]));
        assert!(r.get("emails").is_none());
    }

    #[test]
    fn read_only_and_schemas_ignored() {
        let r = patched(
            base(),
            json!([
                {"op": "replace", "path": "id", "value": "evil"},
                {"op": "replace", "path": "meta.created", "value": "x"},
                {"op": "replace", "path": "schemas", "value": []},
                {"op": "add", "value": {"id": "evil", "meta": {"a": 1}, "groups": []}}
            ]),
        );
        assert_eq!(r, base());
    }

    #[test]
    fn required_user_name_cannot_be_cleared() {
        for (ops, scim_type) in [
            (
                json!([{"op": "remove", "path": "userName"}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "path": "userName", "value": ""}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "value": {"USERNAME": null}}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "path": "userName", "value": "  "}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "replace", "path": "userName", "value": 5}]),
                ScimType::InvalidValue,
            ),
        ] {
            let e = apply_patch(&mut base(), &req(ops.clone())).unwrap_err();
            assert_eq!(e.scim_type, Some(scim_type), "{ops}");
            assert!(e.detail.contains("userName"));
        }
    }

    #[test]
    fn members_rejected_in_apply_patch() {
        let mut r = json!({"displayName": "g"});
        let e = apply_patch(
            &mut r,
            &req(json!([{"op": "add", "path": "members", "value": [{"value": "1"}]}])),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        assert!(e.detail.contains("plan_group_patch"));
    }

    #[test]
    fn invalid_values() {
        let mut r = base();
        for ops in [
            json!([{"op": "replace", "path": "active", "value": "perhaps"}]),
            json!([{"op": "replace", "path": "name", "value": "x"}]),
            json!([{"op": "replace", "path": "userName", "value": {"a": 1}}]),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "no"}]),
            json!([{"op": "add", "value": "x"}]),
            json!([{"op": "add"}]),
        ] {
            let e = apply_patch(&mut r, &req(ops.clone())).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{ops}");
        }
        let e = apply_patch(&mut r, &req(json!([{"op": "remove"}]))).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::NoTarget));
        let e = apply_patch(&mut json!([]), &req(json!([]))).unwrap_err();
        assert_eq!(e.status, 500);
    }

    #[test]
    fn unknown_attributes_stored_as_sent() {
        let r = patched(
            base(),
            json!([
                {"op": "add", "path": "favouriteColour", "value": {"a": 1}},
                {"op": "add", "path": "favouriteColour", "value": {"b": 2}},
                {"op": "add", "path": "tags", "value": ["x"]},
                {"op": "add", "path": "tags", "value": ["y", "x"]}
            ]),
        );
        assert_eq!(r["favouriteColour"], json!({"a": 1, "b": 2}));
        assert_eq!(r["tags"], json!(["x", "y"]));
    }

    #[test]
    fn custom_extension_paths() {
        let urn = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
        let r = patched(
            base(),
            json!([{"op": "add", "path": format!("{urn}:tag"), "value": "blue"}]),
        );
        assert_eq!(r[urn], json!({"tag": "blue"}));
        assert!(r["schemas"].as_array().unwrap().contains(&json!(urn)));
        let r = patched(r, json!([{"op": "remove", "path": format!("{urn}:tag")}]));
        assert!(r.get(urn).is_none());
        assert!(!r["schemas"].as_array().unwrap().contains(&json!(urn)));
    }

    #[test]
    fn whole_extension_path() {
        let ent = SCHEMA_ENTERPRISE_USER;
        let r = patched(
            base(),
            json!([{"op": "add", "path": ent, "value": {"Department": "D", "manager": "m"}}]),
        );
        assert_eq!(
            r[ent],
            json!({"department": "D", "manager": {"value": "m"}})
        );
        let r = patched(r, json!([{"op": "remove", "path": ent}]));
        assert!(r.get(ent).is_none());
        assert_eq!(
            r["schemas"],
            json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
        );
    }

    fn group(ops: Value) -> GroupPatch {
        plan_group_patch(&req(ops)).unwrap()
    }

    #[test]
    fn group_plan_collapses_sequentially() {
        let g = group(json!([
            {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": " b "}, {"value": "a"}]},
            {"op": "remove", "path": "members", "value": [{"value": "b"}]},
            {"op": "remove", "path": "members[value eq \"c\" or value eq \"d\"]"},
            {"op": "add", "path": "members", "value": {"value": "c"}}
        ]));
        assert_eq!(g.add_members, vec!["a", "c"]);
        assert_eq!(g.remove_members, vec!["b", "d"]);
        assert!(!g.remove_all_members);
    }

    #[test]
    fn group_replace_members_and_remove_all() {
        let g = group(json!([
            {"op": "add", "path": "members", "value": [{"value": "x"}]},
            {"op": "replace", "path": "members", "value": [{"value": "a"}]}
        ]));
        assert!(g.remove_all_members);
        assert_eq!(g.add_members, vec!["a"]);
        assert!(g.remove_members.is_empty());
        let g = group(
            json!([{"op": "remove", "path": "members"}, {"op": "remove", "path": "members", "value": [{"value": "q"}]}]),
        );
        assert!(g.remove_all_members && g.remove_members.is_empty() && g.add_members.is_empty());
    }

    #[test]
    fn group_attributes() {
        let g = group(json!([
            {"op": "Replace", "path": "displayName", "value": "New"},
            {"op": "replace", "value": {"ExternalID": "e1", "MEMBERS": [{"value": "m"}], "id": "ignored"}}
        ]));
        assert_eq!(g.display_name.as_deref(), Some("New"));
        assert_eq!(g.external_id, Some(Some("e1".into())));
        assert!(g.remove_all_members && g.add_members == vec!["m"]);
        let g = group(json!([{"op": "remove", "path": "externalId"}]));
        assert_eq!(g.external_id, Some(None));
        assert!(group(json!([])).is_empty());
        // The gallery's group update also sends description; it is ignored.
        let g = group(json!([
            {"op": "Replace", "path": "description", "value": "d"},
            {"op": "replace", "value": {"displayName": "N", "description": "d"}}
        ]));
        assert_eq!(g.display_name.as_deref(), Some("N"));
    }

    #[test]
    fn group_values_meet_the_limits() {
        for ops in [
            json!([{"op": "add", "path": "members", "value": [{"value": "a\u{0}"}]}]),
            json!([{"op": "replace", "path": "displayName", "value": "n\u{0}"}]),
            json!([{"op": "replace", "path": "externalId", "value": "\u{0}"}]),
            json!([{"op": "replace", "path": "externalId", "value": "e".repeat(300)}]),
            json!([{"op": "replace", "path": "displayName", "value": "d".repeat(300)}]),
        ] {
            let e = plan_group_patch(&req(ops.clone())).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{ops}");
        }
    }

    #[test]
    fn group_errors() {
        for (ops, t) in [
            (
                json!([{"op": "replace", "path": "displayName", "value": ""}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "path": "displayName", "value": " "}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "replace", "path": "displayName"}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "remove", "path": "displayName"}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "path": "owners", "value": "d"}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "remove", "path": "members[display eq \"x\"]"}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "add", "path": "members[value eq \"x\"]", "value": "x"}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "add", "path": "members", "value": [true]}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "add", "path": "members", "value": [{"value": "  "}]}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "add", "path": "members"}]),
                ScimType::InvalidValue,
            ),
            (json!([{"op": "remove"}]), ScimType::NoTarget),
            (json!([{"op": "add", "value": [1]}]), ScimType::InvalidValue),
        ] {
            let e = plan_group_patch(&req(ops.clone())).unwrap_err();
            assert_eq!(e.scim_type, Some(t), "{ops}: {e:?}");
        }
    }
}
