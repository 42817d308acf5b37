//! The provisioner: the durable identity store (users, groups and memberships as Entra wants
//! them), the tenants and their SCIM tokens, and the queue of resources MaaS360 has yet to
//! confirm. Only the provisioner talks to MaaS360. It speaks no SCIM over HTTP (the gateway
//! does) and reads no Graph (the directory-reader does).
//!
//! Modules:
//! - [`tenants`]: tenants, SCIM tokens (and their revocation feed), MaaS360 connections.
//! - [`users`], [`groups`]: the desired state Entra sends, with versions; each change marks
//!   the resource for MaaS360 in the same transaction. [`listing`] turns SCIM filters into
//!   indexed SQL; [`batching`] runs many callers' operations as one: writes in one
//!   transaction ([`user_creates`], [`group_creates`], the workers' lease writes) and Entra's
//!   matching queries in one query ([`user_lookups`]).
//! - [`reconcile`]: the workers that make MaaS360 hold the desired state (leases, backoff,
//!   circuit breaker, audit).
//! - [`work`]: the queue as operators see it (status, parked, retry, audit);
//!   [`maas360_reads`]: MaaS360's groups and their users, for the mapping service;
//!   [`maas360_group_writes`]: the idempotent group writes of an Option 1 migration.
//! - [`store`]: the connection and SQLite's single-writer gate; [`held_connections`]: the
//!   PostgreSQL connections the one-statement batches run on; [`entity`] and [`schema`]:
//!   tables and their migrations. [`error`]: the one error vocabulary; [`metrics`]: gauges.

mod batching;
mod entity;
mod error;
mod group_creates;
mod groups;
mod held_connections;
mod listing;
mod maas360_group_writes;
mod maas360_reads;
mod metrics;
mod reconcile;
mod schema;
mod store;
mod tenants;
mod user_creates;
mod user_fields;
mod user_lookups;
mod users;
mod work;

use std::future::Future;
use std::sync::Arc;

use dirsync_proto::provisioner::v1 as pb;
use dirsync_runtime::{DirsyncConfig, GrpcServer, StartError};
use tokio::net::TcpListener;

pub use error::ProvisionerError;
pub use reconcile::Reconciler;
pub use schema::Migrator;
pub use store::Store;

/// Name of this service in logs and migration errors.
pub const SERVICE: &str = "provisioner";

/// The provisioner's gRPC services over one store.
#[derive(Debug, Clone)]
pub struct Provisioner {
    store: Store,
    limits: listing::Limits,
    settings: dirsync_runtime::config::ProvisionerConfig,
    reconciler: Arc<Reconciler>,
    lookups: user_lookups::UserNameLookups,
    /// Keeps the queue gauges in `/metrics` while this provisioner lives.
    _metrics: Arc<dirsync_runtime::metrics::SourceGuard>,
}

impl Provisioner {
    /// Connects to the configured database and brings its tables up to date.
    pub async fn open(config: &DirsyncConfig) -> Result<Self, StartError> {
        let db = dirsync_runtime::service::open_store::<Migrator>(config, SERVICE).await?;
        let mut store = Store::new(db.clone());
        if let Some((writer, checkpointer)) = dirsync_store::checkpoint::connect_writer(
            &dirsync_runtime::service::store_options(config),
        )
        .await?
        {
            store = store.with_writer(writer, checkpointer);
        }
        let resolver = reconcile::mapping::MappingResolver::new(
            &config.provisioner.mapping_url,
            config.grpc.request_timeout,
        )
        .map_err(StartError::Config)?;
        let reconciler = Arc::new(Reconciler::new(
            store.clone(),
            config.provisioner.clone(),
            resolver,
        ));
        let lookups = user_lookups::UserNameLookups::spawn(store.clone());
        let metrics = Arc::new(metrics::register(
            store.clone(),
            reconciler.clone(),
            lookups.counts(),
        ));
        Ok(Self {
            _metrics: metrics,
            lookups,
            reconciler,
            store,
            limits: listing::Limits {
                default_page_size: config.scim.default_page_size,
                max_page_size: config.scim.max_page_size,
            },
            settings: config.provisioner.clone(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Adds every provisioner service to `server`.
    pub fn register(&self, server: &mut GrpcServer) {
        server
            .add_service(pb::tenant_service_server::TenantServiceServer::new(
                tenants::TenantApi::new(
                    self.store.clone(),
                    self.settings.clone(),
                    server.draining(),
                ),
            ))
            .add_service(pb::user_service_server::UserServiceServer::new(
                users::UserApi::new(self.store.clone(), self.limits, self.lookups.clone()),
            ))
            .add_service(pb::group_service_server::GroupServiceServer::new(
                groups::GroupApi::new(self.store.clone(), self.limits),
            ))
            .add_service(pb::work_service_server::WorkServiceServer::new(
                work::WorkApi::new(self.store.clone()),
            ))
            .add_service(
                pb::maas360_read_service_server::Maas360ReadServiceServer::new(
                    maas360_reads::Maas360ReadApi::new(self.store.clone(), self.reconciler.clone()),
                ),
            )
            .add_service(
                pb::maas360_group_write_service_server::Maas360GroupWriteServiceServer::new(
                    maas360_group_writes::Maas360GroupWriteApi::new(
                        self.store.clone(),
                        self.reconciler.clone(),
                    ),
                ),
            );
    }

    /// Starts the reconcile workers (when configured) until `shutdown`.
    pub fn start_workers(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        self.settings
            .reconcile
            .then(|| tokio::spawn(self.reconciler.clone().run(shutdown)))
    }
}

/// Runs the provisioner alone on `listener` until `shutdown` resolves.
pub async fn run(
    config: &DirsyncConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    let provisioner = Provisioner::open(config).await?;
    let mut server = GrpcServer::new(config.grpc.request_timeout);
    provisioner.register(&mut server);
    let (stop_workers, workers_stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = provisioner.start_workers(async {
        let _ = workers_stopped.await;
    });
    let served = server.serve(listener, shutdown).await;
    let _ = stop_workers.send(());
    if let Some(workers) = workers {
        let _ = workers.await;
    }
    served?;
    Ok(())
}
