//! The directory-reader's tables, kept with their own migration history: one delta cursor
//! per tenant and resource type (m0001, released); per tenant the Entra connection, the pull
//! settings, the sync state and the snapshot of what the last round saw (m0002).

#![allow(elided_lifetimes_in_paths)] // async_trait needs the elided form of SchemaManager

use sea_orm_migration::prelude::*;

mod m0001_delta_cursors;
mod m0002_pull_sync;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_delta_cursors::Migration),
            Box::new(m0002_pull_sync::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("directory_reader_migrations").into_iden()
    }
}
