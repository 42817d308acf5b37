//! Delta pages for `/users/delta` and `/groups/delta` (docs/graph.md §3): the initial round
//! enumerates the tenant (a large group's members split across pages, docs/graph.md §3.4), later
//! rounds read the change log from the deltaLink's position, reporting each object once per round
//! with its current selected properties, `@removed` for deletions (`changed` soft, `deleted` hard,
//! docs/graph.md §3.3), and `members@delta` for membership changes (docs/graph.md §3.4).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::changelog::{Entry, Event};
use super::config::GraphEmulatorConfig;
use super::cursor::{DeltaCursor, Phase};
use super::objects::{GroupRecord, Kind, render};
use super::tenant::Tenant;

/// One delta page: the items, and the cursor of the nextLink or (phase `Done`) deltaLink.
#[derive(Debug)]
pub(crate) struct DeltaPage {
    pub(crate) items: Vec<Value>,
    pub(crate) next: DeltaCursor,
}

/// Builds the page `cursor` points at. `cursor` is in phase `Enumerate` or `Changes`.
pub(crate) fn page(
    tenant: &Tenant,
    config: &GraphEmulatorConfig,
    cursor: DeltaCursor,
) -> DeltaPage {
    let kind = if cursor.resource == "groups" {
        Kind::Group
    } else {
        Kind::User
    };
    let (items, phase) = match &cursor.phase {
        Phase::Enumerate {
            after,
            resume,
            snapshot,
        } => match kind {
            Kind::User => {
                enumerate_users(tenant, config, &cursor.select, after.as_deref(), *snapshot)
            }
            Kind::Group => enumerate_groups(
                tenant,
                config,
                &cursor.select,
                after.as_deref(),
                resume.as_ref(),
                *snapshot,
            ),
        },
        Phase::Changes { at, end } => changes(tenant, config, kind, &cursor.select, *at, *end),
        Phase::Done { position } => (
            Vec::new(),
            Phase::Done {
                position: *position,
            },
        ),
    };
    DeltaPage {
        items,
        next: DeltaCursor { phase, ..cursor },
    }
}

fn names(select: &[String]) -> Vec<&str> {
    select
        .iter()
        .map(String::as_str)
        .filter(|n| *n != "members")
        .collect()
}

fn tracks_members(select: &[String]) -> bool {
    select.iter().any(|s| s == "members")
}

fn enumerate_users(
    tenant: &Tenant,
    config: &GraphEmulatorConfig,
    select: &[String],
    after: Option<&str>,
    snapshot: u64,
) -> (Vec<Value>, Phase) {
    let names = names(select);
    let size = config.delta_page_size.max(1);
    let mut users = tenant.users_after(after);
    let items: Vec<Value> = users
        .by_ref()
        .take(size)
        .map(|u| Value::Object(render(&names, |p| u.property(p), true)))
        .collect();
    let last = items
        .last()
        .and_then(|i| i.get("id"))
        .and_then(Value::as_str);
    match (users.next(), last) {
        (Some(_), Some(last)) => {
            let phase = Phase::Enumerate {
                after: Some(last.to_owned()),
                resume: None,
                snapshot,
            };
            (items, phase)
        }
        _ => (items, Phase::Done { position: snapshot }),
    }
}

fn member_ref(id: &str, kind: Kind, removed: bool) -> Value {
    let mut item = json!({"@odata.type": kind.odata_type(), "id": id});
    if removed && let Some(object) = item.as_object_mut() {
        object.insert("@removed".to_owned(), json!({"reason": "deleted"}));
    }
    item
}

fn group_object(group: &GroupRecord, names: &[&str]) -> Map<String, Value> {
    render(names, |p| group.property(p), true)
}

