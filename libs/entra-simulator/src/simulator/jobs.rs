//! One object's work in a phase: the requests Entra sends for it, in order, and what the
//! answers change in Entra's cache.
//!
//! A job never stops the cycle. A failed request is recorded as one line of the cycle report
//! and the object keeps its old cache entry, so the next cycle tries it again, as Entra
//! retries in later cycles (`docs/entra-scim.md §8`).

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::transport::{Reply, RequestCounts, SendError, Transport, relative};
use super::{GroupState, UserState};
use crate::requests::{
    self, PatchShape, UserImage, diff_user, error_detail, list_resources, resource_id,
};

/// What every job of a cycle shares: the connection and how requests are shaped.
pub(super) struct JobContext {
    pub(super) transport: Transport,
    pub(super) shape: PatchShape,
    /// Members per group PATCH.
    pub(super) members_per_patch: usize,
}

/// One object's work in a phase.
pub(super) enum Job {
    /// Matching query, then create or adopt-and-update.
    MatchUser {
        object_id: String,
        desired: UserImage,
        previous: Option<UserState>,
    },
    UpdateUser {
        object_id: String,
        state: UserState,
        desired: UserImage,
    },
    DeleteUser {
        object_id: String,
        state: UserState,
    },
    Manager {
        object_id: String,
        label: String,
        target_id: String,
        previous: Option<String>,
        desired: Option<String>,
    },
    Group {
        object_id: String,
        display_name: String,
        previous: Option<GroupState>,
        force_match: bool,
        desired_members: BTreeMap<String, String>,
    },
    DeleteGroup {
        object_id: String,
        state: GroupState,
    },
}

/// How a finished job changes Entra's cache.
pub(super) enum Effect {
    None,
    UserLinked(UserState),
    UserWritten(UserImage),
    UserDeleted,
    ManagerWritten(Option<String>),
    GroupWritten(GroupState),
    GroupDeleted,
}

/// What one job did: its requests, its failures, and what Entra now knows.
pub(super) struct JobResult {
    pub(super) object_id: String,
    pub(super) counts: RequestCounts,
    pub(super) failures: Vec<String>,
    pub(super) effect: Effect,
}

impl JobResult {
    fn new(object_id: String) -> Self {
        Self {
            object_id,
            counts: RequestCounts::default(),
            failures: Vec::new(),
            effect: Effect::None,
        }
    }

    fn fail(&mut self, operation: &str, label: &str, method: &Method, url: &Url, what: &str) {
        let line = format!("{operation} {label}: {method} {} -> {what}", relative(url));
        tracing::warn!(failure = %line, "SCIM operation failed");
        self.failures.push(line);
    }

    /// Sends and classifies: `Some(reply)` only for a 2xx reply. Anything else
    /// is recorded as a failure (nothing is recorded when quarantined).
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &mut self,
        transport: &Transport,
        operation: &str,
        label: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
        kind: &'static str,
    ) -> Option<Reply> {
        match transport
            .send(method.clone(), url.clone(), body, kind, &mut self.counts)
            .await
        {
            Ok(reply) if reply.status.is_success() => Some(reply),
            Ok(reply) => {
                let what = format!("{} {}", reply.status, error_detail(&reply.body));
                self.fail(operation, label, &method, &url, &what);
                None
            }
            Err(SendError::Aborted) => None,
            Err(SendError::Transport(e)) => {
                self.fail(
                    operation,
                    label,
                    &method,
                    &url,
                    &format!("transport error: {e}"),
                );
                None
            }
        }
    }
}

/// Result of a matching query.
enum Match {
    None,
    One(Value),
}

async fn matching_query(
    result: &mut JobResult,
    context: &JobContext,
    operation: &str,
    label: &str,
    url: Url,
) -> Option<Match> {
    let reply = result
        .call(
            &context.transport,
            operation,
            label,
            Method::GET,
            url.clone(),
            None,
            "query",
        )
        .await?;
    let resources = match list_resources(&reply.body) {
        Ok(resources) => resources,
        Err(e) => {
            result.fail(
                operation,
                label,
                &Method::GET,
                &url,
                &format!("{} {e}", reply.status),
            );
            return None;
        }
    };
    let mut resources = resources.into_iter();
    match (resources.next(), resources.next()) {
        (None, _) => Some(Match::None),
        (Some(one), None) => Some(Match::One(one)),
        (Some(_), Some(_)) => {
            result.fail(
                operation,
                label,
                &Method::GET,
                &url,
                "more than one resource matches; Entra cannot decide which to manage",
            );
            None
        }
    }
}

