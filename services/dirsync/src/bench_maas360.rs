//! `dirsync bench maas360`: how many MaaS360 calls one accepted change costs,
//! and how long the provisioner takes to drain a backlog into the emulator:
//! with no latency and no rate limit (how fast dirsync itself goes), or with
//! a latency per call and a rate limit (how busy it keeps the calls a tenant
//! is allowed). The backlog is built while the tenant has no MaaS360
//! connection (its work waits), then the connection is set and the drain is
//! timed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use dirsync_emulators::maas360::{EmulatorConfig, Faults};
use dirsync_proto::provisioner::v1 as pb;
use dirsync_runtime::DirsyncConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, clap::Args)]
pub(crate) struct Maas360BenchArgs {
    /// Users created (one change each).
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// Groups created.
    #[arg(long, default_value_t = 100)]
    groups: u64,
    /// Groups each user joins (one membership change each).
    #[arg(long, default_value_t = 3)]
    memberships_per_user: u64,
    /// Concurrent requests while building the backlog.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Latency the emulator adds to every call.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// The tenant's MaaS360 calls per second, enforced by the emulator (per minute) and by
    /// dirsync's own limiter; 0 for no limit.
    #[arg(long, default_value_t = 0.0)]
    calls_per_second: f64,
}

fn sum_route(counts: &BTreeMap<String, BTreeMap<u16, u64>>, route: &str) -> u64 {
    counts
        .get(route)
        .map_or(0, |by_status| by_status.values().sum())
}

pub(crate) async fn bench(
    base: &DirsyncConfig,
    args: Maas360BenchArgs,
) -> anyhow::Result<Vec<crate::bench::Figure>> {
    let mut figures = Vec::new();
    for store in crate::bench::BenchStore::all() {
        figures.extend(bench_on(base, &store, &args).await?);
    }
    Ok(figures)
}

