//! The provisioner: the durable identity store (users, groups and memberships
//! as Entra wants them), the tenants and their SCIM tokens, and the queue of
//! resources MaaS360 has yet to confirm. Only the provisioner talks to MaaS360.

mod create_batch;
mod entity;
mod error;
mod groups;
mod listing;
mod maas360_reads;
mod metrics;
mod migration;
mod reconcile;
mod store;
mod tenants;
mod users;
mod work;

use std::future::Future;
use std::sync::Arc;

use dirsync_proto::provisioner::v1 as pb;
use dirsync_runtime::{DirsyncConfig, GrpcServer, ServeError};
use dirsync_store::{StoreError, StoreOptions};
use tokio::net::TcpListener;

pub use error::{ProvisionerError, SCIM_TYPE_METADATA};
pub use migration::Migrator;
pub use reconcile::Reconciler;
pub use store::Store;

/// Name of this service in logs and migration errors.
pub const SERVICE: &str = "provisioner";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The provisioner's gRPC services over one store.
#[derive(Debug, Clone)]
pub struct Provisioner {
    store: Store,
    limits: listing::Limits,
    settings: dirsync_runtime::config::ProvisionerConfig,
    reconciler: Arc<Reconciler>,
    /// Keeps the queue gauges in `/metrics` while this provisioner lives.
    _metrics: Arc<dirsync_runtime::metrics::SourceGuard>,
}

impl Provisioner {
    /// Connects to the configured database and brings its tables up to date.
    pub async fn open(config: &DirsyncConfig) -> Result<Self, StartError> {
        let db = dirsync_store::connect(&store_options(config)).await?;
        dirsync_store::migrate::<Migrator>(&db, SERVICE).await?;
        let store = Store::new(db);
        let reconciler = Arc::new(Reconciler::new(store.clone(), config.provisioner.clone()));
        let metrics = Arc::new(metrics::register(store.clone(), reconciler.clone()));
        Ok(Self {
            _metrics: metrics,
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
                users::UserApi::new(self.store.clone(), self.limits),
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

/// The store settings of a dirsync configuration.
pub fn store_options(config: &DirsyncConfig) -> StoreOptions {
    StoreOptions {
        url: config.database.url.clone(),
        schema: config.database.schema.clone(),
        max_connections: config.database.max_connections,
        connect_timeout: config.database.connect_timeout,
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
