//! One id per SCIM request, set at the gateway and carried in gRPC metadata,
//! so a request can be followed through every service's logs.

use tonic::service::Interceptor;

/// The HTTP header and gRPC metadata key.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: String;
}

/// A new id, or the caller's when it sent a sane one.
pub fn from_header(value: Option<&str>) -> String {
    match value {
        Some(id)
            if !id.is_empty()
                && id.len() <= 128
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
        {
            id.to_owned()
        }
        _ => uuid::Uuid::new_v4().simple().to_string(),
    }
}

/// Runs `future` with `id` as the current request id.
pub async fn scope<F: std::future::Future>(id: String, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// The current request id, if the caller runs inside [`scope`].
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Adds the current request id to outgoing gRPC calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct Propagate;

impl Interceptor for Propagate {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(id) = current()
            && let Ok(value) = id.parse()
        {
            request.metadata_mut().insert(HEADER, value);
        }
        Ok(request)
    }
}
