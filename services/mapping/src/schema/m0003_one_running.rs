use sea_orm_migration::prelude::*;

pub(super) struct Migration;

// Named explicitly, so that moving the file never renames an applied migration.
impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_one_running"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // At most one running migration operation per tenant, even when two applies race past
        // the service's own check (SQLite and PostgreSQL both take a partial unique index).
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX migration_operations_one_running \
                 ON migration_operations (tenant_id) WHERE state = 'running'",
            )
            .await?;
        Ok(())
    }
}
