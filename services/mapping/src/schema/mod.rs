//! The mapping service's tables: group mappings and their state, migration operations with
//! the plan each carries out, and the distributions each affected user received before an
//! apply; kept with their own migration history.

#![allow(elided_lifetimes_in_paths)] // async_trait needs the elided form of SchemaManager

use sea_orm_migration::prelude::*;

mod m0001_group_mappings;
mod m0002_migrations;
mod m0003_one_running;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_group_mappings::Migration),
            Box::new(m0002_migrations::Migration),
            Box::new(m0003_one_running::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("mapping_migrations").into_iden()
    }
}
