use sea_orm_migration::prelude::*;

pub(super) struct Migration;

// Named explicitly, so that moving the file never renames an applied migration.
impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_tenant_modes"
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Mode,
    ActiveDevicePolicy,
    Maas360RoutesToml,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Who writes the tenant's desired state (push: SCIM; pull: Graph), what to do when
        // MaaS360 refuses to delete a user with an active device, and the tenant's overrides
        // of MaaS360 routes.
        for mut column in [
            ColumnDef::new(Tenants::Mode)
                .string()
                .not_null()
                .default("push")
                .to_owned(),
            ColumnDef::new(Tenants::ActiveDevicePolicy)
                .string()
                .not_null()
                .default("deactivate")
                .to_owned(),
            ColumnDef::new(Tenants::Maas360RoutesToml)
                .text()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tenants::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