async fn bench_on(
    base: &DirsyncConfig,
    store: &crate::bench::BenchStore,
    args: &Maas360BenchArgs,
) -> anyhow::Result<Vec<crate::bench::Figure>> {
    let data = std::env::temp_dir().join(format!("dirsync-bench-maas360-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    anyhow::ensure!(
        args.calls_per_second >= 0.0 && args.calls_per_second.is_finite(),
        "--calls-per-second must be 0 (no limit) or more"
    );
    let limited = args.calls_per_second > 0.0;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a small positive rate
    let per_minute = (args.calls_per_second * 60.0).round() as u32;
    let emulator_config = EmulatorConfig {
        faults: Faults {
            latency_ms: args.latency_ms,
            rate_limit_per_minute: if limited { per_minute } else { 0 },
            ..Faults::default()
        },
        ..EmulatorConfig::for_tests()
    };
    let emulator = dirsync_emulators::maas360::start(emulator_config.clone(), None).await?;
    let connection = crate::demo::emulator_connection(&emulator, &emulator_config, &data)?;

    let mut config = base.clone();
    store.configure(&mut config, "maas360");
    let store_config = config.clone();
    config.provisioner.tenant_calls_per_second = if limited {
        args.calls_per_second
    } else {
        1_000_000.0
    };
    config.provisioner.poll_interval = Duration::from_millis(20);
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
        .timeout(Duration::from_secs(60))
        .connect()
        .await?;
    let mut tenants = pb::tenant_service_client::TenantServiceClient::new(channel.clone());
    let tenant_id = tenants
        .create_tenant(pb::CreateTenantRequest {
            name: "bench".to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tenant
        .map(|t| t.tenant_id)
        .unwrap_or_default();

    let conditions = match (args.latency_ms, limited) {
        (0, false) => "emulator without latency, rate limit or faults (a best case)".to_owned(),
        (latency, false) => format!("emulator with {latency} ms per call, no rate limit"),
        (latency, true) => format!(
            "emulator with {latency} ms per call and a limit of {} calls/s",
            args.calls_per_second
        ),
    };
    println!(
        "MaaS360 drain benchmark ({}): {} users, {} groups, {} memberships per user; {conditions}",
        store.name(),
        args.users,
        args.groups,
        args.memberships_per_user
    );
    let backlog_started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let user_ids = Arc::new(tokio::sync::Mutex::new(vec![
        String::new();
        usize::try_from(args.users)?
    ]));
    let mut loaders = Vec::new();
    for _ in 0..args.connections {
        let (next, channel, tenant_id, user_ids) = (
            next.clone(),
            channel.clone(),
            tenant_id.clone(),
            user_ids.clone(),
        );
        let users = args.users;
        loaders.push(tokio::spawn(async move {
            let mut client = pb::user_service_client::UserServiceClient::new(channel);
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= users {
                    return Ok::<(), tonic::Status>(());
                }
                let name = format!("user{index}@bench.example");
                let user = client
                    .create_user(pb::CreateUserRequest {
                        source: pb::WriteSource::Unspecified as i32,
                        tenant: tenant_id.clone(),
                        user: Some(pb::UserInput {
                            source: Some(pb::user_input::Source::Fields(pb::UserFields {
                                user_name: name.clone(),
                                display_name: format!("Bench {index}"),
                                emails: vec![pb::Email {
                                    value: name,
                                    r#type: "work".to_owned(),
                                    primary: true,
                                }],
                                ..Default::default()
                            })),
                        }),
                    })
                    .await?
                    .into_inner();
                if let (Some(slot), Some(user)) = (
                    user_ids
                        .lock()
                        .await
                        .get_mut(usize::try_from(index).unwrap_or(usize::MAX)),
                    user.user,
                ) {
                    *slot = user.id;
                }
            }
        }));
    }
    for loader in loaders {
        loader.await??;
    }
    let user_ids = user_ids.lock().await.clone();
    let mut groups = pb::group_service_client::GroupServiceClient::new(channel.clone());
    let mut group_ids = Vec::new();
    for index in 0..args.groups {
        group_ids.push(
            groups
                .create_group(pb::CreateGroupRequest {
                    source: pb::WriteSource::Unspecified as i32,
                    tenant: tenant_id.clone(),
                    display_name: format!("Bench group {index}"),
                    external_id: format!("g{index}"),
                    member_user_ids: Vec::new(),
                })
                .await?
                .into_inner()
                .group
                .map(|group| group.id)
                .unwrap_or_default(),
        );
    }
    // Memberships arrive as Entra sends them: group PATCHes of several members.
    let mut members_by_group: Vec<Vec<String>> = vec![Vec::new(); group_ids.len()];
    for (index, user) in user_ids.iter().enumerate() {
        for k in 0..args.memberships_per_user {
            let group = (index as u64 * 7 + k * 13) % args.groups.max(1);
            members_by_group[usize::try_from(group)?].push(user.clone());
        }
    }
    let mut membership_changes = 0u64;
    for (group, members) in group_ids.iter().zip(&members_by_group) {
        for chunk in members.chunks(10) {
            groups
                .add_group_members(pb::AddGroupMembersRequest {
                    source: pb::WriteSource::Unspecified as i32,
                    tenant: tenant_id.clone(),
                    group_id: group.clone(),
                    user_ids: chunk.to_vec(),
                })
                .await?;
            membership_changes += chunk.len() as u64;
        }
    }
    let changes = args.users + args.groups + membership_changes;
    println!(
        "  backlog of {changes} accepted changes built in {:.1} s",
        backlog_started.elapsed().as_secs_f64()
    );

    let drain_started = Instant::now();
    tenants
        .set_maas360_connection(pb::SetMaas360ConnectionRequest {
            tenant: tenant_id.clone(),
            maas360: Some(connection),
        })
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?;
    let mut work = pb::work_service_client::WorkServiceClient::new(channel);
    loop {
        let status = work
            .get_work_status(pb::GetWorkStatusRequest {
                tenant: tenant_id.clone(),
            })
            .await?
            .into_inner()
            .status
            .unwrap_or_default();
        if status.queue_depth == 0 && status.in_flight == 0 {
            anyhow::ensure!(status.parked == 0, "{} resources parked", status.parked);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = drain_started.elapsed();
    let counts = emulator.request_counts();
    let add_user = sum_route(&counts, "add_user");
    let create_group = sum_route(&counts, "create_user_group");
    let add_groups = sum_route(&counts, "add_groups_to_user");
    let writes: u64 = counts
        .iter()
        .filter(|(route, _)| !route.starts_with("auth") && !route.starts_with("_emulator"))
        .flat_map(|(_, by_status)| by_status.values())
        .sum();
    let state = emulator.state();
    let held_memberships: usize = state.memberships.values().map(Vec::len).sum();
    anyhow::ensure!(
        state.users.len() as u64 == args.users,
        "MaaS360 holds {} users",
        state.users.len()
    );
    anyhow::ensure!(
        held_memberships as u64 == membership_changes,
        "MaaS360 holds {held_memberships} memberships"
    );

    println!(
        "  {:<36} {:>10}",
        "MaaS360 calls per user create",
        format!("{:.2}", add_user as f64 / args.users.max(1) as f64)
    );
    println!(
        "  {:<36} {:>10}",
        "MaaS360 calls per group create",
        format!("{:.2}", create_group as f64 / args.groups.max(1) as f64)
    );
    println!(
        "  {:<36} {:>10}",
        "MaaS360 calls per membership change",
        format!(
            "{:.2}",
            add_groups as f64 / membership_changes.max(1) as f64
        )
    );
    println!(
        "  {:<36} {:>10}",
        "MaaS360 calls per accepted change",
        format!("{:.2}", writes as f64 / changes.max(1) as f64)
    );
    println!(
        "  {:<36} {:>10}",
        "time to drain the backlog",
        format!("{:.1} s", drained.as_secs_f64())
    );
    println!(
        "  {:<36} {:>10}",
        "changes drained per second",
        format!("{:.0}", changes as f64 / drained.as_secs_f64())
    );
    let achieved = writes as f64 / drained.as_secs_f64();
    println!(
        "  {:<36} {:>10}",
        "MaaS360 calls per second",
        format!("{achieved:.1}")
    );
    let utilization = limited.then(|| achieved / args.calls_per_second);
    if let Some(utilization) = utilization {
        println!(
            "  {:<36} {:>10}",
            "of the tenant's allowed calls/s",
            format!("{:.0} %", utilization * 100.0)
        );
    }
    let rejected = counts
        .values()
        .flat_map(|by_status| by_status.iter())
        .filter(|(status, _)| **status == 429)
        .map(|(_, n)| n)
        .sum::<u64>();
    if limited {
        println!(
            "  {:<36} {:>10}",
            "calls refused by the rate limit", rejected
        );
    }
    let rss = crate::bench::peak_rss_mb();
    println!(
        "  {:<36} {:>10}",
        "peak RSS of the process",
        rss.map_or("-".to_owned(), |mb| format!("{mb:.0} MB"))
    );
    println!(
        "{}",
        serde_json::json!({"users": args.users, "groups": args.groups, "membership_changes": membership_changes,
            "maas360_calls": writes, "calls_per_user_create": add_user as f64 / args.users.max(1) as f64,
            "calls_per_membership_change": add_groups as f64 / membership_changes.max(1) as f64,
            "calls_per_change": writes as f64 / changes.max(1) as f64, "drain_seconds": drained.as_secs_f64(),
            "latency_ms": args.latency_ms, "calls_per_second_limit": args.calls_per_second,
            "calls_per_second": achieved, "limit_utilization": utilization, "rate_limited_calls": rejected,
            "peak_rss_mb": rss})
    );
    let measured = match utilization {
        Some(utilization) => format!(
            "{:.1} s; {achieved:.1} calls/s of {} allowed ({:.0} %) at {} ms per call",
            drained.as_secs_f64(),
            args.calls_per_second,
            utilization * 100.0,
            args.latency_ms
        ),
        None => format!(
            "{:.1} s, {:.0} changes/s; {:.2} calls/create, {:.2} calls/membership change",
            drained.as_secs_f64(),
            changes as f64 / drained.as_secs_f64(),
            add_user as f64 / args.users.max(1) as f64,
            add_groups as f64 / membership_changes.max(1) as f64
        ),
    };
    let figures = vec![crate::bench::Figure::new(
        "maas360",
        format!(
            "drain {changes} changes ({} users, {} groups), {}",
            args.users,
            args.groups,
            store.name()
        ),
        measured,
        rss,
    )];

    let _ = stop.send(true);
    server.await.context("server task")??;
    emulator.stop().await;
    store.remove(&store_config).await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(figures)
}
