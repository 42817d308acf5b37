//! `dirsync bench`: figures, never assertions. `bench scim` drives the SCIM gateway over
//! loopback the way Entra does (a matching query before each create) and prints throughput and
//! latency; `bench maas360` drains a backlog into the MaaS360 emulator; `bench sync` runs the
//! pull sync against the Graph emulator; `bench all` runs them all and prints one table.
//!
//! Everything runs in this process on ephemeral ports with a fresh store: the load generator
//! shares the machine's two cores with the server, and the emulators answer at once with no rate
//! limit. The figures say what this machine does against instant peers, not what a real Entra
//! or MaaS360 allows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use dirsync_proto::provisioner::v1 as pb;
use dirsync_runtime::DirsyncConfig;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, clap::Args)]
pub(crate) struct ScimBenchArgs {
    /// Store sizes to measure at (users already present), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
    users: Vec<u64>,
    /// Concurrent HTTP connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds each measured phase runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum BenchCommand {
    /// SCIM creates and Entra matching queries against the gateway.
    Scim(ScimBenchArgs),
    /// MaaS360 calls per accepted change, and the time to drain a backlog.
    Maas360(crate::bench_maas360::Maas360BenchArgs),
    /// The pull sync: a full read of generated tenants, then a delta after 1% change.
    Sync(crate::bench_sync::SyncBenchArgs),
    /// Every benchmark with its default sizes, then one table of the figures.
    All,
}

/// One line of `bench all`'s table.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    bench: &'static str,
    case: String,
    result: String,
    /// The process's peak resident memory when the case finished (MB).
    peak_rss_mb: Option<f64>,
}

impl Figure {
    pub(crate) fn new(
        bench: &'static str,
        case: String,
        result: String,
        peak_rss_mb: Option<f64>,
    ) -> Self {
        Self {
            bench,
            case,
            result,
            peak_rss_mb,
        }
    }
}

/// The peak resident set size of this process so far (`VmHWM`), in MB; `None` where the
/// kernel does not say (not Linux).
pub(crate) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn print_table(figures: &[Figure]) {
    println!();
    println!(
        "dirsync bench all: {}, {} CPU(s), {} build, emulators in-process (no latency, no rate limit)",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        std::thread::available_parallelism().map_or(0, usize::from),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "| {:<7} | {:<34} | {:<90} | {:>8} |",
        "bench", "case", "result", "peak RSS"
    );
    println!("|{:-<9}|{:-<36}|{:-<92}|{:->10}|", "", "", "", "");
    for figure in figures {
        println!(
            "| {:<7} | {:<34} | {:<90} | {:>8} |",
            figure.bench,
            figure.case,
            figure.result,
            figure
                .peak_rss_mb
                .map_or("-".to_owned(), |mb| format!("{mb:.0} MB"))
        );
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Target {
    client: HttpClient,
    base: String,
    token: String,
}

impl Target {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<StatusCode> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token));
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/scim+json");
                Full::new(Bytes::from(body))
            }
            None => Full::new(Bytes::new()),
        };
        let response = self.client.request(request.body(body)?).await?;
        let status = response.status();
        response.into_body().collect().await?;
        Ok(status)
    }
}

/// Latencies of one phase, in microseconds.
struct Phase {
    name: &'static str,
    latencies: Vec<u32>,
    errors: u64,
    elapsed: Duration,
}

impl Phase {
    fn percentile(&self, fraction: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * fraction).round() as usize;
        f64::from(self.latencies[index.min(self.latencies.len() - 1)]) / 1000.0
    }

    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// A small, fast PRNG: the benchmark needs spread, not secrecy.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn user_body(name: &str, index: u64) -> String {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": format!("ext-{index}"),
        "userName": name,
        "active": true,
        "displayName": format!("Bench User {index}"),
        "emails": [{"primary": true, "type": "work", "value": name}],
        "name": {"givenName": "Bench", "familyName": format!("User{index}")},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Benchmarks"}
    })
    .to_string()
}

