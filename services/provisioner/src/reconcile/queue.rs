//! The work queue in the store: due resources, leases, progress, success,
//! retry with backoff, and parking. Every state change also records what
//! MaaS360 was asked to do (the audit) in the same transaction.

use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::entity::{ResourceKind, maas360_audit, sync_state};
use crate::error::Result;
use crate::store::{Store, now_ms};

/// One MaaS360 write and how it ended.
#[derive(Debug, Clone)]
pub(crate) struct AuditEntry {
    pub(crate) action: &'static str,
    pub(crate) target: String,
    pub(crate) outcome: &'static str,
    pub(crate) detail: Option<String>,
    pub(crate) at: i64,
}

/// A claimed resource: who holds it, since when, and which desired version it saw.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub(crate) row: sync_state::Model,
    pub(crate) owner: String,
    /// When this attempt began (unix ms), recorded with each audit entry.
    pub(crate) started_at: i64,
}

impl Lease {
    fn key(&self) -> Condition {
        Condition::all()
            .add(sync_state::Column::TenantId.eq(self.row.tenant_id.clone()))
            .add(sync_state::Column::Kind.eq(self.row.kind))
            .add(sync_state::Column::ResourceId.eq(self.row.resource_id.clone()))
            .add(sync_state::Column::LeaseOwner.eq(self.owner.clone()))
    }
}

/// Due resources of the given tenants: pending, not parked, not leased,
/// and past their retry time. Groups first, since users join them.
pub(crate) async fn due(
    store: &Store,
    tenants: &[String],
    limit: u64,
) -> Result<Vec<sync_state::Model>> {
    if tenants.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let now = now_ms();
    Ok(sync_state::Entity::find()
        .filter(sync_state::Column::Pending.eq(true))
        .filter(sync_state::Column::Parked.eq(false))
        .filter(sync_state::Column::NextAttemptAt.lte(now))
        .filter(
            Condition::any()
                .add(sync_state::Column::LeaseUntil.is_null())
                .add(sync_state::Column::LeaseUntil.lt(now)),
        )
        .filter(sync_state::Column::TenantId.is_in(tenants.to_vec()))
        .order_by_asc(sync_state::Column::Kind)
        .order_by_asc(sync_state::Column::UpdatedAt)
        .limit(limit)
        .all(store.db())
        .await?)
}

/// Claims `row` for `owner` unless another worker got there first. The
/// conditional update is the claim: on PostgreSQL, of several replicas racing
/// for one row exactly one update matches.
pub(crate) async fn claim(
    store: &Store,
    row: sync_state::Model,
    owner: &str,
    lease: Duration,
) -> Result<Option<Lease>> {
    let now = now_ms();
    let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    let write = store.write().await?;
    let claimed = sync_state::Entity::update_many()
        .col_expr(
            sync_state::Column::LeaseOwner,
            Expr::value(owner.to_owned()),
        )
        .col_expr(sync_state::Column::LeaseUntil, Expr::value(until))
        .filter(sync_state::Column::TenantId.eq(row.tenant_id.clone()))
        .filter(sync_state::Column::Kind.eq(row.kind))
        .filter(sync_state::Column::ResourceId.eq(row.resource_id.clone()))
        .filter(sync_state::Column::Pending.eq(true))
        .filter(sync_state::Column::Parked.eq(false))
        .filter(
            Condition::any()
                .add(sync_state::Column::LeaseUntil.is_null())
                .add(sync_state::Column::LeaseUntil.lt(now)),
        )
        .exec(&write.txn)
        .await?;
    write.commit().await?;
    if claimed.rows_affected == 0 {
        return Ok(None);
    }
    let fresh =
        sync_state::Entity::find_by_id((row.tenant_id.clone(), row.kind, row.resource_id.clone()))
            .one(store.db())
            .await?;
    Ok(fresh
        .filter(|fresh| fresh.lease_owner.as_deref() == Some(owner))
        .map(|row| Lease {
            row,
            owner: owner.to_owned(),
            started_at: now,
        }))
}

fn audit_rows(lease: &Lease, entries: &[AuditEntry]) -> Vec<maas360_audit::ActiveModel> {
    entries
        .iter()
        .map(|entry| maas360_audit::ActiveModel {
            tenant_id: Set(lease.row.tenant_id.clone()),
            kind: Set(lease.row.kind),
            resource_id: Set(lease.row.resource_id.clone()),
            action: Set(entry.action.to_owned()),
            target: Set(entry.target.clone()),
            outcome: Set(entry.outcome.to_owned()),
            detail: Set(entry.detail.clone()),
            at: Set(entry.at),
            worker: Set(Some(lease.owner.clone())),
            attempt_started_at: Set(Some(lease.started_at)),
            ..Default::default()
        })
        .collect()
}

