//! `dirsync demo`: the main job in one command. Starts the MaaS360 emulator
//! and every service on the embedded SQLite default, creates a tenant,
//! provisions a generated directory (through the gateway exactly as Entra
//! would, or with `--mode pull` by reading it from the Graph emulator), waits
//! until MaaS360 has converged, applies a round of changes, and shows whether
//! the two sides match. By default MaaS360 starts as a customer has it, with
//! user groups carrying apps and policies that resemble Entra's: the demo
//! migrates them first (IBM's Option 1, [`option1`]) and proves that no
//! device lost a distribution.

mod option1;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use dirsync_emulators::convergence::{Comparison, compare_with_legacy};
use dirsync_emulators::maas360::{EmulatorConfig, EmulatorHandle, Faults};
use dirsync_entra_simulator::{CycleReport, Directory, PatchShape, Simulator, SimulatorConfig};
use dirsync_proto::provisioner::v1 as pb;
use dirsync_runtime::DirsyncConfig;
use serde::Serialize;
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::progress::Bar;

/// Who writes the tenant's desired state in the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DemoMode {
    /// Entra's provisioning service pushes over SCIM (simulated).
    Push,
    /// dirsync reads Entra through Microsoft Graph (emulated) and syncs it.
    Pull,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// push: Entra pushes over SCIM; pull: dirsync reads Entra through Graph.
    #[arg(long, value_enum, default_value = "push")]
    mode: DemoMode,
    /// MaaS360 user groups with apps and policies that resemble Entra groups, migrated first
    /// (Option 1); 0 starts from an empty MaaS360 (Option 2).
    #[arg(long, default_value_t = 3)]
    legacy_groups: usize,
    /// Users in the simulated Entra directory.
    #[arg(long, default_value_t = 2000)]
    users: usize,
    /// Groups in the simulated directory.
    #[arg(long, default_value_t = 150)]
    groups: usize,
    /// Seed of the generated directory (same seed, same directory).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Changes applied before the incremental cycle.
    #[arg(long, default_value_t = 36)]
    changes: usize,
    /// Fraction of MaaS360 requests that fail with a 5xx.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Entra's PATCH dialect: `default`, or `aad-optscim062020` (the tenant-URL flag).
    #[arg(long, default_value = "default")]
    patch_shape: String,
    /// Entra's pace in requests per second (Entra sends about 25); default: as fast as the gateway allows.
    #[arg(long)]
    requests_per_second: Option<f64>,
    /// Where the demo keeps its database and secrets (created; emptied first).
    #[arg(long, default_value = "./dirsync-demo")]
    data: PathBuf,
    /// Stop after the summary instead of serving on.
    #[arg(long)]
    exit: bool,
    /// Longest wait for MaaS360 to converge, per phase.
    #[arg(long, default_value_t = 600)]
    converge_timeout_s: u64,
}

