//! `dirsync bench sync`: the pull sync against generated tenants. For each size, a full read of
//! the Graph emulator into the desired state (and MaaS360 converging from it), then a delta
//! after 1% of the users change: Graph calls, MaaS360 calls, wall time and peak memory.
//!
//! Everything runs in this process (the Graph and MaaS360 emulators too, with no latency, no
//! throttling and no rate limit): the times are a best case for the machine, not a floor for a
//! real tenant, and the peak memory includes the emulators' copies of the directory.

use std::time::{Duration, Instant};

use anyhow::Context;
use dirsync_emulators::graph::{GraphEmulatorConfig, GraphSeed};
use dirsync_emulators::maas360::EmulatorConfig;
use dirsync_proto::directory::v1 as dpb;
use dirsync_proto::provisioner::v1 as pb;
use dirsync_runtime::DirsyncConfig;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::bench::Figure;

#[derive(Debug, clap::Args)]
pub(crate) struct SyncBenchArgs {
    /// Tenant sizes in users, comma-separated; each has a tenth as many groups, nested.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    pub(crate) users: Vec<usize>,
    /// How deep groups nest.
    #[arg(long, default_value_t = 2)]
    pub(crate) nesting: usize,
    /// Percent of the users changed before the delta run.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) changed_percent: f64,
    /// Longest wait for MaaS360 to converge after a sync.
    #[arg(long, default_value_t = 1800)]
    pub(crate) converge_timeout_s: u64,
}

/// One run's figures.
struct Run {
    seconds: f64,
    graph_calls: u64,
    graph_user_pages: u64,
    maas360_calls: u64,
    /// None when MaaS360 had not converged within the timeout.
    converge_seconds: Option<f64>,
}

pub(crate) async fn bench(
    base: &DirsyncConfig,
    args: SyncBenchArgs,
) -> anyhow::Result<Vec<Figure>> {
    println!(
        "Pull sync benchmark: Graph and MaaS360 emulators in-process (no latency, no throttling, no rate limit), SQLite"
    );
    println!(
        "{:>8} {:>7}  {:<6} {:>9} {:>12} {:>10} {:>12} {:>11} {:>11}",
        "users",
        "groups",
        "run",
        "time s",
        "graph calls",
        "user pages",
        "maas360 calls",
        "converge s",
        "peak RSS MB"
    );
    let mut figures = Vec::new();
    for &users in &args.users {
        let (full, delta, changed) = bench_size(base, users, &args).await?;
        let rss = crate::bench::peak_rss_mb();
        for (label, run) in [("full", &full), ("delta", &delta)] {
            println!(
                "{:>8} {:>7}  {:<6} {:>9.1} {:>12} {:>10} {:>12} {:>11.1} {:>11}",
                users,
                users / 10,
                label,
                run.seconds,
                run.graph_calls,
                run.graph_user_pages,
                run.maas360_calls,
                run.converge_seconds
                    .map_or("-".to_owned(), |seconds| format!("{seconds:.1}")),
                rss.map_or("-".to_owned(), |mb| format!("{mb:.0}"))
            );
            figures.push(Figure::new(
                "sync",
                format!(
                    "{users} users, {label}{}",
                    if label == "delta" {
                        format!(" ({changed} changed)")
                    } else {
                        String::new()
                    }
                ),
                format!(
                    "{:.1} s read+write, {} Graph calls ({} user pages), {} MaaS360 calls, {}",
                    run.seconds,
                    run.graph_calls,
                    run.graph_user_pages,
                    run.maas360_calls,
                    run.converge_seconds.map_or_else(
                        || format!("not converged within {} s", args.converge_timeout_s),
                        |seconds| format!("converged in {seconds:.1} s")
                    )
                ),
                rss,
            ));
        }
        println!(
            "{}",
            json!({"users": users, "groups": users / 10, "changed": changed,
                "full": {"seconds": full.seconds, "graph_calls": full.graph_calls, "graph_user_pages": full.graph_user_pages,
                         "maas360_calls": full.maas360_calls, "converge_seconds": full.converge_seconds},
                "delta": {"seconds": delta.seconds, "graph_calls": delta.graph_calls, "graph_user_pages": delta.graph_user_pages,
                          "maas360_calls": delta.maas360_calls, "converge_seconds": delta.converge_seconds},
                "peak_rss_mb": rss})
        );
    }
    Ok(figures)
}

