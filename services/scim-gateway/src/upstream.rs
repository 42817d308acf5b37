//! The provisioner as the gateway sees it: gRPC clients with a deadline on
//! every call, and the translation of gRPC statuses into SCIM errors.

use std::future::Future;
use std::time::Duration;

use dirsync_proto::provisioner::v1 as pb;
use dirsync_runtime::request_id::Propagate;
use dirsync_scim::{ScimError, ScimType};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("invalid provisioner URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

/// The provisioner over the network (a channel) or in this process (see
/// `GrpcServer::in_process`): one type, so the gateway's code does not care which.
pub type ProvisionerChannel = tower::util::BoxCloneSyncService<
    tonic::codegen::http::Request<tonic::body::Body>,
    tonic::codegen::http::Response<tonic::body::Body>,
    Status,
>;

/// A channel that adds the current request id to every call.
pub(crate) type Traced = InterceptedService<ProvisionerChannel, Propagate>;

#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub(crate) tenants: pb::tenant_service_client::TenantServiceClient<Traced>,
    pub(crate) users: pb::user_service_client::UserServiceClient<Traced>,
    pub(crate) groups: pb::group_service_client::GroupServiceClient<Traced>,
}

impl Upstream {
    /// Connects on first use, so the gateway can start before the provisioner.
    pub(crate) fn connect_lazy(url: &str, timeout: Duration) -> Result<Self, UpstreamError> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(|error| UpstreamError::InvalidUrl {
                url: url.to_owned(),
                reason: error.to_string(),
            })?
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .connect_lazy();
        Ok(Self::over(tower::util::BoxCloneSyncService::new(
            // As the client would: a transport error becomes the status it stands for, its
            // source kept (see `is_broken_connection`).
            tower::ServiceExt::map_err(channel, |error| Status::from_error(Box::new(error))),
        )))
    }

    /// The provisioner behind `channel`.
    pub(crate) fn over(channel: ProvisionerChannel) -> Self {
        Self {
            tenants: pb::tenant_service_client::TenantServiceClient::with_interceptor(
                channel.clone(),
                Propagate,
            ),
            users: pb::user_service_client::UserServiceClient::with_interceptor(
                channel.clone(),
                Propagate,
            ),
            groups: pb::group_service_client::GroupServiceClient::with_interceptor(
                channel, Propagate,
            ),
        }
    }
}

/// A closure that makes one call of `$method` with fresh clones of the client and the request,
/// for [`call`] and [`call_status`] (which may make it twice).
macro_rules! fresh {
    ($client:expr, $method:ident, $request:expr) => {
        || {
            let mut client = $client.clone();
            let request = $request.clone();
            async move { client.$method(request).await }
        }
    };
}
pub(crate) use fresh;

/// Whether a failed call never reached the provisioner's handler: the client synthesised the
/// status from a broken or refused connection (a status the provisioner sent has no source).
fn is_broken_connection(status: &Status) -> bool {
    std::error::Error::source(status).is_some()
        && matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
        )
}

/// Calls the provisioner; when the shared connection broke under the call, once more on a
/// fresh one, so that a request that did nothing wrong does not fail for another's fault.
/// (A write whose answer was lost with the connection may then meet its own first effect: a
/// second create answers "already exists", which Entra resolves with its matching query.)
pub(crate) async fn call_status<T, Fut>(mut call: impl FnMut() -> Fut) -> Result<T, Status>
where
    Fut: Future<Output = Result<tonic::Response<T>, Status>>,
{
    match call().await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) if is_broken_connection(&status) => {
            tracing::warn!(code = ?status.code(), "connection to the provisioner broke; retrying on a fresh one");
            call().await.map(tonic::Response::into_inner)
        }
        Err(status) => Err(status),
    }
}

/// [`call_status`], with the failure as the SCIM error it stands for.
pub(crate) async fn call<T, Fut>(call: impl FnMut() -> Fut) -> Result<T, ScimError>
where
    Fut: Future<Output = Result<tonic::Response<T>, Status>>,
{
    call_status(call).await.map_err(scim_error)
}

/// The `scimType` the provisioner named in the status's `ErrorInfo`.
fn scim_type_of(status: &Status) -> ScimType {
    dirsync_proto::errors::read(status)
        .metadata
        .get(dirsync_proto::errors::SCIM_TYPE_KEY)
        .and_then(|name| name.parse().ok())
        .unwrap_or(ScimType::InvalidValue)
}

/// The SCIM error a provisioner status stands for. Only faults on our side
/// become 5xx; Entra retries those, and retries nothing else usefully.
pub(crate) fn scim_error(status: Status) -> ScimError {
    match status.code() {
        Code::NotFound => ScimError::not_found(status.message()),
        Code::AlreadyExists => ScimError::conflict_uniqueness(status.message()),
        Code::InvalidArgument | Code::OutOfRange => {
            ScimError::bad_request(scim_type_of(&status), status.message())
        }
        // A tenant in pull mode takes no SCIM writes: forbidden, not a failed precondition
        // of the request.
        Code::FailedPrecondition
            if dirsync_proto::errors::read(&status).reason
                == Some(dirsync_proto::errors::ErrorReason::WrongMode) =>
        {
            ScimError::new(403, None, status.message())
        }
        Code::FailedPrecondition | Code::Aborted => {
            ScimError::precondition_failed(status.message())
        }
        Code::Unauthenticated | Code::PermissionDenied => ScimError::unauthorized(status.message()),
        Code::ResourceExhausted => ScimError::new(429, None, status.message()),
        Code::Unimplemented => ScimError::new(501, None, status.message()),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            tracing::warn!(code = ?status.code(), message = status.message(), "provisioner unavailable");
            ScimError::unavailable("the provisioner is unavailable; retry later")
        }
        _ => {
            tracing::error!(code = ?status.code(), message = status.message(), "provisioner error");
            ScimError::internal("internal error")
        }
    }
}
