//! The work queue in the store: due resources, leases, progress, success,
//! retry with backoff, and parking. Every state change also records what
//! MaaS360 was asked to do (the audit) in the same transaction.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::batching::{Batched, Batcher};
use crate::entity::{ResourceKind, maas360_audit, sync_state};
use crate::error::Result;
use crate::store::{Store, now_ms, one_of};

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

/// The key of a resource in the queue.
pub(crate) type ResourceKey = (String, ResourceKind, String);

pub(crate) fn key_of(row: &sync_state::Model) -> ResourceKey {
    (row.tenant_id.clone(), row.kind, row.resource_id.clone())
}

fn is_free(now: i64) -> Condition {
    Condition::any()
        .add(sync_state::Column::LeaseUntil.is_null())
        .add(sync_state::Column::LeaseUntil.lt(now))
}

/// Due: pending, not parked, past its retry time, not leased. Found through the due-order
/// index, which leads with `pending`.
fn is_due(now: i64) -> Condition {
    due_given(sync_state::Column::Pending.eq(true), now)
}

/// [`is_due`] for rows already found by key. `pending <> false` rather than `pending = true`:
/// with an equality on `pending`, SQLite's planner (which has no statistics) walks the pending
/// index, the whole backlog, instead of looking the rows up by primary key.
fn is_still_due(now: i64) -> Condition {
    due_given(sync_state::Column::Pending.ne(false), now)
}

fn due_given(pending: sea_orm::sea_query::SimpleExpr, now: i64) -> Condition {
    Condition::all()
        .add(pending)
        .add(sync_state::Column::Parked.eq(false))
        .add(sync_state::Column::NextAttemptAt.lte(now))
        .add(is_free(now))
}

/// Leases up to `limit` due resources of the given tenants to `owner`, groups first (users
/// join them), oldest change first, skipping those this process still works on. One
/// transaction claims the whole batch, so a drain of thousands of resources costs a write per
/// batch rather than one per resource. The conditional update is the claim: on PostgreSQL, of
/// several replicas racing for one row exactly one update matches (the others re-check the
/// lease once the winner commits), and only the rows this update leased are returned.
pub(crate) async fn claim_due(
    store: &Store,
    tenants: &[String],
    skip: &HashSet<ResourceKey>,
    limit: usize,
    owner: &str,
    lease: Duration,
) -> Result<Vec<Lease>> {
    if tenants.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let now = now_ms();
    let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    if store.db().get_database_backend() == sea_orm::DbBackend::Postgres {
        return claim_due_postgres(store, tenants, skip, limit, owner, (now, until)).await;
    }
    let candidates: Vec<ResourceKey> = sync_state::Entity::find()
        .select_only()
        .column(sync_state::Column::TenantId)
        .column(sync_state::Column::Kind)
        .column(sync_state::Column::ResourceId)
        .filter(is_due(now))
        .filter(sync_state::Column::TenantId.is_in(tenants.to_vec()))
        .order_by_asc(sync_state::Column::Kind)
        .order_by_asc(sync_state::Column::UpdatedAt)
        .limit((limit + skip.len()) as u64)
        .into_tuple()
        .all(store.db())
        .await?
        .into_iter()
        .filter(|key| !skip.contains(key))
        .take(limit)
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_tenant_and_kind: BTreeMap<(&str, ResourceKind), Vec<String>> = BTreeMap::new();
    for (tenant_id, kind, resource_id) in &candidates {
        by_tenant_and_kind
            .entry((tenant_id.as_str(), *kind))
            .or_default()
            .push(resource_id.clone());
    }
    let backend = store.db().get_database_backend();
    let write = store.write().await?;
    let mut claimed = Vec::with_capacity(candidates.len());
    // One statement per tenant and kind, so each is a primary-key lookup: SQLite's planner
    // reads an OR of them through the pending index instead, a scan of the whole backlog.
    for ((tenant_id, kind), resource_ids) in by_tenant_and_kind {
        let chosen = Condition::all()
            .add(sync_state::Column::TenantId.eq(tenant_id))
            .add(sync_state::Column::Kind.eq(kind))
            .add(one_of(
                backend,
                sync_state::Column::ResourceId,
                &resource_ids,
            ));
        sync_state::Entity::update_many()
            .col_expr(
                sync_state::Column::LeaseOwner,
                Expr::value(owner.to_owned()),
            )
            .col_expr(sync_state::Column::LeaseUntil, Expr::value(until))
            .filter(chosen.clone())
            .filter(is_still_due(now))
            .exec(&write.txn)
            .await?;
        claimed.extend(
            sync_state::Entity::find()
                .filter(chosen)
                .filter(sync_state::Column::LeaseOwner.eq(owner))
                .filter(sync_state::Column::LeaseUntil.eq(until))
                .all(&write.txn)
                .await?,
        );
    }
    write.commit().await?;
    Ok(into_leases(claimed, owner, now))
}

