//! Reads of Entra served straight from Graph: every user (or the transitive user members of a
//! group scope), every group (or the scope's), and one group's members, direct or transitive,
//! in pages. Streams go through a bounded channel and end when the server shuts down.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dirsync_graph::{GraphClient, Group, Member, MemberKind, Membership, User};
use dirsync_proto::common::v1::{MembershipDepth, ResourceKind};
use dirsync_proto::directory::v1 as pb;
use dirsync_proto::errors::{ApiError, ErrorReason};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{DirectoryError, Result, quoted};
use crate::snapshot::{EntraGroup, EntraUser, GROUP_SELECT, USER_SELECT};

/// Messages a stream buffers ahead of a slow client.
const STREAM_BUFFER: usize = 64;
/// Members per page when the request names no size: Graph's largest page.
const DEFAULT_MEMBER_PAGE: usize = 999;
/// A member list read for paging is reused this long.
const MEMBER_CACHE_TTL: Duration = Duration::from_secs(120);
/// Member lists kept for paging at once.
const MEMBER_CACHE_ENTRIES: usize = 16;

pub(crate) type Sender<T> = mpsc::Sender<Result<T, tonic::Status>>;
pub(crate) type Stream<T> = ReceiverStream<Result<T, tonic::Status>>;

/// Streams `items` to the client from a task of its own, ending early when the server drains
/// or the client hangs up.
pub(crate) fn stream<T: Send + 'static>(
    items: Vec<T>,
    draining: dirsync_runtime::shutdown::Draining,
) -> Stream<T> {
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(send_all(sender, items, draining));
    ReceiverStream::new(receiver)
}

async fn send_all<T>(
    sender: Sender<T>,
    items: Vec<T>,
    draining: dirsync_runtime::shutdown::Draining,
) {
    let draining = draining.started();
    tokio::pin!(draining);
    for item in items {
        tokio::select! {
            () = &mut draining => {
                let _ = sender
                    .send(Err(tonic::Status::unavailable("the server is shutting down")))
                    .await;
                return;
            }
            sent = sender.send(Ok(item)) => {
                if sent.is_err() {
                    return;
                }
            }
        }
    }
}

pub(crate) fn directory_user(id: &str, user: &EntraUser) -> pb::DirectoryUser {
    pb::DirectoryUser {
        id: id.to_owned(),
        user_principal_name: user.upn.clone(),
        mail: user.mail.clone(),
        mail_nickname: user.mail_nickname.clone(),
        display_name: user.display_name.clone(),
        given_name: user.given_name.clone(),
        surname: user.surname.clone(),
        department: user.department.clone(),
        job_title: user.job_title.clone(),
        employee_id: user.employee_id.clone(),
        account_enabled: user.account_enabled,
        manager_id: String::new(),
    }
}

pub(crate) fn directory_group(id: &str, group: &EntraGroup) -> pb::DirectoryGroup {
    pb::DirectoryGroup {
        id: id.to_owned(),
        display_name: group.display_name.clone(),
        mail_nickname: group.mail_nickname.clone(),
        description: group.description.clone(),
        security_enabled: group.security_enabled,
        mail_enabled: group.mail_enabled,
    }
}

/// The groups a scope names, among `groups`: by object id, else every group with that
/// display name (case-insensitively). An entry that names none is ENTRA_NOT_FOUND.
pub(crate) fn resolve_scope<'a>(groups: &'a [Group], scope: &[String]) -> Result<Vec<&'a Group>> {
    let by_id: HashMap<&str, &Group> = groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let mut by_name: HashMap<String, Vec<&Group>> = HashMap::new();
    for group in groups {
        by_name
            .entry(
                group
                    .display_name
                    .clone()
                    .unwrap_or_default()
                    .to_lowercase(),
            )
            .or_default()
            .push(group);
    }
    let mut found: Vec<&Group> = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in scope {
        let matches = match by_id.get(entry.as_str()) {
            Some(group) => vec![*group],
            None => by_name
                .get(&entry.to_lowercase())
                .cloned()
                .unwrap_or_default(),
        };
        if matches.is_empty() {
            return Err(entra_group_not_found(entry));
        }
        for group in matches {
            if seen.insert(group.id.as_str()) {
                found.push(group);
            }
        }
    }
    Ok(found)
}

pub(crate) fn entra_group_not_found(entry: &str) -> DirectoryError {
    DirectoryError::Refused(Box::new(
        ApiError::new(
            ErrorReason::EntraNotFound,
            format!(
                "no Entra group has the object id or display name {}",
                quoted(entry)
            ),
        )
        .resource("group", entry),
    ))
}

/// A user member's properties as a user.
fn member_user(member: &Member) -> Option<User> {
    let mut object = member.properties.clone();
    object.insert(
        "id".to_owned(),
        serde_json::Value::String(member.id.clone()),
    );
    serde_json::from_value(serde_json::Value::Object(object)).ok()
}

