//! `dirsync`: one binary for people. `serve` runs every service in one
//! process on the embedded default; the admin commands talk gRPC to a running
//! server.
//!
//! Modules:
//! - [`serve`]: every service in one process, or one with `--only`.
//! - [`admin`]: tenants, tokens, status, retry and audit over gRPC.
//! - [`pull`]: the pull sync through Graph (`sync`, `drift`, Entra connections).
//! - [`migrate`]: Option 1 (mappings, check, propose, plan, apply, verify) over gRPC.
//! - [`demo`]: the main job end to end on emulators, with [`progress`] bars.
//! - [`emulate`]: the MaaS360 and Graph emulators as processes.
//! - [`bench`], [`bench_maas360`], [`bench_sync`]: figures, never assertions.

mod admin;
mod bench;
mod bench_maas360;
mod bench_sync;
mod demo;
mod emulate;
mod migrate;
mod progress;
mod pull;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: a request allocates and frees many small buffers
/// on both runtime threads, and glibc's malloc spent about a sixth of the CPU of a pull sync
/// in its own bookkeeping (`perf`, 100k users).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "dirsync",
    version,
    about = "Keeps IBM MaaS360 in step with a Microsoft Entra ID directory"
)]
struct Cli {
    /// Configuration file (TOML); DIRSYNC__SECTION__KEY variables override it.
    #[arg(long, short, global = true, env = "DIRSYNC_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the services: all of them in one process, or one with --only.
    Serve {
        /// Run only this service.
        #[arg(long, value_enum)]
        only: Option<serve::Service>,
    },
    /// Manage tenants on a running server.
    Tenant {
        #[command(subcommand)]
        command: admin::TenantCommand,
        #[command(flatten)]
        server: admin::ServerArg,
    },
    /// Show a tenant's MaaS360 work queue and its parked resources.
    Status {
        /// Tenant id or name.
        tenant: String,
        #[command(flatten)]
        server: admin::ServerArg,
    },
    /// Queue a tenant's parked resources again (all, or the ids given).
    Retry {
        /// Tenant id or name.
        tenant: String,
        /// Resource ids; none retries every parked resource.
        resources: Vec<String>,
        #[command(flatten)]
        server: admin::ServerArg,
    },
    /// Ask a tenant's MaaS360 what it accepts.
    Maas360 {
        #[command(subcommand)]
        command: admin::Maas360Command,
        #[command(flatten)]
        server: admin::ServerArg,
    },
    /// Show the MaaS360 writes made for a tenant, newest first: when, which resource, which
    /// MaaS360 route, how it ended.
    Audit {
        #[command(flatten)]
        args: admin::AuditArgs,
        #[command(flatten)]
        server: admin::ServerArg,
    },
    /// The main job in one command: emulated MaaS360, every service, a simulated Entra provisioning run.
    Demo(demo::DemoArgs),
    /// Run an emulator of an external API.
    Emulate {
        #[command(subcommand)]
        command: emulate::EmulateCommand,
    },
    /// Measure throughput and latency (build with --release for real figures).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Read Entra through Microsoft Graph and write what changed into the desired state (pull
    /// mode), or only plan it with --dry-run.
    Sync {
        #[command(flatten)]
        args: pull::SyncArgs,
        #[command(flatten)]
        server: admin::ServerArg,
    },
    /// Compare Entra, dirsync's desired state and MaaS360; exit 1 when they differ.
    Drift {
        /// Tenant id or name.
        tenant: String,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: admin::ServerArg,
    },
    /// Migrate existing MaaS360 groups with app and policy distributions to Entra-synced groups
    /// (IBM's Option 1): check, propose, plan, apply, verify.
    Migrate {
        #[command(subcommand)]
        command: migrate::MigrateCommand,
        #[command(flatten)]
        server: admin::ServerArg,
    },
    /// Map Entra groups onto existing MaaS360 user groups.
    Mapping {
        #[command(subcommand)]
        command: migrate::MappingCommand,
        #[command(flatten)]
        server: admin::ServerArg,
    },
    /// Manage SCIM bearer tokens on a running server.
    Token {
        #[command(subcommand)]
        command: admin::TokenCommand,
        #[command(flatten)]
        server: admin::ServerArg,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match dirsync_runtime::process::load_config(cli.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // The demo and the benchmarks speak through their progress bars and
    // figures; routine logs would bury them unless someone asked for logs.
    if matches!(cli.command, Command::Demo(_) | Command::Bench { .. })
        && config.log == dirsync_runtime::config::LogConfig::default()
    {
        config.log.level = "warn".to_owned();
    }
    dirsync_runtime::telemetry::init_tracing(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dirsync: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { only } => serve::serve(config, only).await,
            Command::Tenant { command, server } => admin::tenant(&config, &server, command).await,
            Command::Token { command, server } => admin::token(&config, &server, command).await,
            Command::Bench { command } => bench::bench(config, command).await,
            Command::Emulate { command } => emulate::emulate(command).await,
            Command::Demo(args) => match demo::demo(config, args).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(anyhow::anyhow!("MaaS360 does not match Entra")),
                Err(error) => Err(error),
            },
            Command::Status { tenant, server } => admin::status(&config, &server, tenant).await,
            Command::Audit { args, server } => admin::audit(&config, &server, args).await,
            Command::Maas360 { command, server } => {
                match admin::maas360(&config, &server, command).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(anyhow::anyhow!("the probe found routes that do not work")),
                    Err(error) => Err(error),
                }
            }
            Command::Sync { args, server } => match pull::sync(&config, &server, args).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(anyhow::anyhow!("the deletion guard stopped the sync")),
                Err(error) => Err(error),
            },
            Command::Drift {
                tenant,
                json,
                server,
            } => match pull::drift(&config, &server, tenant, json).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(anyhow::anyhow!("Entra, dirsync and MaaS360 differ")),
                Err(error) => Err(error),
            },
            Command::Migrate { command, server } => {
                match migrate::migrate(&config, &server, command).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(anyhow::anyhow!(
                        "the migration lost distributions its plan did not list, or failed"
                    )),
                    Err(error) => Err(error),
                }
            }
            Command::Mapping { command, server } => {
                migrate::mapping(&config, &server, command).await
            }
            Command::Retry {
                tenant,
                resources,
                server,
            } => admin::retry(&config, &server, tenant, resources).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dirsync: {error:#}");
            ExitCode::FAILURE
        }
    }
}
