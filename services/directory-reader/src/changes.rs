//! `StreamChanges`: one delta round over users and one over groups (docs/graph.md §3), as typed
//! changes, ending with the cursor for the next round, or with `resync_required` when Graph
//! expired it. The cursor is exactly what the contract documents: base64url without padding of
//! `{"users": <users deltaLink>, "groups": <groups deltaLink>}`; links are checked to point at
//! the tenant's own Graph before they are followed.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dirsync_graph::{
    DeltaStart, GraphClient, GroupChange, Member, MemberKind, Membership, RemovalReason, UserChange,
};
use dirsync_proto::common::v1::ResourceKind;
use dirsync_proto::directory::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::error::{DirectoryError, Result};
use crate::reads::{directory_group, directory_user, resolve_scope};
use crate::snapshot::{EntraGroup, EntraUser, GROUP_SELECT, USER_SELECT};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) users: String,
    pub(crate) groups: String,
}

pub(crate) fn encode(cursor: &Cursor) -> String {
    // Two strings always serialize.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

/// The cursor a client passed, checked to lead back to `graph_root` only.
pub(crate) fn decode(text: &str, graph_root: &str) -> Result<Cursor> {
    let invalid = || {
        DirectoryError::invalid(
            "cursor",
            "cursor is not one this service issued (pass the next_cursor of the previous round, \
             or an empty cursor for a full round)",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| invalid())?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let root = format!("{graph_root}/v1.0/");
    let under = |link: &str, resource: &str| {
        link.strip_prefix(&root)
            .is_some_and(|rest| rest.starts_with(resource))
    };
    if !under(&cursor.users, "users") || !under(&cursor.groups, "groups") {
        return Err(invalid());
    }
    Ok(cursor)
}

fn reason(reason: &RemovalReason) -> pb::RemovalReason {
    match reason {
        RemovalReason::Changed => pb::RemovalReason::Changed,
        RemovalReason::Deleted => pb::RemovalReason::Deleted,
        RemovalReason::Other(_) => pb::RemovalReason::Unspecified,
    }
}

fn kind(kind: &MemberKind) -> Option<ResourceKind> {
    match kind {
        MemberKind::User => Some(ResourceKind::User),
        MemberKind::Group => Some(ResourceKind::Group),
        MemberKind::Other(_) => None,
    }
}

fn message(change: pb::stream_changes_response::Change) -> pb::StreamChangesResponse {
    pb::StreamChangesResponse {
        change: Some(change),
    }
}

/// The scope as ids: the scoped groups with the groups nested in them, and their users.
struct Scope {
    groups: HashSet<String>,
    users: HashSet<String>,
}

async fn scope(client: &GraphClient, entries: &[String]) -> Result<Option<Scope>> {
    if entries.is_empty() {
        return Ok(None);
    }
    let graph = |e: dirsync_graph::GraphError| DirectoryError::graph(&e);
    let groups = client.groups(&["id", "displayName"]).await.map_err(graph)?;
    let ids: Vec<String> = resolve_scope(&groups, entries)?
        .into_iter()
        .map(|g| g.id.clone())
        .collect();
    let members = client
        .members_of_groups(&ids, Membership::Transitive, &["id"])
        .await
        .map_err(graph)?;
    let mut scope = Scope {
        groups: ids.into_iter().collect(),
        users: HashSet::new(),
    };
    for member in members.members.values().flatten() {
        match member.kind {
            MemberKind::User => {
                scope.users.insert(member.id.clone());
            }
            MemberKind::Group => {
                scope.groups.insert(member.id.clone());
            }
            MemberKind::Other(_) => {}
        }
    }
    Ok(Some(scope))
}

/// The messages of one round from `cursor` (empty: a full round).
pub(crate) async fn round(
    client: &GraphClient,
    graph_root: &str,
    cursor: &str,
    group_scope: &[String],
) -> Result<Vec<pb::StreamChangesResponse>> {
    use pb::stream_changes_response::Change;
    let (users_start, groups_start) = if cursor.trim().is_empty() {
        (DeltaStart::Full, DeltaStart::Full)
    } else {
        let cursor = decode(cursor, graph_root)?;
        (
            DeltaStart::Resume(cursor.users),
            DeltaStart::Resume(cursor.groups),
        )
    };
    let rounds = tokio::try_join!(
        client.users_delta(users_start, USER_SELECT),
        client.groups_delta(groups_start, GROUP_SELECT)
    );
    let (users, groups) = match rounds {
        Ok(rounds) => rounds,
        Err(error) if error.needs_resync() => {
            return Ok(vec![message(Change::ResyncRequired(true))]);
        }
        Err(error) => return Err(DirectoryError::graph(&error)),
    };
    let scope = scope(client, group_scope).await?;
    let user_in = |id: &str| scope.as_ref().is_none_or(|s| s.users.contains(id));
    let group_in = |id: &str| scope.as_ref().is_none_or(|s| s.groups.contains(id));

    let mut out = Vec::new();
    let mut membership = Vec::new();
    // Users removed from a scoped group in this round: reported even when their user object
    // is gone (a hard delete also ends memberships), and as out of scope when they left.
    let mut left_scope: Vec<String> = Vec::new();
    let mut removed_users: HashSet<String> = HashSet::new();
    for change in &users.changes {
        if let UserChange::Removed { id, .. } = change {
            removed_users.insert(id.clone());
        }
    }
    let mut touched_users: HashSet<String> = HashSet::new();
    for change in &groups.changes {
        match change {
            GroupChange::Upsert(delta) => {
                if !group_in(&delta.group.id) {
                    continue;
                }
                out.push(message(Change::GroupUpserted(directory_group(
                    &delta.group.id,
                    &EntraGroup::from_graph(&delta.group),
                ))));
                let mut add = |member: &Member, removed: bool| {
                    if let Some(member_kind) = kind(&member.kind) {
                        membership.push(message(Change::Membership(pb::MembershipChange {
                            group_id: delta.group.id.clone(),
                            member_id: member.id.clone(),
                            member_kind: member_kind as i32,
                            removed,
                        })));
                    }
                };
                for member in &delta.members_added {
                    add(member, false);
                }
                for member in &delta.members_removed {
                    add(member, true);
                }
                for member in delta.members_removed.iter().chain(&delta.members_added) {
                    if member.kind == MemberKind::User {
                        touched_users.insert(member.id.clone());
                    }
                }
                for member in &delta.members_removed {
                    if member.kind == MemberKind::User
                        && scope.is_some()
                        && !user_in(&member.id)
                        && !removed_users.contains(&member.id)
                    {
                        left_scope.push(member.id.clone());
                    }
                }
            }
            GroupChange::Removed { id, reason: why } => {
                if group_in(id) {
                    out.push(message(Change::GroupRemoved(pb::Removal {
                        id: id.clone(),
                        reason: reason(why) as i32,
                    })));
                }
            }
        }
    }
    let mut user_messages = Vec::new();
    for change in &users.changes {
        match change {
            UserChange::Upsert(user) if user_in(&user.id) => {
                user_messages.push(message(Change::UserUpserted(directory_user(
                    &user.id,
                    &EntraUser::from_graph(user),
                ))));
            }
            UserChange::Removed { id, reason: why }
                if scope.is_none() || touched_users.contains(id) =>
            {
                user_messages.push(message(Change::UserRemoved(pb::Removal {
                    id: id.clone(),
                    reason: reason(why) as i32,
                })));
            }
            _ => {}
        }
    }
    left_scope.sort();
    left_scope.dedup();
    for id in left_scope {
        user_messages.push(message(Change::UserRemoved(pb::Removal {
            id,
            reason: pb::RemovalReason::OutOfScope as i32,
        })));
    }
    // Users first, then groups, then memberships: a consumer meets each member before it
    // joins a group.
    let mut all = user_messages;
    all.append(&mut out);
    all.append(&mut membership);
    all.push(message(Change::NextCursor(encode(&Cursor {
        users: users.delta_link,
        groups: groups.delta_link,
    }))));
    Ok(all)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_links_are_refused() {
        let cursor = Cursor {
            users: "http://g/v1.0/users/delta?$deltatoken=1".to_owned(),
            groups: "http://g/v1.0/groups/delta?$deltatoken=2".to_owned(),
        };
        let text = encode(&cursor);
        assert!(!text.contains('='));
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&text).unwrap()).unwrap();
        assert_eq!(json["users"], cursor.users.as_str());
        assert_eq!(decode(&text, "http://g").unwrap(), cursor);
        assert!(decode(&text, "http://elsewhere").is_err());
        assert!(decode("not base64!", "http://g").is_err());
    }
}
