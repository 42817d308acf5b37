use sea_orm_migration::prelude::*;

pub(super) struct Migration;

// Named explicitly, so that moving the file never renames an applied migration.
impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_delta_cursors"
    }
}

#[derive(DeriveIden)]
enum DirectoryCursors {
    Table,
    TenantId,
    Resource,
    DeltaLink,
    LastFullSyncAt,
    LastDeltaSyncAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DirectoryCursors::Table)
                    .col(
                        ColumnDef::new(DirectoryCursors::TenantId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DirectoryCursors::Resource)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DirectoryCursors::DeltaLink).text().null())
                    .col(
                        ColumnDef::new(DirectoryCursors::LastFullSyncAt)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(DirectoryCursors::LastDeltaSyncAt)
                            .big_integer()
                            .null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(DirectoryCursors::TenantId)
                            .col(DirectoryCursors::Resource),
                    )
                    .to_owned(),
            )
            .await
    }
}
