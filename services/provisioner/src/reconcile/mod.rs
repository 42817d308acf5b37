//! The reconcile loop: level-triggered, not edge-triggered. Each resource
//! whose desired state (what Entra said) differs from its applied state (what
//! MaaS360 confirmed) is leased by one worker, which makes the fewest calls
//! that close the gap. So a SCIM request never waits for MaaS360, ten quick
//! updates become one write, a restart loses nothing, and order per resource
//! holds because one resource has one lease.

mod backend;
pub(crate) mod connection;
pub(crate) mod identity;
mod limiter;
mod queue;
mod worker;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dirsync_maas360::Maas360Client;
use dirsync_runtime::config::ProvisionerConfig;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

use crate::error::Result;
use crate::store::Store;
use backend::DirectoryBackend;
use identity::UsernameMapping;
use limiter::RateLimiter;

/// How often tenants' MaaS360 connections are read again, so a connection
/// set through another replica takes effect here too.
const TENANT_REFRESH: Duration = Duration::from_secs(2);
/// How long a user waits for a group it joins to exist in MaaS360.
const DEPENDENCY_DELAY: Duration = Duration::from_millis(500);
/// How long shutdown waits for in-flight resources to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// A tenant's lifecycle policy as the workers apply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) deactivate_on_disable: bool,
    pub(crate) delete_on_delete: bool,
    pub(crate) username_mapping: UsernameMapping,
}

/// Everything the workers need for one tenant.
#[derive(Debug)]
pub(crate) struct TenantRuntime {
    pub(crate) client: Maas360Client,
    pub(crate) backend: Arc<dyn DirectoryBackend>,
    pub(crate) limiter: RateLimiter,
    pub(crate) concurrency: Arc<Semaphore>,
    pub(crate) policy: Policy,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl TenantRuntime {
    /// Exponential backoff with jitter: between half and all of
    /// base·2^(attempt-1), capped.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let full = self
            .backoff_base
            .saturating_mul(1u32 << exponent)
            .min(self.backoff_max);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
        full.mul_f64(0.5 + jitter / 2.0)
    }
}

/// The workers of one provisioner process.
#[derive(Debug)]
pub struct Reconciler {
    store: Store,
    settings: ProvisionerConfig,
    owner: String,
    runtimes: Mutex<RuntimeCache>,
    in_flight: Arc<Mutex<HashSet<(String, String, String)>>>,
}

#[derive(Debug, Default)]
struct RuntimeCache {
    loaded_at: Option<tokio::time::Instant>,
    tenants: HashMap<String, (String, Arc<TenantRuntime>)>,
}

impl Reconciler {
    pub fn new(store: Store, settings: ProvisionerConfig) -> Self {
        Self {
            store,
            settings,
            owner: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            runtimes: Mutex::new(RuntimeCache::default()),
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    fn lease_duration(&self) -> Duration {
        Duration::from_millis(self.settings.lease_ms)
    }

    /// The runtime of every tenant with a usable MaaS360 connection.
    pub(crate) async fn tenant_runtimes(&self) -> HashMap<String, Arc<TenantRuntime>> {
        let mut cache = self.runtimes.lock().await;
        let fresh = cache
            .loaded_at
            .is_some_and(|at| at.elapsed() < TENANT_REFRESH);
        if !fresh {
            match connection::load_all(&self.store).await {
                Ok(connections) => {
                    let mut tenants = HashMap::new();
                    for connection in connections {
                        let fingerprint = connection.fingerprint();
                        let reuse = cache
                            .tenants
                            .get(&connection.tenant_id)
                            .filter(|(known, _)| *known == fingerprint)
                            .map(|(_, runtime)| runtime.clone());
                        let runtime = match reuse {
                            Some(runtime) => runtime,
                            None => match connection.client(&self.settings) {
                                Ok(client) => Arc::new(TenantRuntime {
                                    backend: Arc::new(client.clone()),
                                    client,
                                    limiter: RateLimiter::new(
                                        self.settings.tenant_calls_per_second,
                                    ),
                                    concurrency: Arc::new(Semaphore::new(
                                        self.settings.tenant_concurrency as usize,
                                    )),
                                    policy: connection.policy,
                                    backoff_base: Duration::from_millis(
                                        self.settings.backoff_base_ms,
                                    ),
                                    backoff_max: Duration::from_millis(
                                        self.settings.backoff_max_ms,
                                    ),
                                }),
                                Err(error) => {
                                    tracing::warn!(tenant = %connection.tenant_id, %error, "MaaS360 connection unusable; its work waits");
                                    continue;
                                }
                            },
                        };
                        tenants.insert(connection.tenant_id.clone(), (fingerprint, runtime));
                    }
                    cache.tenants = tenants;
                    cache.loaded_at = Some(tokio::time::Instant::now());
                }
                Err(error) => tracing::warn!(%error, "cannot read tenants' MaaS360 connections"),
            }
        }
        cache
            .tenants
            .iter()
            .map(|(tenant, (_, runtime))| (tenant.clone(), runtime.clone()))
            .collect()
    }

    /// Works until `shutdown` resolves, then lets in-flight resources finish.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        let workers = Arc::new(Semaphore::new(self.settings.workers as usize));
        let mut tasks = JoinSet::new();
        let poll = Duration::from_millis(self.settings.poll_interval_ms);
        let wake = self.store.work_signal();
        tokio::pin!(shutdown);
        tracing::info!(owner = %self.owner, workers = self.settings.workers, "reconcile workers started");
        loop {
            while tasks.try_join_next().is_some() {}
            let claimed = match self.dispatch(&workers, &mut tasks).await {
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

    async fn dispatch(
        self: &Arc<Self>,
        workers: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
    ) -> Result<usize> {
        let free = workers.available_permits();
        if free == 0 {
            return Ok(0);
        }
        let runtimes = self.tenant_runtimes().await;
        let tenant_ids: Vec<String> = runtimes.keys().cloned().collect();
        let rows = queue::due(&self.store, &tenant_ids, (free * 2) as u64).await?;
        let mut claimed = 0;
        for row in rows {
            let key = (
                row.tenant_id.clone(),
                row.kind.clone(),
                row.resource_id.clone(),
            );
            if self.in_flight.lock().await.contains(&key) {
                continue;
            }
            let Some(runtime) = runtimes.get(&row.tenant_id).cloned() else {
                continue;
            };
            let Ok(permit) = workers.clone().try_acquire_owned() else {
                break;
            };
            let Some(lease) =
                queue::claim(&self.store, row, &self.owner, self.lease_duration()).await?
            else {
                continue;
            };
            self.in_flight.lock().await.insert(key.clone());
            claimed += 1;
            let this = self.clone();
            tasks.spawn(async move {
                let _worker = permit;
                let _tenant = runtime.concurrency.clone().acquire_owned().await;
                let settings = worker::AttemptSettings {
                    lease: this.lease_duration(),
                    dependency_delay: DEPENDENCY_DELAY,
                };
                if let Err(error) = worker::reconcile(&this.store, &lease, &runtime, settings, this.settings.max_attempts).await {
                    // The lease runs out and the resource is taken again.
                    tracing::warn!(%error, resource = %lease.row.resource_id, "reconcile could not record its outcome");
                }
                this.in_flight.lock().await.remove(&key);
            });
        }
        Ok(claimed)
    }
}