async fn bench_size(
    base: &DirsyncConfig,
    users: usize,
    args: &SyncBenchArgs,
) -> anyhow::Result<(Run, Run, usize)> {
    let data =
        std::env::temp_dir().join(format!("dirsync-bench-sync-{}-{users}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    let seed = GraphSeed::generate(users, (users / 10).max(1), args.nesting, 42);
    let graph_config = GraphEmulatorConfig::for_tests();
    let graph = dirsync_emulators::graph::start(graph_config.clone(), seed.clone())
        .await
        .context("starting the Graph emulator")?;
    let maas360_config = EmulatorConfig::for_tests();
    let maas360 = dirsync_emulators::maas360::start(maas360_config.clone(), None)
        .await
        .context("starting the MaaS360 emulator")?;
    let connection = crate::demo::emulator_connection(&maas360, &maas360_config, &data)?;

    let mut config = base.clone();
    config.database.url = format!("sqlite://{}/bench.db", data.display());
    config.database.schema = String::new();
    config.provisioner.tenant_calls_per_second = 1_000_000.0;
    config.provisioner.poll_interval = Duration::from_millis(20);
    // The benchmark decides when to sync.
    config.directory.schedule = false;
    let grpc_listener = TcpListener::bind("127.0.0.1:0").await?;
    let scim_listener = TcpListener::bind("127.0.0.1:0").await?;
    let grpc_addr = grpc_listener.local_addr()?;
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
        .timeout(Duration::from_secs(3600))
        .connect()
        .await?;
    let tenant_id = pb::tenant_service_client::TenantServiceClient::new(channel.clone())
        .create_tenant(pb::CreateTenantRequest {
            name: "bench".to_owned(),
            maas360: Some(connection),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tenant
        .map(|t| t.tenant_id)
        .unwrap_or_default();
    pb::tenant_service_client::TenantServiceClient::new(channel.clone())
        .set_tenant_mode(pb::SetTenantModeRequest {
            tenant: tenant_id.clone(),
            mode: pb::TenantMode::Pull as i32,
        })
        .await?;
    let secret = data.join("entra-client-secret");
    std::fs::write(&secret, &graph_config.client_secret)?;
    let mut reader =
        dpb::directory_reader_service_client::DirectoryReaderServiceClient::new(channel.clone());
    reader
        .set_entra_connection(dpb::SetEntraConnectionRequest {
            tenant: tenant_id.clone(),
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
    let timeout = Duration::from_secs(args.converge_timeout_s);

    let full = run(
        &mut reader,
        &channel,
        &graph,
        &maas360,
        &tenant_id,
        true,
        timeout,
    )
    .await?;

    // 1% of the users change: a new display name each.
    let changed = ((users as f64 * args.changed_percent / 100.0).ceil() as usize).max(1);
    for user in seed
        .users
        .iter()
        .step_by((users / changed).max(1))
        .take(changed)
    {
        let mut changes = Map::new();
        changes.insert(
            "displayName".to_owned(),
            Value::String(format!(
                "{} (changed)",
                user.display_name.as_deref().unwrap_or("User")
            )),
        );
        graph
            .update_user(&user.id, &changes)
            .map_err(|error| anyhow::anyhow!("changing {}: {error}", user.id))?;
    }
    let delta = run(
        &mut reader,
        &channel,
        &graph,
        &maas360,
        &tenant_id,
        false,
        timeout,
    )
    .await?;

    let _ = stop.send(true);
    server.await.context("server task")??;
    graph.stop().await;
    maas360.stop().await;
    let _ = std::fs::remove_dir_all(&data);
    Ok((full, delta, changed))
}

fn calls(counts: &std::collections::BTreeMap<String, std::collections::BTreeMap<u16, u64>>) -> u64 {
    counts
        .iter()
        .filter(|(route, _)| !route.starts_with("_emulator"))
        .flat_map(|(_, by_status)| by_status.values())
        .sum()
}

fn user_pages(
    counts: &std::collections::BTreeMap<String, std::collections::BTreeMap<u16, u64>>,
) -> u64 {
    counts
        .iter()
        .filter(|(route, _)| *route == "users" || *route == "users_delta")
        .flat_map(|(_, by_status)| by_status.values())
        .sum()
}

async fn run(
    reader: &mut dpb::directory_reader_service_client::DirectoryReaderServiceClient<Channel>,
    channel: &Channel,
    graph: &dirsync_emulators::graph::GraphEmulatorHandle,
    maas360: &dirsync_emulators::maas360::EmulatorHandle,
    tenant_id: &str,
    full: bool,
    timeout: Duration,
) -> anyhow::Result<Run> {
    let graph_before = graph.request_counts();
    let maas360_before = calls(&maas360.request_counts());
    let started = Instant::now();
    let synced = reader
        .sync_tenant(dpb::SyncTenantRequest {
            tenant: tenant_id.to_owned(),
            full,
            force: true,
            ..Default::default()
        })
        .await
        .map_err(|status| anyhow::anyhow!("sync: {}", status.message()))?
        .into_inner();
    anyhow::ensure!(
        synced.applied,
        "the sync was not applied: {:?}",
        synced.plan
    );
    let seconds = started.elapsed().as_secs_f64();
    let graph_after = graph.request_counts();
    // Shown at once: at 100k users MaaS360's convergence takes far longer than the read.
    eprintln!(
        "  {} sync read Entra and wrote the desired state in {seconds:.1} s ({} Graph calls, {} user pages); waiting for MaaS360",
        if full { "full" } else { "delta" },
        calls(&graph_after).saturating_sub(calls(&graph_before)),
        user_pages(&graph_after).saturating_sub(user_pages(&graph_before))
    );
    let converge_started = Instant::now();
    let mut work = pb::work_service_client::WorkServiceClient::new(channel.clone());
    let converge_seconds = loop {
        let status = work
            .get_work_status(pb::GetWorkStatusRequest {
                tenant: tenant_id.to_owned(),
            })
            .await?
            .into_inner()
            .status
            .unwrap_or_default();
        if status.queue_depth == 0 && status.in_flight == 0 {
            anyhow::ensure!(status.parked == 0, "{} resources parked", status.parked);
            break Some(converge_started.elapsed().as_secs_f64());
        }
        if converge_started.elapsed() >= timeout {
            // The read's figures stand on their own; the table says the drain did not finish.
            eprintln!(
                "  MaaS360 had not converged after {timeout:?}: {} resources still queued, {} in flight",
                status.queue_depth, status.in_flight
            );
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Ok(Run {
        seconds,
        graph_calls: calls(&graph_after).saturating_sub(calls(&graph_before)),
        graph_user_pages: user_pages(&graph_after).saturating_sub(user_pages(&graph_before)),
        maas360_calls: calls(&maas360.request_counts()).saturating_sub(maas360_before),
        converge_seconds,
    })
}
