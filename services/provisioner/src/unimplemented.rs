//! Services whose RPCs a later piece of work implements. Each answers
//! UNIMPLEMENTED naming the RPC; none pretends to succeed.

use dirsync_proto::provisioner::v1 as pb;
use tonic::{Request, Response, Status};

fn unimplemented(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} is not implemented yet"))
}

#[derive(Debug)]
pub(crate) struct WorkApi;

#[tonic::async_trait]
impl pb::work_service_server::WorkService for WorkApi {
    async fn get_work_status(
        &self,
        _: Request<pb::GetWorkStatusRequest>,
    ) -> Result<Response<pb::WorkStatus>, Status> {
        Err(unimplemented("dirsync.provisioner.v1.WorkService/GetWorkStatus"))
    }

    async fn list_parked(
        &self,
        _: Request<pb::ListParkedRequest>,
    ) -> Result<Response<pb::ListParkedResponse>, Status> {
        Err(unimplemented("dirsync.provisioner.v1.WorkService/ListParked"))
    }

    async fn retry_parked(
        &self,
        _: Request<pb::RetryParkedRequest>,
    ) -> Result<Response<pb::RetryParkedResponse>, Status> {
        Err(unimplemented("dirsync.provisioner.v1.WorkService/RetryParked"))
    }
}

#[derive(Debug)]
pub(crate) struct Maas360ReadApi;

#[tonic::async_trait]
impl pb::maas360_read_service_server::Maas360ReadService for Maas360ReadApi {
    async fn list_maas360_user_groups(
        &self,
        _: Request<pb::ListMaas360UserGroupsRequest>,
    ) -> Result<Response<pb::ListMaas360UserGroupsResponse>, Status> {
        Err(unimplemented(
            "dirsync.provisioner.v1.Maas360ReadService/ListMaas360UserGroups",
        ))
    }

    async fn list_maas360_group_users(
        &self,
        _: Request<pb::ListMaas360GroupUsersRequest>,
    ) -> Result<Response<pb::ListMaas360GroupUsersResponse>, Status> {
        Err(unimplemented(
            "dirsync.provisioner.v1.Maas360ReadService/ListMaas360GroupUsers",
        ))
    }
}
