//! Test harness: starts dirsync's services in-process on ephemeral ports, each
//! test with a database of its own, and stops them when the handle drops.

use std::net::SocketAddr;
use std::time::Duration;

use dirsync_runtime::{DirsyncConfig, GrpcServer};
use dirsync_store::testing::TestDatabase;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

/// A configuration pointing at `db`, with listeners chosen by the harness.
pub fn test_config(db: &TestDatabase) -> DirsyncConfig {
    let mut config = DirsyncConfig::default();
    config.database.url = db.options().url.clone();
    config.database.schema = db.options().schema.clone();
    config.database.max_connections = 8;
    config
}

pub async fn ephemeral_listener() -> TcpListener {
    match TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(error) => panic!("cannot bind an ephemeral port: {error}"),
    }
}

/// A running server and the means to stop it.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops the server and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub async fn channel(&self) -> Channel {
        connect(self.addr).await
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn connect(addr: SocketAddr) -> Channel {
    let endpoint = match Endpoint::from_shared(format!("http://{addr}")) {
        Ok(endpoint) => endpoint.timeout(Duration::from_secs(30)),
        Err(error) => panic!("bad address {addr}: {error}"),
    };
    match endpoint.connect().await {
        Ok(channel) => channel,
        Err(error) => panic!("cannot connect to {addr}: {error}"),
    }
}

/// Spawns `serve` with a oneshot shutdown; the listener is bound first, so
/// the server accepts as soon as this returns.
pub fn spawn<F, Fut, E>(listener: TcpListener, serve: F) -> Running
where
    F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(error) => panic!("listener has no address: {error}"),
    };
    let (stop, stopped) = oneshot::channel();
    let future = serve(listener, stopped);
    let task = tokio::spawn(async move {
        if let Err(error) = future.await {
            panic!("server on {addr} failed: {error}");
        }
    });
    Running {
        addr,
        stop: Some(stop),
        task: Some(task),
    }
}

async fn until(stopped: oneshot::Receiver<()>) {
    let _ = stopped.await;
}

/// Every gRPC service in one server, as `dirsync serve` runs them.
pub async fn start_grpc(config: &DirsyncConfig) -> Running {
    let mut server = GrpcServer::new(Duration::from_secs(30));
    dirsync_provisioner::Provisioner::open(config)
        .await
        .unwrap_or_else(|error| panic!("provisioner: {error}"))
        .register(&mut server);
    dirsync_directory_reader::DirectoryReader::open(config)
        .await
        .unwrap_or_else(|error| panic!("directory-reader: {error}"))
        .register(&mut server);
    dirsync_mapping::MappingServiceHandle::open(config)
        .await
        .unwrap_or_else(|error| panic!("mapping: {error}"))
        .register(&mut server);
    spawn(ephemeral_listener().await, move |listener, stopped| {
        server.serve(listener, until(stopped))
    })
}

/// The whole stack: gRPC services plus the SCIM gateway in front of them.
pub struct Stack {
    pub db: TestDatabase,
    pub config: DirsyncConfig,
    pub grpc: Running,
    pub scim: Running,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts the stack after `adjust` has changed the configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut DirsyncConfig)) -> Self {
        let db = TestDatabase::new();
        let mut config = test_config(&db);
        adjust(&mut config);
        let grpc = start_grpc(&config).await;
        config.scim.provisioner_url = format!("http://{}", grpc.addr);
        let scim_listener = ephemeral_listener().await;
        let scim_addr = scim_listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        config.scim.listen = scim_addr;
        let scim_config = config.scim.clone();
        let scim = spawn(scim_listener, move |listener, stopped| async move {
            dirsync_scim_gateway::serve(&scim_config, listener, until(stopped)).await
        });
        Self {
            db,
            config,
            grpc,
            scim,
        }
    }

    /// Creates a tenant; returns its id and a SCIM client holding its token.
    pub async fn tenant(&self, name: &str) -> (String, http::ScimClient) {
        use dirsync_proto::provisioner::v1 as pb;
        let mut client =
            pb::tenant_service_client::TenantServiceClient::new(self.grpc.channel().await);
        let created = client
            .create_tenant(pb::CreateTenantRequest {
                name: name.to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|error| panic!("creating tenant {name}: {error}"))
            .into_inner();
        let tenant_id = created
            .tenant
            .map(|tenant| tenant.tenant_id)
            .unwrap_or_default();
        (
            tenant_id,
            http::ScimClient::new(self.scim_base(), Some(created.scim_token)),
        )
    }

    /// `http://127.0.0.1:PORT/scim/v2`
    pub fn scim_base(&self) -> String {
        format!("http://{}/scim/v2", self.scim.addr)
    }

    pub async fn stop(self) {
        self.scim.stop().await;
        self.grpc.stop().await;
    }
}

/// A plain HTTP/1.1 client for driving the SCIM gateway as Entra does.
pub mod http {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::{Method, Request, StatusCode};
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use serde_json::Value;

    /// One response, read whole.
    #[derive(Debug)]
    pub struct Reply {
        pub status: StatusCode,
        pub headers: hyper::HeaderMap,
        pub body: Value,
        pub raw: String,
    }

    impl Reply {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|value| value.to_str().ok())
        }
    }

    #[derive(Clone)]
    pub struct ScimClient {
        client: Client<HttpConnector, Full<Bytes>>,
        base: String,
        token: Option<String>,
    }

    impl ScimClient {
        pub fn new(base: impl Into<String>, token: Option<String>) -> Self {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            Self {
                client: Client::builder(TokioExecutor::new()).build(connector),
                base: base.into(),
                token,
            }
        }

        pub fn with_token(&self, token: Option<String>) -> Self {
            Self {
                token,
                ..self.clone()
            }
        }

        /// Sends `method path` (path relative to the SCIM base, query
        /// included) with an optional JSON body.
        pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
            self.send_raw(
                method,
                path,
                body.map(Value::to_string),
                "application/scim+json",
            )
            .await
        }

        pub async fn send_raw(
            &self,
            method: Method,
            path: &str,
            body: Option<String>,
            content_type: &str,
        ) -> Reply {
            let mut request = Request::builder()
                .method(method)
                .uri(format!("{}{path}", self.base))
                .header("accept", "application/scim+json");
            if let Some(token) = &self.token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let body = match body {
                Some(body) => {
                    request = request.header("content-type", content_type);
                    Full::new(Bytes::from(body))
                }
                None => Full::new(Bytes::new()),
            };
            let request = request
                .body(body)
                .unwrap_or_else(|e| panic!("bad request: {e}"));
            let response = self
                .client
                .request(request)
                .await
                .unwrap_or_else(|e| panic!("request failed: {e}"));
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response
                .into_body()
                .collect()
                .await
                .unwrap_or_else(|e| panic!("body failed: {e}"))
                .to_bytes();
            let raw = String::from_utf8_lossy(&bytes).into_owned();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Reply {
                status,
                headers,
                body,
                raw,
            }
        }

        pub async fn get(&self, path: &str) -> Reply {
            self.send(Method::GET, path, None).await
        }

        pub async fn post(&self, path: &str, body: &Value) -> Reply {
            self.send(Method::POST, path, Some(body)).await
        }

        pub async fn put(&self, path: &str, body: &Value) -> Reply {
            self.send(Method::PUT, path, Some(body)).await
        }

        pub async fn patch(&self, path: &str, body: &Value) -> Reply {
            self.send(Method::PATCH, path, Some(body)).await
        }

        pub async fn delete(&self, path: &str) -> Reply {
            self.send(Method::DELETE, path, None).await
        }
    }
}
