//! The directory-reader fronts Microsoft Graph for each dirsync tenant. It keeps the tenant's
//! Entra connection (the secret only by reference) and pull settings; serves reads of Entra
//! (users, groups, members direct or transitive, delta changes with a cursor); runs the
//! **pull sync**, which reads Entra (a delta round, or everything) and writes the difference
//! into the provisioner's desired state through the provisioner's gRPC contract, the apply
//! path SCIM uses; runs it on a schedule for tenants in pull mode; and computes **drift**
//! between Entra, dirsync's desired state and MaaS360.
//!
//! What it is not: it never writes to Entra, never talks to MaaS360 (the provisioner does, and
//! drift reads MaaS360 through the provisioner), and never reads another service's tables:
//! tenants are resolved through the provisioner's `TenantService`.
//!
//! Modules:
//! - `api`: the gRPC service, one method per RPC, each delegating to a module below.
//! - `connection`: validating, storing, building and checking an Entra connection.
//! - `settings`: pull settings (group scope, username rule, deletion guard) and defaults.
//! - `reads`: users, groups and group members straight from Graph; bounded streams.
//! - `changes`: `StreamChanges` and its cursor.
//! - `snapshot`: what the last round saw of Entra, updated by delta rounds.
//! - `desired`: the desired state a snapshot stands for (scope, flattening, fields). Pure.
//! - `plan`: matching against the provisioner and planning the writes; the deletion guard. Pure.
//! - `apply`: carrying a plan out through the provisioner, with bounded concurrency.
//! - `sync`: one pull-sync run, from reading Entra to keeping its outcome.
//! - `scheduler`: scheduled delta and full runs of pull-mode tenants.
//! - `lease`: one run per tenant at a time, across replicas.
//! - `drift`: comparing Entra, dirsync and MaaS360.
//! - `provisioner`: the provisioner's gRPC contract as this service uses it.
//! - `store`, `entity`, `schema`: the tables; `error`: the error vocabulary; `time`: clocks.
//!
//! Facts about Graph are cited from `docs/graph.md` as `docs/graph.md §n`.

mod api;
mod apply;
mod changes;
mod connection;
mod desired;
mod drift;
mod entity;
mod error;
mod lease;
mod plan;
mod provisioner;
mod reads;
mod scheduler;
mod schema;
mod settings;
mod snapshot;
mod store;
mod sync;
mod time;

use std::future::Future;
use std::sync::Arc;

use dirsync_proto::directory::v1 as pb;
use dirsync_runtime::config::DirectoryConfig;
use dirsync_runtime::{DirsyncConfig, GrpcServer, ServeError, StartError};
use tokio::net::TcpListener;

pub use error::DirectoryError;
pub use schema::Migrator;

pub const SERVICE: &str = "directory-reader";

/// What every RPC and the scheduler share.
#[derive(Debug)]
pub(crate) struct Service {
    pub(crate) store: store::Store,
    pub(crate) provisioner: provisioner::Provisioner,
    pub(crate) config: DirectoryConfig,
    pub(crate) member_cache: reads::MemberCache,
    /// Per tenant, the snapshot of its last run and its generation: a delta run of the same
    /// process need not read it from the store again.
    pub(crate) snapshots:
        std::sync::Mutex<std::collections::HashMap<String, (i64, snapshot::Snapshot)>>,
}

/// The directory-reader over one store, talking to the provisioner at
/// `directory.provisioner_url`.
#[derive(Debug, Clone)]
pub struct DirectoryReader {
    service: Arc<Service>,
}

impl DirectoryReader {
    /// Connects to the configured database and brings its tables up to date; the provisioner
    /// is dialled on first use.
    pub async fn open(config: &DirsyncConfig) -> Result<Self, StartError> {
        let db = dirsync_runtime::service::open_store::<Migrator>(config, SERVICE).await?;
        let mut store = store::Store::new(db);
        if let Some((writer, checkpointer)) = dirsync_store::checkpoint::connect_writer(
            &dirsync_runtime::service::store_options(config),
        )
        .await?
        {
            store = store.with_writer(writer, checkpointer);
        }
        let directory = config.directory.clone();
        let provisioner = provisioner::Provisioner::connect_lazy(
            &directory.provisioner_url,
            directory.provisioner_timeout,
        )
        .map_err(|error| StartError::Serve(ServeError::Transport(error)))?;
        Ok(Self {
            service: Arc::new(Service {
                store,
                provisioner,
                config: directory,
                member_cache: reads::MemberCache::default(),
                snapshots: std::sync::Mutex::default(),
            }),
        })
    }

    pub fn register(&self, server: &mut GrpcServer) {
        type Server = pb::directory_reader_service_server::DirectoryReaderServiceServer<api::Api>;
        // A pull sync or a drift report reads the whole directory: minutes at 100k users.
        server
            .long_running::<Server>("SyncTenant")
            .long_running::<Server>("GetDrift");
        server.add_service(
            pb::directory_reader_service_server::DirectoryReaderServiceServer::new(api::Api::new(
                self.service.clone(),
                server.draining(),
            )),
        );
    }

    /// Starts the pull-sync scheduler (when `directory.schedule` is on) until `shutdown`.
    pub fn start_scheduler(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        self.service
            .config
            .schedule
            .then(|| tokio::spawn(scheduler::run(self.service.clone(), shutdown)))
    }
}

/// Runs the directory-reader alone on `listener`, with its scheduler, until `shutdown`.
pub async fn run(
    config: &DirsyncConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    let reader = DirectoryReader::open(config).await?;
    let mut server = GrpcServer::new(config.grpc.request_timeout);
    reader.register(&mut server);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = reader.start_scheduler(async move {
        let _ = stopped.await;
    });
    let served = server.serve(listener, shutdown).await;
    let _ = stop.send(());
    if let Some(scheduler) = scheduler {
        let _ = scheduler.await;
    }
    served?;
    Ok(())
}
