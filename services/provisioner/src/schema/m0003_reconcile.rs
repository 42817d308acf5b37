use sea_orm_migration::prelude::*;

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_reconcile"
    }
}

#[derive(DeriveIden)]
enum SyncState {
    Table,
    LeaseOwner,
    LeaseUntil,
    Attempts,
    NextAttemptAt,
    LastError,
    Parked,
    ParkedAt,
    Maas360Id,
    AppliedJson,
}

#[derive(DeriveIden)]
enum Maas360Audit {
    Table,
    Id,
    TenantId,
    Kind,
    ResourceId,
    Action,
    Target,
    Outcome,
    Detail,
    At,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        let columns = [
            ColumnDef::new(SyncState::LeaseOwner)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(SyncState::LeaseUntil)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(SyncState::Attempts)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(SyncState::NextAttemptAt)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(SyncState::LastError)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(SyncState::Parked)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
            ColumnDef::new(SyncState::ParkedAt)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(SyncState::Maas360Id)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(SyncState::AppliedJson)
                .text()
                .null()
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(SyncState::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("sync_state_due")
                    .table(SyncState::Table)
                    .col(Alias::new("pending"))
                    .col(SyncState::Parked)
                    .col(SyncState::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Maas360Audit::Table)
                    .col(
                        ColumnDef::new(Maas360Audit::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Maas360Audit::TenantId).string().not_null())
                    .col(ColumnDef::new(Maas360Audit::Kind).string().not_null())
                    .col(ColumnDef::new(Maas360Audit::ResourceId).string().not_null())
                    .col(ColumnDef::new(Maas360Audit::Action).string().not_null())
                    .col(ColumnDef::new(Maas360Audit::Target).string().not_null())
                    .col(ColumnDef::new(Maas360Audit::Outcome).string().not_null())
                    .col(ColumnDef::new(Maas360Audit::Detail).text().null())
                    .col(ColumnDef::new(Maas360Audit::At).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("maas360_audit_tenant_at")
                    .table(Maas360Audit::Table)
                    .col(Maas360Audit::TenantId)
                    .col(Maas360Audit::At)
                    .to_owned(),
            )
            .await
    }
}
