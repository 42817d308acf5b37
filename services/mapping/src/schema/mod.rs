//! The mapping service's tables: confirmed group mappings and their state,
//! kept with their own migration history.

#![allow(elided_lifetimes_in_paths)] // async_trait needs the elided form of SchemaManager

use sea_orm_migration::prelude::*;

mod m0001_group_mappings;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m0001_group_mappings::Migration)]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("mapping_migrations").into_iden()
    }
}
