//! The provisioning engine: Entra's cycles against a SCIM 2.0 server.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::directory::Directory;
use crate::error::SimulatorError;
use crate::requests::{
    self, PatchShape, SCIM_CONTENT_TYPE, UserImage, diff_user, error_detail, list_resources,
    resource_id,
};

/// Longest `Retry-After` the simulator honours; a misbehaving server must not
/// be able to stall a run indefinitely.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Longest single pacing wait, guarding against absurdly low rates.
const MAX_PACING_WAIT: Duration = Duration::from_secs(3600);
/// Replies Entra reads are small (one resource or one page); a larger body
/// means a broken server, and must not exhaust memory.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How the simulated provisioning job talks to the SCIM server.
#[derive(Clone)]
pub struct SimulatorConfig {
    /// SCIM base URL, e.g. `http://127.0.0.1:8080/scim/v2`. A query string
    /// (such as Entra's `?aadOptscim062020` tenant-URL flag) is dropped; the
    /// PATCH dialect is chosen by `patch_shape`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer <token>` on every request.
    pub token: String,
    pub patch_shape: PatchShape,
    /// `None` = as fast as the server allows. Entra's gallery bar is 25/s per
    /// tenant; custom apps get no client-side limit at all.
    pub requests_per_second: Option<f64>,
    /// Objects processed in parallel; operations on one object stay in order.
    pub concurrency: usize,
    /// Whole-request timeout (connect, send, response body). Entra gives up
    /// after 60 s.
    pub request_timeout: Duration,
    /// Members per group PATCH (one operation each).
    pub members_per_patch: usize,
}

impl SimulatorConfig {
    /// Defaults: no flag, unpaced, 8 objects in parallel, 60 s timeout,
    /// 10 members per PATCH.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            token: token.into(),
            patch_shape: PatchShape::Default,
            requests_per_second: None,
            concurrency: 8,
            request_timeout: Duration::from_secs(60),
            members_per_patch: 10,
        }
    }
}

impl fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .field("patch_shape", &self.patch_shape)
            .field("requests_per_second", &self.requests_per_second)
            .field("concurrency", &self.concurrency)
            .field("request_timeout", &self.request_timeout)
            .field("members_per_patch", &self.members_per_patch)
            .finish()
    }
}

/// Progress within a cycle phase (`"users"`, `"managers"`, `"groups"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
}

/// What a cycle did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CycleReport {
    /// HTTP requests sent, including those that failed.
    pub requests: u64,
    /// Requests per kind: `query`, `create`, `patch`, `delete`.
    pub by_kind: BTreeMap<String, u64>,
    /// One line per failed operation: operation, object, request, status and
    /// the SCIM `detail`. The object stays dirty and is retried next cycle.
    pub failures: Vec<String>,
    pub elapsed: Duration,
}

impl CycleReport {
    fn merge(&mut self, stats: Stats, failures: Vec<String>) {
        for (kind, n) in stats.by_kind {
            self.requests += n;
            *self.by_kind.entry(kind.to_owned()).or_insert(0) += n;
        }
        self.failures.extend(failures);
    }
}

/// Per-job request counts.
#[derive(Debug, Default)]
struct Stats {
    by_kind: BTreeMap<&'static str, u64>,
}

/// Entra's cached knowledge of one provisioned user.
#[derive(Debug, Clone)]
struct UserState {
    target_id: String,
    /// What the target holds as far as Entra knows (what it last wrote, or
    /// what the matching query returned).
    written: UserImage,
    /// Target id of the manager as last written or seen.
    manager: Option<String>,
}

/// Entra's cached knowledge of one provisioned group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupState {
    target_id: String,
    display_name: Option<String>,
    external_id: Option<String>,
    /// Members written: user object id → user target id.
    members: BTreeMap<String, String>,
}

/// A simulated Entra provisioning job.
///
/// Holds Entra's cache: source object id → target id, and what it last wrote
/// per object, from which incremental cycles decide what to send.
pub struct Simulator {
    shared: Arc<Shared>,
    concurrency: usize,
    users: BTreeMap<String, UserState>,
    groups: BTreeMap<String, GroupState>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("base", &self.shared.base.as_str())
            .field("shape", &self.shared.shape)
            .field("users", &self.users.len())
            .field("groups", &self.groups.len())
            .finish()
    }
}

/// State shared by the tasks of a cycle.
struct Shared {
    client: reqwest::Client,
    base: Url,
    auth: HeaderValue,
    shape: PatchShape,
    members_per_patch: usize,
    pacer: Option<Pacer>,
    /// Set from `Retry-After`; no request starts before it.
    paused_until: Mutex<Option<Instant>>,
    /// Set on 401; every task stops at its next request.
    rejected: Mutex<Option<(u16, String)>>,
}