/// Every user, or the transitive user members of the scope's groups.
pub(crate) async fn users(
    client: &GraphClient,
    scope: &[String],
) -> Result<Vec<pb::DirectoryUser>> {
    let graph = |e: dirsync_graph::GraphError| DirectoryError::graph(&e);
    if scope.is_empty() {
        let users = client.users(USER_SELECT).await.map_err(graph)?;
        return Ok(users
            .iter()
            .map(|u| directory_user(&u.id, &EntraUser::from_graph(u)))
            .collect());
    }
    let groups = client.groups(GROUP_SELECT).await.map_err(graph)?;
    let ids: Vec<String> = resolve_scope(&groups, scope)?
        .into_iter()
        .map(|g| g.id.clone())
        .collect();
    let members = client
        .members_of_groups(&ids, Membership::Transitive, USER_SELECT)
        .await
        .map_err(graph)?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for member in members.members.values().flatten() {
        if member.kind == MemberKind::User
            && seen.insert(member.id.clone())
            && let Some(user) = member_user(member)
        {
            out.push(directory_user(&user.id, &EntraUser::from_graph(&user)));
        }
    }
    Ok(out)
}

/// Every group, or the scope's.
pub(crate) async fn groups(
    client: &GraphClient,
    scope: &[String],
) -> Result<Vec<pb::DirectoryGroup>> {
    let groups = client
        .groups(GROUP_SELECT)
        .await
        .map_err(|e| DirectoryError::graph(&e))?;
    let chosen: Vec<&Group> = if scope.is_empty() {
        groups.iter().collect()
    } else {
        resolve_scope(&groups, scope)?
    };
    Ok(chosen
        .into_iter()
        .map(|g| directory_group(&g.id, &EntraGroup::from_graph(g)))
        .collect())
}

/// Object ids look like GUIDs; anything else names a group by display name.
fn looks_like_id(value: &str) -> bool {
    value.len() == 36 && value.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

type CacheKey = (String, String, bool);
type Members = Arc<Vec<pb::DirectoryMember>>;

/// Member lists read for paging, reused for a short while so that each page does not read the
/// whole list from Graph again. Bounded in entries.
#[derive(Debug, Default)]
pub(crate) struct MemberCache {
    entries: Mutex<VecDeque<(CacheKey, Instant, Members)>>,
}

impl MemberCache {
    fn get(&self, key: &CacheKey) -> Option<Members> {
        let entries = self.entries.lock().ok()?;
        entries
            .iter()
            .find(|(k, at, _)| k == key && at.elapsed() < MEMBER_CACHE_TTL)
            .map(|(_, _, members)| members.clone())
    }

    fn put(&self, key: CacheKey, members: Members) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(k, at, _)| *k != key && at.elapsed() < MEMBER_CACHE_TTL);
            if entries.len() >= MEMBER_CACHE_ENTRIES {
                entries.pop_front();
            }
            entries.push_back((key, Instant::now(), members));
        }
    }
}

/// One page of a group's members. The page token is the offset into the member list (sorted
/// by object id); the list is read on the first page and reused for the next ones for a short
/// while, after which it is read again.
pub(crate) async fn group_members(
    client: &GraphClient,
    cache: &MemberCache,
    tenant_id: &str,
    request: &pb::ListGroupMembersRequest,
) -> Result<pb::ListGroupMembersResponse> {
    let group = request.group.trim();
    if group.is_empty() {
        return Err(DirectoryError::invalid(
            "group",
            "group is required: its object id or display name",
        ));
    }
    let size = match usize::try_from(request.page_size) {
        Ok(0) => DEFAULT_MEMBER_PAGE,
        Ok(size) => size.min(DEFAULT_MEMBER_PAGE),
        Err(_) => {
            return Err(DirectoryError::invalid(
                "page_size",
                "page_size must not be negative",
            ));
        }
    };
    let offset = if request.page_token.is_empty() {
        0
    } else {
        request.page_token.parse::<usize>().map_err(|_| {
            DirectoryError::invalid("page_token", "page_token is not one this server issued")
        })?
    };
    let transitive = MembershipDepth::try_from(request.depth) == Ok(MembershipDepth::Transitive);
    let depth = if transitive {
        Membership::Transitive
    } else {
        Membership::Direct
    };
    let graph = |e: dirsync_graph::GraphError| match e {
        dirsync_graph::GraphError::NotFound { .. } => entra_group_not_found(group),
        other => DirectoryError::graph(&other),
    };
    let group_id = if looks_like_id(group) {
        group.to_owned()
    } else {
        let groups = client.groups(&["id", "displayName"]).await.map_err(graph)?;
        resolve_scope(&groups, &[group.to_owned()])?
            .first()
            .map(|g| g.id.clone())
            .ok_or_else(|| entra_group_not_found(group))?
    };
    let key = (tenant_id.to_owned(), group_id.clone(), transitive);
    let cached = if offset > 0 { cache.get(&key) } else { None };
    let members = match cached {
        Some(members) => members,
        None => {
            let mut members: Vec<pb::DirectoryMember> = client
                .group_members(&group_id, depth, &["id", "displayName"])
                .await
                .map_err(graph)?
                .into_iter()
                .filter_map(|m| {
                    let kind = match m.kind {
                        MemberKind::User => ResourceKind::User,
                        MemberKind::Group => ResourceKind::Group,
                        MemberKind::Other(_) => return None,
                    };
                    Some(pb::DirectoryMember {
                        display_name: m
                            .properties
                            .get("displayName")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        id: m.id,
                        kind: kind as i32,
                    })
                })
                .collect();
            members.sort_by(|a, b| a.id.cmp(&b.id));
            let members = Arc::new(members);
            cache.put(key, members.clone());
            members
        }
    };
    let page: Vec<pb::DirectoryMember> = members.iter().skip(offset).take(size).cloned().collect();
    let next = offset + page.len();
    Ok(pb::ListGroupMembersResponse {
        next_page_token: if next < members.len() {
            next.to_string()
        } else {
            String::new()
        },
        members: page,
    })
}
