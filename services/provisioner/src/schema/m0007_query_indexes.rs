use sea_orm_migration::prelude::*;

pub(super) struct Migration;

// Named explicitly, so that moving the file never renames an applied migration.
impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0007_query_indexes"
    }
}

#[derive(DeriveIden)]
enum GroupMembers {
    Table,
    TenantId,
    UserId,
    GroupId,
}

#[derive(DeriveIden)]
enum SyncState {
    Table,
    Pending,
    Parked,
    Kind,
    UpdatedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The workers ask for due work in (kind, updated_at) order after every attempt. With
        // the index on next_attempt_at, SQLite read every due row and sorted them each time: a
        // backlog of 10k resources cost milliseconds per dispatch. In this order the first rows
        // that qualify end the scan.
        manager
            .drop_index(
                Index::drop()
                    .name("sync_state_due")
                    .table(SyncState::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sync_state_due_order")
                    .table(SyncState::Table)
                    .col(SyncState::Pending)
                    .col(SyncState::Parked)
                    .col(SyncState::Kind)
                    .col(SyncState::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        // A user's groups are read on every attempt on the user. SQLite preferred the primary
        // key (tenant, group, user), which covers the query but matches only the tenant, over
        // (tenant, user), which did not cover it: each attempt read every membership of the
        // tenant. With the group in the index too, it covers the query and matches the user.
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS group_members_user")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("group_members_user_group")
                    .table(GroupMembers::Table)
                    .col(GroupMembers::TenantId)
                    .col(GroupMembers::UserId)
                    .col(GroupMembers::GroupId)
                    .to_owned(),
            )
            .await
    }
}
