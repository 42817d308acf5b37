//! The mapping service decides which MaaS360 user group an Entra group writes to, and carries
//! existing MaaS360 groups with app and policy distributions over to Entra-synced groups
//! without any device losing one (IBM's "Option 1"; docs/maas360.md §8).
//!
//! It reads Entra through the directory-reader and MaaS360 through the provisioner (which also
//! makes a migration's MaaS360 writes, within the tenant's rate limit, audited under the
//! operation's id), and keeps only its own tables: mappings, operations, and what each affected
//! user received before an apply.
//!
//! Modules:
//! - `api`: the gRPC service, one method per RPC.
//! - `world`: both sides read at one moment, users keyed so that they meet.
//! - `matching`: name similarity, member overlap, the ranking. Pure.
//! - `keys`: resolving a group named by id or name. Pure.
//! - `plan`: the dry run and its id. Pure.
//! - `apply`: the steps of a plan and the runner that takes them, resumably.
//! - `verify`: recorded distributions against what MaaS360 holds now. Pure.
//! - `model`: mappings and operations between store and contract.
//! - `upstream`: the provisioner's and the directory-reader's contracts as used here.
//! - `store`, `entity`, `schema`: the tables; `error`: the error vocabulary.

mod api;
mod apply;
mod entity;
mod error;
mod keys;
mod matching;
mod model;
mod plan;
mod schema;
mod store;
mod upstream;
mod verify;
mod world;

use std::future::Future;
use std::sync::Arc;

use dirsync_proto::mapping::v1 as pb;
use dirsync_runtime::{DirsyncConfig, GrpcServer, ServeError, StartError};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use error::MappingError;
pub use schema::Migrator;

pub const SERVICE: &str = "mapping";

/// What every RPC and the operation runner share.
#[derive(Debug)]
pub(crate) struct Service {
    pub(crate) store: store::Store,
    pub(crate) upstream: upstream::Upstream,
    /// Wakes the runner when an apply starts an operation.
    pub(crate) wake: Notify,
}

#[derive(Debug, Clone)]
pub struct Mapping {
    service: Arc<Service>,
}

impl Mapping {
    /// Connects to the configured database and brings its tables up to date; the provisioner
    /// and the directory-reader are dialled on first use.
    pub async fn open(config: &DirsyncConfig) -> Result<Self, StartError> {
        let db = dirsync_runtime::service::open_store::<Migrator>(config, SERVICE).await?;
        let upstream = upstream::Upstream::connect_lazy(
            &config.mapping.provisioner_url,
            &config.mapping.directory_url,
            config.mapping.call_timeout,
        )
        .map_err(|error| StartError::Serve(ServeError::Transport(error)))?;
        Ok(Self {
            service: Arc::new(Service {
                store: store::Store::new(db),
                upstream,
                wake: Notify::new(),
            }),
        })
    }

    pub fn register(&self, server: &mut GrpcServer) {
        type Server = pb::mapping_service_server::MappingServiceServer<api::Api>;
        // These read every group and member of both sides.
        for rpc in [
            "CheckMigration",
            "ProposeMappings",
            "PlanMigration",
            "ApplyMigration",
            "VerifyMigration",
        ] {
            server.long_running::<Server>(rpc);
        }
        server.add_service(pb::mapping_service_server::MappingServiceServer::new(
            api::Api::new(self.service.clone()),
        ));
    }

    /// Starts carrying out migration operations (those applied here, and those another
    /// process left unfinished) until `shutdown`; an operation stopped halfway is given back
    /// for the next process to finish.
    pub fn start_operations(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(apply::run(self.service.clone(), shutdown))
    }
}

pub async fn run(
    config: &DirsyncConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    let mapping = Mapping::open(config).await?;
    let mut server = GrpcServer::new(config.grpc.request_timeout);
    mapping.register(&mut server);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = mapping.start_operations(async move {
        let _ = stopped.await;
    });
    let served = server.serve(listener, shutdown).await;
    let _ = stop.send(());
    let _ = runner.await;
    served?;
    Ok(())
}
