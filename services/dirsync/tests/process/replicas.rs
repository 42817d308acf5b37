//! Horizontal scale on PostgreSQL: two provisioner processes and a gateway share one
//! database. Both take work; no resource is ever written by both at once (the audit shows no
//! overlapping attempts on one resource); after one is killed with SIGKILL mid-drain, the
//! other finishes its leased work once the leases expire.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use dirsync_emulators::convergence::compare;
use dirsync_emulators::maas360::{EmulatorConfig, Faults};
use dirsync_entra_simulator::{Directory, Simulator, SimulatorConfig};
use dirsync_proto::provisioner::v1 as pb;
use dirsync_store::testing::{TEST_DATABASE_URL_VAR, TestDatabase};

use crate::support::{
    Process, Secrets, audit, create_tenant, database_env, fast_reconcile_env, free_port, wait_grpc,
    wait_http, wait_settled,
};

/// One attempt of one worker on one resource: when it began and its last call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    started: i64,
    last_call: i64,
}

fn millis(at: Option<&prost_types::Timestamp>) -> i64 {
    at.map_or(0, |at| at.seconds * 1000 + i64::from(at.nanos) / 1_000_000)
}

/// Attempts per resource, from the audit.
fn attempts(entries: &[pb::AuditEntry]) -> BTreeMap<(i32, String), BTreeMap<(String, i64), Span>> {
    let mut resources: BTreeMap<(i32, String), BTreeMap<(String, i64), Span>> = BTreeMap::new();
    for entry in entries {
        let started = millis(entry.attempt_start_time.as_ref());
        let at = millis(entry.time.as_ref());
        let span = resources
            .entry((entry.kind, entry.resource_id.clone()))
            .or_default()
            .entry((entry.worker.clone(), started))
            .or_insert(Span {
                started,
                last_call: at,
            });
        span.last_call = span.last_call.max(at);
    }
    resources
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_provisioners_share_the_work_and_one_takes_over_when_the_other_dies() {
    if std::env::var(TEST_DATABASE_URL_VAR).is_err() {
        println!("skipped: replicas share PostgreSQL; set {TEST_DATABASE_URL_VAR} to run it");
        return;
    }
    let emulator_config = EmulatorConfig {
        // Slow enough that the drain lasts a while and both replicas are busy mid-drain.
        faults: Faults {
            latency_ms: 25,
            ..Faults::default()
        },
        ..EmulatorConfig::for_tests()
    };
    let emulator = dirsync_emulators::maas360::start(emulator_config.clone(), None)
        .await
        .unwrap();
    let secrets = Secrets::write(&emulator_config);
    let db = TestDatabase::new();
    let (first_port, second_port, scim_port) = (free_port(), free_port(), free_port());
    let mut env = database_env(&db);
    env.extend(fast_reconcile_env());
    let replica_env = |port: u16| {
        let mut env = env.clone();
        env.push((
            "DIRSYNC__GRPC__LISTEN".to_owned(),
            format!("127.0.0.1:{port}"),
        ));
        env
    };
    let first = Process::spawn(
        &["serve", "--only", "provisioner"],
        &replica_env(first_port),
    );
    let mut second = Process::spawn(
        &["serve", "--only", "provisioner"],
        &replica_env(second_port),
    );
    let mut gateway_env = env.clone();
    gateway_env.extend([
        (
            "DIRSYNC__SCIM__LISTEN".to_owned(),
            format!("127.0.0.1:{scim_port}"),
        ),
        (
            "DIRSYNC__SCIM__PROVISIONER_URL".to_owned(),
            format!("http://127.0.0.1:{first_port}"),
        ),
    ]);
    let _gateway = Process::spawn(&["serve", "--only", "scim-gateway"], &gateway_env);
    let first_channel = wait_grpc(first_port).await;
    let second_channel = wait_grpc(second_port).await;
    wait_http(scim_port).await;
    let (tenant_id, token) = create_tenant(
        first_channel.clone(),
        "replicated",
        secrets.connection(&emulator, &emulator_config),
    )
    .await;

    let directory = Directory::generate(300, 10, 11);
    let mut simulator = Simulator::new(SimulatorConfig::new(
        format!("http://127.0.0.1:{scim_port}/scim/v2"),
        token,
    ))
    .unwrap();
    let report = simulator.initial_cycle(&directory, &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    // Both replicas take work; then the second dies mid-drain, holding leases.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let entries = audit(first_channel.clone(), &tenant_id).await;
        let workers: BTreeSet<&str> = entries.iter().map(|entry| entry.worker.as_str()).collect();
        if workers.len() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "only {workers:?} took work");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before_kill = pb::work_service_client::WorkServiceClient::new(second_channel)
        .get_work_status(pb::GetWorkStatusRequest {
            tenant: tenant_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap_or_default();
    assert!(
        before_kill.queue_depth > 0,
        "killed mid-drain, not after it: {before_kill:?}"
    );
    second.kill9();

    let status = wait_settled(first_channel.clone(), &tenant_id, Duration::from_secs(180)).await;
    assert_eq!(status.parked, 0, "{status:?}");
    let comparison = compare(&directory.expected(), &emulator.state());
    assert!(
        comparison.matches(),
        "MaaS360 differs from Entra:\n{}",
        comparison.mismatches.join("\n")
    );

    // No resource was ever written by two attempts at once.
    let entries = audit(first_channel, &tenant_id).await;
    let workers: BTreeSet<&str> = entries.iter().map(|entry| entry.worker.as_str()).collect();
    assert_eq!(workers.len(), 2, "{workers:?}");
    let mut shared = 0;
    for (resource, spans) in attempts(&entries) {
        let spans: Vec<(&(String, i64), &Span)> = spans.iter().collect();
        if spans
            .iter()
            .map(|((worker, _), _)| worker)
            .collect::<BTreeSet<_>>()
            .len()
            > 1
        {
            shared += 1;
        }
        for (index, (first_key, first_span)) in spans.iter().enumerate() {
            for (second_key, second_span) in &spans[index + 1..] {
                let overlap = first_span.started <= second_span.last_call
                    && second_span.started <= first_span.last_call;
                assert!(
                    !overlap,
                    "{resource:?} was written by two attempts at once: {first_key:?} {first_span:?} and {second_key:?} {second_span:?}"
                );
            }
        }
    }
    println!(
        "{} audit entries from 2 workers; {shared} resources touched by both",
        entries.len()
    );
    drop(first);
    emulator.stop().await;
}