/// The claimed rows as leases, in the order work is handed out: groups before the users that
/// join them (by the stored kind, as the queue orders it), oldest change first.
fn into_leases(mut claimed: Vec<sync_state::Model>, owner: &str, now: i64) -> Vec<Lease> {
    use sea_orm::ActiveEnum as _;
    claimed.sort_by_cached_key(|row| (row.kind.to_value(), row.updated_at));
    claimed
        .into_iter()
        .map(|row| Lease {
            row,
            owner: owner.to_owned(),
            started_at: now,
        })
        .collect()
}

/// [`claim_due`] on PostgreSQL: one statement, the queue idiom `FOR UPDATE SKIP LOCKED`. Every
/// round trip of the one loop that hands work out is time no worker gets work, and replicas
/// claiming at once skip each other's rows instead of waiting for them.
async fn claim_due_postgres(
    store: &Store,
    tenants: &[String],
    skip: &HashSet<ResourceKey>,
    limit: usize,
    owner: &str,
    (now, until): (i64, i64),
) -> Result<Vec<Lease>> {
    use sea_orm::{ActiveEnum, DbBackend, Statement, Value};

    let mut values: Vec<Value> = vec![owner.into(), until.into(), now.into()];
    let placeholder = |value: Value, values: &mut Vec<Value>| {
        values.push(value);
        format!("${}", values.len())
    };
    let tenant_list: Vec<String> = tenants
        .iter()
        .map(|tenant| placeholder(tenant.clone().into(), &mut values))
        .collect();
    let skipped: Vec<String> = skip
        .iter()
        .map(|(tenant, kind, resource)| {
            format!(
                "({}, {}, {})",
                placeholder(tenant.clone().into(), &mut values),
                placeholder(kind.to_value().into(), &mut values),
                placeholder(resource.clone().into(), &mut values)
            )
        })
        .collect();
    let limit = placeholder(i64::try_from(limit).unwrap_or(i64::MAX).into(), &mut values);
    let not_skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!(
            "AND (tenant_id, kind, resource_id) NOT IN ({})",
            skipped.join(", ")
        )
    };
    let sql = format!(
        "UPDATE sync_state AS s SET lease_owner = $1, lease_until = $2 \
         FROM (SELECT tenant_id, kind, resource_id FROM sync_state \
               WHERE pending AND NOT parked AND next_attempt_at <= $3 \
                 AND (lease_until IS NULL OR lease_until < $3) \
                 AND tenant_id IN ({}) {not_skipped} \
               ORDER BY kind, updated_at LIMIT {limit} \
               FOR UPDATE SKIP LOCKED) AS due \
         WHERE s.tenant_id = due.tenant_id AND s.kind = due.kind \
           AND s.resource_id = due.resource_id \
         RETURNING s.*",
        tenant_list.join(", ")
    );
    let claimed = sync_state::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .all(store.db())
        .await?;
    Ok(into_leases(claimed, owner, now))
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
    writer: &QueueWriter,
    lease: &Lease,
    applied: Applied<'_>,
    audit: Vec<AuditEntry>,
    lease_for: Duration,
) -> Result<bool> {
    let until = now_ms() + i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX / 2);
    writer
        .submit(LeaseWrite {
            lease: lease.clone(),
            maas360_id: applied.maas360_id.map(str::to_owned),
            applied_json: applied.json.map(str::to_owned),
            audit,
            end: LeaseEnd::Renew { until },
        })
        .await
}