async fn run_phase<F, Fut>(name: &'static str, connections: usize, seconds: u64, work: F) -> Phase
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<bool>> + Send,
{
    let work = Arc::new(work);
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (work, counter, errors) = (work.clone(), counter.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let sequence = counter.fetch_add(1, Ordering::Relaxed);
                let begun = Instant::now();
                match work(sequence).await {
                    Ok(true) => latencies
                        .push(u32::try_from(begun.elapsed().as_micros()).unwrap_or(u32::MAX)),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        if let Ok(mut part) = task.await {
            latencies.append(&mut part);
        }
    }
    latencies.sort_unstable();
    Phase {
        name,
        latencies,
        errors: errors.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    }
}

pub(crate) async fn bench(config: DirsyncConfig, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Scim(args) => bench_scim(&config, &args).await.map(drop),
        BenchCommand::Maas360(args) => crate::bench_maas360::bench(&config, args).await.map(drop),
        BenchCommand::Sync(args) => crate::bench_sync::bench(&config, args).await.map(drop),
        BenchCommand::All => {
            use clap::Parser;
            // Each benchmark's own defaults, as its command line would have them.
            #[derive(Parser)]
            struct Defaults<T: clap::Args> {
                #[command(flatten)]
                args: T,
            }
            let mut figures = Vec::new();
            let scim = Defaults::<ScimBenchArgs>::try_parse_from(["scim"])?.args;
            figures.extend(bench_scim(&config, &scim).await?);
            let maas360 =
                Defaults::<crate::bench_maas360::Maas360BenchArgs>::try_parse_from(["maas360"])?
                    .args;
            figures.extend(crate::bench_maas360::bench(&config, maas360).await?);
            // The same drain against calls as a real MaaS360 answers them: 50 ms each, within a
            // rate limit; what counts is how busy the allowed calls are kept.
            let limited = Defaults::<crate::bench_maas360::Maas360BenchArgs>::try_parse_from([
                "maas360",
                "--users",
                "1000",
                "--groups",
                "20",
                "--latency-ms",
                "50",
                "--calls-per-second",
                "100",
            ])?
            .args;
            figures.extend(crate::bench_maas360::bench(&config, limited).await?);
            let sync = Defaults::<crate::bench_sync::SyncBenchArgs>::try_parse_from(["sync"])?.args;
            figures.extend(crate::bench_sync::bench(&config, sync).await?);
            print_table(&figures);
            Ok(())
        }
    }
}

/// Where a benchmark keeps its store: a fresh SQLite file, or a fresh schema of the
/// PostgreSQL database `DIRSYNC_BENCH_DATABASE_URL` names (dropped at the end).
#[derive(Clone, Debug)]
pub(crate) enum BenchStore {
    Sqlite,
    Postgres(String),
}

impl BenchStore {
    /// SQLite, and PostgreSQL when `DIRSYNC_BENCH_DATABASE_URL` is set.
    pub(crate) fn all() -> Vec<Self> {
        let mut stores = vec![Self::Sqlite];
        if let Ok(url) = std::env::var("DIRSYNC_BENCH_DATABASE_URL")
            && !url.trim().is_empty()
        {
            stores.push(Self::Postgres(url.trim().to_owned()));
        }
        stores
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres(_) => "PostgreSQL",
        }
    }

    /// Points `config` at a fresh store named after `label`.
    pub(crate) fn configure(&self, config: &mut DirsyncConfig, label: &str) {
        match self {
            Self::Sqlite => {
                let data = std::env::temp_dir()
                    .join(format!("dirsync-bench-{}-{label}", std::process::id()));
                let _ = std::fs::remove_dir_all(&data);
                config.database.url = format!("sqlite://{}/bench.db", data.display());
                config.database.schema = String::new();
            }
            Self::Postgres(url) => {
                config.database.url = url.clone();
                config.database.schema = format!("bench_{}_{label}", std::process::id());
            }
        }
    }

    /// Gathers the planner's statistics after a bulk load, as PostgreSQL's autovacuum does
    /// within a minute of one (`autovacuum_naptime`), so that a phase measures the store as it
    /// serves after that minute. Right after loading, with no statistics, PostgreSQL guesses
    /// that a tenant holds a few rows, and reads a batch of lookups through the whole tenant
    /// instead of the userName index. SQLite plans without statistics; nothing to do.
    pub(crate) async fn analyze(&self, config: &DirsyncConfig) -> anyhow::Result<()> {
        let Self::Postgres(url) = self else {
            return Ok(());
        };
        let options = dirsync_store::StoreOptions {
            url: url.clone(),
            schema: config.database.schema.clone(),
            max_connections: 1,
            connect_timeout: Duration::from_secs(10),
        };
        let db = dirsync_store::connect(&options).await?;
        use dirsync_store::sea_orm::ConnectionTrait as _;
        // The tables the phases read, in the benchmark's own schema (the search path).
        db.execute_unprepared("ANALYZE users, groups, group_members, sync_state, tenants")
            .await?;
        Ok(())
    }

    /// Removes what [`BenchStore::configure`] made.
    pub(crate) async fn remove(&self, config: &DirsyncConfig) {
        match self {
            Self::Sqlite => {
                if let Some(path) = config.database.url.strip_prefix("sqlite://")
                    && let Some(folder) = std::path::Path::new(path).parent()
                {
                    let _ = std::fs::remove_dir_all(folder);
                }
            }
            Self::Postgres(url) => {
                let options = dirsync_store::StoreOptions {
                    url: url.clone(),
                    schema: String::new(),
                    max_connections: 1,
                    connect_timeout: Duration::from_secs(10),
                };
                if let Ok(db) = dirsync_store::connect(&options).await {
                    use dirsync_store::sea_orm::ConnectionTrait as _;
                    // The name is ours: bench_, digits and an underscore.
                    let _ = db
                        .execute_unprepared(&format!(
                            "DROP SCHEMA IF EXISTS {} CASCADE",
                            config.database.schema
                        ))
                        .await;
                }
            }
        }
    }
}