/// Token bucket with a capacity of one request, i.e. evenly spaced requests.
struct Pacer {
    rate: f64,
    state: tokio::sync::Mutex<PacerState>,
}

struct PacerState {
    tokens: f64,
    last: Instant,
}

impl Pacer {
    async fn acquire(&self) {
        let wait = {
            let mut state = self.state.lock().await;
            let now = Instant::now();
            let refill = now.duration_since(state.last).as_secs_f64() * self.rate;
            state.tokens = (state.tokens + refill).min(1.0);
            state.last = now;
            // Reserve the token even when it is not there yet, so concurrent
            // callers queue behind each other instead of all waking together.
            state.tokens -= 1.0;
            if state.tokens < 0.0 {
                Duration::try_from_secs_f64(-state.tokens / self.rate)
                    .unwrap_or(MAX_PACING_WAIT)
                    .min(MAX_PACING_WAIT)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

enum SendError {
    /// The job was quarantined (401) while this task waited.
    Aborted,
    Transport(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Path and query, for failure messages.
fn relative(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

fn describe_transport(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

fn parse_retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    let secs: u64 = value?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

impl Shared {
    fn rejected(&self) -> bool {
        lock(&self.rejected).is_some()
    }

    async fn wait_out_pause(&self) {
        let until = *lock(&self.paused_until);
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                tokio::time::sleep(until - now).await;
            }
        }
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        kind: &'static str,
        stats: &mut Stats,
    ) -> Result<Reply, SendError> {
        if self.rejected() {
            return Err(SendError::Aborted);
        }
        self.wait_out_pause().await;
        if let Some(pacer) = &self.pacer {
            pacer.acquire().await;
        }
        if self.rejected() {
            return Err(SendError::Aborted);
        }
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, SCIM_CONTENT_TYPE);
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| SendError::Transport(format!("could not encode body: {e}")))?;
            request = request.header(CONTENT_TYPE, SCIM_CONTENT_TYPE).body(bytes);
        }
        *stats.by_kind.entry(kind).or_insert(0) += 1;
        tracing::debug!(%method, url = %url, "SCIM request");
        let response = request
            .send()
            .await
            .map_err(|e| SendError::Transport(describe_transport(&e)))?;
        let status = response.status();
        let retry_after = parse_retry_after(response.headers().get(RETRY_AFTER));
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| SendError::Transport(describe_transport(&e)))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(SendError::Transport(format!(
                    "{status} response larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if (status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE)
            && let Some(delay) = retry_after
        {
            // Entra (since ~2025) pauses the job for Retry-After; the failed
            // request itself waits for the next cycle.
            let until = Instant::now() + delay;
            let mut paused = lock(&self.paused_until);
            if paused.is_none_or(|p| p < until) {
                *paused = Some(until);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            let mut rejected = lock(&self.rejected);
            if rejected.is_none() {
                *rejected = Some((status.as_u16(), error_detail(&body)));
            }
        }
        Ok(Reply { status, body })
    }
}

/// One object's work in a phase.
enum Job {
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
enum Effect {
    None,
    UserLinked(UserState),
    UserWritten(UserImage),
    UserDeleted,
    ManagerWritten(Option<String>),
    GroupWritten(GroupState),
    GroupDeleted,
}

struct JobResult {
    object_id: String,
    stats: Stats,
    failures: Vec<String>,
    effect: Effect,
}

impl JobResult {
    fn new(object_id: String) -> Self {
        Self {
            object_id,
            stats: Stats::default(),
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
        shared: &Shared,
        operation: &str,
        label: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
        kind: &'static str,
    ) -> Option<Reply> {
        match shared
            .send(method.clone(), url.clone(), body, kind, &mut self.stats)
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
    shared: &Shared,
    operation: &str,
    label: &str,
    url: Url,
) -> Option<Match> {
    let reply = result
        .call(
            shared,
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

async fn execute(shared: Arc<Shared>, job: Job) -> JobResult {
    match job {
        Job::MatchUser {
            object_id,
            desired,
            previous,
        } => match_user(&shared, object_id, desired, previous).await,
        Job::UpdateUser {
            object_id,
            state,
            desired,
        } => update_user(&shared, object_id, state, desired).await,
        Job::DeleteUser { object_id, state } => {
            let label = state.written.user_name.clone().unwrap_or_default();
            delete(
                &shared,
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
            let body =
                requests::manager_patch_body(shared.shape, previous.as_deref(), desired.as_deref());
            let Some(body) = body else {
                return result;
            };
            let Some(url) = requests::resource_url(&shared.base, "Users", &target_id) else {
                missing_url(&mut result, "set manager of", &label);
                return result;
            };
            let sent = result
                .call(
                    &shared,
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
                &shared,
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
                &shared,
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
    shared: &Shared,
    object_id: String,
    desired: UserImage,
    previous: Option<UserState>,
) -> JobResult {
    let mut result = JobResult::new(object_id);
    let label = desired.user_name.clone().unwrap_or_default();
    let Some(url) = requests::user_query_url(&shared.base, &label) else {
        missing_url(&mut result, "match user", &label);
        return result;
    };
    let Some(found) = matching_query(&mut result, shared, "match user", &label, url).await else {
        return result;
    };
    match found {
        Match::None => {
            let Some(url) = requests::collection_url(&shared.base, "Users") else {
                missing_url(&mut result, "create user", &label);
                return result;
            };
            let body = requests::user_create_body(&desired);
            let Some(reply) = result
                .call(
                    shared,
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
                    let url = requests::collection_url(&shared.base, "Users");
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
            if let Some(body) = requests::user_patch_body(shared.shape, &changes) {
                match requests::resource_url(&shared.base, "Users", &target_id) {
                    Some(url) => {
                        let sent = result
                            .call(
                                shared,
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
    shared: &Shared,
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
    let Some(body) = requests::user_patch_body(shared.shape, &changes) else {
        return result;
    };
    let operation = match desired.active {
        Some(false) if state.written.active != Some(false) => "disable user",
        Some(true) if state.written.active == Some(false) => "enable user",
        _ => "update user",
    };
    let Some(url) = requests::resource_url(&shared.base, "Users", &state.target_id) else {
        missing_url(&mut result, operation, &label);
        return result;
    };
    if result
        .call(
            shared,
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
    shared: &Shared,
    object_id: String,
    collection: &str,
    target_id: &str,
    operation: &str,
    label: &str,
) -> JobResult {
    let mut result = JobResult::new(object_id);
    let Some(url) = requests::resource_url(&shared.base, collection, target_id) else {
        missing_url(&mut result, operation, label);
        return result;
    };
    match shared
        .send(
            Method::DELETE,
            url.clone(),
            None,
            "delete",
            &mut result.stats,
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
    shared: &Shared,
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
            let Some(url) = requests::group_query_url(&shared.base, label) else {
                missing_url(&mut result, "match group", label);
                return result;
            };
            let Some(found) = matching_query(&mut result, shared, "match group", label, url).await
            else {
                return result;
            };
            match found {
                Match::None => {
                    let Some(url) = requests::collection_url(&shared.base, "Groups") else {
                        missing_url(&mut result, "create group", label);
                        return result;
                    };
                    let body = requests::group_create_body(label, &object_id);
                    let Some(reply) = result
                        .call(
                            shared,
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

    let Some(group_url) = requests::resource_url(&shared.base, "Groups", &state.target_id) else {
        missing_url(&mut result, "update group", label);
        return result;
    };

    let new_name = (state.display_name.as_deref() != Some(label)).then_some(label);
    let new_external =
        (state.external_id.as_deref() != Some(object_id.as_str())).then_some(object_id.as_str());
    if let Some(body) = requests::group_attributes_patch_body(shared.shape, new_name, new_external)
    {
        let sent = result
            .call(
                shared,
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

    let chunk = shared.members_per_patch.max(1);
    let to_remove: Vec<(String, String)> = state
        .members
        .iter()
        .filter(|(user, target)| desired_members.get(*user) != Some(*target))
        .map(|(u, t)| (u.clone(), t.clone()))
        .collect();
    for batch in to_remove.chunks(chunk) {
        let ids: Vec<String> = batch.iter().map(|(_, t)| t.clone()).collect();
        let body = requests::members_remove_body(shared.shape, &ids);
        let sent = result
            .call(
                shared,
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
        let body = requests::members_add_body(shared.shape, &ids);
        let sent = result
            .call(
                shared,
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

impl Simulator {
    /// Validates the configuration and builds the HTTP client. No request is
    /// sent until a cycle runs.
    pub fn new(config: SimulatorConfig) -> Result<Self, SimulatorError> {
        let mut base =
            Url::parse(config.base_url.trim()).map_err(|e| SimulatorError::InvalidBaseUrl {
                url: config.base_url.clone(),
                reason: e.to_string(),
            })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(SimulatorError::InvalidBaseUrl {
                url: config.base_url.clone(),
                reason: "must be an http or https URL".to_owned(),
            });
        }
        base.set_query(None);
        base.set_fragment(None);
        if config.concurrency == 0 {
            return Err(SimulatorError::InvalidConfig(
                "concurrency must be at least 1".into(),
            ));
        }
        if config.members_per_patch == 0 {
            return Err(SimulatorError::InvalidConfig(
                "members_per_patch must be at least 1".into(),
            ));
        }
        if config.request_timeout.is_zero() {
            return Err(SimulatorError::InvalidConfig(
                "request_timeout must be positive".into(),
            ));
        }
        let pacer = match config.requests_per_second {
            None => None,
            Some(rate) if rate.is_finite() && rate > 0.0 => Some(Pacer {
                rate,
                state: tokio::sync::Mutex::new(PacerState {
                    tokens: 1.0,
                    last: Instant::now(),
                }),
            }),
            Some(rate) => {
                return Err(SimulatorError::InvalidConfig(format!(
                    "requests_per_second must be a positive number, got {rate}"
                )));
            }
        };
        if config.token.is_empty() {
            return Err(SimulatorError::InvalidConfig(
                "token must not be empty".into(),
            ));
        }
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", config.token)).map_err(|_| {
                SimulatorError::InvalidConfig("token is not a valid HTTP header value".into())
            })?;
        auth.set_sensitive(true);
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(config.concurrency)
            .user_agent(concat!(
                "dirsync-entra-simulator/",
                env!("CARGO_PKG_VERSION")
            ))
            // A redirect is a failed operation to Entra, and following one
            // could carry the bearer token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(SimulatorError::Client)?;
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                base,
                auth,
                shape: config.patch_shape,
                members_per_patch: config.members_per_patch,
                pacer,
                paused_until: Mutex::new(None),
                rejected: Mutex::new(None),
            }),
            concurrency: config.concurrency,
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
        })
    }

    /// The target id Entra cached for a user or group object id.
    pub fn target_id(&self, object_id: &str) -> Option<&str> {
        self.users
            .get(object_id)
            .map(|s| s.target_id.as_str())
            .or_else(|| self.groups.get(object_id).map(|s| s.target_id.as_str()))
    }

    /// Initial cycle: every enabled user is matched by `userName` and created
    /// or adopted (PATCHing differences); then managers in a second round;
    /// then groups are matched by `displayName`, created empty, and filled by
    /// member PATCHes. Running it again behaves like Entra's "Restart
    /// provisioning": links are kept, but everything is matched again.
    pub async fn initial_cycle(
        &mut self,
        directory: &Directory,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<CycleReport, SimulatorError> {
        self.cycle(directory, true, progress).await
    }

    /// Incremental cycle: sends only what differs from what was last written:
    /// attribute PATCHes, disable/enable, DELETE of hard-deleted users, new
    /// users (matched and created as in the initial cycle), manager changes,
    /// membership adds and removes. Objects that failed before are retried.
    pub async fn incremental_cycle(
        &mut self,
        directory: &Directory,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<CycleReport, SimulatorError> {
        self.cycle(directory, false, progress).await
    }

    async fn cycle(
        &mut self,
        directory: &Directory,
        initial: bool,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<CycleReport, SimulatorError> {
        let started = Instant::now();
        let mut report = CycleReport::default();
        let jobs = self.plan_users(directory, initial);
        self.run_phase("users", jobs, &mut report, progress).await?;
        let jobs = self.plan_managers(directory);
        self.run_phase("managers", jobs, &mut report, progress)
            .await?;
        let jobs = self.plan_groups(directory, initial);
        self.run_phase("groups", jobs, &mut report, progress)
            .await?;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    fn plan_users(&self, directory: &Directory, initial: bool) -> Vec<Job> {
        let mut jobs = Vec::new();
        for user in &directory.users {
            let desired = UserImage::from_directory(user);
            let cached = self.users.get(&user.object_id);
            // Entra never creates a disabled user, but keeps updating (and
            // disabling) one it already provisioned.
            if user.account_enabled && (initial || cached.is_none()) {
                jobs.push(Job::MatchUser {
                    object_id: user.object_id.clone(),
                    desired,
                    previous: cached.cloned(),
                });
            } else if let Some(state) = cached
                && !diff_user(&state.written, &desired).is_empty()
            {
                jobs.push(Job::UpdateUser {
                    object_id: user.object_id.clone(),
                    state: state.clone(),
                    desired,
                });
            }
        }
        let present: HashSet<&str> = directory
            .users
            .iter()
            .map(|u| u.object_id.as_str())
            .collect();
        for (object_id, state) in &self.users {
            if !present.contains(object_id.as_str()) {
                jobs.push(Job::DeleteUser {
                    object_id: object_id.clone(),
                    state: state.clone(),
                });
            }
        }
        jobs
    }

    fn plan_managers(&self, directory: &Directory) -> Vec<Job> {
        let mut jobs = Vec::new();
        for user in &directory.users {
            let Some(state) = self.users.get(&user.object_id) else {
                continue;
            };
            // A manager is linked only when it is provisioned itself.
            let desired = user
                .manager
                .as_ref()
                .and_then(|m| self.users.get(m))
                .map(|m| m.target_id.clone());
            if desired != state.manager {
                jobs.push(Job::Manager {
                    object_id: user.object_id.clone(),
                    label: user.user_principal_name.clone(),
                    target_id: state.target_id.clone(),
                    previous: state.manager.clone(),
                    desired,
                });
            }
        }
        jobs
    }

    fn plan_groups(&self, directory: &Directory, initial: bool) -> Vec<Job> {
        let mut jobs = Vec::new();
        for group in &directory.groups {
            // Members not provisioned (yet) are left out; Entra counts them as
            // reference failures and adds them once the user exists.
            let desired_members: BTreeMap<String, String> = group
                .members
                .iter()
                .filter_map(|m| self.users.get(m).map(|s| (m.clone(), s.target_id.clone())))
                .collect();
            let cached = self.groups.get(&group.object_id);
            let force_match = initial || cached.is_none();
            let changed = cached.is_none_or(|state| {
                state.display_name.as_deref() != Some(group.display_name.as_str())
                    || state.external_id.as_deref() != Some(group.object_id.as_str())
                    || state.members != desired_members
            });
            if force_match || changed {
                jobs.push(Job::Group {
                    object_id: group.object_id.clone(),
                    display_name: group.display_name.clone(),
                    previous: cached.cloned(),
                    force_match,
                    desired_members,
                });
            }
        }
        let present: HashSet<&str> = directory
            .groups
            .iter()
            .map(|g| g.object_id.as_str())
            .collect();
        for (object_id, state) in &self.groups {
            if !present.contains(object_id.as_str()) {
                jobs.push(Job::DeleteGroup {
                    object_id: object_id.clone(),
                    state: state.clone(),
                });
            }
        }
        jobs
    }

    /// Runs one phase with at most `concurrency` objects in flight, applying
    /// each result to the cache as it arrives.
    async fn run_phase(
        &mut self,
        phase: &'static str,
        jobs: Vec<Job>,
        report: &mut CycleReport,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<(), SimulatorError> {
        let total = jobs.len() as u64;
        let mut done = 0u64;
        progress(Progress { phase, done, total });
        let mut pending = jobs.into_iter();
        let mut running = JoinSet::new();
        loop {
            while running.len() < self.concurrency && !self.shared.rejected() {
                let Some(job) = pending.next() else {
                    break;
                };
                running.spawn(execute(Arc::clone(&self.shared), job));
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            match joined {
                Ok(result) => {
                    report.merge(result.stats, result.failures);
                    self.apply(result.object_id, result.effect);
                }
                Err(e) => report
                    .failures
                    .push(format!("{phase}: worker task failed: {e}")),
            }
            done += 1;
            progress(Progress { phase, done, total });
        }
        if let Some((status, detail)) = lock(&self.shared.rejected).clone() {
            return Err(SimulatorError::CredentialsRejected { status, detail });
        }
        Ok(())
    }

    fn apply(&mut self, object_id: String, effect: Effect) {
        match effect {
            Effect::None => {}
            Effect::UserLinked(state) => {
                self.users.insert(object_id, state);
            }
            Effect::UserWritten(image) => {
                if let Some(state) = self.users.get_mut(&object_id) {
                    state.written = image;
                }
            }
            Effect::UserDeleted => {
                self.users.remove(&object_id);
                // The target drops a deleted user's memberships itself, so
                // Entra has nothing left to remove for it.
                for group in self.groups.values_mut() {
                    group.members.remove(&object_id);
                }
            }
            Effect::ManagerWritten(manager) => {
                if let Some(state) = self.users.get_mut(&object_id) {
                    state.manager = manager;
                }
            }
            Effect::GroupWritten(state) => {
                self.groups.insert(object_id, state);
            }
            Effect::GroupDeleted => {
                self.groups.remove(&object_id);
            }
        }
    }
}
