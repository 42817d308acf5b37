//! Crash safety: Entra pushes a directory and then a round of changes through `dirsync serve`
//! while the process is killed with SIGKILL at random moments and restarted on the same store,
//! against a MaaS360 that fails 30% of its calls, answers slowly and enforces a rate limit. At
//! the end MaaS360 holds exactly what Entra holds: nothing lost, nothing duplicated, nothing
//! parked, no Retry-After ignored.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dirsync_emulators::convergence::compare;
use dirsync_emulators::maas360::{EmulatorConfig, Faults};
use dirsync_entra_simulator::{Directory, Simulator, SimulatorConfig};
use dirsync_store::testing::TestDatabase;
use rand::{RngExt, SeedableRng};

use crate::support::{
    Process, Secrets, create_tenant, database_env, fast_reconcile_env, free_port, wait_grpc,
    wait_http, wait_settled,
};

const USERS: usize = 400;
const GROUPS: usize = 20;
const CHANGES: usize = 80;
const KILLS: usize = 8;

/// Runs Entra's cycles until one ends without failure, as Entra retries what failed (a
/// request refused while the process was down) in its next cycle.
async fn push_until_clean(simulator: &mut Simulator, directory: &Directory, initial: bool) -> u64 {
    let mut requests = 0;
    for cycle in 0..40 {
        let report = if initial && cycle == 0 {
            simulator.initial_cycle(directory, &|_| {}).await
        } else {
            simulator.incremental_cycle(directory, &|_| {}).await
        }
        .unwrap();
        requests += report.requests;
        if report.failures.is_empty() {
            return requests;
        }
    }
    panic!("Entra's cycles kept failing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |elapsed| elapsed.as_secs());
    println!("crash scenario seed {seed}");
    let emulator_config = EmulatorConfig {
        faults: Faults {
            fault_rate: 0.3,
            latency_ms: 15,
            rate_limit_per_minute: 6_000,
            seed,
            ..Faults::default()
        },
        ..EmulatorConfig::for_tests()
    };
    let emulator = dirsync_emulators::maas360::start(emulator_config.clone(), None)
        .await
        .unwrap();
    let secrets = Secrets::write(&emulator_config);
    let db = TestDatabase::new();
    let (grpc, scim, metrics) = (free_port(), free_port(), free_port());
    let mut env = database_env(&db);
    env.extend(fast_reconcile_env());
    env.extend([
        (
            "DIRSYNC__GRPC__LISTEN".to_owned(),
            format!("127.0.0.1:{grpc}"),
        ),
        (
            "DIRSYNC__SCIM__LISTEN".to_owned(),
            format!("127.0.0.1:{scim}"),
        ),
        (
            "DIRSYNC__METRICS__LISTEN".to_owned(),
            format!("127.0.0.1:{metrics}"),
        ),
        // Above the emulator's limit, so that MaaS360's own Retry-After is what paces it.
        (
            "DIRSYNC__PROVISIONER__TENANT_CALLS_PER_SECOND".to_owned(),
            "200".to_owned(),
        ),
    ]);
    let mut server = Process::spawn(&["serve"], &env);
    let channel = wait_grpc(grpc).await;
    let (tenant_id, token) = create_tenant(
        channel,
        "crashy",
        secrets.connection(&emulator, &emulator_config),
    )
    .await;
    wait_http(scim).await;

    // SIGKILL at random moments until told to stop, restarting on the same store and ports.
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (stop, kills) = (stop.clone(), kills.clone());
        tokio::spawn(async move {
            let mut dice = rand::rngs::StdRng::seed_from_u64(seed);
            while !stop.load(Ordering::SeqCst) {
                let pause = dice.random_range(300..2_500);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                server.restart();
                kills.fetch_add(1, Ordering::SeqCst);
                wait_grpc(grpc).await;
            }
            server
        })
    };

    let mut directory = Directory::generate(USERS, GROUPS, seed);
    let mut simulator = Simulator::new(SimulatorConfig {
        concurrency: 8,
        request_timeout: Duration::from_secs(10),
        ..SimulatorConfig::new(format!("http://127.0.0.1:{scim}/scim/v2"), token)
    })
    .unwrap();
    let started = Instant::now();
    let initial_requests = push_until_clean(&mut simulator, &directory, true).await;
    let summary = directory.apply_changes(CHANGES, seed);
    let counts = summary.counts();
    for kind in [
        "user_disabled",
        "user_deleted",
        "display_name_changed",
        "member_removed",
    ] {
        assert!(
            counts.get(kind).copied().unwrap_or(0) > 0,
            "the round of changes has no {kind}: {counts:?}"
        );
    }
    let change_requests = push_until_clean(&mut simulator, &directory, false).await;

    // Keep killing while MaaS360 catches up, until the process died at least KILLS times.
    while kills.load(Ordering::SeqCst) < KILLS {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut server = killer.await.unwrap();
    assert!(server.is_running());
    let channel = wait_grpc(grpc).await;
    let status = wait_settled(channel, &tenant_id, Duration::from_secs(180)).await;
    println!(
        "{} kills; {initial_requests} + {change_requests} SCIM requests; settled after {:?}",
        server.restarts,
        started.elapsed()
    );

    assert_eq!(status.parked, 0, "nothing may be parked: {status:?}");
    let state = emulator.state();
    let comparison = compare(&directory.expected(), &state);
    assert!(
        comparison.matches(),
        "MaaS360 differs from Entra:\n{}",
        comparison.mismatches.join("\n")
    );
    let violations = emulator.violations();
    assert!(
        violations.is_empty(),
        "MaaS360's rules were broken: {violations:?}"
    );
    assert!(server.restarts >= KILLS);
    drop(server);
    emulator.stop().await;
}
