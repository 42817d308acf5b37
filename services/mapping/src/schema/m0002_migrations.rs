use sea_orm_migration::prelude::*;

pub(super) struct Migration;

// Named explicitly, so that moving the file never renames an applied migration.
impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_migrations"
    }
}

#[derive(DeriveIden)]
enum GroupMappings {
    Table,
    TenantId,
    Maas360GroupId,
    Prune,
    TargetGroupId,
    TargetGroupName,
    OperationId,
    LastError,
}

#[derive(DeriveIden)]
enum MigrationOperations {
    Table,
    TenantId,
    OperationId,
    PlanId,
    State,
    Plan,
    StepsTotal,
    StepsDone,
    UsersRecorded,
    LastError,
    LeaseOwner,
    LeaseUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MigrationRecords {
    Table,
    OperationId,
    UserKey,
    Maas360UserId,
    Distributions,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            ColumnDef::new(GroupMappings::Prune)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
            ColumnDef::new(GroupMappings::TargetGroupId)
                .string()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(GroupMappings::TargetGroupName)
                .string()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(GroupMappings::OperationId)
                .string()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(GroupMappings::LastError)
                .text()
                .not_null()
                .default("")
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(GroupMappings::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // A MaaS360 group is the target of at most one Entra group.
        manager
            .create_index(
                Index::create()
                    .name("group_mappings_maas360_group")
                    .table(GroupMappings::Table)
                    .col(GroupMappings::TenantId)
                    .col(GroupMappings::Maas360GroupId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MigrationOperations::Table)
                    .col(
                        ColumnDef::new(MigrationOperations::OperationId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(MigrationOperations::TenantId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MigrationOperations::PlanId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MigrationOperations::State)
                            .string()
                            .not_null(),
                    )
                    // The reviewed plan, protobuf-encoded: the operation carries out exactly it.
                    .col(ColumnDef::new(MigrationOperations::Plan).blob().not_null())
                    .col(
                        ColumnDef::new(MigrationOperations::StepsTotal)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MigrationOperations::StepsDone)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MigrationOperations::UsersRecorded)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MigrationOperations::LastError)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MigrationOperations::LeaseOwner)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MigrationOperations::LeaseUntil)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MigrationOperations::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MigrationOperations::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("migration_operations_tenant")
                    .table(MigrationOperations::Table)
                    .col(MigrationOperations::TenantId)
                    .col(MigrationOperations::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MigrationRecords::Table)
                    .col(
                        ColumnDef::new(MigrationRecords::OperationId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MigrationRecords::UserKey)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MigrationRecords::Maas360UserId)
                            .string()
                            .not_null(),
                    )
                    // What the user received before the first write, as JSON.
                    .col(
                        ColumnDef::new(MigrationRecords::Distributions)
                            .text()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(MigrationRecords::OperationId)
                            .col(MigrationRecords::UserKey),
                    )
                    .to_owned(),
            )
            .await
    }
}
