//! The reconcile loop: level-triggered, not edge-triggered. Each resource
//! whose desired state (what Entra said) differs from its applied state (what
//! MaaS360 confirmed) is leased by one worker, which makes the fewest calls
//! that close the gap. So a SCIM request never waits for MaaS360, ten quick
//! updates become one write, a restart loses nothing, and order per resource
//! holds because one resource has one lease.
//!
//! Failures: only a permanent error parks a resource. Transient ones (5xx, timeouts, refused
//! connections, throttling) are retried with capped exponential backoff for as long as it
//! takes, behind a per-tenant circuit breaker ([`breaker`]).

mod backend;
pub(crate) mod breaker;
pub(crate) mod connection;
mod group_list;
pub(crate) mod health;
pub(crate) mod identity;
pub(crate) mod mapping;
pub(crate) mod queue;
mod worker;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dirsync_http::{Backoff, RateLimiter};
use dirsync_maas360::Maas360Client;
use dirsync_runtime::config::ProvisionerConfig;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

use crate::entity::ResourceKind;
use crate::error::Result;
use crate::store::{Store, now_ms};
use backend::DirectoryBackend;
use breaker::Breaker;
use connection::TenantConnection;
use identity::UsernameMapping;
use mapping::MappingResolver;

/// How often tenants' MaaS360 connections are read again, so a connection
/// set through another replica takes effect here too.
const TENANT_REFRESH: Duration = Duration::from_secs(2);
/// How long a user waits for a group it joins to exist in MaaS360.
const DEPENDENCY_DELAY: Duration = Duration::from_millis(500);
/// How long shutdown waits for in-flight resources to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the audit is pruned of entries past their retention.
const AUDIT_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// A tenant's lifecycle policy as the workers apply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) deactivate_on_disable: bool,
    pub(crate) delete_on_delete: bool,
    pub(crate) username_mapping: UsernameMapping,
    /// When MaaS360 refuses to delete a user with an active device: park the resource for an
    /// operator (true) or deactivate the user instead (false).
    pub(crate) park_on_active_device: bool,
    /// An unmapped Entra group whose name matches a MaaS360 group carrying distributions:
    /// import it anyway (true, Option 2) or park it for an operator (false).
    pub(crate) import_lookalike_groups: bool,
}

/// Everything the workers need for one tenant.
#[derive(Debug)]
pub(crate) struct TenantRuntime {
    pub(crate) client: Maas360Client,
    pub(crate) backend: Arc<dyn DirectoryBackend>,
    pub(crate) limiter: RateLimiter,
    pub(crate) breaker: Breaker,
    pub(crate) concurrency: Arc<Semaphore>,
    pub(crate) policy: Policy,
    pub(crate) backoff: Backoff,
    /// MaaS360's user groups as last read, for groups' first provisioning.
    pub(crate) group_list: group_list::GroupList,
}

impl TenantRuntime {
    fn new(client: Maas360Client, policy: Policy, settings: &ProvisionerConfig) -> Self {
        Self {
            backend: Arc::new(client.clone()),
            client,
            // Up to a second's worth of calls at once after a quiet spell, at most 50.
            limiter: RateLimiter::new(
                settings.tenant_calls_per_second,
                settings.tenant_calls_per_second.clamp(1.0, 50.0) as u32,
            ),
            breaker: Breaker::new(
                settings.breaker_failure_threshold,
                settings.breaker_cooldown,
            ),
            concurrency: Arc::new(Semaphore::new(settings.tenant_concurrency as usize)),
            policy,
            backoff: Backoff::new(settings.backoff_base, settings.backoff_max),
            group_list: group_list::GroupList::default(),
        }
    }

    /// MaaS360 answered a call of this tenant. When that closes the breaker, every resource
    /// waiting out a backoff is due again at once.
    pub(crate) async fn report_success(&self, store: &Store, tenant_id: &str) {
        let Some((health, closed)) = self.breaker.record_success() else {
            return;
        };
        if let Err(error) = health::record(store, tenant_id, &health).await {
            tracing::warn!(tenant = %tenant_id, %error, "cannot record MaaS360 reachability");
        }
        if closed {
            match queue::resume_tenant(store, tenant_id).await {
                Ok(resumed) => {
                    tracing::info!(tenant = %tenant_id, resumed, "MaaS360 answers again; resuming")
                }
                Err(error) => tracing::warn!(tenant = %tenant_id, %error, "cannot resume work"),
            }
        }
    }

    /// MaaS360's rate-limit signals of the latest answers (`X-Rate-Limit-Remaining: 0` with its
    /// reset window, or a 429's Retry-After) hold every worker of the tenant back.
    pub(crate) async fn honour_rate_limit(&self) {
        if let Some(until) = self.client.throttled_until() {
            self.limiter.pause_until(until).await;
        }
    }