/// The figures the demo ends with (also printed as one JSON line).
#[derive(Debug, Serialize)]
struct Summary {
    entra: dirsync_emulators::convergence::Counts,
    maas360: dirsync_emulators::convergence::Counts,
    matches: bool,
    mismatches: usize,
    maas360_calls: u64,
    scim_requests: u64,
    scim_failures: usize,
    /// Graph calls the pull syncs made (pull mode).
    graph_calls: u64,
    /// What MaaS360 held before Entra and still holds, as the migration meant.
    legacy: dirsync_emulators::convergence::Counts,
    /// Users Entra deleted that MaaS360 keeps, deactivated, because they have a device.
    kept_for_devices: usize,
    /// The Option 1 phase, when MaaS360 started with groups to migrate.
    option1: Option<option1::Migrated>,
    phases_s: BTreeMap<&'static str, f64>,
    #[serde(skip)]
    phase_order: Vec<(&'static str, f64)>,
}

struct Running {
    emulator: EmulatorHandle,
    /// The demo's data folder (database, secrets).
    data: PathBuf,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    channel: Channel,
    tenant_id: String,
    token: String,
    scim_base: String,
    grpc_addr: std::net::SocketAddr,
}

pub(crate) async fn demo(mut config: DirsyncConfig, args: DemoArgs) -> anyhow::Result<bool> {
    let patch_shape = match args.patch_shape.as_str() {
        "default" => PatchShape::Default,
        "aad-optscim062020" | "aadOptscim062020" => PatchShape::AadOptscim062020,
        other => anyhow::bail!("--patch-shape {other:?}: use default or aad-optscim062020"),
    };
    if !(0.0..=1.0).contains(&args.fault_rate) {
        anyhow::bail!("--fault-rate must be between 0 and 1");
    }
    let mut phases = Vec::new();
    eprintln!(
        "dirsync demo: {} users, {} groups, seed {}, MaaS360 fault rate {}, {} mode",
        args.users,
        args.groups,
        args.seed,
        args.fault_rate,
        match args.mode {
            DemoMode::Push => "push (SCIM)",
            DemoMode::Pull => "pull (Graph)",
        }
    );

    let started = Instant::now();
    let mut directory = Directory::generate(args.users, args.groups, args.seed);
    let legacy = option1::legacy_tenant(&directory, args.legacy_groups);
    let running = start(
        &mut config,
        &args,
        (!legacy.is_empty()).then(|| legacy.seed.clone()),
    )
    .await?;
    phases.push(("start", started.elapsed().as_secs_f64()));
    eprintln!(
        "  data folder {}; MaaS360 emulator at {}{}",
        args.data.display(),
        running.emulator.base_url(),
        if legacy.is_empty() {
            String::new()
        } else {
            format!(
                ", holding {} user group(s) with {} app and policy distributions and {} local users",
                legacy.seed.groups.len(),
                legacy.distributions + 1,
                legacy.seed.users.len()
            )
        }
    );

    let timeout = Duration::from_secs(args.converge_timeout_s);
    // Entra through Graph: what the pull sync reads, and what Option 1's mapping service
    // matches MaaS360's groups against in either mode.
    let graph = if args.mode == DemoMode::Pull || !legacy.is_empty() {
        Some(connect_graph(&running, &directory, args.mode).await?)
    } else {
        None
    };
    let mut migrated = None;
    if !legacy.is_empty() {
        let started = Instant::now();
        migrated =
            Some(option1::migrate(running.channel.clone(), &running.tenant_id, &legacy).await?);
        phases.push(("option1_migration", started.elapsed().as_secs_f64()));
    }
    let traffic = match (args.mode, &graph) {
        (DemoMode::Pull, Some(graph)) => {
            pull(
                &running,
                &args,
                graph,
                &mut directory,
                timeout,
                &mut phases,
                &mut migrated,
            )
            .await?
        }
        _ => {
            push(
                &running,
                &args,
                patch_shape,
                &mut directory,
                timeout,
                &mut phases,
                &mut migrated,
            )
            .await?
        }
    };
    if let Some(graph) = graph {
        graph.stop().await;
    }

    let comparison = compare_with_legacy(
        &directory.expected(),
        &running.emulator.state(),
        &legacy.legacy(&directory),
    );
    let maas360_calls: u64 = running
        .emulator
        .request_counts()
        .iter()
        .filter(|(route, _)| !route.starts_with("_emulator"))
        .flat_map(|(_, by_status)| by_status.values())
        .sum();
    let lost = summary_losses(migrated.as_ref());
    let summary = Summary {
        entra: comparison.entra,
        maas360: comparison.maas360,
        matches: comparison.matches() && lost == 0,
        mismatches: comparison.mismatches.len(),
        maas360_calls,
        scim_requests: traffic.scim_requests,
        scim_failures: traffic.scim_failures,
        graph_calls: traffic.graph_calls,
        legacy: comparison.legacy,
        kept_for_devices: comparison.kept_for_devices,
        option1: migrated,
        phases_s: phases.iter().copied().collect(),
        phase_order: phases,
    };
    print_summary(&summary, &comparison);
    println!("{}", serde_json::to_string(&summary)?);

    if !args.exit {
        print_next_steps(&running);
        dirsync_runtime::shutdown_signal().await;
    }
    let _ = running.stop.send(true);
    let served = running.server.await;
    running.emulator.stop().await;
    served.context("server task")??;
    Ok(summary.matches)
}

/// What reached dirsync from Entra's side.
#[derive(Debug, Default)]
struct Traffic {
    scim_requests: u64,
    scim_failures: usize,
    graph_calls: u64,
}

/// Entra pushes: an initial provisioning cycle, a round of changes, an incremental cycle.
async fn push(
    running: &Running,
    args: &DemoArgs,
    patch_shape: PatchShape,
    directory: &mut Directory,
    timeout: Duration,
    phases: &mut Vec<(&'static str, f64)>,
    migrated: &mut Option<option1::Migrated>,
) -> anyhow::Result<Traffic> {
    let mut simulator_config =
        SimulatorConfig::new(running.scim_base.clone(), running.token.clone());
    simulator_config.patch_shape = patch_shape;
    simulator_config.requests_per_second = args.requests_per_second;
    simulator_config.concurrency = 16;
    let mut simulator = Simulator::new(simulator_config).context("Entra simulator")?;

    let initial = cycle("initial cycle", &mut simulator, directory, true).await?;
    phases.push(("entra_initial_cycle", initial.elapsed.as_secs_f64()));
    let waited = converge(running, "MaaS360 converging", timeout).await?;
    phases.push(("maas360_initial_converge", waited.as_secs_f64()));
    if let Some(migrated) = migrated {
        option1::verify(running.channel.clone(), &running.tenant_id, migrated).await?;
    }

    let changes = directory.apply_changes(args.changes, args.seed.wrapping_add(1));
    eprintln!("  {} changes in Entra: {}", changes.len(), changes);
    let incremental = cycle("incremental cycle", &mut simulator, directory, false).await?;
    phases.push(("entra_incremental_cycle", incremental.elapsed.as_secs_f64()));
    let waited = converge(running, "MaaS360 converging", timeout).await?;
    phases.push(("maas360_incremental_converge", waited.as_secs_f64()));
    Ok(Traffic {
        scim_requests: initial.requests + incremental.requests,
        scim_failures: initial.failures.len() + incremental.failures.len(),
        graph_calls: 0,
    })
}

/// The directory served by the Graph emulator, and the tenant's Entra connection to it (in
/// pull mode, the tenant switched to pull first).
async fn connect_graph(
    running: &Running,
    directory: &Directory,
    mode: DemoMode,
) -> anyhow::Result<dirsync_emulators::graph::GraphEmulatorHandle> {
    use dirsync_emulators::graph::{GraphEmulatorConfig, GraphSeed};
    use dirsync_proto::directory::v1 as dpb;

    let graph_config = GraphEmulatorConfig::for_tests();
    let graph =
        dirsync_emulators::graph::start(graph_config.clone(), GraphSeed::from_directory(directory))
            .await
            .context("starting the Graph emulator")?;
    eprintln!("  Microsoft Graph emulator at {}", graph.base_url());
    let secret = running.data.join("entra-client-secret");
    write_secret(&secret, &graph_config.client_secret)?;
    if mode == DemoMode::Pull {
        pb::tenant_service_client::TenantServiceClient::new(running.channel.clone())
            .set_tenant_mode(pb::SetTenantModeRequest {
                tenant: running.tenant_id.clone(),
                mode: pb::TenantMode::Pull as i32,
            })
            .await
            .map_err(|status| anyhow::anyhow!("pull mode: {}", status.message()))?;
    }
    dpb::directory_reader_service_client::DirectoryReaderServiceClient::new(
        running.channel.clone(),
    )
    .set_entra_connection(dpb::SetEntraConnectionRequest {
        tenant: running.tenant_id.clone(),
        connection: Some(dpb::EntraConnection {
            entra_tenant_id: graph_config.tenant_id.clone(),
            client_id: graph_config.client_id.clone(),
            credential: Some(dpb::entra_connection::Credential::ClientSecret(
                dirsync_proto::common::v1::SecretReference {
                    source: Some(dirsync_proto::common::v1::secret_reference::Source::File(
                        secret.display().to_string(),
                    )),
                },
            )),
            cloud: dpb::EntraCloud::Custom as i32,
            login_url: graph.base_url(),
            graph_url: graph.base_url(),
        }),
    })
    .await
    .map_err(|status| anyhow::anyhow!("Entra connection: {}", status.message()))?;
    Ok(graph)
}

/// dirsync pulls: a full sync, a round of changes in Entra, a delta sync.
async fn pull(
    running: &Running,
    args: &DemoArgs,
    graph: &dirsync_emulators::graph::GraphEmulatorHandle,
    directory: &mut Directory,
    timeout: Duration,
    phases: &mut Vec<(&'static str, f64)>,
    migrated: &mut Option<option1::Migrated>,
) -> anyhow::Result<Traffic> {
    use dirsync_proto::directory::v1 as dpb;

    let mut reader = dpb::directory_reader_service_client::DirectoryReaderServiceClient::new(
        running.channel.clone(),
    );
    let mut graph_calls = 0;
    let full = sync_round(&mut reader, &running.tenant_id, "full sync", true).await?;
    graph_calls += full.1;
    phases.push(("graph_full_sync", full.0.as_secs_f64()));
    let waited = converge(running, "MaaS360 converging", timeout).await?;
    phases.push(("maas360_initial_converge", waited.as_secs_f64()));
    if let Some(migrated) = migrated {
        option1::verify(running.channel.clone(), &running.tenant_id, migrated).await?;
    }

    let changes = directory.apply_changes(args.changes, args.seed.wrapping_add(1));
    eprintln!("  {} changes in Entra: {}", changes.len(), changes);
    graph
        .apply_directory(directory)
        .map_err(|error| anyhow::anyhow!("changing the Graph emulator: {error}"))?;
    let delta = sync_round(&mut reader, &running.tenant_id, "delta sync", false).await?;
    graph_calls += delta.1;
    phases.push(("graph_delta_sync", delta.0.as_secs_f64()));
    let waited = converge(running, "MaaS360 converging", timeout).await?;
    phases.push(("maas360_incremental_converge", waited.as_secs_f64()));
    Ok(Traffic {
        scim_requests: 0,
        scim_failures: 0,
        graph_calls,
    })
}

/// One pull sync of the demo tenant: its duration and the Graph calls it made.
async fn sync_round(
    reader: &mut dirsync_proto::directory::v1::directory_reader_service_client::DirectoryReaderServiceClient<Channel>,
    tenant: &str,
    label: &str,
    full: bool,
) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let bar = Bar::new(format!("Graph {label}"));
    let synced = reader
        .sync_tenant(dirsync_proto::directory::v1::SyncTenantRequest {
            tenant: tenant.to_owned(),
            full,
            force: true,
            ..Default::default()
        })
        .await
        .map_err(|status| anyhow::anyhow!("{label}: {}", status.message()))?
        .into_inner();
    let plan = synced.plan.unwrap_or_default();
    bar.finish(&format!(
        "{} users and {} groups created, {} updated, {} disabled, {} deleted, {} membership changes; {} Graph calls in {:.1} s",
        plan.user_creates,
        plan.group_creates,
        plan.user_updates + plan.group_updates,
        plan.user_disables,
        plan.user_deletes + plan.group_deletes,
        plan.membership_adds + plan.membership_removes,
        plan.graph_calls,
        started.elapsed().as_secs_f64()
    ));
    Ok((started.elapsed(), plan.graph_calls))
}

fn summary_losses(migrated: Option<&option1::Migrated>) -> u32 {
    migrated.map_or(0, |m| m.distributions_lost)
}

async fn start(
    config: &mut DirsyncConfig,
    args: &DemoArgs,
    maas360_seed: Option<dirsync_emulators::maas360::Seed>,
) -> anyhow::Result<Running> {
    if args.data.exists() {
        std::fs::remove_dir_all(&args.data)
            .with_context(|| format!("emptying {}", args.data.display()))?;
    }
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let data = std::fs::canonicalize(&args.data)?;

    let emulator_config = EmulatorConfig {
        faults: Faults {
            fault_rate: args.fault_rate,
            seed: args.seed,
            ..Faults::default()
        },
        ..EmulatorConfig::for_tests()
    };
    let emulator = dirsync_emulators::maas360::start(emulator_config.clone(), maas360_seed)
        .await
        .context("starting the MaaS360 emulator")?;
    let connection = emulator_connection(&emulator, &emulator_config, &data)?;

    config.database.url = format!("sqlite://{}/dirsync.db", data.display());
    config.database.schema = String::new();
    // The emulator has no rate limit of its own unless asked: let the
    // workers go as fast as the store allows.
    config.provisioner.tenant_calls_per_second =
        config.provisioner.tenant_calls_per_second.max(2_000.0);
    config.provisioner.backoff_base = config
        .provisioner
        .backoff_base
        .min(Duration::from_millis(200));
    config.provisioner.backoff_max = config.provisioner.backoff_max.min(Duration::from_secs(5));
    config.provisioner.breaker_cooldown = config
        .provisioner
        .breaker_cooldown
        .min(Duration::from_secs(2));
    config.provisioner.poll_interval = config
        .provisioner
        .poll_interval
        .min(Duration::from_millis(50));

    let grpc_listener = dirsync_runtime::process::bind("gRPC", config.grpc.listen)
        .await
        .map_err(anyhow::Error::msg)?;
    let scim_listener = dirsync_runtime::process::bind("the SCIM gateway", config.scim.listen)
        .await
        .map_err(anyhow::Error::msg)?;
    let grpc_addr = grpc_listener.local_addr()?;
    let scim_addr = scim_listener.local_addr()?;
    let metrics = crate::serve::metrics_listener(config).await?;
    let (stop, shutdown) = watch::channel(false);
    let server = tokio::spawn(crate::serve::run_all(
        config.clone(),
        grpc_listener,
        scim_listener,
        metrics,
        shutdown,
        false,
    ));

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}"))?
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .context("connecting to dirsync")?;
    let created = pb::tenant_service_client::TenantServiceClient::new(channel.clone())
        .create_tenant(pb::CreateTenantRequest {
            name: "demo".to_owned(),
            maas360: Some(connection),
            policy: None,
        })
        .await
        .map_err(|status| anyhow::anyhow!("creating the demo tenant: {}", status.message()))?
        .into_inner();
    Ok(Running {
        emulator,
        data,
        stop,
        server,
        channel,
        tenant_id: created.tenant.map(|t| t.tenant_id).unwrap_or_default(),
        token: created.scim_token,
        scim_base: format!("http://{}/scim/v2", crate::serve::dial_address(scim_addr)),
        grpc_addr: crate::serve::dial_address(grpc_addr),
    })
}

/// A connection to the emulator whose secrets, as in production, are given
/// by reference: files written (owner-only) into `secrets`.
pub(crate) fn emulator_connection(
    emulator: &dirsync_emulators::maas360::EmulatorHandle,
    config: &EmulatorConfig,
    secrets: &std::path::Path,
) -> anyhow::Result<pb::Maas360Connection> {
    let password = secrets.join("maas360-password");
    let access_key = secrets.join("maas360-access-key");
    write_secret(&password, &config.password)?;
    write_secret(&access_key, &config.app_access_key)?;
    let file = |path: &std::path::Path| dirsync_proto::common::v1::SecretReference {
        source: Some(dirsync_proto::common::v1::secret_reference::Source::File(
            path.display().to_string(),
        )),
    };
    Ok(pb::Maas360Connection {
        base_url: emulator.base_url(),
        billing_id: config.billing_id.clone(),
        admin_user: config.admin_user.clone(),
        app_id: config.app_id.clone(),
        app_version: config.app_version.clone(),
        platform_id: config.platform_id.clone(),
        password: Some(file(&password)),
        app_access_key: Some(file(&access_key)),
        routes_toml: String::new(),
    })
}

fn write_secret(path: &std::path::Path, value: &str) -> anyhow::Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

async fn cycle(
    label: &'static str,
    simulator: &mut Simulator,
    directory: &Directory,
    initial: bool,
) -> anyhow::Result<CycleReport> {
    let bar = Bar::new(format!("Entra {label}"));
    let progress = |p: dirsync_entra_simulator::Progress| bar.set(p.done, p.total);
    let report = if initial {
        simulator.initial_cycle(directory, &progress).await
    } else {
        simulator.incremental_cycle(directory, &progress).await
    }
    .context(label)?;
    bar.finish(&format!(
        "{} SCIM requests in {:.1} s{}",
        report.requests,
        report.elapsed.as_secs_f64(),
        if report.failures.is_empty() {
            String::new()
        } else {
            format!(
                ", {} failed (Entra retries them next cycle)",
                report.failures.len()
            )
        }
    ));
    for failure in report.failures.iter().take(5) {
        eprintln!("    {failure}");
    }
    Ok(report)
}

/// Waits until the tenant's queue is empty, showing progress.
async fn converge(running: &Running, label: &str, timeout: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let bar = Bar::new(label);
    let mut work = pb::work_service_client::WorkServiceClient::new(running.channel.clone());
    loop {
        let status = work
            .get_work_status(pb::GetWorkStatusRequest {
                tenant: running.tenant_id.clone(),
            })
            .await
            .map_err(|status| anyhow::anyhow!("work status: {}", status.message()))?
            .into_inner()
            .status
            .unwrap_or_default();
        let total = status.in_sync + status.queue_depth + status.parked;
        bar.set(status.in_sync + status.parked, total);
        if status.queue_depth == 0 && status.in_flight == 0 {
            let note = if status.parked > 0 {
                format!("({} parked: dirsync status demo)", status.parked)
            } else {
                String::new()
            };
            bar.finish(&format!(
                "in {:.1} s {note}",
                started.elapsed().as_secs_f64()
            ));
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            anyhow::bail!("MaaS360 did not converge within {timeout:?}: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_summary(summary: &Summary, comparison: &Comparison) {
    println!();
    println!("{:<30} {:>14} {:>14}", "", "Entra (sim.)", "MaaS360 (emu.)");
    let rows = [
        ("users", summary.entra.users, summary.maas360.users),
        (
            "active users",
            summary.entra.active_users,
            summary.maas360.active_users,
        ),
        ("groups", summary.entra.groups, summary.maas360.groups),
        (
            "memberships",
            summary.entra.memberships,
            summary.maas360.memberships,
        ),
    ];
    for (label, entra, maas360) in rows {
        println!("{label:<30} {entra:>14} {maas360:>14}");
    }
    if summary.legacy.users + summary.legacy.groups > 0 {
        println!(
            "{:<30} {:>14} {:>14}",
            "kept from before Entra",
            "",
            format!("{} users", summary.legacy.users)
        );
        println!(
            "{:<30} {:>14} {:>14}",
            "",
            "",
            format!("{} groups", summary.legacy.groups)
        );
    }
    if summary.kept_for_devices > 0 {
        println!(
            "{:<30} {:>14} {:>14}",
            "deleted, kept for a device",
            "",
            format!("{} deactivated", summary.kept_for_devices)
        );
    }
    if let Some(migrated) = &summary.option1 {
        println!();
        println!(
            "{:<30} {:>14}",
            "Option 1 recommendation", migrated.recommendation
        );
        println!("{:<30} {:>14}", "groups mapped", migrated.mappings);
        println!("{:<30} {:>14}", "losses in the plan", migrated.plan_losses);
        println!(
            "{:<30} {:>14}",
            "distributions kept", migrated.distributions_kept
        );
        println!(
            "{:<30} {:>14}",
            "distributions lost", migrated.distributions_lost
        );
    }
    println!();
    if summary.graph_calls > 0 {
        println!("{:<30} {:>14}", "Graph calls made", summary.graph_calls);
    } else {
        println!("{:<30} {:>14}", "SCIM requests sent", summary.scim_requests);
    }
    println!("{:<30} {:>14}", "MaaS360 calls made", summary.maas360_calls);
    for (phase, seconds) in &summary.phase_order {
        println!("{:<30} {:>13.1}s", phase.replace('_', " "), seconds);
    }
    println!();
    let lost = summary_losses(summary.option1.as_ref());
    if lost > 0 {
        println!("{lost} distribution(s) were LOST: dirsync migrate verify demo lists them.");
    }
    if comparison.matches() {
        println!("MaaS360 matches Entra, user by user and group by group.");
    } else {
        println!(
            "MaaS360 DIFFERS from Entra in {} place(s):",
            comparison.mismatches.len()
        );
        for mismatch in comparison.mismatches.iter().take(20) {
            println!("  {mismatch}");
        }
    }
}

fn print_next_steps(running: &Running) {
    let grpc = running.grpc_addr;
    println!();
    println!("Still serving (Ctrl-C stops). Try:");
    println!("  grpcurl -plaintext {grpc} list");
    println!(
        "  grpcurl -plaintext -d '{{\"tenant\":\"demo\"}}' {grpc} dirsync.provisioner.v1.WorkService/GetWorkStatus"
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{}/Users?count=2'",
        running.token, running.scim_base
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{}/Groups?excludedAttributes=members&count=5'",
        running.token, running.scim_base
    );
    println!(
        "  curl -s {}/_emulator/state | head -c 600",
        running.emulator.base_url()
    );
}
