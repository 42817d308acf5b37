//! `dirsync emulate maas360`: the MaaS360 emulator as a process of its own,
//! for trying dirsync against a MaaS360 that misbehaves on purpose.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use dirsync_emulators::maas360::{EmulatorConfig, Faults, Outage, Seed};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum EmulateCommand {
    /// A MaaS360 web-services emulator (auth, users, groups, distributions).
    Maas360(Maas360EmulatorArgs),
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
    let EmulateCommand::Maas360(args) = command;
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
