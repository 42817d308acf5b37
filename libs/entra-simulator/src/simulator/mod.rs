//! The provisioning engine: Entra's cycles against a SCIM 2.0 server.
//!
//! A cycle runs three phases in Entra's order (users, managers, groups). Each phase is planned
//! from the directory and Entra's cache before anything is sent, then its jobs run with a bounded
//! number of objects in flight, and each result updates the cache as it arrives.
//!
//! Modules:
//! - `planning`: which jobs a phase holds.
//! - `jobs`: the requests of one job and how their answers change the cache.
//! - `transport`: pacing, one request and its reply, the `Retry-After` pause and the stop on a
//!   rejected token.

mod jobs;
mod planning;
mod transport;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::HeaderValue;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::directory::Directory;
use crate::error::SimulatorError;
use crate::requests::{PatchShape, UserImage};
use jobs::{Effect, Job, JobContext, execute};
use transport::{Pacer, RequestCounts, Transport};

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
    fn merge(&mut self, counts: RequestCounts, failures: Vec<String>) {
        for (kind, sent) in counts.by_kind {
            self.requests += sent;
            *self.by_kind.entry(kind.to_owned()).or_insert(0) += sent;
        }
        self.failures.extend(failures);
    }
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
    context: Arc<JobContext>,
    concurrency: usize,
    users: BTreeMap<String, UserState>,
    groups: BTreeMap<String, GroupState>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("base", &self.context.transport.base.as_str())
            .field("shape", &self.context.shape)
            .field("users", &self.users.len())
            .field("groups", &self.groups.len())
            .finish()
    }
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
            Some(rate) => Some(Pacer::new(rate).ok_or_else(|| {
                SimulatorError::InvalidConfig(format!(
                    "requests_per_second must be a positive number, got {rate}"
                ))
            })?),
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
            context: Arc::new(JobContext {
                transport: Transport::new(client, base, auth, pacer),
                shape: config.patch_shape,
                members_per_patch: config.members_per_patch,
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
            while running.len() < self.concurrency && !self.context.transport.rejected() {
                let Some(job) = pending.next() else {
                    break;
                };
                running.spawn(execute(Arc::clone(&self.context), job));
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            match joined {
                Ok(result) => {
                    report.merge(result.counts, result.failures);
                    self.apply(result.object_id, result.effect);
                }
                Err(e) => report
                    .failures
                    .push(format!("{phase}: worker task failed: {e}")),
            }
            done += 1;
            progress(Progress { phase, done, total });
        }
        if let Some((status, detail)) = self.context.transport.rejection() {
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
