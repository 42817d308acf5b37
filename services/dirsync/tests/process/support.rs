//! Running `dirsync serve` as a child process on fixed ports (so that a restart comes back
//! where clients expect it), killing it, and talking to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dirsync_emulators::maas360::{EmulatorConfig, EmulatorHandle};
use dirsync_proto::provisioner::v1 as pb;
use dirsync_store::testing::TestDatabase;
use tonic::transport::{Channel, Endpoint};

pub const DIRSYNC: &str = env!("CARGO_BIN_EXE_dirsync");

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The store settings of `db` as the child's environment.
pub fn database_env(db: &TestDatabase) -> Vec<(String, String)> {
    let options = db.options();
    let mut env = vec![("DIRSYNC__DATABASE__URL".to_owned(), options.url.clone())];
    if !options.schema.is_empty() {
        env.push((
            "DIRSYNC__DATABASE__SCHEMA".to_owned(),
            options.schema.clone(),
        ));
    }
    env
}

/// Reconcile settings for scenarios: quick polls and backoffs, short leases, quiet logs.
pub fn fast_reconcile_env() -> Vec<(String, String)> {
    [
        ("DIRSYNC__PROVISIONER__POLL_INTERVAL", "20ms"),
        ("DIRSYNC__PROVISIONER__BACKOFF_BASE", "50ms"),
        ("DIRSYNC__PROVISIONER__BACKOFF_MAX", "2s"),
        ("DIRSYNC__PROVISIONER__LEASE", "3s"),
        ("DIRSYNC__PROVISIONER__BREAKER_COOLDOWN", "300ms"),
        ("DIRSYNC__PROVISIONER__MAAS360_TIMEOUT", "5s"),
        ("DIRSYNC__LOG__LEVEL", "warn"),
        ("DIRSYNC__METRICS__LISTEN", "127.0.0.1:0"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

/// One `dirsync` child process, started with `args` and `env`; killed when dropped.
pub struct Process {
    child: Child,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
    pub restarts: usize,
}

impl Process {
    pub fn spawn(args: &[&str], env: &[(String, String)]) -> Self {
        Self::start(None, args, env)
    }

    /// Like [`Process::spawn`], in `dir` (where `serve` keeps its default SQLite store).
    pub fn spawn_in(dir: &Path, args: &[&str], env: &[(String, String)]) -> Self {
        Self::start(Some(dir.to_owned()), args, env)
    }

    fn start(dir: Option<PathBuf>, args: &[&str], env: &[(String, String)]) -> Self {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        Self {
            child: spawn(dir.as_deref(), &args, env),
            args,
            env: env.to_vec(),
            dir,
            restarts: 0,
        }
    }

    /// SIGKILL: no shutdown, no flush, no lease given back.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same command again (same ports, same store).
    pub fn restart(&mut self) {
        self.kill9();
        self.child = spawn(self.dir.as_deref(), &self.args, &self.env);
        self.restarts += 1;
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn spawn(dir: Option<&Path>, args: &[String], env: &[(String, String)]) -> Child {
    let mut command = Command::new(DIRSYNC);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command
        .args(args)
        .env_remove("DIRSYNC_CONFIG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

/// Waits until a gRPC server on `port` answers its health check, for at most a minute.
pub async fn wait_grpc(port: u16) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30));
        if let Ok(channel) = endpoint.connect().await {
            let healthy = tonic_health::pb::health_client::HealthClient::new(channel.clone())
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await;
            if healthy.is_ok() {
                return channel;
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing serves gRPC on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until an HTTP server on `port` answers `/healthz`.
pub async fn wait_http(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let request = format!(
                "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            );
            if stream.write_all(request.as_bytes()).await.is_ok() {
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer).await;
                if answer.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing serves HTTP on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Files holding the emulator's secrets, referenced by the tenant's MaaS360 connection (as in
/// production, the secrets never cross the API).
pub struct Secrets(PathBuf);

impl Secrets {
    pub fn write(config: &EmulatorConfig) -> Self {
        let dir =
            std::env::temp_dir().join(format!("dirsync-secrets-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("password"), &config.password).unwrap();
        std::fs::write(dir.join("access-key"), &config.app_access_key).unwrap();
        Self(dir)
    }

    fn reference(&self, name: &str) -> Option<dirsync_proto::common::v1::SecretReference> {
        Some(dirsync_proto::common::v1::SecretReference {
            source: Some(dirsync_proto::common::v1::secret_reference::Source::File(
                self.path(name).display().to_string(),
            )),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        Path::new(&self.0).join(name)
    }

    pub fn connection(
        &self,
        emulator: &EmulatorHandle,
        config: &EmulatorConfig,
    ) -> pb::Maas360Connection {
        pb::Maas360Connection {
            base_url: emulator.base_url(),
            billing_id: config.billing_id.clone(),
            admin_user: config.admin_user.clone(),
            app_id: config.app_id.clone(),
            app_version: config.app_version.clone(),
            platform_id: config.platform_id.clone(),
            password: self.reference("password"),
            app_access_key: self.reference("access-key"),
            routes_toml: String::new(),
        }
    }
}

impl Drop for Secrets {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a tenant connected to the emulator; returns its id and SCIM token.
pub async fn create_tenant(
    channel: Channel,
    name: &str,
    connection: pb::Maas360Connection,
) -> (String, String) {
    let created = pb::tenant_service_client::TenantServiceClient::new(channel)
        .create_tenant(pb::CreateTenantRequest {
            name: name.to_owned(),
            maas360: Some(connection),
            policy: None,
        })
        .await
        .unwrap()
        .into_inner();
    (
        created
            .tenant
            .map(|tenant| tenant.tenant_id)
            .unwrap_or_default(),
        created.scim_token,
    )
}

/// Waits until nothing of the tenant is queued or in flight; returns the final status.
pub async fn wait_settled(channel: Channel, tenant_id: &str, within: Duration) -> pb::WorkStatus {
    let deadline = Instant::now() + within;
    let mut work = pb::work_service_client::WorkServiceClient::new(channel);
    loop {
        let status = work
            .get_work_status(pb::GetWorkStatusRequest {
                tenant: tenant_id.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap_or_default();
        if status.queue_depth == 0 && status.in_flight == 0 {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "MaaS360 did not converge within {within:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every audit entry of a tenant, newest first.
pub async fn audit(channel: Channel, tenant: &str) -> Vec<pb::AuditEntry> {
    let mut work = pb::work_service_client::WorkServiceClient::new(channel);
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = work
            .list_audit_entries(pb::ListAuditEntriesRequest {
                tenant: tenant.to_owned(),
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        entries.extend(page.entries);
        page_token = page.next_page_token;
        if page_token.is_empty() {
            return entries;
        }
    }
}
