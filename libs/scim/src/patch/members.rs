//! Group PATCHes as a plan, not a JSON edit: the member operations become sets of ids to
//! add and remove, which the store applies in one transaction without loading the members.
//! Entra's `Remove` + `members` + a value array removes only those members
//! (`docs/entra-scim.md §4.12, §6 Q9`).

use std::collections::HashMap;

use serde_json::Value;

use super::request::{PatchOpKind, PatchOperation, PatchRequest};
use super::{at_operation, bad_request};
use crate::error::{ScimError, ScimType};
use crate::filter::{AttrPath, CompValue, CompareOp, Filter, parse_attr_path};
use crate::schema;
use crate::util::{get_ci, scalar_string};

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
struct MembershipPlanner {
    patch: GroupPatch,
    /// Member id → (sequence number of its latest change, whether that change adds it).
    latest: HashMap<String, (usize, bool)>,
    sequence: usize,
}

impl MembershipPlanner {
    fn add(&mut self, id: String) {
        self.change(id, true);
    }

    fn remove(&mut self, id: String) {
        if self.patch.remove_all_members {
            // Everyone is removed already; only an earlier add in this request is undone.
            self.latest.remove(&id);
        } else {
            self.change(id, false);
        }
    }

    fn change(&mut self, id: String, added: bool) {
        match self.latest.get_mut(&id) {
            Some((_, current)) if *current == added => {}
            Some(entry) => {
                self.sequence += 1;
                *entry = (self.sequence, added);
            }
            None => {
                self.sequence += 1;
                self.latest.insert(id, (self.sequence, added));
            }
        }
    }

    fn clear(&mut self) {
        self.patch.remove_all_members = true;
        self.latest.clear();
    }

    fn finish(mut self) -> GroupPatch {
        let mut changes: Vec<(String, (usize, bool))> = self.latest.into_iter().collect();
        changes.sort_by_key(|(_, (sequence, _))| *sequence);
        for (id, (_, added)) in changes {
            if added {
                self.patch.add_members.push(id);
            } else {
                self.patch.remove_members.push(id);
            }
        }
        self.patch
    }
}

/// Turns a group PATCH into a [`GroupPatch`], collapsing the operations in
/// order with set semantics.
pub fn plan_group_patch(request: &PatchRequest) -> Result<GroupPatch, ScimError> {
    let named: usize = request
        .operations
        .iter()
        .map(|operation| match &operation.value {
            Some(Value::Array(values)) => values.len(),
            _ => 1,
        })
        .sum();
    crate::limits::check_member_count(named)?;
    let mut planner = MembershipPlanner::default();
    for (index, operation) in request.operations.iter().enumerate() {
        plan_operation(&mut planner, operation).map_err(|error| at_operation(index, error))?;
    }
    let patch = planner.finish();
    // The bounds a POSTed group's attributes meet (see `parse_group`).
    crate::limits::check(&serde_json::json!({
        "displayName": patch.display_name,
        "externalId": patch.external_id.clone().flatten(),
    }))?;
    Ok(patch)
}

fn plan_operation(
    planner: &mut MembershipPlanner,
    operation: &PatchOperation,
) -> Result<(), ScimError> {
    match (&operation.path, operation.op) {
        (Some(path), kind) => plan_path(planner, kind, path, operation.value.as_ref()),
        (None, PatchOpKind::Remove) => {
            Err(bad_request(ScimType::NoTarget, "remove requires a 'path'"))
        }
        (None, kind) => {
            let Some(Value::Object(entries)) = &operation.value else {
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
                plan_path(planner, kind, &path, Some(entry_value))?;
            }
            Ok(())
        }
    }
}