    /// MaaS360 asked the tenant to wait `wait`: every worker here holds back, and the pause is
    /// recorded so that a process started meanwhile (a restart, another replica) waits too.
    pub(crate) async fn report_throttled(&self, store: &Store, tenant_id: &str, wait: Duration) {
        self.limiter.pause(wait).await;
        if let Err(error) = health::record_pause(store, tenant_id, SystemTime::now() + wait).await {
            tracing::warn!(tenant = %tenant_id, %error, "cannot record MaaS360's pause");
        }
    }

    /// A call of this tenant failed transiently.
    pub(crate) async fn report_failure(&self, store: &Store, tenant_id: &str, detail: &str) {
        let Some(health) = self.breaker.record_failure(detail, SystemTime::now()) else {
            return;
        };
        tracing::warn!(
            tenant = %tenant_id, error = %detail, next_probe_at = ?health.next_probe_at,
            "MaaS360 unreachable; calls paused until a probe succeeds"
        );
        if let Err(error) = health::record(store, tenant_id, &health).await {
            tracing::warn!(tenant = %tenant_id, %error, "cannot record MaaS360 reachability");
        }
    }
}

/// The workers of one provisioner process.
#[derive(Debug)]
pub struct Reconciler {
    store: Store,
    settings: ProvisionerConfig,
    owner: String,
    runtimes: Mutex<RuntimeCache>,
    in_flight: Arc<Mutex<HashSet<(String, ResourceKind, String)>>>,
    resolver: MappingResolver,
}

#[derive(Debug, Default)]
struct RuntimeCache {
    loaded_at: Option<tokio::time::Instant>,
    /// Per tenant: the connection's fingerprint and the runtime built from it.
    tenants: HashMap<String, (String, Arc<TenantRuntime>)>,
}

impl RuntimeCache {
    fn is_fresh(&self) -> bool {
        self.loaded_at
            .is_some_and(|at| at.elapsed() < TENANT_REFRESH)
    }

    /// Replaces the cache with `connections`, keeping the runtime (and so its token, rate
    /// limiter and breaker) of every connection that did not change.
    fn refresh(&mut self, connections: Vec<TenantConnection>, settings: &ProvisionerConfig) {
        let mut tenants = HashMap::new();
        for connection in connections {
            let fingerprint = connection.fingerprint();
            let kept = self
                .tenants
                .remove(&connection.tenant_id)
                .filter(|(known, _)| *known == fingerprint);
            let runtime = match kept {
                Some((_, runtime)) => runtime,
                None => match connection.client(settings) {
                    Ok(client) => Arc::new(TenantRuntime::new(client, connection.policy, settings)),
                    Err(error) => {
                        tracing::warn!(tenant = %connection.tenant_id, %error, "MaaS360 connection unusable; its work waits");
                        continue;
                    }
                },
            };
            tenants.insert(connection.tenant_id, (fingerprint, runtime));
        }
        self.tenants = tenants;
        self.loaded_at = Some(tokio::time::Instant::now());
    }
}

impl Reconciler {
    pub(crate) fn new(
        store: Store,
        settings: ProvisionerConfig,
        resolver: MappingResolver,
    ) -> Self {
        Self {
            store,
            settings,
            resolver,
            owner: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            runtimes: Mutex::new(RuntimeCache::default()),
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// The runtime of every tenant with a usable MaaS360 connection.
    pub(crate) async fn tenant_runtimes(&self) -> HashMap<String, Arc<TenantRuntime>> {
        let mut cache = self.runtimes.lock().await;
        if !cache.is_fresh() {
            match connection::load_all(&self.store).await {
                Ok(connections) => cache.refresh(connections, &self.settings),
                Err(error) => tracing::warn!(%error, "cannot read tenants' MaaS360 connections"),
            }
            // Pauses MaaS360 asked of another process (or of this one before a restart).
            match health::pauses(&self.store).await {
                Ok(pauses) => {
                    for (tenant_id, until) in pauses {
                        if let Some((_, runtime)) = cache.tenants.get(&tenant_id) {
                            let wait = Duration::from_millis(
                                u64::try_from(until.saturating_sub(now_ms())).unwrap_or(0),
                            );
                            runtime
                                .limiter
                                .pause_until(tokio::time::Instant::now() + wait)
                                .await;
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read MaaS360 pauses"),
            }
        }
        cache
            .tenants
            .iter()
            .map(|(tenant, (_, runtime))| (tenant.clone(), runtime.clone()))
            .collect()
    }

    /// The runtime of one tenant, read again from the store when this process does not know
    /// it yet (a connection set a moment ago, maybe through another replica).
    pub(crate) async fn tenant_runtime(&self, tenant_id: &str) -> Option<Arc<TenantRuntime>> {
        if let Some(runtime) = self.tenant_runtimes().await.remove(tenant_id) {
            return Some(runtime);
        }
        self.runtimes.lock().await.loaded_at = None;
        self.tenant_runtimes().await.remove(tenant_id)
    }

    /// Works until `shutdown` resolves, then lets in-flight resources finish.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        let workers = Arc::new(Semaphore::new(self.settings.workers as usize));
        let mut tasks = JoinSet::new();
        let poll = self.settings.poll_interval;
        let wake = self.store.work_signal();
        let mut prune = tokio::time::interval(AUDIT_PRUNE_INTERVAL);
        let writer = queue::QueueWriter::spawn(self.store.clone());
        tokio::pin!(shutdown);
        tracing::info!(owner = %self.owner, workers = self.settings.workers, "reconcile workers started");
        loop {
            while tasks.try_join_next().is_some() {}
            let claimed = match self.dispatch(&workers, &writer, &mut tasks).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "reconcile dispatch failed; retrying");
                    0
                }
            };
            if claimed > 0 && workers.available_permits() > 0 {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = wake.notified() => {}
                _ = tasks.join_next(), if !tasks.is_empty() => {}
                _ = prune.tick() => self.prune_audit().await,
                () = tokio::time::sleep(poll) => {}
            }
        }
        tracing::info!(in_flight = tasks.len(), "reconcile workers stopping");
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            // Their leases expire and another worker takes the work over.
            tasks.abort_all();
        }
    }

