//! The provisioner's tables. Its migration history is its own
//! (`provisioner_migrations`), so it can share a database with other services.

#![allow(elided_lifetimes_in_paths)] // async_trait needs the elided form of SchemaManager

use sea_orm_migration::prelude::*;

mod m0001_tenants;
mod m0002_identity;
mod m0003_reconcile;
mod m0004_reliability;
mod m0005_tenant_modes;
mod m0006_lookalike_groups;
mod m0007_query_indexes;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_tenants::Migration),
            Box::new(m0002_identity::Migration),
            Box::new(m0003_reconcile::Migration),
            Box::new(m0004_reliability::Migration),
            Box::new(m0005_tenant_modes::Migration),
            Box::new(m0006_lookalike_groups::Migration),
            Box::new(m0007_query_indexes::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("provisioner_migrations").into_iden()
    }
}
