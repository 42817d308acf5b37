//! The mapping service's tables (see `schema`): mappings, migration operations with their
//! lease, and what each affected user received before an apply.

use std::time::{SystemTime, UNIX_EPOCH};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, ExprTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::entity::{group_mapping, operation, record};
use crate::error::{MappingError, Result};

/// Rows per INSERT (well inside every backend's parameter limit).
const ROWS_PER_STATEMENT: usize = 200;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[derive(Clone, Debug)]
pub(crate) struct Store {
    db: DatabaseConnection,
}

/// A new operation with what it rests on.
pub(crate) struct NewOperation {
    pub(crate) row: operation::Model,
    pub(crate) records: Vec<record::Model>,
    pub(crate) mapping_ids: Vec<String>,
}

impl Store {
    pub(crate) fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn write(&self) -> Result<DatabaseTransaction> {
        Ok(dirsync_store::begin_write(&self.db).await?)
    }

    // ----- mappings -----

    pub(crate) async fn mappings(&self, tenant_id: &str) -> Result<Vec<group_mapping::Model>> {
        Ok(group_mapping::Entity::find()
            .filter(group_mapping::Column::TenantId.eq(tenant_id))
            .order_by_asc(group_mapping::Column::CreatedAt)
            .order_by_asc(group_mapping::Column::MappingId)
            .all(&self.db)
            .await?)
    }

    pub(crate) async fn mapping_page(
        &self,
        tenant_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<group_mapping::Model>, u64)> {
        let query =
            group_mapping::Entity::find().filter(group_mapping::Column::TenantId.eq(tenant_id));
        let total = query.clone().count(&self.db).await?;
        let page = query
            .order_by_asc(group_mapping::Column::CreatedAt)
            .order_by_asc(group_mapping::Column::MappingId)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok((page, total))
    }

    pub(crate) async fn mapping(
        &self,
        tenant_id: &str,
        mapping_id: &str,
    ) -> Result<Option<group_mapping::Model>> {
        Ok(
            group_mapping::Entity::find_by_id((tenant_id.to_owned(), mapping_id.to_owned()))
                .one(&self.db)
                .await?,
        )
    }

    /// Whether the tenant has any mapping (the provisioner's resolution asks it first).
    pub(crate) async fn has_mappings(&self, tenant_id: &str) -> Result<bool> {
        Ok(group_mapping::Entity::find()
            .filter(group_mapping::Column::TenantId.eq(tenant_id))
            .count(&self.db)
            .await?
            > 0)
    }