fn plan_path(
    planner: &mut MembershipPlanner,
    kind: PatchOpKind,
    path: &AttrPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let value = value.filter(|value| !value.is_null());
    let unsupported = || {
        bad_request(
            ScimType::InvalidPath,
            format!(
                "'{path}' is not a supported group attribute (members, displayName, externalId)"
            ),
        )
    };
    if path
        .schema
        .as_deref()
        .is_some_and(|urn| !urn.eq_ignore_ascii_case(schema::SCHEMA_GROUP))
    {
        return Err(unsupported());
    }
    let name = path.name.as_str();
    // `description` is not kept (MaaS360 user groups have no use for it),
    // but Entra's gallery mapping sends it on every group update: refusing it
    // would fail the group every cycle, so it is ignored like read-only data.
    if ["id", "meta", "schemas", "description"]
        .iter()
        .any(|ignored| name.eq_ignore_ascii_case(ignored))
    {
        return Ok(());
    }
    if name.eq_ignore_ascii_case("members") {
        if path.sub_attr.is_some() {
            return Err(unsupported());
        }
        if let Some(value_filter) = &path.value_filter {
            if kind != PatchOpKind::Remove {
                return Err(bad_request(
                    ScimType::InvalidPath,
                    format!("'{path}': a members filter is only supported with remove"),
                ));
            }
            for id in ids_from_filter(value_filter)? {
                planner.remove(id);
            }
            return Ok(());
        }
        match kind {
            PatchOpKind::Add => {
                let members = value.ok_or_else(|| {
                    bad_request(ScimType::InvalidValue, "add members requires a value")
                })?;
                for id in member_ids(members)? {
                    planner.add(id);
                }
            }
            // Entra's default shape: `Remove` + `members` + value array means
            // "remove these", never "remove all".
            PatchOpKind::Remove => match value {
                Some(members) => {
                    for id in member_ids(members)? {
                        planner.remove(id);
                    }
                }
                None => planner.clear(),
            },
            PatchOpKind::Replace => {
                planner.clear();
                if let Some(members) = value {
                    for id in member_ids(members)? {
                        planner.add(id);
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
            bad_request(
                ScimType::Mutability,
                "displayName is required: it cannot be removed or emptied",
            )
        };
        match (kind, value) {
            (PatchOpKind::Remove, _) | (_, None) => return Err(required()),
            (_, Some(Value::String(text))) if text.is_empty() => return Err(required()),
            (_, Some(Value::String(text))) if text.trim().is_empty() => {
                return Err(bad_request(
                    ScimType::InvalidValue,
                    "displayName must not be blank",
                ));
            }
            (_, Some(Value::String(text))) => planner.patch.display_name = Some(text.clone()),
            (_, Some(_)) => {
                return Err(bad_request(
                    ScimType::InvalidValue,
                    "displayName must be a string",
                ));
            }
        }
        return Ok(());
    }
    if name.eq_ignore_ascii_case("externalId") {
        planner.patch.external_id = match (kind, value) {
            (PatchOpKind::Remove, _) | (_, None) => Some(None),
            (_, Some(Value::String(text))) if text.is_empty() => Some(None),
            (_, Some(external_id)) => Some(Some(scalar_string(external_id).ok_or_else(|| {
                bad_request(ScimType::InvalidValue, "externalId must be a string")
            })?)),
        };
        return Ok(());
    }
    Err(unsupported())
}

/// Ids in `members[value eq "a" or value eq "b"]`.
fn ids_from_filter(filter: &Filter) -> Result<Vec<String>, ScimError> {
    match filter {
        Filter::Or(left, right) => {
            let mut ids = ids_from_filter(left)?;
            ids.extend(ids_from_filter(right)?);
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
            value: CompValue::Num(number),
        } if path.is("value") && path.schema.is_none() => Ok(vec![number.to_string()]),
        _ => Err(bad_request(
            ScimType::InvalidPath,
            format!(
                "unsupported members filter [{filter}]: only 'value eq \"id\"' (optionally joined with 'or') is supported"
            ),
        )),
    }
}

fn non_empty_id(id: &str) -> Result<Vec<String>, ScimError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(bad_request(
            ScimType::InvalidValue,
            "a member value must be a non-empty id",
        ));
    }
    crate::limits::check_no_nul("a member id", id)?;
    Ok(vec![id.to_owned()])
}

/// Member ids from `[{"value": id, …}, …]`, a single object, or a bare id
/// string (the reference tests' "garbage" shape).
fn member_ids(members: &Value) -> Result<Vec<String>, ScimError> {
    let items: Vec<&Value> = match members {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut ids: Vec<String> = Vec::new();
    for item in items {
        let id = match item {
            Value::Null => continue,
            Value::Object(fields) => match get_ci(fields, "value") {
                Some(id) => scalar_string(id),
                None => {
                    return Err(bad_request(
                        ScimType::InvalidValue,
                        "each member needs a 'value' holding the member id",
                    ));
                }
            },
            other => scalar_string(other),
        };
        let id = id.ok_or_else(|| {
            bad_request(
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