/// What MaaS360 holds now, as the worker leaves the resource.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Applied<'a> {
    pub(crate) maas360_id: Option<&'a str>,
    pub(crate) json: Option<&'a str>,
}

/// How a write leaves the lease.
#[derive(Debug, Clone)]
enum LeaseEnd {
    /// Kept, until `until` (unix ms).
    Renew { until: i64 },
    /// Given back: MaaS360 holds the desired version the worker saw.
    Succeed,
    /// Given back, due again at `at` without counting an attempt.
    Defer { at: i64 },
    /// Given back after a failed attempt.
    Fail {
        reason: String,
        park: bool,
        retry_at: i64,
        attempts: i32,
        at: i64,
    },
}

/// One worker's write to its leased resource: what MaaS360 holds, the audit of the calls
/// that got it there, and what becomes of the lease; applied in one transaction.
#[derive(Debug)]
struct LeaseWrite {
    lease: Lease,
    maas360_id: Option<String>,
    applied_json: Option<String>,
    audit: Vec<AuditEntry>,
    end: LeaseEnd,
}

impl LeaseWrite {
    /// Applies the write in `txn`; says whether the lease was still this worker's.
    async fn apply(&self, txn: &impl sea_orm::ConnectionTrait) -> Result<bool> {
        let lease = &self.lease;
        if matches!(self.end, LeaseEnd::Succeed) && lease.row.deleted && self.maas360_id.is_none() {
            // Gone from both sides: nothing is left to track.
            sync_state::Entity::delete_many()
                .filter(lease.key())
                .filter(sync_state::Column::DesiredSeq.eq(lease.row.desired_seq))
                .exec(txn)
                .await?;
        }
        let update = sync_state::Entity::update_many()
            .col_expr(
                sync_state::Column::Maas360Id,
                Expr::value(self.maas360_id.clone()),
            )
            .col_expr(
                sync_state::Column::AppliedJson,
                Expr::value(self.applied_json.clone()),
            );
        let update = match &self.end {
            LeaseEnd::Renew { until } => {
                update.col_expr(sync_state::Column::LeaseUntil, Expr::value(*until))
            }
            end => {
                let update = update
                    .col_expr(
                        sync_state::Column::LeaseOwner,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(
                        sync_state::Column::LeaseUntil,
                        Expr::value(Option::<i64>::None),
                    );
                match end {
                    LeaseEnd::Succeed => {
                        let seen = lease.row.desired_seq;
                        update
                            .col_expr(sync_state::Column::AppliedSeq, Expr::value(seen))
                            // A change that arrived meanwhile keeps the resource pending, so
                            // it is reconciled again.
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
                    }
                    LeaseEnd::Defer { at } => {
                        update.col_expr(sync_state::Column::NextAttemptAt, Expr::value(*at))
                    }
                    LeaseEnd::Fail {
                        reason,
                        park,
                        retry_at,
                        attempts,
                        at,
                    } => {
                        let update = update
                            .col_expr(sync_state::Column::Attempts, Expr::value(*attempts))
                            .col_expr(sync_state::Column::LastError, Expr::value(reason.clone()))
                            .col_expr(sync_state::Column::NextAttemptAt, Expr::value(*retry_at));
                        if *park {
                            update
                                .col_expr(sync_state::Column::Parked, Expr::value(true))
                                .col_expr(sync_state::Column::ParkedAt, Expr::value(*at))
                        } else {
                            update
                        }
                    }
                    LeaseEnd::Renew { .. } => update,
                }
            }
        };
        let updated = update.filter(lease.key()).exec(txn).await?;
        write_audit(txn, lease, &self.audit).await?;
        Ok(updated.rows_affected == 1)
    }
}

/// The workers' lease writes. On SQLite they are group-committed: one transaction per finished
/// resource would bound a drain at a few hundred resources a second. PostgreSQL writes in
/// parallel on its own connections, which one serial writer would only hold back: there each
/// write goes alone.
#[derive(Debug, Clone)]
pub(crate) struct QueueWriter {
    store: Store,
    group_commit: Option<Batcher<LeaseWriter>>,
}

/// Writes in one transaction at most.
const MAX_GROUP_COMMIT: usize = 128;

struct LeaseWriter {
    store: Store,
}

impl Batched for LeaseWriter {
    type Item = LeaseWrite;
    type Output = bool;

