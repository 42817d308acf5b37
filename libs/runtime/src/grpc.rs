//! One way to serve gRPC: on a listener the caller already bound (so tests use
//! ephemeral ports and the all-in-one process shares one port), until a
//! shutdown future resolves, always with `grpc.health.v1` and reflection (v1
//! and v1alpha, because grpcurl 1.8 speaks only v1alpha).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A gRPC channel to services of this process (see [`GrpcServer::in_process`]).
pub type InProcessChannel = tower::util::BoxCloneSyncService<
    tonic::codegen::http::Request<Body>,
    tonic::codegen::http::Response<Body>,
    tonic::Status,
>;

/// How long an RPC that reads or writes a whole directory may run (a pull sync of 100k users,
/// a drift report, an Option 1 plan): well past `grpc.request_timeout`, which bounds the rest.
pub const LONG_REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// Each RPC's deadline on the server: `grpc.request_timeout`, or [`LONG_REQUEST_TIMEOUT`] for
/// the RPCs a service marked long-running. A client's own `grpc-timeout` still applies when
/// shorter.
#[derive(Debug, Clone)]
struct Deadlines {
    default: Duration,
    long_running: std::collections::HashSet<String>,
}

impl Deadlines {
    fn of(&self, path: &str) -> Duration {
        if self.long_running.contains(path) {
            LONG_REQUEST_TIMEOUT.max(self.default)
        } else {
            self.default
        }
    }
}

/// Collects services, then serves them with health and reflection.
pub struct GrpcServer {
    routes: RoutesBuilder,
    service_names: Vec<&'static str>,
    deadlines: Deadlines,
    draining: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("service_names", &self.service_names)
            .finish_non_exhaustive()
    }
}

impl GrpcServer {
    pub fn new(request_timeout: Duration) -> Self {
        Self {
            routes: RoutesBuilder::default(),
            service_names: Vec::new(),
            deadlines: Deadlines {
                default: request_timeout,
                long_running: std::collections::HashSet::new(),
            },
            draining: tokio::sync::watch::channel(false).0,
        }
    }

    /// Lets `rpc` of the service `S` run up to [`LONG_REQUEST_TIMEOUT`]: it reads or writes a
    /// whole directory, and its time grows with the directory.
    pub fn long_running<S: NamedService>(&mut self, rpc: &str) -> &mut Self {
        self.deadlines
            .long_running
            .insert(format!("/{}/{rpc}", S::NAME));
        self
    }

    /// A signal for services with server streams: it fires when this server starts shutting
    /// down, so that streams end and the shutdown does not wait for their clients.
    pub fn draining(&self) -> crate::shutdown::Draining {
        crate::shutdown::Draining::new(self.draining.subscribe())
    }

    /// Adds a service; health reports it SERVING once the server starts.
    pub fn add_service<S>(&mut self, service: S) -> &mut Self
    where
        S: tower::Service<
                tonic::codegen::http::Request<Body>,
                Response = tonic::codegen::http::Response<Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes.add_service(service);
        self.service_names.push(S::NAME);
        self
    }

    /// Names of the services added so far.
    pub fn service_names(&self) -> &[&'static str] {
        &self.service_names
    }

    /// The services added so far, callable from this process through their generated clients
    /// without a socket or HTTP/2 framing: the all-in-one process's SCIM gateway calls the
    /// provisioner this way. The contract is the same (protobuf messages, gRPC statuses and
    /// error details, request ids, metrics); each call has `timeout` as its deadline, as a
    /// channel's would.
    pub fn in_process(&self, timeout: Duration) -> InProcessChannel {
        let observed = RpcObserver {
            inner: self.routes.clone().routes(),
            deadlines: std::sync::Arc::new(self.deadlines.clone()),
        };
        let service = tower::service_fn(move |request: tonic::codegen::http::Request<Body>| {
            let call = tower::ServiceExt::oneshot(observed.clone(), request);
            async move {
                match tokio::time::timeout(timeout, call).await {
                    Ok(Ok(response)) => Ok(response),
                    Ok(Err(never)) => match never {},
                    Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                        "no answer within {timeout:?}"
                    ))),
                }
            }
        });
        tower::util::BoxCloneSyncService::new(service)
    }

    /// Serves until `shutdown` resolves, then drains in-flight calls.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        for name in &self.service_names {
            reporter
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        let reflection_v1 = reflection_builder().build_v1()?;
        let reflection_v1alpha = reflection_builder().build_v1alpha()?;

        let mut routes = self.routes;
        routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);

        let local_addr = listener.local_addr().ok();
        tracing::info!(addr = ?local_addr, services = ?self.service_names, "gRPC serving");
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let deadlines = std::sync::Arc::new(self.deadlines);
        // Deadlines are RpcObserver's, per RPC; the server honours a client's grpc-timeout.
        let result = tonic::transport::Server::builder()
            .layer(tower::layer::layer_fn(move |inner| RpcObserver {
                inner,
                deadlines: deadlines.clone(),
            }))
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(
                incoming,
                mark_not_serving_on(shutdown, reporter, self.draining),
            )
            .await;
        tracing::info!(addr = ?local_addr, "gRPC stopped");
        Ok(result?)
    }
}

