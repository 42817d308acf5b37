//! The mapping service decides which MaaS360 user group an Entra group writes
//! to, and carries existing MaaS360 groups with app and policy distributions
//! over to Entra-synced groups. Its contract and tables are in place; until
//! the migration work lands, every RPC answers UNIMPLEMENTED naming itself.

mod schema;

use std::future::Future;

use dirsync_proto::mapping::v1 as pb;
use dirsync_runtime::{DirsyncConfig, GrpcServer, StartError};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

pub use schema::Migrator;

pub const SERVICE: &str = "mapping";

#[derive(Debug, Clone)]
pub struct Mapping {
    _db: sea_orm::DatabaseConnection,
}

impl Mapping {
    pub async fn open(config: &DirsyncConfig) -> Result<Self, StartError> {
        let db = dirsync_runtime::service::open_store::<Migrator>(config, SERVICE).await?;
        Ok(Self { _db: db })
    }

    pub fn register(&self, server: &mut GrpcServer) {
        server.add_service(pb::mapping_service_server::MappingServiceServer::new(
            MappingApi,
        ));
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
    server.serve(listener, shutdown).await?;
    Ok(())
}

#[derive(Debug)]
struct MappingApi;

fn unimplemented(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "dirsync.mapping.v1.MappingService/{rpc} is not implemented yet"
    ))
}

#[tonic::async_trait]
impl pb::mapping_service_server::MappingService for MappingApi {
    async fn check_migration(
        &self,
        _: Request<pb::CheckMigrationRequest>,
    ) -> Result<Response<pb::CheckMigrationResponse>, Status> {
        Err(unimplemented("CheckMigration"))
    }

    async fn propose_mappings(
        &self,
        _: Request<pb::ProposeMappingsRequest>,
    ) -> Result<Response<pb::ProposeMappingsResponse>, Status> {
        Err(unimplemented("ProposeMappings"))
    }

    async fn create_mapping(
        &self,
        _: Request<pb::CreateMappingRequest>,
    ) -> Result<Response<pb::CreateMappingResponse>, Status> {
        Err(unimplemented("CreateMapping"))
    }

    async fn get_mapping(
        &self,
        _: Request<pb::GetMappingRequest>,
    ) -> Result<Response<pb::GetMappingResponse>, Status> {
        Err(unimplemented("GetMapping"))
    }

    async fn list_mappings(
        &self,
        _: Request<pb::ListMappingsRequest>,
    ) -> Result<Response<pb::ListMappingsResponse>, Status> {
        Err(unimplemented("ListMappings"))
    }

    async fn update_mapping(
        &self,
        _: Request<pb::UpdateMappingRequest>,
    ) -> Result<Response<pb::UpdateMappingResponse>, Status> {
        Err(unimplemented("UpdateMapping"))
    }

    async fn delete_mapping(
        &self,
        _: Request<pb::DeleteMappingRequest>,
    ) -> Result<Response<pb::DeleteMappingResponse>, Status> {
        Err(unimplemented("DeleteMapping"))
    }

    async fn plan_migration(
        &self,
        _: Request<pb::PlanMigrationRequest>,
    ) -> Result<Response<pb::PlanMigrationResponse>, Status> {
        Err(unimplemented("PlanMigration"))
    }

    async fn apply_migration(
        &self,
        _: Request<pb::ApplyMigrationRequest>,
    ) -> Result<Response<pb::ApplyMigrationResponse>, Status> {
        Err(unimplemented("ApplyMigration"))
    }

    async fn get_migration_operation(
        &self,
        _: Request<pb::GetMigrationOperationRequest>,
    ) -> Result<Response<pb::GetMigrationOperationResponse>, Status> {
        Err(unimplemented("GetMigrationOperation"))
    }

    async fn verify_migration(
        &self,
        _: Request<pb::VerifyMigrationRequest>,
    ) -> Result<Response<pb::VerifyMigrationResponse>, Status> {
        Err(unimplemented("VerifyMigration"))
    }

    async fn resolve_group(
        &self,
        _: Request<pb::ResolveGroupRequest>,
    ) -> Result<Response<pb::ResolveGroupResponse>, Status> {
        Err(unimplemented("ResolveGroup"))
    }
}