    async fn together(&self, writes: &[LeaseWrite]) -> Result<Vec<Result<bool>>> {
        let write = self.store.write().await?;
        let mut results = Vec::with_capacity(writes.len());
        for lease_write in writes {
            results.push(Ok(lease_write.apply(&write.txn).await?));
        }
        write.commit().await?;
        Ok(results)
    }

    async fn alone(&self, lease_write: &LeaseWrite) -> Result<bool> {
        apply_alone(&self.store, lease_write).await
    }
}

impl QueueWriter {
    /// Starts the writer; it stops when the last handle is dropped.
    pub(crate) fn spawn(store: Store) -> Self {
        let group_commit = dirsync_store::single_writer(store.db()).then(|| {
            let writer = LeaseWriter {
                store: store.clone(),
            };
            Batcher::spawn(
                writer,
                "queue writer",
                MAX_GROUP_COMMIT,
                MAX_GROUP_COMMIT * 4,
                1,
            )
        });
        Self {
            store,
            group_commit,
        }
    }

    async fn submit(&self, write: LeaseWrite) -> Result<bool> {
        match &self.group_commit {
            Some(group_commit) => group_commit.submit(write).await,
            None => apply_alone(&self.store, &write).await,
        }
    }
}

async fn apply_alone(store: &Store, lease_write: &LeaseWrite) -> Result<bool> {
    let write = store.write().await?;
    let kept = lease_write.apply(&write.txn).await?;
    write.commit().await?;
    Ok(kept)
}

/// Ends the lease: MaaS360 holds the desired version the worker saw. A change that arrived
/// meanwhile keeps the resource pending, so it is reconciled again; a resource gone from both
/// sides stops being tracked.
pub(crate) async fn succeed(
    writer: &QueueWriter,
    lease: &Lease,
    applied: Applied<'_>,
    audit: Vec<AuditEntry>,
) -> Result<()> {
    release(writer, lease, applied, audit, LeaseEnd::Succeed).await
}

/// Not done yet, through no failure (a group it joins does not exist in
/// MaaS360 yet): try again soon without counting an attempt.
pub(crate) async fn defer(
    writer: &QueueWriter,
    lease: &Lease,
    applied: Applied<'_>,
    delay: Duration,
    audit: Vec<AuditEntry>,
) -> Result<()> {
    let at = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
    release(writer, lease, applied, audit, LeaseEnd::Defer { at }).await
}

/// A failed attempt: retried at `retry_at`, or parked with its reason.
pub(crate) async fn fail(
    writer: &QueueWriter,
    lease: &Lease,
    applied: Applied<'_>,
    failure: Failure<'_>,
    audit: Vec<AuditEntry>,
) -> Result<()> {
    let end = LeaseEnd::Fail {
        reason: failure.reason.to_owned(),
        park: failure.park,
        retry_at: failure.retry_at,
        attempts: failure.attempts,
        at: now_ms(),
    };
    release(writer, lease, applied, audit, end).await
}

async fn release(
    writer: &QueueWriter,
    lease: &Lease,
    applied: Applied<'_>,
    audit: Vec<AuditEntry>,
    end: LeaseEnd,
) -> Result<()> {
    writer
        .submit(LeaseWrite {
            lease: lease.clone(),
            maas360_id: applied.maas360_id.map(str::to_owned),
            applied_json: applied.json.map(str::to_owned),
            audit,
            end,
        })
        .await?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use sea_orm::{ActiveModelTrait, EntityTrait, Set};

    use super::{ResourceKey, claim_due};
    use crate::entity::{ResourceKind, sync_state};
    use crate::store::{Store, now_ms};

    async fn queue(
        store: &Store,
        kind: ResourceKind,
        id: &str,
        edit: impl FnOnce(&mut sync_state::ActiveModel),
    ) {
        let mut row = sync_state::ActiveModel {
            tenant_id: Set("t".to_owned()),
            kind: Set(kind),
            resource_id: Set(id.to_owned()),
            desired_seq: Set(1),
            applied_seq: Set(0),
            pending: Set(true),
            deleted: Set(false),
            updated_at: Set(1),
            lease_owner: Set(None),
            lease_until: Set(None),
            attempts: Set(0),
            next_attempt_at: Set(0),
            last_error: Set(None),
            parked: Set(false),
            parked_at: Set(None),
            maas360_id: Set(None),
            applied_json: Set(None),
        };
        edit(&mut row);
        row.insert(store.db()).await.expect("queued");
    }

    #[tokio::test]
    async fn racing_claimers_lease_each_due_resource_once_groups_first() {
        let (_database, store) = crate::store::test_store().await;
        for index in 0..120 {
            queue(&store, ResourceKind::User, &format!("u{index:03}"), |_| {}).await;
        }
        for index in 0..10 {
            queue(&store, ResourceKind::Group, &format!("g{index}"), |_| {}).await;
        }
        // Not due: parked, waiting out a backoff, leased by a live worker, in sync.
        queue(&store, ResourceKind::User, "parked", |row| {
            row.parked = Set(true)
        })
        .await;
        queue(&store, ResourceKind::User, "later", |row| {
            row.next_attempt_at = Set(now_ms() + 60_000);
        })
        .await;
        queue(&store, ResourceKind::User, "leased", |row| {
            row.lease_owner = Set(Some("elsewhere".to_owned()));
            row.lease_until = Set(Some(now_ms() + 60_000));
        })
        .await;
        queue(&store, ResourceKind::User, "done", |row| {
            row.pending = Set(false)
        })
        .await;

        let tenants = vec!["t".to_owned()];
        let first = claim_due(
            &store,
            &tenants,
            &HashSet::new(),
            16,
            "a",
            Duration::from_secs(60),
        )
        .await
        .expect("claim");
        assert_eq!(first.len(), 16);
        assert!(
            first
                .iter()
                .take(10)
                .all(|lease| lease.row.kind == ResourceKind::Group),
            "groups come first: users join them"
        );

        let claimer = |owner: &'static str| {
            let (store, tenants) = (store.clone(), tenants.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = claim_due(
                        &store,
                        &tenants,
                        &HashSet::new(),
                        7,
                        owner,
                        Duration::from_secs(60),
                    )
                    .await
                    .expect("claim");
                    if batch.is_empty() {
                        return mine;
                    }
                    assert!(
                        batch
                            .iter()
                            .all(|lease| lease.row.lease_owner.as_deref() == Some(owner))
                    );
                    mine.extend(batch.into_iter().map(|lease| lease.row.resource_id));
                }
            })
        };
        let (b, c) = (claimer("b"), claimer("c"));
        let (b, c) = (b.await.expect("b"), c.await.expect("c"));
        let mut all: Vec<String> = first
            .iter()
            .map(|lease| lease.row.resource_id.clone())
            .collect();
        all.extend(b);
        all.extend(c);
        let distinct: HashSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "a resource was leased twice");
        assert_eq!(all.len(), 130, "every due resource once, nothing else");
        for not_due in ["parked", "later", "leased", "done"] {
            assert!(
                !distinct.contains(&not_due.to_owned()),
                "{not_due} was claimed"
            );
        }
    }

    #[tokio::test]
    async fn a_claim_skips_what_this_process_still_works_on() {
        let (_database, store) = crate::store::test_store().await;
        for id in ["u1", "u2", "u3"] {
            queue(&store, ResourceKind::User, id, |_| {}).await;
        }
        // u1's lease ran out while this process still works on it (a slow attempt).
        let skip: HashSet<ResourceKey> =
            [("t".to_owned(), ResourceKind::User, "u1".to_owned())].into();
        let claimed = claim_due(
            &store,
            &["t".to_owned()],
            &skip,
            2,
            "a",
            Duration::from_secs(60),
        )
        .await
        .expect("claim");
        let ids: Vec<&str> = claimed
            .iter()
            .map(|lease| lease.row.resource_id.as_str())
            .collect();
        assert_eq!(ids, ["u2", "u3"]);
        let row =
            sync_state::Entity::find_by_id(("t".to_owned(), ResourceKind::User, "u1".to_owned()))
                .one(store.db())
                .await
                .expect("read")
                .expect("u1");
        assert_eq!(row.lease_owner, None);
    }
}
