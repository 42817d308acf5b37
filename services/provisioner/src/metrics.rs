//! The provisioner's gauges, computed when `/metrics` is scraped: the work
//! queue per tenant from the store, and MaaS360 calls by route and outcome
//! from each tenant's client.

use std::fmt::Write as _;
use std::sync::Arc;

use dirsync_runtime::metrics::render_labels;
use sea_orm::{ConnectionTrait, Statement};

use crate::reconcile::Reconciler;
use crate::store::{Store, now_ms};
use crate::user_lookups::LookupCounts;

/// Registers the gauges; they are withdrawn when the guard drops.
pub(crate) fn register(
    store: Store,
    reconciler: Arc<Reconciler>,
    lookups: Arc<LookupCounts>,
) -> dirsync_runtime::metrics::SourceGuard {
    dirsync_runtime::metrics::registry().add_source(Arc::new(move || {
        let (store, reconciler, lookups) = (store.clone(), reconciler.clone(), lookups.clone());
        Box::pin(async move { render(&store, &reconciler, &lookups).await })
    }))
}

async fn render(store: &Store, reconciler: &Reconciler, lookups: &LookupCounts) -> String {
    let mut out = String::new();
    for (name, help, count) in [
        (
            "dirsync_user_name_lookups_total",
            "Matching queries by userName (Entra's `userName eq`) answered.",
            &lookups.lookups,
        ),
        (
            "dirsync_user_name_lookup_batches_total",
            "Store queries that answered them: lookups waiting together share one.",
            &lookups.batches,
        ),
    ] {
        let count = count.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {count}"
        );
    }
    let db = store.db();
    let sql = format!(
        "SELECT tenant_id, \
         SUM(CASE WHEN pending AND NOT parked THEN 1 ELSE 0 END), \
         SUM(CASE WHEN pending AND lease_until > {now} THEN 1 ELSE 0 END), \
         SUM(CASE WHEN parked THEN 1 ELSE 0 END), \
         SUM(CASE WHEN NOT pending THEN 1 ELSE 0 END) \
         FROM sync_state GROUP BY tenant_id",
        now = now_ms()
    );
    let gauges = [
        (
            "dirsync_queue_depth",
            "Resources waiting to be written to MaaS360.",
        ),
        (
            "dirsync_in_flight",
            "Resources a worker is writing to MaaS360 now.",
        ),
        (
            "dirsync_parked",
            "Resources parked after a permanent MaaS360 error, waiting for an operator or a new desired state.",
        ),
        (
            "dirsync_in_sync",
            "Resources MaaS360 holds as Entra wants them.",
        ),
    ];
    match db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
    {
        Ok(rows) => {
            for (index, (name, help)) in gauges.iter().enumerate() {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                for row in &rows {
                    let tenant: String = row.try_get_by_index(0).unwrap_or_default();
                    let value: i64 = row.try_get_by_index(index + 1).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "{name}{} {value}",
                        render_labels(&[("tenant", tenant)], None)
                    );
                }
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read queue gauges"),
    }
    let runtimes = reconciler.tenant_runtimes().await;
    let name = "dirsync_maas360_breaker_open";
    let _ = writeln!(
        out,
        "# HELP {name} 1 while the tenant's MaaS360 circuit breaker is open (MaaS360 unreachable; one probe per cool-down), else 0.\n# TYPE {name} gauge"
    );
    for (tenant, runtime) in &runtimes {
        let open = u8::from(runtime.breaker.is_open());
        let _ = writeln!(
            out,
            "{name}{} {open}",
            render_labels(&[("tenant", tenant.clone())], None)
        );
    }
    let name = "dirsync_maas360_calls_total";
    let _ = writeln!(
        out,
        "# HELP {name} MaaS360 calls by tenant, route and outcome.\n# TYPE {name} counter"
    );
    for (tenant, runtime) in runtimes {
        for ((route, outcome), count) in runtime.client.call_counts() {
            let labels = [
                ("tenant", tenant.clone()),
                ("route", route),
                ("outcome", outcome),
            ];
            let _ = writeln!(out, "{name}{} {count}", render_labels(&labels, None));
        }
    }
    out
}
