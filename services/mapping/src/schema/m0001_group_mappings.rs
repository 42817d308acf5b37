use sea_orm_migration::prelude::*;

pub(super) struct Migration;

// Named explicitly, so that moving the file never renames an applied migration.
impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_group_mappings"
    }
}

#[derive(DeriveIden)]
enum GroupMappings {
    Table,
    TenantId,
    MappingId,
    EntraGroupId,
    EntraGroupName,
    Maas360GroupId,
    Maas360GroupName,
    Mode,
    State,
    CreatedAt,
    UpdatedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GroupMappings::Table)
                    .col(ColumnDef::new(GroupMappings::TenantId).string().not_null())
                    .col(ColumnDef::new(GroupMappings::MappingId).string().not_null())
                    .col(
                        ColumnDef::new(GroupMappings::EntraGroupId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(GroupMappings::EntraGroupName)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(GroupMappings::Maas360GroupId)
                            .string()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(GroupMappings::Maas360GroupName)
                            .string()
                            .null(),
                    )
                    .col(ColumnDef::new(GroupMappings::Mode).string().not_null())
                    .col(ColumnDef::new(GroupMappings::State).string().not_null())
                    .col(
                        ColumnDef::new(GroupMappings::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(GroupMappings::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(GroupMappings::TenantId)
                            .col(GroupMappings::MappingId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("group_mappings_entra_group")
                    .table(GroupMappings::Table)
                    .col(GroupMappings::TenantId)
                    .col(GroupMappings::EntraGroupId)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
