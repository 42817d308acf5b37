//! Scheduled pull syncs: in a process running the directory-reader, every tenant in pull mode
//! with an Entra connection is synced by delta every `directory.sync_interval`, and read in full
//! every `directory.full_sync_interval`. A failed run is retried sooner (within
//! [`RETRY_AFTER_FAILURE`]) and never stops the scheduler. A tenant whose run is under way
//! (an RPC's, or another replica's) is left for the next tick: runs take the tenant's lease.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dirsync_proto::provisioner::v1::TenantMode;
use dirsync_runtime::config::DirectoryConfig;
use tokio::task::JoinSet;

use crate::Service;
use crate::entity::sync_state;
use crate::sync::{SyncRequest, Wait};
use crate::time::{ms, now_ms};

/// A failed run is tried again after this (or the sync interval, if shorter).
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(15 * 60);
/// Tenants synced at once.
const CONCURRENT_TENANTS: usize = 2;
/// On shutdown, runs under way get this long to end before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// When the tenant is due next (unix ms), from its state; now when it never ran.
pub(crate) fn next_sync(state: Option<&sync_state::Model>, config: &DirectoryConfig) -> i64 {
    let Some(state) = state else {
        return now_ms();
    };
    let Some(last) = state.last_sync_at else {
        return now_ms();
    };
    let wait = if state.last_outcome.starts_with("failed") {
        config.sync_interval.min(RETRY_AFTER_FAILURE)
    } else {
        config.sync_interval
    };
    last.saturating_add(ms(wait))
}

/// Whether the next run reads Entra in full.
fn full_due(state: Option<&sync_state::Model>, config: &DirectoryConfig, now: i64) -> bool {
    match state.and_then(|s| s.last_full_sync_at) {
        Some(last) => last.saturating_add(ms(config.full_sync_interval)) <= now,
        None => true,
    }
}

/// How often the scheduler looks for due tenants.
fn tick(config: &DirectoryConfig) -> Duration {
    (config.sync_interval / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Runs until `shutdown` resolves; runs under way then get [`SHUTDOWN_GRACE`] to end before
/// they are cut (a cut run leaves its cursor, and the next run reads its changes again).
pub(crate) async fn run(service: Arc<Service>, shutdown: impl Future<Output = ()> + Send) {
    tokio::pin!(shutdown);
    let tick = tick(&service.config);
    tracing::info!(interval = ?service.config.sync_interval, full = ?service.config.full_sync_interval, "pull-sync scheduler started");
    let mut rounds: JoinSet<()> = JoinSet::new();
    loop {
        // One round at a time: a long round delays the next tick's, never doubles it.
        while rounds.try_join_next().is_some() {}
        if rounds.is_empty() {
            rounds.spawn(round(service.clone()));
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(tick) => {}
        }
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while rounds.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("pull syncs still running at shutdown were cut short");
        rounds.abort_all();
        while rounds.join_next().await.is_some() {}
    }
    tracing::info!("pull-sync scheduler stopped");
}

/// Syncs every due tenant, a few at a time. Aborting it aborts its runs.
async fn round(service: Arc<Service>) {
    let tenants = match service.store.connected_tenants().await {
        Ok(tenants) => tenants,
        Err(error) => {
            tracing::warn!(%error, "scheduler: cannot list tenants");
            return;
        }
    };
    let mut running = JoinSet::new();
    for tenant_id in tenants {
        while running.len() >= CONCURRENT_TENANTS {
            let _ = running.join_next().await;
        }
        let service = service.clone();
        running.spawn(async move { sync_if_due(&service, tenant_id).await });
    }
    while running.join_next().await.is_some() {}
}

async fn sync_if_due(service: &Arc<Service>, tenant_id: String) {
    let tenant = match service.provisioner.tenant(&tenant_id).await {
        Ok(tenant) => tenant,
        Err(error) => {
            tracing::warn!(tenant = %tenant_id, %error, "scheduler: cannot read the tenant");
            return;
        }
    };
    if tenant.mode != TenantMode::Pull {
        return;
    }
    let state = match service.store.sync_state(&tenant.id).await {
        Ok(state) => state,
        Err(error) => {
            tracing::warn!(tenant = %tenant.id, %error, "scheduler: cannot read the sync state");
            return;
        }
    };
    let now = now_ms();
    if next_sync(state.as_ref(), &service.config) > now {
        return;
    }
    let request = SyncRequest {
        tenant: tenant.id.clone(),
        full: full_due(state.as_ref(), &service.config, now),
        ..SyncRequest::default()
    };
    match service.sync(request, Wait::No).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            tracing::debug!(tenant = %tenant.id, "scheduler: a run is under way; next tick")
        }
        // The run recorded its outcome; the scheduler goes on.
        Err(error) => tracing::warn!(tenant = %tenant.id, %error, "scheduled pull sync failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(last: Option<i64>, full: Option<i64>, outcome: &str) -> sync_state::Model {
        sync_state::Model {
            tenant_id: "t".to_owned(),
            last_full_sync_at: full,
            last_sync_at: last,
            last_outcome: outcome.to_owned(),
            last_ok: outcome == "ok",
            clean: true,
            users: 0,
            groups: 0,
            generation: 0,
            lease_owner: None,
            lease_until: 0,
        }
    }

    #[test]
    fn due_times_follow_the_intervals_and_failures_retry_sooner() {
        let config = DirectoryConfig::default();
        let hour = 3_600_000;
        assert!(next_sync(None, &config) <= now_ms());
        let ok = state(Some(10 * hour), Some(10 * hour), "ok");
        assert_eq!(next_sync(Some(&ok), &config), 14 * hour);
        let failed = state(Some(10 * hour), Some(10 * hour), "failed: Graph");
        assert_eq!(next_sync(Some(&failed), &config), 10 * hour + hour / 4);
        assert!(!full_due(Some(&ok), &config, 11 * hour));
        assert!(full_due(Some(&ok), &config, 10 * hour + 7 * 24 * hour));
        assert!(full_due(None, &config, 0));
    }
}
