//! The directory-reader fronts Microsoft Graph: full and delta reads of users,
//! groups and (transitive) memberships. Its contract and tables are in place;
//! the Graph client and the RPCs arrive with the Graph work, and until then
//! every RPC answers UNIMPLEMENTED naming itself.

mod schema;

use std::future::Future;
use std::pin::Pin;

use dirsync_proto::directory::v1 as pb;
use dirsync_runtime::{DirsyncConfig, GrpcServer, StartError};
use tokio::net::TcpListener;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub use schema::Migrator;

pub const SERVICE: &str = "directory-reader";

#[derive(Debug, Clone)]
pub struct DirectoryReader {
    _db: sea_orm::DatabaseConnection,
}

impl DirectoryReader {
    pub async fn open(config: &DirsyncConfig) -> Result<Self, StartError> {
        let db = dirsync_runtime::service::open_store::<Migrator>(config, SERVICE).await?;
        Ok(Self { _db: db })
    }

    pub fn register(&self, server: &mut GrpcServer) {
        server.add_service(
            pb::directory_reader_service_server::DirectoryReaderServiceServer::new(
                DirectoryReaderApi,
            ),
        );
    }
}

pub async fn run(
    config: &DirsyncConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    let reader = DirectoryReader::open(config).await?;
    let mut server = GrpcServer::new(config.grpc.request_timeout);
    reader.register(&mut server);
    server.serve(listener, shutdown).await?;
    Ok(())
}

#[derive(Debug)]
struct DirectoryReaderApi;

fn unimplemented(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "dirsync.directory.v1.DirectoryReaderService/{rpc} is not implemented yet"
    ))
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::directory_reader_service_server::DirectoryReaderService for DirectoryReaderApi {
    type StreamUsersStream = BoxStream<pb::StreamUsersResponse>;
    type StreamGroupsStream = BoxStream<pb::StreamGroupsResponse>;
    type StreamChangesStream = BoxStream<pb::StreamChangesResponse>;

    async fn stream_users(
        &self,
        _: Request<pb::StreamUsersRequest>,
    ) -> Result<Response<Self::StreamUsersStream>, Status> {
        Err(unimplemented("StreamUsers"))
    }

    async fn stream_groups(
        &self,
        _: Request<pb::StreamGroupsRequest>,
    ) -> Result<Response<Self::StreamGroupsStream>, Status> {
        Err(unimplemented("StreamGroups"))
    }

    async fn list_group_members(
        &self,
        _: Request<pb::ListGroupMembersRequest>,
    ) -> Result<Response<pb::ListGroupMembersResponse>, Status> {
        Err(unimplemented("ListGroupMembers"))
    }

    async fn stream_changes(
        &self,
        _: Request<pb::StreamChangesRequest>,
    ) -> Result<Response<Self::StreamChangesStream>, Status> {
        Err(unimplemented("StreamChanges"))
    }

    async fn get_sync_state(
        &self,
        _: Request<pb::GetSyncStateRequest>,
    ) -> Result<Response<pb::GetSyncStateResponse>, Status> {
        Err(unimplemented("GetSyncState"))
    }

    async fn set_entra_connection(
        &self,
        _: Request<pb::SetEntraConnectionRequest>,
    ) -> Result<Response<pb::SetEntraConnectionResponse>, Status> {
        Err(unimplemented("SetEntraConnection"))
    }

    async fn get_entra_connection(
        &self,
        _: Request<pb::GetEntraConnectionRequest>,
    ) -> Result<Response<pb::GetEntraConnectionResponse>, Status> {
        Err(unimplemented("GetEntraConnection"))
    }

    async fn check_entra_connection(
        &self,
        _: Request<pb::CheckEntraConnectionRequest>,
    ) -> Result<Response<pb::CheckEntraConnectionResponse>, Status> {
        Err(unimplemented("CheckEntraConnection"))
    }

    async fn set_pull_settings(
        &self,
        _: Request<pb::SetPullSettingsRequest>,
    ) -> Result<Response<pb::SetPullSettingsResponse>, Status> {
        Err(unimplemented("SetPullSettings"))
    }

    async fn sync_tenant(
        &self,
        _: Request<pb::SyncTenantRequest>,
    ) -> Result<Response<pb::SyncTenantResponse>, Status> {
        Err(unimplemented("SyncTenant"))
    }

    async fn get_drift(
        &self,
        _: Request<pb::GetDriftRequest>,
    ) -> Result<Response<pb::GetDriftResponse>, Status> {
        Err(unimplemented("GetDrift"))
    }
}
