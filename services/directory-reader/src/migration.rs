//! The directory-reader's tables: one delta cursor per tenant and resource
//! type, kept with its own migration history.

#![allow(elided_lifetimes_in_paths)] // async_trait needs the elided form of SchemaManager

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m0001_delta_cursors::Migration)]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("directory_reader_migrations").into_iden()
    }
}

mod m0001_delta_cursors {
    use sea_orm_migration::prelude::*;

    pub(super) struct Migration;

    // Named explicitly: the derive names a migration after its file, and
    // every migration of a service lives in one file.
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
}