    async fn prune_audit(&self) {
        let retention =
            i64::try_from(self.settings.audit_retention.as_millis()).unwrap_or(i64::MAX);
        match queue::prune_audit(&self.store, now_ms().saturating_sub(retention)).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "audit entries past their retention pruned"),
            Err(error) => tracing::warn!(%error, "cannot prune the audit"),
        }
    }

    /// Starts the probe of every tenant whose breaker is open and due, and returns the
    /// tenants whose work may be claimed now.
    fn admit_tenants(
        &self,
        runtimes: &HashMap<String, Arc<TenantRuntime>>,
        tasks: &mut JoinSet<()>,
    ) -> Vec<String> {
        let now = SystemTime::now();
        let mut admitted = Vec::new();
        for (tenant_id, runtime) in runtimes {
            if !runtime.breaker.is_open() {
                admitted.push(tenant_id.clone());
            } else if runtime.breaker.start_probe(now) {
                let (store, tenant_id, runtime) =
                    (self.store.clone(), tenant_id.clone(), runtime.clone());
                tasks.spawn(async move { worker::probe(&store, &tenant_id, &runtime).await });
            }
        }
        admitted
    }

    async fn dispatch(
        self: &Arc<Self>,
        workers: &Arc<Semaphore>,
        writer: &queue::QueueWriter,
        tasks: &mut JoinSet<()>,
    ) -> Result<usize> {
        let free = workers.available_permits();
        let busy = self.settings.workers as usize - free.min(self.settings.workers as usize);
        // While work is in flight, claim in batches of a quarter of the workers: one claim
        // transaction per finished resource would cost a drain as many writes as its work.
        // The workers still waiting for the tenant's concurrency keep MaaS360 busy meanwhile.
        if free == 0 || (busy > 0 && free < (self.settings.workers as usize).div_ceil(4)) {
            return Ok(0);
        }
        let runtimes = self.tenant_runtimes().await;
        let tenant_ids = self.admit_tenants(&runtimes, tasks);
        let skip = self.in_flight.lock().await.clone();
        let leases = queue::claim_due(
            &self.store,
            &tenant_ids,
            &skip,
            free,
            &self.owner,
            self.settings.lease,
        )
        .await?;
        let mut claimed = 0;
        for lease in leases {
            let key = queue::key_of(&lease.row);
            let Some(runtime) = runtimes.get(&lease.row.tenant_id).cloned() else {
                continue;
            };
            // Nothing else takes this process's permits, so each claimed resource has one.
            let Ok(permit) = workers.clone().try_acquire_owned() else {
                break;
            };
            self.in_flight.lock().await.insert(key.clone());
            claimed += 1;
            let this = self.clone();
            let writer = writer.clone();
            tasks.spawn(async move {
                let _worker = permit;
                let _tenant = runtime.concurrency.clone().acquire_owned().await;
                let settings = worker::AttemptSettings {
                    lease: this.settings.lease,
                    dependency_delay: DEPENDENCY_DELAY,
                };
                if let Err(error) =
                    worker::reconcile(&this.store, &writer, &lease, &runtime, &this.resolver, settings)
                        .await
                {
                    // The lease runs out and the resource is taken again.
                    tracing::warn!(%error, resource = %lease.row.resource_id, "reconcile could not record its outcome");
                }
                this.in_flight.lock().await.remove(&key);
            });
        }
        Ok(claimed)
    }
}
