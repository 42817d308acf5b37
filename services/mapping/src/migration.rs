//! The mapping service's tables: confirmed group mappings and their state,
//! kept with their own migration history.

#![allow(elided_lifetimes_in_paths)] // async_trait needs the elided form of SchemaManager

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m0001_group_mappings::Migration)]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("mapping_migrations").into_iden()
    }
}

mod m0001_group_mappings {
    use sea_orm_migration::prelude::*;

    pub(super) struct Migration;

    // Named explicitly: the derive names a migration after its file, and
    // every migration of a service lives in one file.
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
}
