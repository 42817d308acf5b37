//! End to end: a simulated Entra provisioning service drives the gateway,
//! the provisioner writes to the MaaS360 emulator, and each scenario ends by
//! comparing, user by user and group by group, what MaaS360 holds with what
//! the simulated Entra holds.

use std::time::Duration;

use dirsync_emulators::convergence::compare;
use dirsync_emulators::maas360::Faults;
use dirsync_entra_simulator::{Directory, PatchShape, Simulator, SimulatorConfig};
use dirsync_tests::sync::SyncStack;

const SETTLE: Duration = Duration::from_secs(120);

fn simulator(sync: &SyncStack, shape: PatchShape) -> Simulator {
    let mut config = SimulatorConfig::new(sync.stack.scim_base(), sync.token.clone());
    config.patch_shape = shape;
    config.concurrency = 8;
    Simulator::new(config).unwrap()
}

async fn assert_maas360_matches_entra(sync: &SyncStack, directory: &Directory) {
    sync.wait_converged(SETTLE).await;
    let comparison = compare(&directory.expected(), &sync.emulator.state());
    assert!(
        comparison.matches(),
        "MaaS360 differs from Entra in {} place(s): {:#?}",
        comparison.mismatches.len(),
        &comparison.mismatches[..comparison.mismatches.len().min(20)]
    );
    assert_eq!(comparison.entra, comparison.maas360);
}

async fn run_cycles(shape: PatchShape, faults: Faults, seed: u64) {
    let sync = SyncStack::start(faults).await;
    let mut directory = Directory::generate(120, 12, seed);
    let mut entra = simulator(&sync, shape);
    let report = entra.initial_cycle(&directory, &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_maas360_matches_entra(&sync, &directory).await;

    for round in 0..2 {
        let changes = directory.apply_changes(25, seed + 1 + round);
        assert!(!changes.is_empty());
        let report = entra.incremental_cycle(&directory, &|_| {}).await.unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_maas360_matches_entra(&sync, &directory).await;
    }
    if faults_were_injected(&sync) {
        assert!(sync.emulator.retry_after_violations().is_empty());
    }
    sync.stop().await;
}

fn faults_were_injected(sync: &SyncStack) -> bool {
    sync.emulator
        .request_counts()
        .values()
        .any(|by_status| by_status.keys().any(|status| *status >= 429))
}

#[tokio::test]
async fn initial_and_incremental_provisioning_default_patch_shape() {
    run_cycles(PatchShape::Default, Faults::default(), 11).await;
}

#[tokio::test]
async fn initial_and_incremental_provisioning_aad_optscim062020_shape() {
    run_cycles(PatchShape::AadOptscim062020, Faults::default(), 12).await;
}

#[tokio::test]
async fn provisioning_through_maas360_faults() {
    let faults = Faults {
        fault_rate: 0.3,
        latency_ms: 3,
        seed: 13,
        ..Faults::default()
    };
    run_cycles(PatchShape::Default, faults, 13).await;
}

#[tokio::test]
async fn provisioner_restart_mid_sync() {
    // Slow enough that the queue is still busy when the provisioner stops.
    let faults = Faults {
        latency_ms: 40,
        ..Faults::default()
    };
    let mut sync = SyncStack::start_with(faults, |config| {
        config.provisioner.workers = 2;
        config.provisioner.tenant_concurrency = 2;
    })
    .await;
    let directory = Directory::generate(80, 8, 14);
    let mut entra = simulator(&sync, PatchShape::Default);
    entra.initial_cycle(&directory, &|_| {}).await.unwrap();
    let status = sync.work_status().await;
    assert!(
        status.queue_depth > 0,
        "still syncing when stopped: {status:?}"
    );

    // Stop the provisioner mid-queue; start it again on the same database
    // and the same port, so the gateway reconnects.
    let addr = sync.stack.grpc.addr;
    let stopped = std::mem::replace(
        &mut sync.stack.grpc,
        dirsync_tests::start_grpc_on(
            &sync.stack.config,
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        )
        .await,
    );
    stopped.stop().await;
    let placeholder = std::mem::replace(
        &mut sync.stack.grpc,
        dirsync_tests::start_grpc_on(
            &sync.stack.config,
            tokio::net::TcpListener::bind(addr).await.unwrap(),
        )
        .await,
    );
    placeholder.stop().await;
    assert_maas360_matches_entra(&sync, &directory).await;
    sync.stop().await;
}
