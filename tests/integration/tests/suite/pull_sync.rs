//! The pull sync end to end: a Graph emulator holds Entra, the directory-reader reads it and
//! writes the provisioner's desired state through its gRPC contract, the provisioner writes the
//! MaaS360 emulator, and each scenario ends by comparing MaaS360 with an expectation computed
//! from the Graph emulator's state alone (docs/graph.md §3 for delta, §4 for throttling).

use std::time::{Duration, Instant};

use dirsync_emulators::graph::{GraphEmulatorConfig, GraphSeed, SeedGroup, Throttle};
use dirsync_proto::directory::v1 as pb;
use dirsync_proto::errors::ErrorReason;
use dirsync_proto::provisioner::v1 as provisioner;
use dirsync_tests::pull::PullStack;
use reqwest::Method;
use serde_json::json;
use tonic::Code;

const PARENT_ONE: &str = "00000000-0000-4000-8000-0000000000a1";
const PARENT_TWO: &str = "00000000-0000-4000-8000-0000000000a2";
const CHILD_A: &str = "00000000-0000-4000-8000-0000000000b1";
const CHILD_B: &str = "00000000-0000-4000-8000-0000000000b2";

/// A generated directory (with some random nesting) plus two parents each holding a child
/// group; the first user is in child A.
fn seed(users: usize, groups: usize, number: u64) -> GraphSeed {
    let mut seed = GraphSeed::generate(users, groups, 2, number);
    let first = seed.users[0].id.clone();
    let group = |id: &str, name: &str, members: Vec<String>| SeedGroup {
        id: id.to_owned(),
        display_name: name.to_owned(),
        description: None,
        members,
    };
    seed.groups.push(group(CHILD_A, "Child A", vec![first]));
    seed.groups
        .push(group(CHILD_B, "Child B", vec![seed.users[1].id.clone()]));
    seed.groups
        .push(group(PARENT_ONE, "Parent One", vec![CHILD_A.to_owned()]));
    seed.groups
        .push(group(PARENT_TWO, "Parent Two", vec![CHILD_B.to_owned()]));
    seed
}

fn full() -> pb::SyncTenantRequest {
    pb::SyncTenantRequest {
        full: true,
        ..Default::default()
    }
}

fn delta() -> pb::SyncTenantRequest {
    pb::SyncTenantRequest::default()
}