    /// Inserts a mapping; the unique indexes refuse a second mapping of either group even when
    /// two requests race past the caller's check.
    pub(crate) async fn insert_mapping(&self, row: group_mapping::Model) -> Result<()> {
        let txn = self.write().await?;
        match group_mapping::Entity::insert(group_mapping::ActiveModel::from(row))
            .exec(&txn)
            .await
        {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(MappingError::refused(
                    dirsync_proto::errors::ErrorReason::AlreadyExists,
                    "another mapping of one of these groups was created at the same moment",
                ));
            }
            Err(error) => return Err(error.into()),
        }
        txn.commit().await?;
        Ok(())
    }

    /// Writes a changed mapping unless an apply has taken it meanwhile.
    pub(crate) async fn update_mapping(&self, row: &group_mapping::Model) -> Result<bool> {
        let updated = group_mapping::Entity::update_many()
            .col_expr(group_mapping::Column::Mode, Expr::value(row.mode.clone()))
            .col_expr(group_mapping::Column::State, Expr::value(row.state.clone()))
            .col_expr(group_mapping::Column::Prune, Expr::value(row.prune))
            .col_expr(
                group_mapping::Column::EntraGroupName,
                Expr::value(row.entra_group_name.clone()),
            )
            .col_expr(
                group_mapping::Column::UpdatedAt,
                Expr::value(row.updated_at),
            )
            .filter(group_mapping::Column::TenantId.eq(row.tenant_id.clone()))
            .filter(group_mapping::Column::MappingId.eq(row.mapping_id.clone()))
            .filter(group_mapping::Column::State.is_not_in(["applying", "applied", "verified"]))
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    pub(crate) async fn delete_mapping(&self, tenant_id: &str, mapping_id: &str) -> Result<bool> {
        let deleted = group_mapping::Entity::delete_many()
            .filter(group_mapping::Column::TenantId.eq(tenant_id))
            .filter(group_mapping::Column::MappingId.eq(mapping_id))
            .filter(group_mapping::Column::State.is_not_in(["applying", "applied", "verified"]))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected == 1)
    }

    /// Records the copy an apply created (or found), before anything is put on it.
    pub(crate) async fn set_target(
        &self,
        tenant_id: &str,
        mapping_id: &str,
        group_id: &str,
        group_name: &str,
    ) -> Result<()> {
        group_mapping::Entity::update_many()
            .col_expr(group_mapping::Column::TargetGroupId, Expr::value(group_id))
            .col_expr(
                group_mapping::Column::TargetGroupName,
                Expr::value(group_name),
            )
            .col_expr(group_mapping::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(group_mapping::Column::TenantId.eq(tenant_id))
            .filter(group_mapping::Column::MappingId.eq(mapping_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The Entra group writes to its target from now on.
    pub(crate) async fn bind(
        &self,
        tenant_id: &str,
        mapping_id: &str,
        group_id: &str,
        group_name: &str,
    ) -> Result<()> {
        group_mapping::Entity::update_many()
            .col_expr(group_mapping::Column::TargetGroupId, Expr::value(group_id))
            .col_expr(
                group_mapping::Column::TargetGroupName,
                Expr::value(group_name),
            )
            .col_expr(group_mapping::Column::State, Expr::value("applied"))
            .col_expr(group_mapping::Column::LastError, Expr::value(""))
            .col_expr(group_mapping::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(group_mapping::Column::TenantId.eq(tenant_id))
            .filter(group_mapping::Column::MappingId.eq(mapping_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The operation's mappings that verified clean.
    pub(crate) async fn mark_verified(&self, tenant_id: &str, operation_id: &str) -> Result<()> {
        group_mapping::Entity::update_many()
            .col_expr(group_mapping::Column::State, Expr::value("verified"))
            .col_expr(group_mapping::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(group_mapping::Column::TenantId.eq(tenant_id))
            .filter(group_mapping::Column::OperationId.eq(operation_id))
            .filter(group_mapping::Column::State.eq("applied"))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    // ----- operations -----

    /// Creates the operation, records every affected user's distributions and marks its
    /// mappings as being applied, in one transaction: an apply either rests on a full record
    /// or did not start.
    pub(crate) async fn start_operation(&self, new: NewOperation) -> Result<()> {
        let txn = self.write().await?;
        let operation_id = new.row.operation_id.clone();
        let tenant_id = new.row.tenant_id.clone();
        let created_at = new.row.created_at;
        match operation::Entity::insert(operation::ActiveModel::from(new.row))
            .exec(&txn)
            .await
        {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(MappingError::refused(
                    dirsync_proto::errors::ErrorReason::StalePlan,
                    "another migration of this tenant started at the same moment; wait for it, \
                     then plan again",
                ));
            }
            Err(error) => return Err(error.into()),
        }
        for chunk in new.records.chunks(ROWS_PER_STATEMENT) {
            record::Entity::insert_many(chunk.iter().cloned().map(record::ActiveModel::from))
                .exec(&txn)
                .await?;
        }
        for mapping_id in &new.mapping_ids {
            group_mapping::Entity::update_many()
                .col_expr(group_mapping::Column::State, Expr::value("applying"))
                .col_expr(
                    group_mapping::Column::OperationId,
                    Expr::value(operation_id.clone()),
                )
                .col_expr(group_mapping::Column::UpdatedAt, Expr::value(created_at))
                .filter(group_mapping::Column::TenantId.eq(tenant_id.clone()))
                .filter(group_mapping::Column::MappingId.eq(mapping_id.clone()))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    pub(crate) async fn operation(
        &self,
        tenant_id: &str,
        operation_id: &str,
    ) -> Result<Option<operation::Model>> {
        Ok(operation::Entity::find_by_id(operation_id.to_owned())
            .filter(operation::Column::TenantId.eq(tenant_id))
            .one(&self.db)
            .await?)
    }

    /// The tenant's latest operation, of `state` when given.
    pub(crate) async fn latest_operation(
        &self,
        tenant_id: &str,
        state: Option<&str>,
    ) -> Result<Option<operation::Model>> {
        let mut query = operation::Entity::find().filter(operation::Column::TenantId.eq(tenant_id));
        if let Some(state) = state {
            query = query.filter(operation::Column::State.eq(state));
        }
        Ok(query
            .order_by_desc(operation::Column::CreatedAt)
            .order_by_desc(operation::Column::OperationId)
            .one(&self.db)
            .await?)
    }

    /// The latest operation that carried out (or is carrying out) this plan.
    pub(crate) async fn operation_for_plan(
        &self,
        tenant_id: &str,
        plan_id: &str,
    ) -> Result<Option<operation::Model>> {
        Ok(operation::Entity::find()
            .filter(operation::Column::TenantId.eq(tenant_id))
            .filter(operation::Column::PlanId.eq(plan_id))
            .order_by_desc(operation::Column::CreatedAt)
            .one(&self.db)
            .await?)
    }

    pub(crate) async fn operation_mappings(
        &self,
        tenant_id: &str,
        operation_id: &str,
    ) -> Result<Vec<group_mapping::Model>> {
        Ok(group_mapping::Entity::find()
            .filter(group_mapping::Column::TenantId.eq(tenant_id))
            .filter(group_mapping::Column::OperationId.eq(operation_id))
            .order_by_asc(group_mapping::Column::MappingId)
            .all(&self.db)
            .await?)
    }

    /// Running operations nobody holds (their holder stopped or died).
    pub(crate) async fn orphaned_operations(&self, now: i64) -> Result<Vec<String>> {
        Ok(operation::Entity::find()
            .select_only()
            .column(operation::Column::OperationId)
            .filter(operation::Column::State.eq("running"))
            .filter(operation::Column::LeaseUntil.lt(now))
            .order_by_asc(operation::Column::CreatedAt)
            .into_tuple::<String>()
            .all(&self.db)
            .await?)
    }

    /// Takes an operation's lease unless another holder's still runs.
    pub(crate) async fn claim(
        &self,
        operation_id: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<bool> {
        let taken = operation::Entity::update_many()
            .col_expr(operation::Column::LeaseOwner, Expr::value(owner))
            .col_expr(operation::Column::LeaseUntil, Expr::value(until))
            .filter(operation::Column::OperationId.eq(operation_id))
            .filter(operation::Column::State.eq("running"))
            .filter(
                operation::Column::LeaseUntil
                    .lt(now)
                    .or(operation::Column::LeaseOwner.eq(owner)),
            )
            .exec(&self.db)
            .await?;
        Ok(taken.rows_affected == 1)
    }

    /// Records a step done and renews the lease; false when the lease was lost.
    pub(crate) async fn progress(
        &self,
        operation_id: &str,
        owner: &str,
        steps_done: i32,
        until: i64,
    ) -> Result<bool> {
        let updated = operation::Entity::update_many()
            .col_expr(operation::Column::StepsDone, Expr::value(steps_done))
            .col_expr(operation::Column::LeaseUntil, Expr::value(until))
            .col_expr(operation::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(operation::Column::OperationId.eq(operation_id))
            .filter(operation::Column::LeaseOwner.eq(owner))
            .filter(operation::Column::State.eq("running"))
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Notes a transient failure and renews the lease while the step is retried.
    pub(crate) async fn note_retry(
        &self,
        operation_id: &str,
        owner: &str,
        error: &str,
        until: i64,
    ) -> Result<()> {
        operation::Entity::update_many()
            .col_expr(operation::Column::LastError, Expr::value(error))
            .col_expr(operation::Column::LeaseUntil, Expr::value(until))
            .col_expr(operation::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(operation::Column::OperationId.eq(operation_id))
            .filter(operation::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Ends an operation: succeeded, or failed with its mappings marked failed.
    pub(crate) async fn finish(
        &self,
        row: &operation::Model,
        owner: &str,
        failure: Option<&str>,
    ) -> Result<()> {
        let txn = self.write().await?;
        let now = now_ms();
        operation::Entity::update_many()
            .col_expr(
                operation::Column::State,
                Expr::value(if failure.is_some() {
                    "failed"
                } else {
                    "succeeded"
                }),
            )
            .col_expr(
                operation::Column::LastError,
                Expr::value(failure.unwrap_or("")),
            )
            .col_expr(operation::Column::LeaseUntil, Expr::value(0i64))
            .col_expr(operation::Column::UpdatedAt, Expr::value(now))
            .filter(operation::Column::OperationId.eq(row.operation_id.clone()))
            .filter(operation::Column::LeaseOwner.eq(owner))
            .exec(&txn)
            .await?;
        if let Some(error) = failure {
            group_mapping::Entity::update_many()
                .col_expr(group_mapping::Column::State, Expr::value("failed"))
                .col_expr(group_mapping::Column::LastError, Expr::value(error))
                .col_expr(group_mapping::Column::UpdatedAt, Expr::value(now))
                .filter(group_mapping::Column::TenantId.eq(row.tenant_id.clone()))
                .filter(group_mapping::Column::OperationId.eq(row.operation_id.clone()))
                .filter(group_mapping::Column::State.eq("applying"))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Gives the lease back at shutdown, so that the next process resumes at once.
    pub(crate) async fn release(&self, operation_id: &str, owner: &str) -> Result<()> {
        operation::Entity::update_many()
            .col_expr(operation::Column::LeaseUntil, Expr::value(0i64))
            .filter(operation::Column::OperationId.eq(operation_id))
            .filter(operation::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub(crate) async fn operation_row(
        &self,
        operation_id: &str,
    ) -> Result<Option<operation::Model>> {
        Ok(operation::Entity::find_by_id(operation_id.to_owned())
            .one(&self.db)
            .await?)
    }

    pub(crate) async fn records(&self, operation_id: &str) -> Result<Vec<record::Model>> {
        Ok(record::Entity::find()
            .filter(record::Column::OperationId.eq(operation_id))
            .order_by_asc(record::Column::UserKey)
            .all(&self.db)
            .await?)
    }
}

fn is_unique_violation(error: &sea_orm::DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(tenant_id: &str, operation_id: &str) -> NewOperation {
        NewOperation {
            row: operation::Model {
                operation_id: operation_id.to_owned(),
                tenant_id: tenant_id.to_owned(),
                plan_id: format!("plan-{operation_id}"),
                state: "running".to_owned(),
                plan: Vec::new(),
                steps_total: 1,
                steps_done: 0,
                users_recorded: 0,
                last_error: String::new(),
                lease_owner: String::new(),
                lease_until: 0,
                created_at: now_ms(),
                updated_at: now_ms(),
            },
            records: Vec::new(),
            mapping_ids: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_tenant_has_at_most_one_running_operation_even_when_two_applies_race() {
        let database = dirsync_store::testing::TestDatabase::new();
        let db = dirsync_store::connect(database.options())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        dirsync_store::migrate::<crate::Migrator>(&db, crate::SERVICE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let store = Store::new(db);
        let (first, second) = tokio::join!(
            store.start_operation(running("t1", "op-1")),
            store.start_operation(running("t1", "op-2")),
        );
        assert_eq!(
            usize::from(first.is_ok()) + usize::from(second.is_ok()),
            1,
            "{first:?} {second:?}"
        );
        let refused = first.err().or(second.err());
        assert!(
            matches!(&refused, Some(MappingError::Refused(e)) if e.reason() == dirsync_proto::errors::ErrorReason::StalePlan),
            "{refused:?}"
        );
        // Another tenant, and the same tenant once the first has ended, may start one.
        store
            .start_operation(running("t2", "op-3"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
