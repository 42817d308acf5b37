//! The directory-reader's tables: one delta cursor per tenant and resource
//! type, kept with its own migration history.

#![allow(elided_lifetimes_in_paths)] // async_trait needs the elided form of SchemaManager

use sea_orm_migration::prelude::*;

mod m0001_delta_cursors;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m0001_delta_cursors::Migration)]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("directory_reader_migrations").into_iden()
    }
}