async fn provisioner_users(stack: &PullStack) -> i64 {
    provisioner::user_service_client::UserServiceClient::new(stack.sync.stack.grpc.channel().await)
        .list_users(provisioner::ListUsersRequest {
            tenant: stack.tenant(),
            count_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .total_size
}

#[tokio::test]
async fn pull_sync_full_then_delta_rounds_converge_with_nested_groups() {
    let seeded = seed(40, 6, 21);
    let stack = PullStack::start(seeded.clone()).await;
    let users = stack.graph.state().users.len() as u64;
    let enabled = stack
        .graph
        .state()
        .users
        .iter()
        .filter(|user| user.account_enabled)
        .count() as u64;
    assert!(
        enabled < users,
        "the seed has users disabled from the start"
    );

    let (plan, applied) = stack.sync(delta()).await;
    assert!(applied);
    assert!(plan.full, "the first run reads everything");
    assert_eq!(
        plan.user_creates, enabled,
        "only enabled users are created, as Entra's provisioning does"
    );
    assert_eq!(plan.group_creates, 10);
    assert!(plan.graph_calls > 0);
    assert!(
        stack.graph.requests_to("users") <= users.div_ceil(999) + 1,
        "{:?}",
        stack.graph.request_counts()
    );
    stack.assert_maas360_matches(&stack.expected(&[])).await;
    let state = stack.state().await;
    assert!(state.has_cursor);
    assert_eq!(state.last_outcome, "ok");
    assert_eq!(state.users, users);
    assert!(state.last_full_sync_time.is_some());

    // Nothing changed: two delta calls, nothing planned.
    let (plan, _) = stack.sync(delta()).await;
    assert!(!plan.full);
    assert_eq!(
        plan.user_creates + plan.user_updates + plan.user_deletes + plan.membership_adds,
        0,
        "{plan:?}"
    );
    assert!(plan.graph_calls <= 3, "{plan:?}");

    // Changes made through the emulator's admin routes, as an administrator would.
    // Seed order: the first user is in child A, the second in child B.
    let graph_users = &seeded.users;
    let [first, renamed, disabled, soft, hard, joiner] =
        [0, 2, 3, 4, 5, 6].map(|i| graph_users[i].id.clone());
    let new_upn = format!("renamed.{}", graph_users[2].user_principal_name);
    stack
        .admin(
            Method::PATCH,
            &format!("/users/{renamed}"),
            Some(json!({"userPrincipalName": new_upn, "displayName": "Renamed Person"})),
        )
        .await;
    stack
        .admin(
            Method::PATCH,
            &format!("/users/{disabled}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    stack
        .admin(Method::POST, &format!("/users/{soft}/soft-delete"), None)
        .await;
    stack
        .admin(Method::POST, &format!("/users/{hard}/hard-delete"), None)
        .await;
    stack
        .admin(
            Method::POST,
            &format!("/groups/{CHILD_B}/members"),
            Some(json!({"id": joiner})),
        )
        .await;
    // The first user moves from child A (under parent one) to child B (under parent two).
    stack
        .admin(
            Method::DELETE,
            &format!("/groups/{CHILD_A}/members/{first}"),
            None,
        )
        .await;
    stack
        .admin(
            Method::POST,
            &format!("/groups/{CHILD_B}/members"),
            Some(json!({"id": first})),
        )
        .await;

    let (plan, applied) = stack.sync(delta()).await;
    assert!(applied && !plan.full, "{plan:?}");
    assert_eq!(plan.user_deletes, 1, "{plan:?}");
    assert_eq!(plan.user_disables, 2, "disabled and soft-deleted: {plan:?}");
    assert!(plan.user_updates >= 1, "renamed: {plan:?}");
    assert!(
        plan.membership_adds >= 3 && plan.membership_removes >= 2,
        "{plan:?}"
    );
    let expected = stack.expected(std::slice::from_ref(&soft));
    assert!(!expected.users.values().any(|u| u.object_id == hard));
    assert!(expected.users.contains_key(&new_upn));
    let parent_two = &expected.groups["Parent Two"].member_user_names;
    assert!(parent_two.contains(&graph_users[0].user_principal_name));
    stack.assert_maas360_matches(&expected).await;

    // A full run of the same state changes nothing (the snapshot and matching agree).
    let (plan, _) = stack.sync(full()).await;
    assert!(plan.full);
    assert_eq!(
        plan.user_creates
            + plan.user_updates
            + plan.user_disables
            + plan.user_deletes
            + plan.group_creates
            + plan.group_deletes
            + plan.membership_adds
            + plan.membership_removes,
        0,
        "{plan:?}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn pull_sync_expired_delta_resyncs_in_full_and_removes_what_disappeared() {
    let stack = PullStack::start(seed(30, 4, 22)).await;
    stack.sync(delta()).await;
    stack.assert_maas360_matches(&stack.expected(&[])).await;

    let victim = stack.graph.state().users[5].id.clone();
    stack
        .admin(Method::POST, "/expire-delta-tokens", Some(json!({})))
        .await;
    stack
        .admin(Method::POST, &format!("/users/{victim}/hard-delete"), None)
        .await;
    stack
        .admin(Method::DELETE, &format!("/groups/{PARENT_TWO}"), None)
        .await;

    let (plan, applied) = stack.sync(delta()).await;
    assert!(applied);
    assert!(plan.full && plan.resynced, "{plan:?}");
    assert_eq!(plan.user_deletes, 1, "{plan:?}");
    assert_eq!(plan.group_deletes, 1, "{plan:?}");
    stack.assert_maas360_matches(&stack.expected(&[])).await;
    stack.stop().await;
}

#[tokio::test]
async fn pull_sync_converges_through_graph_throttling() {
    let stack = PullStack::start(seed(30, 4, 23)).await;
    stack.graph.set_throttle(Throttle {
        next: 4,
        retry_after_secs: 0.3,
        ..Throttle::default()
    });
    let (plan, applied) = stack.sync(delta()).await;
    assert!(applied && plan.full);
    let throttled: u64 = stack
        .graph
        .request_counts()
        .values()
        .filter_map(|by_status| by_status.get(&429))
        .sum();
    assert!(throttled >= 4, "{:?}", stack.graph.request_counts());
    assert!(
        stack.graph.violations().is_empty(),
        "{:?}",
        stack.graph.violations()
    );
    stack.assert_maas360_matches(&stack.expected(&[])).await;
    stack.stop().await;
}

#[tokio::test]
async fn pull_sync_dry_run_writes_nothing() {
    let stack = PullStack::start(seed(20, 3, 24)).await;
    let (plan, applied) = stack
        .sync(pb::SyncTenantRequest {
            dry_run: true,
            ..Default::default()
        })
        .await;
    assert!(!applied);
    assert_eq!(plan.user_creates, 20);
    assert!(!plan.samples.is_empty());
    assert!(plan.samples.iter().any(|s| s.action == "user_create"));
    assert_eq!(provisioner_users(&stack).await, 0);
    let state = stack.state().await;
    assert!(!state.has_cursor, "{state:?}");
    assert_eq!(state.last_outcome, "");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(stack.sync.emulator.state().users.is_empty());

    // After a real run, a dry run of a change plans it and leaves it for the next real run.
    stack.sync(delta()).await;
    stack.sync.wait_converged(Duration::from_secs(30)).await;
    let before = stack.sync.emulator.state();
    let user = stack.graph.state().users[3].id.clone();
    stack
        .admin(
            Method::PATCH,
            &format!("/users/{user}"),
            Some(json!({"displayName": "Dry Run"})),
        )
        .await;
    let dry = pb::SyncTenantRequest {
        dry_run: true,
        ..Default::default()
    };
    let (plan, applied) = stack.sync(dry.clone()).await;
    assert!(!applied);
    assert_eq!(plan.user_updates, 1, "{plan:?}");
    let (again, _) = stack.sync(dry).await;
    assert_eq!(again.user_updates, 1, "the cursor did not move: {again:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stack.sync.emulator.state().users, before.users);
    let (plan, applied) = stack.sync(delta()).await;
    assert!(applied);
    assert_eq!(plan.user_updates, 1);
    stack.assert_maas360_matches(&stack.expected(&[])).await;
    stack.stop().await;
}

#[tokio::test]
async fn pull_sync_deletion_guard_stops_a_run_and_force_passes_it() {
    let stack = PullStack::start(seed(20, 3, 25)).await;
    stack.sync(delta()).await;
    stack.assert_maas360_matches(&stack.expected(&[])).await;
    let users = stack.graph.state().users;
    for user in users.iter().skip(10).take(6) {
        stack
            .admin(
                Method::POST,
                &format!("/users/{}/hard-delete", user.id),
                None,
            )
            .await;
    }
    let (plan, applied) = stack.sync(delta()).await;
    assert!(!applied);
    assert!(!plan.guard.is_empty(), "{plan:?}");
    assert_eq!(plan.user_deletes, 6);
    assert_eq!(plan.users_before, 20);
    assert!(
        stack
            .state()
            .await
            .last_outcome
            .starts_with("stopped by the deletion guard")
    );
    assert_eq!(provisioner_users(&stack).await, 20, "nothing deleted");

    let (plan, applied) = stack
        .sync(pb::SyncTenantRequest {
            force: true,
            ..Default::default()
        })
        .await;
    assert!(applied && plan.guard.is_empty(), "{plan:?}");
    assert_eq!(plan.user_deletes, 6);
    stack.assert_maas360_matches(&stack.expected(&[])).await;
    stack.stop().await;
}

#[tokio::test]
async fn pull_sync_refuses_a_push_mode_tenant_except_as_a_dry_run() {
    let stack = PullStack::start(seed(10, 2, 26)).await;
    stack.set_mode(provisioner::TenantMode::Push).await;
    let status = stack.try_sync(delta()).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        dirsync_proto::errors::read(&status).reason,
        Some(ErrorReason::WrongMode)
    );
    let (plan, applied) = stack
        .sync(pb::SyncTenantRequest {
            dry_run: true,
            ..Default::default()
        })
        .await;
    assert!(!applied);
    let enabled = stack
        .graph
        .state()
        .users
        .iter()
        .filter(|user| user.account_enabled)
        .count() as u64;
    assert_eq!(plan.user_creates, enabled, "the enabled users, planned");
    stack.stop().await;
}

#[tokio::test]
async fn pull_sync_group_scope_keeps_the_scoped_groups_and_their_transitive_users() {
    let seeded = seed(20, 3, 27);
    let stack = PullStack::start(seeded.clone()).await;
    stack.sync(delta()).await;
    stack.sync.wait_converged(Duration::from_secs(30)).await;
    let mut reader = stack.reader().await;
    reader
        .set_pull_settings(pb::SetPullSettingsRequest {
            tenant: stack.tenant(),
            settings: Some(pb::PullSettings {
                group_scope: vec!["parent one".to_owned(), PARENT_TWO.to_owned()],
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let (plan, applied) = stack
        .sync(pb::SyncTenantRequest {
            force: true,
            ..Default::default()
        })
        .await;
    assert!(applied);
    assert_eq!(plan.group_deletes, 3 + 2, "{plan:?}");
    let wanted = [&seeded.users[0], &seeded.users[1]];
    assert_eq!(plan.user_deletes, 20 - 2, "{plan:?}");
    stack.sync.wait_converged(Duration::from_secs(30)).await;
    let maas360 = stack.sync.emulator.state();
    let live: Vec<_> = maas360
        .users
        .iter()
        .filter(|u| !u.is_pending_deletion())
        .collect();
    assert_eq!(live.len(), 2);
    for user in wanted {
        let local = user.user_principal_name.split('@').next().unwrap();
        assert!(live.iter().any(|u| u.user_name.eq_ignore_ascii_case(local)));
    }
    let names: Vec<&str> = maas360.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let unknown = stack
        .try_sync(pb::SyncTenantRequest {
            group_scope: vec!["No Such Group".to_owned()],
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    stack.stop().await;
}

async fn drift(stack: &PullStack) -> pb::GetDriftResponse {
    stack
        .reader()
        .await
        .get_drift(pb::GetDriftRequest {
            tenant: stack.tenant(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn pull_sync_drift_is_found_and_gone_after_a_sync() {
    let stack = PullStack::start(seed(15, 2, 28)).await;
    stack.sync(delta()).await;
    stack.assert_maas360_matches(&stack.expected(&[])).await;
    let clean = drift(&stack).await;
    assert!(clean.differences.is_empty(), "{:#?}", clean.differences);
    let enabled = stack
        .graph
        .state()
        .users
        .iter()
        .filter(|user| user.account_enabled)
        .count() as u64;
    assert!(enabled < 15, "a user disabled from the start is not drift");
    assert_eq!(clean.entra_users, enabled);
    assert_eq!(clean.maas360_users, enabled);

    // Behind dirsync's back: a new name and a new user in Entra.
    let user = stack.graph.state().users[2].clone();
    stack
        .admin(
            Method::PATCH,
            &format!("/users/{}", user.id),
            Some(json!({"displayName": "Someone Else"})),
        )
        .await;
    stack
        .admin(
            Method::POST,
            "/users",
            Some(json!({"userPrincipalName": "newcomer@contoso.example", "displayName": "New Comer", "accountEnabled": true})),
        )
        .await;
    let found = drift(&stack).await;
    let full_name = found
        .differences
        .iter()
        .find(|d| d.attribute == "full_name")
        .unwrap_or_else(|| panic!("{:#?}", found.differences));
    assert_eq!(full_name.entra, "Someone Else");
    assert_eq!(full_name.dirsync, user.display_name.clone().unwrap());
    assert_eq!(full_name.maas360, user.display_name.clone().unwrap());
    let present = found
        .differences
        .iter()
        .find(|d| d.attribute == "present")
        .unwrap_or_else(|| panic!("{:#?}", found.differences));
    assert_eq!(present.name, "newcomer@contoso.example");
    assert_eq!(present.entra, "present");
    assert_eq!(present.dirsync, "");

    stack.sync(delta()).await;
    stack.assert_maas360_matches(&stack.expected(&[])).await;
    let after = drift(&stack).await;
    assert!(after.differences.is_empty(), "{:#?}", after.differences);
    stack.stop().await;
}

#[tokio::test]
async fn pull_sync_scheduler_syncs_pull_tenants_and_records_failures() {
    let stack = PullStack::start_with(
        seed(12, 2, 29),
        GraphEmulatorConfig::for_tests(),
        |config| {
            config.directory.schedule = true;
            config.directory.sync_interval = Duration::from_millis(400);
            config.directory.full_sync_interval = Duration::from_secs(3600);
        },
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = stack.state().await;
        if state.last_outcome == "ok" && state.next_sync_time.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "never synced: {state:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.assert_maas360_matches(&stack.expected(&[])).await;

    // A change in Entra arrives without anyone asking.
    let user = stack.graph.state().users[0].id.clone();
    stack
        .admin(
            Method::PATCH,
            &format!("/users/{user}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    // A failing Graph is recorded, and the scheduler goes on.
    stack.graph.set_app_roles(Vec::<String>::new());
    stack.graph.expire_access_tokens();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = stack.state().await;
        if state.last_outcome.starts_with("failed") {
            break;
        }
        assert!(Instant::now() < deadline, "no failure recorded: {state:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.stop().await;
}

#[tokio::test]
async fn pull_sync_runs_of_one_tenant_never_overlap() {
    let stack = PullStack::start(seed(30, 3, 33)).await;
    // Overlapping runs would both plan every create, and the second's would be refused.
    let (a, b) = tokio::join!(stack.try_sync(delta()), stack.try_sync(delta()));
    let (a, b) = (a.unwrap().plan.unwrap(), b.unwrap().plan.unwrap());
    assert_eq!(a.user_creates + b.user_creates, 30, "{a:?} {b:?}");
    assert_eq!(stack.state().await.last_outcome, "ok");
    stack.assert_maas360_matches(&stack.expected(&[])).await;
    stack.stop().await;
}

/// Peak resident memory of this process so far, in MiB (Linux).
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// Waits until a run that ended after `since` is recorded; returns its outcome.
async fn wait_for_run(stack: &PullStack, since: std::time::SystemTime, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let since_ms = since
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0);
    loop {
        let state = stack.state().await;
        if let Some(at) = &state.last_sync_time
            && dirsync_proto::time::to_unix_ms(at) >= since_ms
        {
            return state.last_outcome;
        }
        assert!(Instant::now() < deadline, "no run ended: {state:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A rough measure of the pull sync at scale, for a release build:
/// `DIRSYNC_PULL_USERS=100000 cargo test --release -p dirsync-tests -- --ignored --nocapture pull_sync_scale`.
/// It reads Entra in full into the provisioner's desired state (reconcile workers off, so
/// MaaS360 does not compete for the cores), then a delta round without changes and one with a
/// hundred, and prints the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run it in a release build"]
async fn pull_sync_scale() {
    let users: usize = std::env::var("DIRSYNC_PULL_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let groups = (users / 200).max(4);
    let started = Instant::now();
    let seeded = GraphSeed::generate(users, groups, 2, 99);
    println!(
        "generated {users} users and {groups} groups in {:?}",
        started.elapsed()
    );
    let stack = PullStack::start_with(seeded.clone(), GraphEmulatorConfig::for_tests(), |config| {
        config.provisioner.reconcile = false;
        if let Ok(limit) = std::env::var("DIRSYNC_PULL_APPLY") {
            config.directory.apply_concurrency = limit.parse().unwrap();
        }
    })
    .await;
    let rss_before = peak_rss_mib();

    let since = std::time::SystemTime::now();
    let started = Instant::now();
    // The RPC may end at its deadline; the run goes on and records its outcome.
    let response = stack.try_sync(delta()).await;
    let outcome = wait_for_run(&stack, since, Duration::from_secs(600)).await;
    let full = started.elapsed();
    assert_eq!(outcome, "ok");
    let user_pages = stack.graph.requests_to("users");
    println!(
        "full read into desired state: {full:?} ({}), Graph users pages {user_pages} (bound {}), Graph requests {:?}",
        match &response {
            Ok(r) => format!(
                "plan {:?}",
                r.plan.as_ref().map(|p| (
                    p.user_creates,
                    p.group_creates,
                    p.membership_adds,
                    p.graph_calls
                ))
            ),
            Err(status) => format!("RPC ended early: {:?}", status.code()),
        },
        users.div_ceil(999) + 1,
        stack.graph.request_counts()
    );
    assert!(user_pages <= (users.div_ceil(999) + 1) as u64);
    assert_eq!(provisioner_users(&stack).await, users as i64);

    let started = Instant::now();
    let (plan, _) = stack.sync(delta()).await;
    println!(
        "delta round, no change: {:?}, {} Graph calls",
        started.elapsed(),
        plan.graph_calls
    );

    for user in seeded.users.iter().take(100) {
        stack
            .graph
            .update_user(
                &user.id,
                &serde_json::from_value(json!({"jobTitle": "Changed"})).unwrap(),
            )
            .unwrap();
    }
    let since = std::time::SystemTime::now();
    let started = Instant::now();
    let response = stack.try_sync(delta()).await;
    let outcome = wait_for_run(&stack, since, Duration::from_secs(600)).await;
    println!(
        "delta round, 100 changed users: {:?} ({outcome}; {:?})",
        started.elapsed(),
        response
            .ok()
            .and_then(|r| r.plan)
            .map(|p| (p.user_updates, p.graph_calls))
    );
    println!(
        "peak RSS: {} MiB before the runs, {} MiB after (emulators and provisioner in the same process)",
        rss_before,
        peak_rss_mib()
    );
    stack.stop().await;
}
