use sea_orm_migration::prelude::*;

pub(super) struct Migration;

// Named explicitly, so that moving the file never renames an applied migration.
impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_lookalike_groups"
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    LookalikeGroupPolicy,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // What to do with an unmapped Entra group that looks like a MaaS360 group carrying
        // distributions: `park` it for an operator (the default) or `import` it (Option 2).
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(
                        ColumnDef::new(Tenants::LookalikeGroupPolicy)
                            .string()
                            .not_null()
                            .default("park"),
                    )
                    .to_owned(),
            )
            .await
    }
}