fn missing_url(result: &mut JobResult, operation: &str, label: &str) {
    result.failures.push(format!(
        "{operation} {label}: could not build the request URL"
    ));
}

/// Runs one job to its end; failures are recorded in the result, never returned.
pub(super) async fn execute(context: Arc<JobContext>, job: Job) -> JobResult {
    match job {
        Job::MatchUser {
            object_id,
            desired,
            previous,
        } => match_user(&context, object_id, desired, previous).await,
        Job::UpdateUser {
            object_id,
            state,
            desired,
        } => update_user(&context, object_id, state, desired).await,
        Job::DeleteUser { object_id, state } => {
            let label = state.written.user_name.clone().unwrap_or_default();
            delete(
                &context,
                object_id,
                "Users",
                &state.target_id,
                "delete user",
                &label,
            )
            .await
        }
        Job::Manager {
            object_id,
            label,
            target_id,
            previous,
            desired,
        } => {
            let mut result = JobResult::new(object_id);
            let body = requests::manager_patch_body(
                context.shape,
                previous.as_deref(),
                desired.as_deref(),
            );
            let Some(body) = body else {
                return result;
            };
            let Some(url) = requests::resource_url(&context.transport.base, "Users", &target_id)
            else {
                missing_url(&mut result, "set manager of", &label);
                return result;
            };
            let sent = result
                .call(
                    &context.transport,
                    "set manager of",
                    &label,
                    Method::PATCH,
                    url,
                    Some(&body),
                    "patch",
                )
                .await;
            if sent.is_some() {
                result.effect = Effect::ManagerWritten(desired);
            }
            result
        }
        Job::Group {
            object_id,
            display_name,
            previous,
            force_match,
            desired_members,
        } => {
            sync_group(
                &context,
                object_id,
                display_name,
                previous,
                force_match,
                desired_members,
            )
            .await
        }
        Job::DeleteGroup { object_id, state } => {
            let label = state.display_name.clone().unwrap_or_default();
            delete(
                &context,
                object_id,
                "Groups",
                &state.target_id,
                "delete group",
                &label,
            )
            .await
        }
    }
}

async fn match_user(
    context: &JobContext,
    object_id: String,
    desired: UserImage,
    previous: Option<UserState>,
) -> JobResult {
    let mut result = JobResult::new(object_id);
    let label = desired.user_name.clone().unwrap_or_default();
    let Some(url) = requests::user_query_url(&context.transport.base, &label) else {
        missing_url(&mut result, "match user", &label);
        return result;
    };
    let Some(found) = matching_query(&mut result, context, "match user", &label, url).await else {
        return result;
    };
    match found {
        Match::None => {
            let Some(url) = requests::collection_url(&context.transport.base, "Users") else {
                missing_url(&mut result, "create user", &label);
                return result;
            };
            let body = requests::user_create_body(&desired);
            let Some(reply) = result
                .call(
                    &context.transport,
                    "create user",
                    &label,
                    Method::POST,
                    url.clone(),
                    Some(&body),
                    "create",
                )
                .await
            else {
                return result;
            };
            let id = serde_json::from_slice::<Value>(&reply.body)
                .map_err(|e| format!("response is not JSON: {e}"))
                .and_then(|v| resource_id(&v));
            match id {
                Ok(target_id) => {
                    result.effect = Effect::UserLinked(UserState {
                        target_id,
                        written: desired,
                        manager: None,
                    });
                }
                // Without an id Entra cannot manage the user; its next
                // matching query will find and adopt it.
                Err(e) => result.fail(
                    "create user",
                    &label,
                    &Method::POST,
                    &url,
                    &format!("{} {e}", reply.status),
                ),
            }
        }
        Match::One(resource) => {
            let target_id = match resource_id(&resource) {
                Ok(id) => id,
                Err(e) => {
                    let url = requests::collection_url(&context.transport.base, "Users");
                    result.failures.push(format!(
                        "match user {label}: GET {} -> {e}",
                        url.as_ref().map(relative).unwrap_or_default()
                    ));
                    return result;
                }
            };
            let current = UserImage::from_resource(&resource);
            let mut manager = requests::manager_from_resource(&resource);
            // A restart keeps Entra's link; if the target id is unchanged, the
            // manager Entra wrote is still the one to compare against.
            if manager.is_none()
                && let Some(prev) = &previous
                && prev.target_id == target_id
            {
                manager.clone_from(&prev.manager);
            }
            let changes = diff_user(&current, &desired);
            let mut written = current.clone();
            if let Some(body) = requests::user_patch_body(context.shape, &changes) {
                match requests::resource_url(&context.transport.base, "Users", &target_id) {
                    Some(url) => {
                        let sent = result
                            .call(
                                &context.transport,
                                "update user",
                                &label,
                                Method::PATCH,
                                url,
                                Some(&body),
                                "patch",
                            )
                            .await;
                        if sent.is_some() {
                            written = current.overlay(&desired);
                        }
                    }
                    None => missing_url(&mut result, "update user", &label),
                }
            }
            result.effect = Effect::UserLinked(UserState {
                target_id,
                written,
                manager,
            });
        }
    }
    result
}