async fn write_audit(
    txn: &impl sea_orm::ConnectionTrait,
    lease: &Lease,
    entries: &[AuditEntry],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    maas360_audit::Entity::insert_many(audit_rows(lease, entries))
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Records what MaaS360 now holds, mid-way, and renews the lease, so a crash
/// or a later failure does not repeat what already succeeded.
pub(crate) async fn save_progress(
    store: &Store,
    lease: &Lease,
    maas360_id: Option<&str>,
    applied_json: Option<&str>,
    audit: &[AuditEntry],
    lease_for: Duration,
) -> Result<bool> {
    let until = now_ms() + i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX / 2);
    let write = store.write().await?;
    let updated = sync_state::Entity::update_many()
        .col_expr(
            sync_state::Column::Maas360Id,
            Expr::value(maas360_id.map(str::to_owned)),
        )
        .col_expr(
            sync_state::Column::AppliedJson,
            Expr::value(applied_json.map(str::to_owned)),
        )
        .col_expr(sync_state::Column::LeaseUntil, Expr::value(until))
        .filter(lease.key())
        .exec(&write.txn)
        .await?;
    write_audit(&write.txn, lease, audit).await?;
    write.commit().await?;
    Ok(updated.rows_affected == 1)
}

/// What MaaS360 holds now, as the worker leaves the resource.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Applied<'a> {
    pub(crate) maas360_id: Option<&'a str>,
    pub(crate) json: Option<&'a str>,
}

type StateUpdate = sea_orm::UpdateMany<sync_state::Entity>;

/// Ends the lease in one transaction: records what MaaS360 holds, applies
/// `outcome`'s own columns, and writes the audit rows. With `settled`, a
/// resource gone from both sides stops being tracked.
async fn release(
    store: &Store,
    lease: &Lease,
    applied: Applied<'_>,
    audit: &[AuditEntry],
    settled: bool,
    outcome: impl FnOnce(StateUpdate) -> StateUpdate,
) -> Result<()> {
    let write = store.write().await?;
    if settled && lease.row.deleted && applied.maas360_id.is_none() {
        // Gone from both sides: nothing is left to track.
        sync_state::Entity::delete_many()
            .filter(lease.key())
            .filter(sync_state::Column::DesiredSeq.eq(lease.row.desired_seq))
            .exec(&write.txn)
            .await?;
    }
    let update = sync_state::Entity::update_many()
        .col_expr(
            sync_state::Column::Maas360Id,
            Expr::value(applied.maas360_id.map(str::to_owned)),
        )
        .col_expr(
            sync_state::Column::AppliedJson,
            Expr::value(applied.json.map(str::to_owned)),
        )
        .col_expr(
            sync_state::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            sync_state::Column::LeaseUntil,
            Expr::value(Option::<i64>::None),
        );
    outcome(update).filter(lease.key()).exec(&write.txn).await?;
    write_audit(&write.txn, lease, audit).await?;
    write.commit().await
}

/// MaaS360 holds the desired version the worker saw. A change that arrived
/// meanwhile keeps the resource pending, so it is reconciled again.
pub(crate) async fn succeed(
    store: &Store,
    lease: &Lease,
    applied: Applied<'_>,
    audit: &[AuditEntry],
) -> Result<()> {
    let seen = lease.row.desired_seq;
    release(store, lease, applied, audit, true, |update| {
        update
            .col_expr(sync_state::Column::AppliedSeq, Expr::value(seen))
            .col_expr(
                sync_state::Column::Pending,
                Expr::col(sync_state::Column::DesiredSeq).ne(seen),
            )
            .col_expr(sync_state::Column::Attempts, Expr::value(0))
            .col_expr(sync_state::Column::NextAttemptAt, Expr::value(0))
            .col_expr(
                sync_state::Column::LastError,
                Expr::value(Option::<String>::None),
            )
    })
    .await
}

/// Not done yet, through no failure (a group it joins does not exist in
/// MaaS360 yet): try again soon without counting an attempt.
pub(crate) async fn defer(
    store: &Store,
    lease: &Lease,
    applied: Applied<'_>,
    delay: Duration,
    audit: &[AuditEntry],
) -> Result<()> {
    let at = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
    release(store, lease, applied, audit, false, |update| {
        update.col_expr(sync_state::Column::NextAttemptAt, Expr::value(at))
    })
    .await
}

