//! What starting any dirsync service shares: opening its store (connected, its own migrations
//! applied) and the one error vocabulary for failing to start.

use dirsync_store::{StoreError, StoreOptions};
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;

use crate::config::DirsyncConfig;
use crate::grpc::ServeError;

/// Why a service could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A setting that passed validation but cannot be used (e.g. a peer URL tonic refuses).
    #[error("{0}")]
    Config(String),
}

/// The store settings of a dirsync configuration.
pub fn store_options(config: &DirsyncConfig) -> StoreOptions {
    StoreOptions {
        url: config.database.url.clone(),
        schema: config.database.schema.clone(),
        max_connections: config.database.max_connections,
        connect_timeout: config.database.connect_timeout,
    }
}

/// Connects to the configured database and brings `service`'s tables up to date.
pub async fn open_store<M: MigratorTrait>(
    config: &DirsyncConfig,
    service: &'static str,
) -> Result<DatabaseConnection, StartError> {
    let db = dirsync_store::connect(&store_options(config)).await?;
    dirsync_store::migrate::<M>(&db, service).await?;
    Ok(db)
}
