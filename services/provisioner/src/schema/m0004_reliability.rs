use sea_orm_migration::prelude::*;

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_reliability"
    }
}

#[derive(DeriveIden)]
enum Maas360Audit {
    Table,
    TenantId,
    ResourceId,
    Worker,
    AttemptStartedAt,
    At,
}

#[derive(DeriveIden)]
enum Maas360Health {
    Table,
    TenantId,
    Reachable,
    UnreachableSince,
    NextProbeAt,
    LastError,
    LastErrorAt,
    PausedUntil,
    UpdatedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Which attempt made each call, so that overlapping attempts on one resource (two
        // replicas writing it at once) would show.
        for mut column in [
            ColumnDef::new(Maas360Audit::Worker)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(Maas360Audit::AttemptStartedAt)
                .big_integer()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Maas360Audit::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // `dirsync audit <tenant> --resource ID` reads one resource's history.
        manager
            .create_index(
                Index::create()
                    .name("maas360_audit_resource")
                    .table(Maas360Audit::Table)
                    .col(Maas360Audit::TenantId)
                    .col(Maas360Audit::ResourceId)
                    .col(Maas360Audit::At)
                    .to_owned(),
            )
            .await?;
        // Retention prunes by time across tenants.
        manager
            .create_index(
                Index::create()
                    .name("maas360_audit_at")
                    .table(Maas360Audit::Table)
                    .col(Maas360Audit::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Maas360Health::Table)
                    .col(
                        ColumnDef::new(Maas360Health::TenantId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Maas360Health::Reachable)
                            .boolean()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Maas360Health::UnreachableSince)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Maas360Health::NextProbeAt)
                            .big_integer()
                            .null(),
                    )
                    .col(ColumnDef::new(Maas360Health::LastError).text().null())
                    .col(
                        ColumnDef::new(Maas360Health::LastErrorAt)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Maas360Health::PausedUntil)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Maas360Health::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }
}
