//! User creates, the hot path of Entra's initial cycle, written by [`Batcher`]: tenants and
//! userName uniqueness are checked for a whole batch with one query each, and the batch is
//! inserted together.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use crate::batching::{Batched, Batcher};
use crate::entity::ResourceKind;
use crate::entity::{sync_state, tenant, user};
use crate::error::{ProvisionerError, Result, quoted};
use crate::store::{Store, mark_pending, now_ms};

/// Creates written in one transaction at most.
const MAX_BATCH: usize = 256;
/// Creates waiting for the writer at most; callers beyond wait to enqueue.
const QUEUE_BOUND: usize = 4096;

/// Inserts users and queues them for MaaS360, many creates to a transaction.
#[derive(Debug, Clone)]
pub(crate) struct UserCreates {
    commit: Batcher<UserCreateWriter>,
}

impl UserCreates {
    pub(crate) fn spawn(store: Store) -> Self {
        let in_flight = store.write_batches_in_flight();
        let writer = UserCreateWriter { store };
        Self {
            commit: Batcher::spawn(
                writer,
                "user create writer",
                MAX_BATCH,
                QUEUE_BOUND,
                in_flight,
            ),
        }
    }

    /// Inserts `row` and queues it for MaaS360, durably, before returning.
    pub(crate) async fn create(&self, row: user::Model) -> Result<()> {
        self.commit.submit(row).await
    }
}

struct UserCreateWriter {
    store: Store,
}

impl Batched for UserCreateWriter {
    type Item = user::Model;
    type Output = ();

    async fn together(&self, rows: &[user::Model]) -> Result<Vec<Result<()>>> {
        write_batch(&self.store, rows).await
    }

    async fn alone(&self, row: &user::Model) -> Result<()> {
        write_one(&self.store, row).await
    }
}

fn taken(row: &user::Model) -> ProvisionerError {
    ProvisionerError::already_exists(
        "userName",
        format!("userName {} is already taken", quoted(&row.user_name)),
    )
}

fn unknown_tenant(row: &user::Model) -> ProvisionerError {
    ProvisionerError::not_found(
        dirsync_proto::errors::ErrorReason::TenantNotFound,
        "tenant",
        &row.tenant_id,
    )
}

/// The whole batch in one transaction; per-row answers for rows refused.
async fn write_batch(store: &Store, rows: &[user::Model]) -> Result<Vec<Result<()>>> {
    let write = store.write().await?;
    let tenant_ids: Vec<String> = rows
        .iter()
        .map(|row| row.tenant_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let known: BTreeSet<String> = tenant::Entity::find()
        .select_only()
        .column(tenant::Column::TenantId)
        .filter(tenant::Column::TenantId.is_in(tenant_ids))
        .into_tuple::<String>()
        .all(&write.txn)
        .await?
        .into_iter()
        .collect();
    let mut wanted: HashMap<&str, Vec<String>> = HashMap::new();
    for row in rows {
        wanted
            .entry(row.tenant_id.as_str())
            .or_default()
            .push(row.user_name_key.clone());
    }
    let mut existing: BTreeSet<(String, String)> = BTreeSet::new();
    for (tenant_id, keys) in wanted {
        for chunk in keys.chunks(500) {
            let found: Vec<String> = user::Entity::find()
                .select_only()
                .column(user::Column::UserNameKey)
                .filter(user::Column::TenantId.eq(tenant_id))
                .filter(user::Column::UserNameKey.is_in(chunk.to_vec()))
                .into_tuple()
                .all(&write.txn)
                .await?;
            existing.extend(found.into_iter().map(|key| (tenant_id.to_owned(), key)));
        }
    }
    let mut results = Vec::with_capacity(rows.len());
    let mut accepted = Vec::new();
    for row in rows {
        if !known.contains(&row.tenant_id) {
            results.push(Err(unknown_tenant(row)));
        } else if !existing.insert((row.tenant_id.clone(), row.user_name_key.clone())) {
            // Taken before, or earlier in this very batch.
            results.push(Err(taken(row)));
        } else {
            results.push(Ok(()));
            accepted.push(row.clone());
        }
    }
    if !accepted.is_empty() {
        let now = now_ms();
        for chunk in accepted.chunks(64) {
            user::Entity::insert_many(chunk.iter().cloned().map(user::ActiveModel::from))
                .exec_without_returning(&write.txn)
                .await?;
            sync_state::Entity::insert_many(chunk.iter().map(|row| sync_state::ActiveModel {
                tenant_id: Set(row.tenant_id.clone()),
                kind: Set(ResourceKind::User),
                resource_id: Set(row.id.clone()),
                desired_seq: Set(1),
                applied_seq: Set(0),
                pending: Set(true),
                deleted: Set(false),
                updated_at: Set(now),
                attempts: Set(0),
                next_attempt_at: Set(0),
                parked: Set(false),
                ..Default::default()
            }))
            .exec_without_returning(&write.txn)
            .await?;
        }
    }
    write.commit().await?;
    Ok(results)
}

/// One create in its own transaction.
async fn write_one(store: &Store, row: &user::Model) -> Result<()> {
    let write = store.write().await?;
    if tenant::Entity::find_by_id(row.tenant_id.clone())
        .one(&write.txn)
        .await?
        .is_none()
    {
        return Err(unknown_tenant(row));
    }
    user::Entity::insert(user::ActiveModel::from(row.clone()))
        .exec_without_returning(&write.txn)
        .await
        .map_err(|error| {
            ProvisionerError::from(error).when_taken("userName", || taken(row).to_string())
        })?;
    mark_pending(
        &write.txn,
        &row.tenant_id,
        ResourceKind::User,
        &row.id,
        false,
    )
    .await?;
    write.commit().await
}