async fn update_user(
    context: &JobContext,
    object_id: String,
    state: UserState,
    desired: UserImage,
) -> JobResult {
    let mut result = JobResult::new(object_id);
    let label = desired
        .user_name
        .clone()
        .or_else(|| state.written.user_name.clone())
        .unwrap_or_default();
    let changes = diff_user(&state.written, &desired);
    let Some(body) = requests::user_patch_body(context.shape, &changes) else {
        return result;
    };
    let operation = match desired.active {
        Some(false) if state.written.active != Some(false) => "disable user",
        Some(true) if state.written.active == Some(false) => "enable user",
        _ => "update user",
    };
    let Some(url) = requests::resource_url(&context.transport.base, "Users", &state.target_id)
    else {
        missing_url(&mut result, operation, &label);
        return result;
    };
    if result
        .call(
            &context.transport,
            operation,
            &label,
            Method::PATCH,
            url,
            Some(&body),
            "patch",
        )
        .await
        .is_some()
    {
        result.effect = Effect::UserWritten(state.written.overlay(&desired));
    }
    result
}

async fn delete(
    context: &JobContext,
    object_id: String,
    collection: &str,
    target_id: &str,
    operation: &str,
    label: &str,
) -> JobResult {
    let mut result = JobResult::new(object_id);
    let Some(url) = requests::resource_url(&context.transport.base, collection, target_id) else {
        missing_url(&mut result, operation, label);
        return result;
    };
    match context
        .transport
        .send(
            Method::DELETE,
            url.clone(),
            None,
            "delete",
            &mut result.counts,
        )
        .await
    {
        // Already gone is what a delete wants.
        Ok(reply) if reply.status.is_success() || reply.status == StatusCode::NOT_FOUND => {
            result.effect = if collection == "Users" {
                Effect::UserDeleted
            } else {
                Effect::GroupDeleted
            };
        }
        Ok(reply) => {
            let what = format!("{} {}", reply.status, error_detail(&reply.body));
            result.fail(operation, label, &Method::DELETE, &url, &what);
        }
        Err(SendError::Aborted) => {}
        Err(SendError::Transport(e)) => {
            result.fail(
                operation,
                label,
                &Method::DELETE,
                &url,
                &format!("transport error: {e}"),
            );
        }
    }
    result
}

