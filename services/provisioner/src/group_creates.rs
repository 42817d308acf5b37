//! Group creates with their first members, written by [`Batcher`]. A pull sync creates a
//! tenant's groups by the thousand, each with its members; one transaction each spent most of
//! its time committing. In a batch, names and members are checked with one query per tenant,
//! and the members' queue marks are written once per user even when several groups of the batch
//! name it.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::batching::{Batched, Batcher};
use crate::entity::{ResourceKind, group};
use crate::error::{ProvisionerError, Result, quoted};
use crate::groups::{
    check_users_exist, existing_users, insert_members, mark_users_pending, refuse_unknown_members,
};
use crate::store::{Store, mark_pending, mark_pending_many, one_of};

/// Creates written in one transaction at most: each may carry thousands of members, so fewer
/// than user creates, to keep the writer's hold short.
const MAX_BATCH: usize = 32;
/// Creates waiting for the writer at most; callers beyond wait to enqueue.
const QUEUE_BOUND: usize = 256;
/// Names per `IN (…)` list.
const NAME_CHUNK: usize = 500;

/// A group to create and the users it starts with (deduplicated, validated for form).
#[derive(Debug, Clone)]
pub(crate) struct NewGroup {
    pub(crate) row: group::Model,
    pub(crate) members: Vec<String>,
}

/// Inserts groups with their members and queues them (and the members) for MaaS360.
#[derive(Debug, Clone)]
pub(crate) struct GroupCreates {
    commit: Batcher<GroupCreateWriter>,
}

impl GroupCreates {
    pub(crate) fn spawn(store: Store) -> Self {
        let in_flight = store.write_batches_in_flight();
        let writer = GroupCreateWriter { store };
        Self {
            commit: Batcher::spawn(
                writer,
                "group create writer",
                MAX_BATCH,
                QUEUE_BOUND,
                in_flight,
            ),
        }
    }

    /// Creates the group, durably, before returning; a taken name or an unknown member
    /// refuses it and writes nothing of it.
    pub(crate) async fn create(&self, group: NewGroup) -> Result<()> {
        self.commit.submit(group).await
    }
}

struct GroupCreateWriter {
    store: Store,
}

fn name_taken_message(row: &group::Model) -> String {
    format!("a group named {} already exists", quoted(&row.display_name))
}

impl Batched for GroupCreateWriter {
    type Item = NewGroup;
    type Output = ();

    async fn together(&self, groups: &[NewGroup]) -> Result<Vec<Result<()>>> {
        let write = self.store.write().await?;
        let mut by_tenant: BTreeMap<&str, Vec<&NewGroup>> = BTreeMap::new();
        for new in groups {
            by_tenant
                .entry(new.row.tenant_id.as_str())
                .or_default()
                .push(new);
        }
        let mut names_taken: BTreeSet<(String, String)> = BTreeSet::new();
        let mut members_found: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let backend = self.store.db().get_database_backend();
        for (tenant_id, tenant_groups) in &by_tenant {
            let names: Vec<String> = tenant_groups
                .iter()
                .map(|new| new.row.display_name_key.clone())
                .collect();
            for chunk in names.chunks(NAME_CHUNK) {
                let taken: Vec<String> = group::Entity::find()
                    .select_only()
                    .column(group::Column::DisplayNameKey)
                    .filter(group::Column::TenantId.eq(*tenant_id))
                    .filter(one_of(backend, group::Column::DisplayNameKey, chunk))
                    .into_tuple()
                    .all(&write.txn)
                    .await?;
                names_taken.extend(taken.into_iter().map(|key| ((*tenant_id).to_owned(), key)));
            }
            let members: Vec<String> = tenant_groups
                .iter()
                .flat_map(|new| new.members.iter().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            members_found.insert(
                tenant_id,
                existing_users(&write.txn, tenant_id, &members).await?,
            );
        }

        let mut results = Vec::with_capacity(groups.len());
        let mut accepted: Vec<&NewGroup> = Vec::new();
        for new in groups {
            let tenant_id = new.row.tenant_id.as_str();
            let found = members_found.get(tenant_id);
            let verdict = refuse_unknown_members(&new.members, found.unwrap_or(&BTreeSet::new()))
                .and_then(|()| {
                    // Taken before, or by a group earlier in this very batch.
                    let key = (tenant_id.to_owned(), new.row.display_name_key.clone());
                    if names_taken.insert(key) {
                        Ok(())
                    } else {
                        Err(ProvisionerError::already_exists(
                            "display_name",
                            name_taken_message(&new.row),
                        ))
                    }
                });
            if verdict.is_ok() {
                accepted.push(new);
            }
            results.push(verdict);
        }

        for chunk in accepted.chunks(64) {
            group::Entity::insert_many(
                chunk
                    .iter()
                    .map(|new| group::ActiveModel::from(new.row.clone())),
            )
            .exec_without_returning(&write.txn)
            .await?;
        }
        let mut marks: BTreeMap<&str, (Vec<String>, BTreeSet<String>)> = BTreeMap::new();
        for new in &accepted {
            insert_members(&write.txn, &new.row.tenant_id, &new.row.id, &new.members).await?;
            let (group_ids, user_ids) = marks.entry(new.row.tenant_id.as_str()).or_default();
            group_ids.push(new.row.id.clone());
            user_ids.extend(new.members.iter().cloned());
        }
        for (tenant_id, (group_ids, user_ids)) in marks {
            mark_pending_many(
                &write.txn,
                tenant_id,
                ResourceKind::Group,
                &group_ids,
                false,
            )
            .await?;
            let user_ids: Vec<String> = user_ids.into_iter().collect();
            mark_users_pending(&write.txn, tenant_id, &user_ids).await?;
        }
        write.commit().await?;
        Ok(results)
    }

    async fn alone(&self, new: &NewGroup) -> Result<()> {
        let row = &new.row;
        let write = self.store.write().await?;
        check_users_exist(&write.txn, &row.tenant_id, &new.members).await?;
        group::Entity::insert(group::ActiveModel::from(row.clone()))
            .exec_without_returning(&write.txn)
            .await
            .map_err(|error| {
                ProvisionerError::from(error).when_taken("display_name", || name_taken_message(row))
            })?;
        insert_members(&write.txn, &row.tenant_id, &row.id, &new.members).await?;
        mark_pending(
            &write.txn,
            &row.tenant_id,
            ResourceKind::Group,
            &row.id,
            false,
        )
        .await?;
        mark_users_pending(&write.txn, &row.tenant_id, &new.members).await?;
        write.commit().await
    }
}