/// Health turns NOT_SERVING as soon as shutdown starts, so load balancers stop
/// routing new calls while in-flight ones drain.
async fn mark_not_serving_on(
    shutdown: impl Future<Output = ()>,
    reporter: HealthReporter,
    draining: tokio::sync::watch::Sender<bool>,
) {
    shutdown.await;
    let _ = draining.send(true);
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
}

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(dirsync_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc error details, so that grpcurl shows an error's ErrorInfo, BadRequest,
        // ResourceInfo and RetryInfo decoded.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// Counts and times every RPC, and runs it in a span carrying the caller's
/// request id.
#[derive(Debug, Clone)]
struct RpcObserver<S> {
    inner: S,
    deadlines: std::sync::Arc<Deadlines>,
}

type Http<B> = tonic::codegen::http::Request<B>;

impl<S, B, R> tower::Service<Http<B>> for RpcObserver<S>
where
    S: tower::Service<Http<B>, Response = tonic::codegen::http::Response<R>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Http<B>) -> Self::Future {
        use tracing::Instrument as _;
        let path = request.uri().path();
        // Only our own and the standard services' names become label values.
        let rpc = if path.starts_with("/dirsync.") || path.starts_with("/grpc.") {
            path.trim_start_matches('/').to_owned()
        } else {
            "other".to_owned()
        };
        let request_id = crate::request_id::from_header(
            request
                .headers()
                .get(crate::request_id::HEADER)
                .and_then(|value| value.to_str().ok()),
        );
        let span = tracing::info_span!("rpc", rpc = %rpc, request_id = %request_id);
        let deadline = self.deadlines.of(path);
        let started = std::time::Instant::now();
        let future = self.inner.call(request);
        Box::pin(
            async move {
                let result = match tokio::time::timeout(deadline, future).await {
                    Ok(result) => result,
                    Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                        "the server's deadline of {deadline:?} for this call passed"
                    ))
                    .into_http()),
                };
                // Errors travel as trailers-only responses with grpc-status in
                // the headers; a success carries it in the trailers.
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse::<i32>().ok())
                        .map_or(tonic::Code::Ok, tonic::Code::from),
                    Err(_) => tonic::Code::Unknown,
                };
                let labels = vec![("rpc", rpc), ("code", format!("{code:?}"))];
                let registry = crate::metrics::registry();
                registry.increment(
                    "dirsync_grpc_requests_total",
                    "gRPC requests by RPC and status code.",
                    labels.clone(),
                );
                registry.observe(
                    "dirsync_grpc_request_duration_seconds",
                    "gRPC request latency by RPC and status code.",
                    labels,
                    started.elapsed().as_secs_f64(),
                );
                // One line per RPC at debug, inside the span: the request id the gateway set
                // reaches the provisioner's log with it.
                tracing::debug!(
                    ?code,
                    elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "rpc"
                );
                result
            }
            .instrument(span),
        )
    }
}
