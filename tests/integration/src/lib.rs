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
    // Tests run pull syncs when they mean to; a scheduled one would race them.
    config.directory.schedule = false;
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
    start_grpc_on(config, ephemeral_listener().await).await
}

/// Like [`start_grpc`] on a given listener (to restart on the same port),
/// with the provisioner's reconcile workers running.
pub async fn start_grpc_on(config: &DirsyncConfig, listener: TcpListener) -> Running {
    // Like `dirsync serve`: the services of one process ask each other (the directory-reader
    // writes through this server's provisioner, which asks this mapping service, which reads
    // through both).
    let mut config = config.clone();
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("listener address: {e}"));
    let own = format!("http://{addr}");
    config.directory.provisioner_url = own.clone();
    if config.provisioner.mapping_url.is_empty() {
        config.provisioner.mapping_url = own.clone();
    }
    config.mapping.provisioner_url = own.clone();
    config.mapping.directory_url = own;
    let config = &config;
    let mut server = GrpcServer::new(Duration::from_secs(30));
    let provisioner = dirsync_provisioner::Provisioner::open(config)
        .await
        .unwrap_or_else(|error| panic!("provisioner: {error}"));
    provisioner.register(&mut server);
    let reader = dirsync_directory_reader::DirectoryReader::open(config)
        .await
        .unwrap_or_else(|error| panic!("directory-reader: {error}"));
    reader.register(&mut server);
    let mapping = dirsync_mapping::Mapping::open(config)
        .await
        .unwrap_or_else(|error| panic!("mapping: {error}"));
    mapping.register(&mut server);
    spawn(listener, move |listener, stopped| async move {
        let (stop_workers, workers_stopped) = oneshot::channel::<()>();
        let workers = provisioner.start_workers(until(workers_stopped));
        let (stop_scheduler, scheduler_stopped) = oneshot::channel::<()>();
        let scheduler = reader.start_scheduler(until(scheduler_stopped));
        let (stop_operations, operations_stopped) = oneshot::channel::<()>();
        let operations = mapping.start_operations(until(operations_stopped));
        let served = server.serve(listener, until(stopped)).await;
        let _ = stop_workers.send(());
        let _ = stop_scheduler.send(());
        let _ = stop_operations.send(());
        let _ = operations.await;
        if let Some(workers) = workers {
            let _ = workers.await;
        }
        if let Some(scheduler) = scheduler {
            let _ = scheduler.await;
        }
        served
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

    /// `text` percent-encoded for a query value (everything but RFC 3986's unreserved
    /// characters), as a client that builds URLs properly sends it.
    pub fn encode_query_value(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for byte in text.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }

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

    /// One request for [`ScimClient::try_send`]: the path is relative to the client's base
    /// (query included); the body is raw bytes, so it may be anything at all.
    #[derive(Debug, Clone)]
    pub struct RawRequest {
        pub method: Method,
        pub path: String,
        pub body: Option<Vec<u8>>,
        /// Sent only when set.
        pub content_type: Option<String>,
        /// Extra headers; values are bytes, so they may be anything a header may hold.
        pub headers: Vec<(String, Vec<u8>)>,
        /// Whether to send `Accept: application/scim+json`, as Entra does.
        pub accept: bool,
    }

    impl RawRequest {
        pub fn new(method: Method, path: impl Into<String>) -> Self {
            Self {
                method,
                path: path.into(),
                body: None,
                content_type: None,
                headers: Vec::new(),
                accept: true,
            }
        }

        /// A body sent as `application/scim+json`.
        pub fn scim_body(self, body: impl Into<Vec<u8>>) -> Self {
            self.body(body, "application/scim+json")
        }

        pub fn body(mut self, body: impl Into<Vec<u8>>, content_type: &str) -> Self {
            self.body = Some(body.into());
            self.content_type = Some(content_type.to_owned());
            self
        }

        pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
            self.headers.push((name.into(), value.into()));
            self
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

        /// The bearer token this client sends, if any.
        pub fn token(&self) -> Option<&str> {
            self.token.as_deref()
        }

        /// The same client and token against another base (such as the server root).
        pub fn with_base(&self, base: impl Into<String>) -> Self {
            Self {
                base: base.into(),
                ..self.clone()
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

        /// Sends `request` exactly as built (raw body bytes, any headers, any method) and
        /// reports a transport failure as an error instead of panicking: for tests that
        /// must tell a refused request from a dropped connection.
        pub async fn try_send(&self, request: RawRequest) -> Result<Reply, String> {
            let mut builder = Request::builder()
                .method(request.method)
                .uri(format!("{}{}", self.base, request.path));
            if request.accept {
                builder = builder.header("accept", "application/scim+json");
            }
            if let Some(token) = &self.token {
                builder = builder.header("authorization", format!("Bearer {token}"));
            }
            if let Some(content_type) = &request.content_type {
                let value = hyper::header::HeaderValue::from_bytes(content_type.as_bytes())
                    .map_err(|e| format!("bad content type {content_type:?}: {e}"))?;
                builder = builder.header("content-type", value);
            }
            for (name, value) in &request.headers {
                let value = hyper::header::HeaderValue::from_bytes(value)
                    .map_err(|e| format!("bad header value for {name}: {e}"))?;
                builder = builder.header(name.as_str(), value);
            }
            let built = builder
                .body(Full::new(Bytes::from(request.body.unwrap_or_default())))
                .map_err(|e| format!("cannot build the request: {e}"))?;
            let response = self
                .client
                .request(built)
                .await
                .map_err(|e| format!("request failed: {e:?}"))?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading the body failed: {e:?}"))?
                .to_bytes();
            Ok(Reply {
                status,
                headers,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                raw: String::from_utf8_lossy(&bytes).into_owned(),
            })
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

/// SCIM in, MaaS360 emulator out: the whole provisioning path.
pub mod sync {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use dirsync_emulators::maas360::{EmulatorConfig, EmulatorHandle, Faults, StateDump};
    use dirsync_proto::provisioner::v1 as pb;
    use dirsync_runtime::DirsyncConfig;

    use super::Stack;
    use super::http::ScimClient;

    /// Reconcile settings for tests: quick polls and short backoffs, so that
    /// fault scenarios converge in seconds.
    pub fn fast_reconcile(config: &mut DirsyncConfig) {
        let provisioner = &mut config.provisioner;
        provisioner.poll_interval = Duration::from_millis(20);
        provisioner.backoff_base = Duration::from_millis(20);
        provisioner.backoff_max = Duration::from_millis(400);
        provisioner.breaker_cooldown = Duration::from_millis(200);
        provisioner.tenant_calls_per_second = 2_000.0;
        provisioner.maas360_timeout = Duration::from_secs(5);
        provisioner.lease = Duration::from_secs(10);
    }

    pub struct SyncStack {
        pub stack: Stack,
        pub emulator: EmulatorHandle,
        pub tenant_id: String,
        pub scim: ScimClient,
        /// The tenant's SCIM bearer token.
        pub token: String,
        secrets: PathBuf,
    }

    impl SyncStack {
        pub async fn start(faults: Faults) -> Self {
            Self::start_with(faults, |_| {}).await
        }

        pub async fn start_with(faults: Faults, adjust: impl FnOnce(&mut DirsyncConfig)) -> Self {
            let emulator_config = EmulatorConfig {
                faults,
                // These scenarios are about sync, not MaaS360's deletion queue: deletions are
                // carried out at once, so a deleted user also leaves its groups at once.
                deletion_job_after: Some(Duration::ZERO),
                ..EmulatorConfig::for_tests()
            };
            Self::start_on(emulator_config, None, None, adjust).await
        }

        /// A stack whose MaaS360 emulator is configured and seeded by the test, and whose
        /// tenant has the given policy.
        pub async fn start_on(
            emulator_config: EmulatorConfig,
            seed: Option<dirsync_emulators::maas360::Seed>,
            policy: Option<pb::TenantPolicy>,
            adjust: impl FnOnce(&mut DirsyncConfig),
        ) -> Self {
            let emulator = dirsync_emulators::maas360::start(emulator_config.clone(), seed)
                .await
                .unwrap_or_else(|error| panic!("emulator: {error}"));
            let stack = Stack::start_with(|config| {
                fast_reconcile(config);
                adjust(config);
            })
            .await;
            let secrets = std::env::temp_dir().join(format!("dirsync-secrets-{}", uuid_like()));
            std::fs::create_dir_all(&secrets).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(secrets.join("password"), &emulator_config.password)
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(secrets.join("access-key"), &emulator_config.app_access_key)
                .unwrap_or_else(|e| panic!("{e}"));
            let mut tenants =
                pb::tenant_service_client::TenantServiceClient::new(stack.grpc.channel().await);
            let created = tenants
                .create_tenant(pb::CreateTenantRequest {
                    name: "synced".to_owned(),
                    maas360: Some(connection(&emulator, &emulator_config, &secrets)),
                    policy,
                })
                .await
                .unwrap_or_else(|error| panic!("create tenant: {error}"))
                .into_inner();
            let tenant_id = created.tenant.map(|t| t.tenant_id).unwrap_or_default();
            let scim = ScimClient::new(stack.scim_base(), Some(created.scim_token.clone()));
            Self {
                stack,
                emulator,
                tenant_id,
                scim,
                token: created.scim_token,
                secrets,
            }
        }

        pub async fn work_status(&self) -> pb::WorkStatus {
            pb::work_service_client::WorkServiceClient::new(self.stack.grpc.channel().await)
                .get_work_status(pb::GetWorkStatusRequest {
                    tenant: self.tenant_id.clone(),
                })
                .await
                .unwrap_or_else(|error| panic!("work status: {error}"))
                .into_inner()
                .status
                .unwrap_or_default()
        }

        /// Waits until nothing is queued or in flight (parked work may remain).
        pub async fn wait_settled(&self, within: Duration) -> pb::WorkStatus {
            let deadline = Instant::now() + within;
            loop {
                let status = self.work_status().await;
                if status.queue_depth == 0 && status.in_flight == 0 {
                    return status;
                }
                if Instant::now() > deadline {
                    panic!("MaaS360 did not converge within {within:?}: {status:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        /// Waits until every resource is in sync, none parked.
        pub async fn wait_converged(&self, within: Duration) {
            let status = self.wait_settled(within).await;
            assert_eq!(status.parked, 0, "nothing may be parked: {status:?}");
        }

        pub async fn stop(self) {
            self.stack.stop().await;
            self.emulator.stop().await;
            let _ = std::fs::remove_dir_all(&self.secrets);
        }
    }

    pub fn connection(
        emulator: &EmulatorHandle,
        config: &EmulatorConfig,
        secrets: &std::path::Path,
    ) -> pb::Maas360Connection {
        let file = |name: &str| dirsync_proto::common::v1::SecretReference {
            source: Some(dirsync_proto::common::v1::secret_reference::Source::File(
                secrets.join(name).display().to_string(),
            )),
        };
        pb::Maas360Connection {
            base_url: emulator.base_url(),
            billing_id: config.billing_id.clone(),
            admin_user: config.admin_user.clone(),
            app_id: config.app_id.clone(),
            app_version: config.app_version.clone(),
            platform_id: config.platform_id.clone(),
            password: Some(file("password")),
            app_access_key: Some(file("access-key")),
            routes_toml: String::new(),
        }
    }

    fn uuid_like() -> String {
        format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        )
    }

    /// One user as MaaS360 should hold it.
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    pub struct ExpectedUser {
        pub user_name: String,
        pub domain: String,
        pub email: String,
        pub full_name: String,
        pub active: bool,
    }

    /// What MaaS360 should hold, in MaaS360's terms.
    #[derive(Debug, Default, PartialEq, Eq)]
    pub struct Mirror {
        pub users: BTreeSet<ExpectedUser>,
        /// Group name → member `username@domain`.
        pub groups: BTreeMap<String, BTreeSet<String>>,
    }

    /// A user as the test sent it to the gateway.
    #[derive(Debug, Clone, Default)]
    pub struct SentUser {
        pub user_name: String,
        pub email: String,
        pub display_name: String,
        pub active: bool,
    }

    /// A group as the test sent it: its name and its members' SCIM ids.
    #[derive(Debug, Clone, Default)]
    pub struct SentGroup {
        pub display_name: String,
        pub members: BTreeSet<String>,
    }

    /// The directory as the test told it to the gateway, kept by the test itself
    /// beside every request it sends, so that the verdict never rests on the
    /// product's own read-back: a gateway that stored the wrong thing would agree
    /// with itself.
    #[derive(Debug, Clone, Default)]
    pub struct Ledger {
        /// SCIM id → user.
        pub users: BTreeMap<String, SentUser>,
        /// SCIM id → group.
        pub groups: BTreeMap<String, SentGroup>,
    }

    impl Ledger {
        pub fn user_created(&mut self, id: &str, user: SentUser) {
            self.users.insert(id.to_owned(), user);
        }

        /// Applies a change the test sent for a user it created.
        pub fn user_changed(&mut self, id: &str, change: impl FnOnce(&mut SentUser)) {
            let user = self
                .users
                .get_mut(id)
                .unwrap_or_else(|| panic!("the test never created user {id}"));
            change(user);
        }

        /// A deleted user leaves its groups too, as Entra's deletion does.
        pub fn user_deleted(&mut self, id: &str) {
            self.users.remove(id);
            for group in self.groups.values_mut() {
                group.members.remove(id);
            }
        }

        pub fn group_created(&mut self, id: &str, display_name: &str) {
            self.groups.insert(
                id.to_owned(),
                SentGroup {
                    display_name: display_name.to_owned(),
                    members: BTreeSet::new(),
                },
            );
        }

        pub fn members_added<'a>(
            &mut self,
            group: &str,
            users: impl IntoIterator<Item = &'a String>,
        ) {
            self.group_mut(group)
                .members
                .extend(users.into_iter().cloned());
        }

        pub fn members_removed<'a>(
            &mut self,
            group: &str,
            users: impl IntoIterator<Item = &'a String>,
        ) {
            let members = &mut self.group_mut(group).members;
            for user in users {
                members.remove(user);
            }
        }

        fn group_mut(&mut self, id: &str) -> &mut SentGroup {
            self.groups
                .get_mut(id)
                .unwrap_or_else(|| panic!("the test never created group {id}"))
        }

        /// What MaaS360 must hold: the username is the UPN prefix, the domain the rest,
        /// the email the work email, the full name the display name.
        pub fn expected(&self) -> Mirror {
            let mut mirror = Mirror::default();
            let mut names = BTreeMap::new();
            for (id, user) in &self.users {
                let (local, domain) = split(&user.user_name);
                names.insert(id.clone(), format!("{local}@{domain}").to_lowercase());
                mirror.users.insert(ExpectedUser {
                    user_name: local.to_lowercase(),
                    domain: domain.to_lowercase(),
                    email: user.email.clone(),
                    full_name: user.display_name.clone(),
                    active: user.active,
                });
            }
            for group in self.groups.values() {
                let members = group
                    .members
                    .iter()
                    .map(|id| {
                        names
                            .get(id)
                            .cloned()
                            .unwrap_or_else(|| panic!("group member {id} is no user the test sent"))
                    })
                    .collect();
                mirror.groups.insert(group.display_name.clone(), members);
            }
            mirror
        }
    }

    fn split(user_name: &str) -> (String, String) {
        match user_name.rsplit_once('@') {
            Some((local, domain)) => (local.to_owned(), domain.to_owned()),
            None => (user_name.to_owned(), String::new()),
        }
    }

    /// What the emulator holds, in the same terms.
    pub fn actual_from_emulator(state: &StateDump) -> Mirror {
        let mut mirror = Mirror::default();
        let mut names = BTreeMap::new();
        for user in &state.users {
            names.insert(
                user.user_identifier.clone(),
                format!("{}@{}", user.user_name, user.domain).to_lowercase(),
            );
            mirror.users.insert(ExpectedUser {
                user_name: user.user_name.to_lowercase(),
                domain: user.domain.to_lowercase(),
                email: user.email.clone(),
                full_name: user.full_name.clone(),
                active: user.status.eq_ignore_ascii_case("active"),
            });
        }
        for group in &state.groups {
            let members = state
                .members(&group.group_identifier)
                .iter()
                .map(|id| {
                    // An id MaaS360 holds no user for shows as itself, so the
                    // comparison reports it rather than losing it.
                    names
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| format!("<no user {id}>"))
                })
                .collect();
            mirror.groups.insert(group.name.clone(), members);
        }
        mirror
    }

    /// Asserts that MaaS360 holds exactly what the test told the gateway, user
    /// by user and group by group, with no duplicates.
    pub fn assert_mirrors(sync: &SyncStack, sent: &Ledger) {
        let expected = sent.expected();
        let state = sync.emulator.state();
        let mut seen = BTreeSet::new();
        for user in &state.users {
            assert!(
                seen.insert((user.user_name.to_lowercase(), user.domain.to_lowercase())),
                "duplicate MaaS360 user {}@{}",
                user.user_name,
                user.domain
            );
        }
        let actual = actual_from_emulator(&state);
        let missing: Vec<_> = expected.users.difference(&actual.users).collect();
        let extra: Vec<_> = actual.users.difference(&expected.users).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "users differ:\n missing/wrong in MaaS360: {missing:?}\n extra in MaaS360: {extra:?}"
        );
        for (name, members) in &expected.groups {
            let held = actual
                .groups
                .get(name)
                .unwrap_or_else(|| panic!("MaaS360 lacks group {name:?}"));
            assert_eq!(held, members, "members of {name:?}");
        }
        let extra_groups: Vec<_> = actual
            .groups
            .keys()
            .filter(|name| !expected.groups.contains_key(*name))
            .collect();
        assert!(
            extra_groups.is_empty(),
            "extra MaaS360 groups: {extra_groups:?}"
        );
    }
}

/// Graph in, MaaS360 out: the pull sync's whole path. A Graph emulator seeded with a
/// generated directory, a tenant in pull mode connected to it and to a MaaS360 emulator, and
/// the expectation of what MaaS360 should then hold, computed from the Graph emulator's state
/// alone.
pub mod pull {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use dirsync_emulators::graph::{GraphEmulatorConfig, GraphEmulatorHandle, GraphSeed};
    use dirsync_emulators::maas360::Faults;
    use dirsync_entra_simulator::{Expected, ExpectedGroup, ExpectedUser};
    use dirsync_proto::common::v1::{SecretReference, secret_reference::Source};
    use dirsync_proto::directory::v1 as pb;
    use dirsync_proto::directory::v1::directory_reader_service_client::DirectoryReaderServiceClient;
    use dirsync_proto::provisioner::v1 as provisioner;
    use dirsync_runtime::DirsyncConfig;
    use tonic::transport::Channel;

    use super::sync::SyncStack;

    pub const SETTLE: Duration = Duration::from_secs(60);

    pub struct PullStack {
        pub sync: SyncStack,
        pub graph: GraphEmulatorHandle,
        pub secret_file: std::path::PathBuf,
        /// Users that were enabled when a sync ran (or at the start): like Entra's own
        /// provisioning, the pull sync creates only enabled users, and keeps them once made.
        ever_enabled: std::sync::Mutex<std::collections::BTreeSet<String>>,
    }

    /// An Entra connection to `graph` with the client secret in `secret_file`.
    pub fn connection(
        graph: &GraphEmulatorHandle,
        secret_file: &std::path::Path,
    ) -> pb::EntraConnection {
        let config = graph.config();
        pb::EntraConnection {
            entra_tenant_id: config.tenant_id.clone(),
            client_id: config.client_id.clone(),
            credential: Some(pb::entra_connection::Credential::ClientSecret(
                SecretReference {
                    source: Some(Source::File(secret_file.display().to_string())),
                },
            )),
            cloud: pb::EntraCloud::Custom as i32,
            login_url: graph.base_url(),
            graph_url: graph.base_url(),
        }
    }

    impl PullStack {
        /// A Graph emulator seeded with `seed`, and a tenant in pull mode connected to it.
        pub async fn start(seed: GraphSeed) -> Self {
            Self::start_with(seed, GraphEmulatorConfig::for_tests(), |_| {}).await
        }

        pub async fn start_with(
            seed: GraphSeed,
            graph_config: GraphEmulatorConfig,
            adjust: impl FnOnce(&mut DirsyncConfig),
        ) -> Self {
            let graph = dirsync_emulators::graph::start(graph_config, seed)
                .await
                .unwrap_or_else(|e| panic!("Graph emulator: {e}"));
            let sync = SyncStack::start_with(Faults::default(), adjust).await;
            let secret_file = std::env::temp_dir().join(format!(
                "dirsync-graph-secret-{}-{}",
                std::process::id(),
                graph.addr().port()
            ));
            std::fs::write(&secret_file, &graph.config().client_secret)
                .unwrap_or_else(|e| panic!("{e}"));
            let stack = Self {
                ever_enabled: std::sync::Mutex::new(enabled_users(&graph)),
                sync,
                graph,
                secret_file,
            };
            stack.set_mode(provisioner::TenantMode::Pull).await;
            stack
                .reader()
                .await
                .set_entra_connection(pb::SetEntraConnectionRequest {
                    tenant: stack.sync.tenant_id.clone(),
                    connection: Some(connection(&stack.graph, &stack.secret_file)),
                })
                .await
                .unwrap_or_else(|e| panic!("SetEntraConnection: {e:?}"));
            stack
        }

        pub fn tenant(&self) -> String {
            self.sync.tenant_id.clone()
        }

        pub async fn reader(&self) -> DirectoryReaderServiceClient<Channel> {
            DirectoryReaderServiceClient::new(self.sync.stack.grpc.channel().await)
        }

        pub async fn set_mode(&self, mode: provisioner::TenantMode) {
            provisioner::tenant_service_client::TenantServiceClient::new(
                self.sync.stack.grpc.channel().await,
            )
            .set_tenant_mode(provisioner::SetTenantModeRequest {
                tenant: self.tenant(),
                mode: mode as i32,
            })
            .await
            .unwrap_or_else(|e| panic!("SetTenantMode: {e:?}"));
        }

        pub async fn try_sync(
            &self,
            request: pb::SyncTenantRequest,
        ) -> Result<pb::SyncTenantResponse, tonic::Status> {
            let request = pb::SyncTenantRequest {
                tenant: self.tenant(),
                ..request
            };
            let enabled = enabled_users(&self.graph);
            let response = self
                .reader()
                .await
                .sync_tenant(request)
                .await
                .map(tonic::Response::into_inner)?;
            if response.applied
                && let Ok(mut ever) = self.ever_enabled.lock()
            {
                ever.extend(enabled);
            }
            Ok(response)
        }

        /// A sync that must succeed; returns its plan.
        pub async fn sync(&self, request: pb::SyncTenantRequest) -> (pb::SyncPlan, bool) {
            let response = self
                .try_sync(request)
                .await
                .unwrap_or_else(|e| panic!("SyncTenant: {e:?}"));
            (response.plan.unwrap_or_default(), response.applied)
        }

        pub async fn state(&self) -> pb::SyncState {
            self.reader()
                .await
                .get_sync_state(pb::GetSyncStateRequest {
                    tenant: self.tenant(),
                })
                .await
                .unwrap_or_else(|e| panic!("GetSyncState: {e:?}"))
                .into_inner()
                .state
                .unwrap_or_default()
        }

        /// What MaaS360 should hold: every live Entra user (and `held_soft_deleted`, disabled),
        /// every group with its transitive users.
        pub fn expected(&self, held_soft_deleted: &[String]) -> Expected {
            let ever_enabled = self
                .ever_enabled
                .lock()
                .map(|ever| ever.clone())
                .unwrap_or_default();
            expected_from_graph(&self.graph, held_soft_deleted, &ever_enabled)
        }

        /// Waits for the provisioner to settle, then compares MaaS360 with `expected`.
        pub async fn assert_maas360_matches(&self, expected: &Expected) {
            self.sync.wait_converged(SETTLE).await;
            let comparison =
                dirsync_emulators::convergence::compare(expected, &self.sync.emulator.state());
            assert!(
                comparison.matches(),
                "MaaS360 differs from Entra in {} place(s): {:#?}",
                comparison.mismatches.len(),
                &comparison.mismatches[..comparison.mismatches.len().min(20)]
            );
            assert_eq!(comparison.entra, comparison.maas360);
        }

        /// A call to the Graph emulator's admin API (`/_emulator/...`).
        pub async fn admin(
            &self,
            method: reqwest::Method,
            path: &str,
            body: Option<serde_json::Value>,
        ) -> serde_json::Value {
            let client = reqwest::Client::new();
            let mut request =
                client.request(method, format!("{}/_emulator{path}", self.graph.base_url()));
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("admin {path}: {e}"));
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "admin {path}: {status} {text}");
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
        }

        pub async fn stop(self) {
            let _ = std::fs::remove_file(&self.secret_file);
            self.sync.stop().await;
            self.graph.stop().await;
        }
    }

    /// The expectation, from the Graph emulator's state alone (the emulator's own transitive
    /// membership computation, not the directory-reader's).
    /// The ids of the users Graph holds enabled now.
    fn enabled_users(graph: &GraphEmulatorHandle) -> std::collections::BTreeSet<String> {
        graph
            .state()
            .users
            .into_iter()
            .filter(|user| user.account_enabled)
            .map(|user| user.id)
            .collect()
    }

    /// What MaaS360 should hold: every live Entra user that is enabled or was enabled when a
    /// sync ran (a disabled user is never created, as Entra's provisioning creates only enabled
    /// users), `held_soft_deleted` disabled, and every group with those of its transitive users.
    pub fn expected_from_graph(
        graph: &GraphEmulatorHandle,
        held_soft_deleted: &[String],
        ever_enabled: &std::collections::BTreeSet<String>,
    ) -> Expected {
        let state = graph.state();
        let live = GraphSeed {
            users: state.users.clone(),
            groups: state.groups.clone(),
        };
        let mut expected = Expected::default();
        let mut names = BTreeMap::new();
        let soft = state
            .deleted_users
            .iter()
            .filter(|u| held_soft_deleted.contains(&u.id))
            .map(|u| (u, false));
        let made = |user: &&dirsync_emulators::graph::SeedUser| {
            user.account_enabled || ever_enabled.contains(&user.id)
        };
        for (user, live_user) in state
            .users
            .iter()
            .filter(made)
            .map(|u| (u, true))
            .chain(soft)
        {
            let upn = user.user_principal_name.clone();
            names.insert(user.id.clone(), upn.clone());
            expected.users.insert(
                upn.clone(),
                ExpectedUser {
                    object_id: user.id.clone(),
                    user_name: upn.clone(),
                    external_id: upn.split('@').next().unwrap_or_default().to_owned(),
                    active: user.account_enabled && live_user,
                    display_name: user.display_name.clone().unwrap_or_default(),
                    given_name: user.given_name.clone().unwrap_or_default(),
                    family_name: user.surname.clone().unwrap_or_default(),
                    mail: user.mail.clone().unwrap_or_else(|| upn.clone()),
                    title: user.job_title.clone().unwrap_or_default(),
                    department: user.department.clone().unwrap_or_default(),
                    employee_number: user.employee_id.clone().unwrap_or_default(),
                    manager_user_name: None,
                },
            );
        }
        let transitive = live.transitive_user_members();
        for group in &state.groups {
            let members: std::collections::BTreeSet<String> = transitive
                .get(&group.id)
                .into_iter()
                .flatten()
                .filter_map(|id| names.get(id).cloned())
                .collect();
            expected.membership_count += members.len();
            expected.groups.insert(
                group.display_name.clone(),
                ExpectedGroup {
                    object_id: group.id.clone(),
                    display_name: group.display_name.clone(),
                    member_user_names: members,
                },
            );
        }
        expected.user_count = expected.users.len();
        expected.active_user_count = expected.users.values().filter(|u| u.active).count();
        expected.group_count = expected.groups.len();
        expected
    }
}