async fn bench_scim(config: &DirsyncConfig, args: &ScimBenchArgs) -> anyhow::Result<Vec<Figure>> {
    let stores = BenchStore::all();
    println!(
        "SCIM gateway benchmark: {} connections, {} s per phase, {}; load generator in-process",
        args.connections,
        args.seconds,
        stores
            .iter()
            .map(BenchStore::name)
            .collect::<Vec<_>>()
            .join(" and ")
    );
    println!(
        "{:>10} {:>9}  {:<16} {:>10} {:>9} {:>9} {:>7} {:>11}",
        "store", "users", "phase", "req/s", "p50 ms", "p99 ms", "errors", "peak RSS MB"
    );
    let mut figures = Vec::new();
    for store in &stores {
        for users in &args.users {
            figures.extend(bench_scim_at(config, store, *users, args).await?);
        }
    }
    Ok(figures)
}

async fn bench_scim_at(
    base_config: &DirsyncConfig,
    store: &BenchStore,
    users: u64,
    args: &ScimBenchArgs,
) -> anyhow::Result<Vec<Figure>> {
    let mut config = base_config.clone();
    store.configure(&mut config, &format!("scim_{users}"));
    let store_config = config.clone();

    let grpc_listener = TcpListener::bind("127.0.0.1:0").await?;
    let scim_listener = TcpListener::bind("127.0.0.1:0").await?;
    let grpc_addr = grpc_listener.local_addr()?;
    let scim_addr = scim_listener.local_addr()?;
    let (stop, shutdown) = watch::channel(false);
    let server = tokio::spawn(crate::serve::run_all(
        config,
        grpc_listener,
        scim_listener,
        None,
        shutdown,
        false,
    ));

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}"))?
        .connect()
        .await
        .context("connecting to the in-process server")?;
    let created = pb::tenant_service_client::TenantServiceClient::new(channel.clone())
        .create_tenant(pb::CreateTenantRequest {
            name: "bench".to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let tenant_id = created.tenant.map(|t| t.tenant_id).unwrap_or_default();

    // Preload the store through the provisioner, many at a time.
    let preload_started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut loaders = Vec::new();
    for _ in 0..args.connections {
        let (next, channel, tenant_id) = (next.clone(), channel.clone(), tenant_id.clone());
        loaders.push(tokio::spawn(async move {
            let mut client = pb::user_service_client::UserServiceClient::new(channel);
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= users {
                    return Ok::<(), tonic::Status>(());
                }
                client
                    .create_user(pb::CreateUserRequest {
                        source: pb::WriteSource::Unspecified as i32,
                        tenant: tenant_id.clone(),
                        user: Some(pb::UserInput {
                            source: Some(pb::user_input::Source::ScimJson(user_body(
                                &format!("user{index}@bench.example"),
                                index,
                            ))),
                        }),
                    })
                    .await?;
            }
        }));
    }
    for loader in loaders {
        loader.await??;
    }
    eprintln!(
        "  loaded {users} users in {:.1} s",
        preload_started.elapsed().as_secs_f64()
    );
    store.analyze(&store_config).await?;

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let target = Arc::new(Target {
        client: Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(args.connections)
            .build(connector),
        base: format!("http://{scim_addr}/scim/v2"),
        token: created.scim_token,
    });

    let queries = {
        let target = target.clone();
        let seed = Arc::new(AtomicU64::new(0x9E37_79B9_7F4A_7C15));
        run_phase(
            "matching query",
            args.connections,
            args.seconds,
            move |sequence| {
                let target = target.clone();
                let mut state = seed.fetch_add(sequence | 1, Ordering::Relaxed) | 1;
                let index = next_random(&mut state) % users.max(1);
                async move {
                    let path = format!("/Users?filter=userName+eq+%22user{index}@bench.example%22");
                    Ok(target.call(Method::GET, &path, None).await? == StatusCode::OK)
                }
            },
        )
        .await
    };
    let creates = {
        let target = target.clone();
        run_phase("create", args.connections, args.seconds, move |sequence| {
            let target = target.clone();
            async move {
                let body = user_body(&format!("new{sequence}@bench.example"), users + sequence);
                Ok(target.call(Method::POST, "/Users", Some(body)).await? == StatusCode::CREATED)
            }
        })
        .await
    };
    let rss = peak_rss_mb();
    let mut figures = Vec::new();
    for phase in [&queries, &creates] {
        println!(
            "{:>10} {:>9}  {:<16} {:>10.0} {:>9.2} {:>9.2} {:>7} {:>11}",
            store.name(),
            users,
            phase.name,
            phase.per_second(),
            phase.percentile(0.50),
            phase.percentile(0.99),
            phase.errors,
            rss.map_or("-".to_owned(), |mb| format!("{mb:.0}"))
        );
        figures.push(Figure::new(
            "scim",
            format!(
                "{} at {users} users, {} conns, {}",
                phase.name,
                args.connections,
                store.name()
            ),
            format!(
                "{:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                phase.per_second(),
                phase.percentile(0.50),
                phase.percentile(0.99),
                phase.errors
            ),
            rss,
        ));
    }

    let _ = stop.send(true);
    server.await??;
    store.remove(&store_config).await;
    Ok(figures)
}