fn enumerate_groups(
    tenant: &Tenant,
    config: &GraphEmulatorConfig,
    select: &[String],
    after: Option<&str>,
    resume: Option<&(String, String)>,
    snapshot: u64,
) -> (Vec<Value>, Phase) {
    let names = names(select);
    let with_members = tracks_members(select);
    let mut budget = config.delta_members_per_page.max(1);
    let mut items = Vec::new();
    // The group to continue first (its members after the given one), then those after it.
    let (start_after, mut continuing) = match resume {
        Some((group, member)) => (
            Some(group.as_str()),
            Some((group.as_str(), member.as_str())),
        ),
        None => (after, None),
    };
    let continued = continuing.and_then(|(group, _)| tenant.group(group));
    let groups = continued
        .into_iter()
        .chain(tenant.groups_after(start_after));
    let mut last_done: Option<&str> = after;
    for group in groups {
        if items.len() >= config.delta_page_size.max(1) || (budget == 0 && with_members) {
            return (
                items,
                Phase::Enumerate {
                    after: last_done.map(str::to_owned),
                    resume: None,
                    snapshot,
                },
            );
        }
        let member_after = continuing
            .take()
            .filter(|(g, _)| *g == group.id)
            .map(|(_, m)| m);
        let mut object = group_object(group, &names);
        if with_members {
            let mut members = match member_after {
                Some(m) => group
                    .members
                    .range::<str, _>((std::ops::Bound::Excluded(m), std::ops::Bound::Unbounded)),
                None => group.members.range::<str, _>(..),
            };
            let slice: Vec<Value> = members
                .by_ref()
                .take(budget)
                .map(|(id, kind)| member_ref(id, *kind, false))
                .collect();
            budget -= slice.len();
            let more = members.next().is_some();
            let last_member = slice
                .last()
                .and_then(|m| m.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if !slice.is_empty() {
                object.insert("members@delta".to_owned(), Value::Array(slice));
            }
            if more && let Some(last_member) = last_member {
                items.push(Value::Object(object));
                return (
                    items,
                    Phase::Enumerate {
                        after: last_done.map(str::to_owned),
                        resume: Some((group.id.clone(), last_member)),
                        snapshot,
                    },
                );
            }
        }
        items.push(Value::Object(object));
        last_done = Some(group.id.as_str());
    }
    (items, Phase::Done { position: snapshot })
}

/// Whether a change-log entry is worth reporting to a round tracking `select`.
fn reportable(entry: &Entry, select: &[String]) -> bool {
    match &entry.event {
        Event::Updated(properties) => properties.iter().any(|p| select.contains(p)),
        Event::MemberAdded { .. } | Event::MemberRemoved { .. } => tracks_members(select),
        Event::Created | Event::SoftDeleted | Event::Restored | Event::HardDeleted => true,
    }
}

fn changes(
    tenant: &Tenant,
    config: &GraphEmulatorConfig,
    kind: Kind,
    select: &[String],
    at: u64,
    end: u64,
) -> (Vec<Value>, Phase) {
    let names = names(select);
    let mut items: Vec<Value> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut position = at;
    let limit = at.saturating_add(config.delta_scan_per_page.max(1) as u64);
    while position < end && position < limit && items.len() < config.delta_page_size.max(1) {
        let here = position;
        position += 1;
        let Some(entry) = tenant.log.get(here) else {
            continue;
        };
        if entry.kind != kind || !reportable(entry, select) {
            continue;
        }
        // A later entry in this round about the same object (or member) reports it.
        if tenant
            .log
            .superseded(here, end, |later| reportable(later, select))
        {
            continue;
        }
        match &entry.event {
            Event::MemberAdded { member, kind } | Event::MemberRemoved { member, kind } => {
                let Some(group) = tenant.group(&entry.id) else {
                    // Deleted since: its own removal is reported instead.
                    continue;
                };
                let removed = matches!(entry.event, Event::MemberRemoved { .. });
                let at = *index.entry(entry.id.clone()).or_insert_with(|| {
                    items.push(Value::Object(group_object(group, &names)));
                    items.len() - 1
                });
                if let Some(Value::Object(object)) = items.get_mut(at) {
                    let list = object
                        .entry("members@delta")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(list) = list {
                        list.push(member_ref(member, *kind, removed));
                    }
                }
            }
            _ => {
                let object = current_state(tenant, kind, &entry.id, &names);
                match index.get(&entry.id).and_then(|at| items.get_mut(*at)) {
                    Some(Value::Object(existing)) => {
                        let members = existing.remove("members@delta");
                        *existing = object;
                        if let Some(members) = members
                            && !existing.contains_key("@removed")
                        {
                            existing.insert("members@delta".to_owned(), members);
                        }
                    }
                    _ => {
                        index.insert(entry.id.clone(), items.len());
                        items.push(Value::Object(object));
                    }
                }
            }
        }
    }
    if position >= end {
        (items, Phase::Done { position: end })
    } else {
        (items, Phase::Changes { at: position, end })
    }
}

/// The object as it is now: its selected properties, or `@removed` with `changed` while it
/// sits in deleted items and `deleted` once it is gone for good.
fn current_state(tenant: &Tenant, kind: Kind, id: &str, names: &[&str]) -> Map<String, Value> {
    let live = match kind {
        Kind::User => tenant
            .user(id)
            .map(|u| render(names, |p| u.property(p), true)),
        Kind::Group => tenant.group(id).map(|g| group_object(g, names)),
    };
    live.unwrap_or_else(|| {
        let reason = if kind == Kind::User && tenant.is_soft_deleted(id) {
            "changed"
        } else {
            "deleted"
        };
        let mut object = Map::new();
        object.insert("id".to_owned(), Value::String(id.to_owned()));
        object.insert("@removed".to_owned(), json!({ "reason": reason }));
        object
    })
}
