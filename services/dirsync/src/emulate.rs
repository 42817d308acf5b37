//! `dirsync emulate maas360` and `dirsync emulate graph`: the MaaS360 and Microsoft Graph
//! emulators as processes of their own, for trying dirsync against services that misbehave
//! on purpose.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use dirsync_emulators::graph::{GraphEmulatorConfig, GraphSeed, Throttle};
use dirsync_emulators::maas360::{EmulatorConfig, Faults, Outage, Seed};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum EmulateCommand {
    /// A MaaS360 web-services emulator (auth, users, groups, distributions).
    Maas360(Maas360EmulatorArgs),
    /// A Microsoft Graph emulator (token endpoint, users, groups, members, delta, $batch).
    Graph(GraphEmulatorArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct GraphEmulatorArgs {
    #[arg(long, default_value = "127.0.0.1:9366")]
    listen: SocketAddr,
    /// Users to generate: the Entra simulator's directory for --seed-number.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Groups to generate, with the simulator's memberships.
    #[arg(long, default_value_t = 20)]
    groups: usize,
    /// Also nest groups inside groups, at most this deep (deterministic from --seed-number).
    #[arg(long, default_value_t = 0)]
    nesting: usize,
    /// The simulator's seed: the same number gives the same users, groups and memberships.
    #[arg(long, default_value_t = 1)]
    seed_number: u64,
    /// Start from this JSON instead (Graph's field names:
    /// {"users":[{"id","userPrincipalName",…}],"groups":[{"id","displayName","members":[…]}]}).
    #[arg(long, conflicts_with_all = ["users", "groups", "nesting", "seed_number"])]
    seed: Option<PathBuf>,
    /// Probability (0–1) that a Graph read is answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    /// The Retry-After given with a 429, in seconds.
    #[arg(long, default_value_t = 1.0)]
    retry_after_s: f64,
    /// Tenant id [default: the emulator's fixed test tenant].
    #[arg(long)]
    tenant_id: Option<String>,
    /// Application (client) id [default: the emulator's fixed test application].
    #[arg(long)]
    client_id: Option<String>,
    /// Client secret [default: the emulator's fixed test secret].
    #[arg(long, env = "GRAPH_EMULATOR_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// A certificate (PEM) to register on the application, for client assertions; repeatable.
    #[arg(long)]
    certificate: Vec<PathBuf>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, default_value_t = 3599)]
    token_lifetime_s: u64,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Maas360EmulatorArgs {
    #[arg(long, default_value = "127.0.0.1:9360")]
    listen: SocketAddr,
    /// Users and groups (with app and policy distributions) to start with (JSON).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Fraction of API requests answered with a 5xx (half after applying the change).
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Latency added to every request.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Requests per rolling minute before 429 with Retry-After (0: no limit).
    #[arg(long, default_value_t = 0)]
    rate_limit_per_minute: u32,
    /// Start an outage (every request 503) this many seconds after start…
    #[arg(long)]
    outage_after_s: Option<u64>,
    /// …lasting this many seconds.
    #[arg(long, default_value_t = 60)]
    outage_s: u64,
    /// Seed of the fault dice, for reproducible runs.
    #[arg(long, default_value_t = 1)]
    fault_seed: u64,
    #[arg(long, default_value = "30012345")]
    billing_id: String,
    #[arg(long, default_value = "api_admin")]
    admin_user: String,
    #[arg(
        long,
        env = "MAAS360_EMULATOR_PASSWORD",
        default_value = "emulator-password",
        hide_env_values = true
    )]
    password: String,
    #[arg(long, default_value = "com.30012345.api")]
    app_id: String,
    #[arg(
        long,
        env = "MAAS360_EMULATOR_ACCESS_KEY",
        default_value = "emulator-access-key",
        hide_env_values = true
    )]
    access_key: String,
}

pub(crate) async fn emulate(command: EmulateCommand) -> anyhow::Result<()> {
    match command {
        EmulateCommand::Maas360(args) => emulate_maas360(args).await,
        EmulateCommand::Graph(args) => emulate_graph(args).await,
    }
}