/// A failed attempt: retried at `retry_at`, or parked with its reason.
pub(crate) async fn fail(
    store: &Store,
    lease: &Lease,
    applied: Applied<'_>,
    failure: Failure<'_>,
    audit: &[AuditEntry],
) -> Result<()> {
    let now = now_ms();
    release(store, lease, applied, audit, false, |update| {
        let update = update
            .col_expr(sync_state::Column::Attempts, Expr::value(failure.attempts))
            .col_expr(
                sync_state::Column::LastError,
                Expr::value(failure.reason.to_owned()),
            )
            .col_expr(
                sync_state::Column::NextAttemptAt,
                Expr::value(failure.retry_at),
            );
        if failure.park {
            update
                .col_expr(sync_state::Column::Parked, Expr::value(true))
                .col_expr(sync_state::Column::ParkedAt, Expr::value(now))
        } else {
            update
        }
    })
    .await
}

/// Why an attempt failed and what happens next.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failure<'a> {
    pub(crate) reason: &'a str,
    pub(crate) park: bool,
    pub(crate) retry_at: i64,
    /// Failed attempts in a row, this one included; restarts at 1 after an attempt that made
    /// progress, so a resource that keeps advancing never backs off to the cap.
    pub(crate) attempts: i32,
}

/// Which parked resources of a tenant to move back to the queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct Requeue {
    /// Only resources of this kind.
    pub(crate) kind: Option<ResourceKind>,
    /// Only these resources; `None` for every parked one.
    pub(crate) resource_ids: Option<Vec<String>>,
}

/// Moves parked resources back to the queue with their attempts reset; returns how many.
pub(crate) async fn requeue_parked(
    txn: &impl sea_orm::ConnectionTrait,
    tenant_id: &str,
    which: Requeue,
) -> Result<u64> {
    let mut update = sync_state::Entity::update_many()
        .col_expr(sync_state::Column::Parked, Expr::value(false))
        .col_expr(
            sync_state::Column::ParkedAt,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(sync_state::Column::Attempts, Expr::value(0))
        .col_expr(sync_state::Column::NextAttemptAt, Expr::value(0))
        .filter(sync_state::Column::TenantId.eq(tenant_id))
        .filter(sync_state::Column::Parked.eq(true));
    if let Some(kind) = which.kind {
        update = update.filter(sync_state::Column::Kind.eq(kind));
    }
    if let Some(ids) = which.resource_ids {
        if ids.is_empty() {
            return Ok(0);
        }
        update = update.filter(sync_state::Column::ResourceId.is_in(ids));
    }
    Ok(update.exec(txn).await?.rows_affected)
}

/// MaaS360 answers a tenant again: every resource waiting out a backoff is due now.
pub(crate) async fn resume_tenant(store: &Store, tenant_id: &str) -> Result<u64> {
    let write = store.write().await?;
    let resumed = sync_state::Entity::update_many()
        .col_expr(sync_state::Column::NextAttemptAt, Expr::value(0))
        .filter(sync_state::Column::TenantId.eq(tenant_id))
        .filter(sync_state::Column::Pending.eq(true))
        .filter(sync_state::Column::Parked.eq(false))
        .filter(sync_state::Column::NextAttemptAt.gt(now_ms()))
        .exec(&write.txn)
        .await?
        .rows_affected;
    write.commit().await?;
    Ok(resumed)
}

/// Deletes audit entries older than `before` (unix ms), a bounded batch per transaction so a
/// large backlog never holds SQLite's single writer for long. Returns how many went.
pub(crate) async fn prune_audit(store: &Store, before: i64) -> Result<u64> {
    const BATCH: u64 = 5_000;
    let mut pruned = 0;
    loop {
        let ids: Vec<i64> = maas360_audit::Entity::find()
            .select_only()
            .column(maas360_audit::Column::Id)
            .filter(maas360_audit::Column::At.lt(before))
            .order_by_asc(maas360_audit::Column::Id)
            .limit(BATCH)
            .into_tuple()
            .all(store.db())
            .await?;
        if ids.is_empty() {
            return Ok(pruned);
        }
        let write = store.write().await?;
        let deleted = maas360_audit::Entity::delete_many()
            .filter(maas360_audit::Column::Id.is_in(ids.clone()))
            .exec(&write.txn)
            .await?
            .rows_affected;
        write.commit().await?;
        pruned += deleted;
        if (ids.len() as u64) < BATCH {
            return Ok(pruned);
        }
    }
}