async fn sync_group(
    context: &JobContext,
    object_id: String,
    display_name: String,
    previous: Option<GroupState>,
    force_match: bool,
    desired_members: BTreeMap<String, String>,
) -> JobResult {
    let mut result = JobResult::new(object_id.clone());
    let label = display_name.as_str();
    let mut state = match previous {
        Some(state) if !force_match => state,
        previous => {
            let Some(url) = requests::group_query_url(&context.transport.base, label) else {
                missing_url(&mut result, "match group", label);
                return result;
            };
            let Some(found) = matching_query(&mut result, context, "match group", label, url).await
            else {
                return result;
            };
            match found {
                Match::None => {
                    let Some(url) = requests::collection_url(&context.transport.base, "Groups")
                    else {
                        missing_url(&mut result, "create group", label);
                        return result;
                    };
                    let body = requests::group_create_body(label, &object_id);
                    let Some(reply) = result
                        .call(
                            &context.transport,
                            "create group",
                            label,
                            Method::POST,
                            url.clone(),
                            Some(&body),
                            "create",
                        )
                        .await
                    else {
                        return result;
                    };
                    let id = serde_json::from_slice::<Value>(&reply.body)
                        .map_err(|e| format!("response is not JSON: {e}"))
                        .and_then(|v| resource_id(&v));
                    match id {
                        Ok(target_id) => GroupState {
                            target_id,
                            display_name: Some(display_name.clone()),
                            external_id: Some(object_id.clone()),
                            members: BTreeMap::new(),
                        },
                        Err(e) => {
                            result.fail(
                                "create group",
                                label,
                                &Method::POST,
                                &url,
                                &format!("{} {e}", reply.status),
                            );
                            return result;
                        }
                    }
                }
                Match::One(resource) => {
                    let target_id = match resource_id(&resource) {
                        Ok(id) => id,
                        Err(e) => {
                            result
                                .failures
                                .push(format!("match group {label}: GET /Groups -> {e}"));
                            return result;
                        }
                    };
                    // The query excludes members, so Entra knows only what it
                    // wrote itself; for a group it did not know it re-adds all
                    // members (adds are idempotent on a compliant server).
                    let members = previous
                        .filter(|p| p.target_id == target_id)
                        .map(|p| p.members)
                        .unwrap_or_default();
                    GroupState {
                        target_id,
                        display_name: resource
                            .get("displayName")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        external_id: resource
                            .get("externalId")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        members,
                    }
                }
            }
        }
    };

    let Some(group_url) =
        requests::resource_url(&context.transport.base, "Groups", &state.target_id)
    else {
        missing_url(&mut result, "update group", label);
        return result;
    };

    let new_name = (state.display_name.as_deref() != Some(label)).then_some(label);
    let new_external =
        (state.external_id.as_deref() != Some(object_id.as_str())).then_some(object_id.as_str());
    if let Some(body) = requests::group_attributes_patch_body(context.shape, new_name, new_external)
    {
        let sent = result
            .call(
                &context.transport,
                "update group",
                label,
                Method::PATCH,
                group_url.clone(),
                Some(&body),
                "patch",
            )
            .await;
        if sent.is_some() {
            state.display_name = Some(display_name.clone());
            state.external_id = Some(object_id.clone());
        }
    }

    let chunk = context.members_per_patch.max(1);
    let to_remove: Vec<(String, String)> = state
        .members
        .iter()
        .filter(|(user, target)| desired_members.get(*user) != Some(*target))
        .map(|(u, t)| (u.clone(), t.clone()))
        .collect();
    for batch in to_remove.chunks(chunk) {
        let ids: Vec<String> = batch.iter().map(|(_, t)| t.clone()).collect();
        let body = requests::members_remove_body(context.shape, &ids);
        let sent = result
            .call(
                &context.transport,
                "remove members from",
                label,
                Method::PATCH,
                group_url.clone(),
                Some(&body),
                "patch",
            )
            .await;
        if sent.is_some() {
            for (user, _) in batch {
                state.members.remove(user);
            }
        }
    }

    let to_add: Vec<(String, String)> = desired_members
        .iter()
        .filter(|(user, target)| state.members.get(*user) != Some(*target))
        .map(|(u, t)| (u.clone(), t.clone()))
        .collect();
    for batch in to_add.chunks(chunk) {
        let ids: Vec<String> = batch.iter().map(|(_, t)| t.clone()).collect();
        let body = requests::members_add_body(context.shape, &ids);
        let sent = result
            .call(
                &context.transport,
                "add members to",
                label,
                Method::PATCH,
                group_url.clone(),
                Some(&body),
                "patch",
            )
            .await;
        if sent.is_some() {
            state.members.extend(batch.iter().cloned());
        }
    }

    result.effect = Effect::GroupWritten(state);
    result
}