async fn emulate_graph(args: GraphEmulatorArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.throttle_rate) {
        anyhow::bail!("--throttle-rate must be between 0 and 1");
    }
    if !args.retry_after_s.is_finite() || args.retry_after_s < 0.0 {
        anyhow::bail!("--retry-after-s must be a non-negative number");
    }
    let seed = match &args.seed {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading seed {}", path.display()))?;
            GraphSeed::from_json(&text).with_context(|| format!("seed {}", path.display()))?
        }
        None => GraphSeed::generate(args.users, args.groups, args.nesting, args.seed_number),
    };
    let defaults = GraphEmulatorConfig::for_tests();
    let mut config = GraphEmulatorConfig {
        tenant_id: args.tenant_id.clone().unwrap_or(defaults.tenant_id.clone()),
        client_id: args.client_id.clone().unwrap_or(defaults.client_id.clone()),
        client_secret: args
            .client_secret
            .clone()
            .unwrap_or(defaults.client_secret.clone()),
        token_lifetime: Duration::from_secs(args.token_lifetime_s),
        throttle: Throttle {
            rate: args.throttle_rate,
            retry_after_secs: args.retry_after_s,
            ..Throttle::default()
        },
        ..defaults
    };
    for path in &args.certificate {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading certificate {}", path.display()))?;
        config = config
            .with_certificate_pem(&pem)
            .with_context(|| format!("certificate {}", path.display()))?;
    }
    let (users, groups) = (seed.users.len(), seed.groups.len());
    let listener = dirsync_runtime::process::bind("the Graph emulator", args.listen)
        .await
        .map_err(anyhow::Error::msg)?;
    println!("Microsoft Graph emulator on http://{}", args.listen);
    println!(
        "  tenant id {} ({}), client id {}, client secret {}",
        config.tenant_id, config.tenant_domain, config.client_id, config.client_secret
    );
    println!(
        "  {users} users, {groups} groups, {} certificate(s); login and Graph URL http://{}",
        config.certificates.len(),
        args.listen
    );
    println!("  state: curl http://{}/_emulator/state", args.listen);
    println!(
        "  throttle the next 3 reads: curl -X PUT -H 'Content-Type: application/json' -d '{{\"next\":3}}' http://{}/_emulator/throttle",
        args.listen
    );
    dirsync_emulators::graph::serve(listener, config, seed, dirsync_runtime::shutdown_signal())
        .await
        .context("Graph emulator")?;
    Ok(())
}

async fn emulate_maas360(args: Maas360EmulatorArgs) -> anyhow::Result<()> {
    let seed = match &args.seed {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading seed {}", path.display()))?;
            Some(Seed::from_json(&text).with_context(|| format!("seed {}", path.display()))?)
        }
        None => None,
    };
    if !(0.0..=1.0).contains(&args.fault_rate) {
        anyhow::bail!("--fault-rate must be between 0 and 1");
    }
    let config = EmulatorConfig {
        billing_id: args.billing_id.clone(),
        admin_user: args.admin_user.clone(),
        password: args.password.clone(),
        app_id: args.app_id.clone(),
        app_access_key: args.access_key.clone(),
        faults: Faults {
            fault_rate: args.fault_rate,
            latency_ms: args.latency_ms,
            rate_limit_per_minute: args.rate_limit_per_minute,
            outage: args.outage_after_s.map(|after| Outage {
                starts_after: Duration::from_secs(after),
                lasts: Duration::from_secs(args.outage_s),
            }),
            seed: args.fault_seed,
        },
        ..EmulatorConfig::for_tests()
    };
    let listener = dirsync_runtime::process::bind("the MaaS360 emulator", args.listen)
        .await
        .map_err(anyhow::Error::msg)?;
    println!("MaaS360 emulator on http://{}", args.listen);
    println!(
        "  billing id {}, admin {}, app id {}, app version {}, platform {}",
        config.billing_id, config.admin_user, config.app_id, config.app_version, config.platform_id
    );
    println!(
        "  state: curl http://{}/_emulator/state   faults: curl -X PUT -d '{{\"fault_rate\":0.3}}' http://{}/_emulator/faults",
        args.listen, args.listen
    );
    dirsync_emulators::maas360::serve(listener, config, seed, dirsync_runtime::shutdown_signal())
        .await
        .context("MaaS360 emulator")?;
    Ok(())
}
