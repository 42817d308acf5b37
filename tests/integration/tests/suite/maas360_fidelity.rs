//! MaaS360 as it really answers, through the whole product: the probe over gRPC, a route moved
//! in MaaS360 and fixed by a routes file without a rebuild, a deletion refused for an active
//! device (deactivated or parked per policy), a queued deletion that is never adopted, and the
//! user groups the mapping service reads.

use std::time::Duration;

use dirsync_emulators::maas360::{Device, EmulatorConfig, Faults, Seed, SeedGroup, SeedUser};
use dirsync_proto::provisioner::v1 as pb;
use dirsync_tests::sync::SyncStack;
use serde_json::json;
use tonic::Code;

const SETTLE: Duration = Duration::from_secs(60);

async fn create_user(sync: &SyncStack, name: &str, display: &str) -> String {
    let reply = sync
        .scim
        .post(
            "/Users",
            &json!({"userName": name, "displayName": display,
                    "emails": [{"type": "work", "primary": true, "value": name}]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn probe(sync: &SyncStack, write: bool) -> pb::ProbeMaas360Response {
    pb::tenant_service_client::TenantServiceClient::new(sync.stack.grpc.channel().await)
        .probe_maas360(pb::ProbeMaas360Request {
            tenant: "synced".to_owned(),
            write,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn connection(sync: &SyncStack) -> pb::Maas360Connection {
    pb::tenant_service_client::TenantServiceClient::new(sync.stack.grpc.channel().await)
        .get_tenant(pb::GetTenantRequest {
            tenant: "synced".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .and_then(|tenant| tenant.maas360)
        .unwrap()
}

const MOVED_EDIT: &str = "/user-apis/user/2.0/editUser/customer/{billingID}/user/{userIdentifier}";

#[tokio::test]
async fn a_route_moved_in_maas360_is_fixed_by_a_routes_file_without_a_rebuild() {
    let sync = SyncStack::start(Faults::default()).await;

    // Before the first sync: every route answers, the write routes included, and the probe
    // leaves nothing behind.
    let report = probe(&sync, true).await;
    assert!(report.passed, "{report:?}");
    for route in ["add_user", "edit_user", "deactivate_user", "delete_user"] {
        assert!(
            report
                .steps
                .iter()
                .any(|step| step.route == route && step.outcome == "ok"),
            "{route} was probed: {report:?}"
        );
    }
    assert!(report.leftovers.is_empty());
    let state = sync.emulator.state();
    assert!(
        state
            .users
            .iter()
            .all(|user| !user.user_name.starts_with("dirsync-probe-") || user.is_pending_deletion()),
        "the probe cleaned up: {:?}",
        state.users
    );

    // This tenant's MaaS360 answers the edit route elsewhere: the probe names it.
    sync.emulator.move_route("edit_user", MOVED_EDIT).unwrap();
    let report = probe(&sync, true).await;
    assert!(!report.passed, "{report:?}");
    let edit = report
        .steps
        .iter()
        .find(|step| step.route == "edit_user")
        .unwrap();
    assert_eq!(edit.outcome, "failed", "{edit:?}");
    assert_eq!(edit.http_status, 404, "{edit:?}");

    // A routes file that MaaS360 would refuse is refused when set, naming the route.
    let mut tenants =
        pb::tenant_service_client::TenantServiceClient::new(sync.stack.grpc.channel().await);
    let mut broken = connection(&sync).await;
    broken.routes_toml = "[routes.edit_usr]\npath = \"/x\"\n".to_owned();
    let refused = tenants
        .set_maas360_connection(pb::SetMaas360ConnectionRequest {
            tenant: "synced".to_owned(),
            maas360: Some(broken),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("edit_usr"),
        "{}",
        refused.message()
    );
    let details = dirsync_proto::errors::read(&refused);
    assert_eq!(details.violations[0].0, "maas360.routes_toml");

    // The operator's routes file fixes it, with no rebuild.
    let mut fixed = connection(&sync).await;
    fixed.routes_toml = format!("[routes.edit_user]\npath = \"{MOVED_EDIT}\"\n");
    tenants
        .set_maas360_connection(pb::SetMaas360ConnectionRequest {
            tenant: "synced".to_owned(),
            maas360: Some(fixed),
        })
        .await
        .unwrap();
    let report = probe(&sync, true).await;
    assert!(report.passed, "{report:?}");
    assert!(
        report
            .steps
            .iter()
            .any(|step| step.route == "edit_user" && step.evidence.contains("operator")),
        "the route says it was set by an operator: {report:?}"
    );

    // And the workers use it: a display name change reaches MaaS360 through the moved route.
    let id = create_user(&sync, "ada@contoso.example", "Ada").await;
    sync.wait_converged(SETTLE).await;
    let renamed = sync
        .scim
        .patch(
            &format!("/Users/{id}"),
            &json!({"Operations": [{"op": "Replace", "path": "displayName", "value": "Ada Lovelace"}]}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.raw);
    sync.wait_converged(SETTLE).await;
    let state = sync.emulator.state();
    let ada = state
        .users
        .iter()
        .find(|user| user.user_name == "ada")
        .unwrap();
    assert_eq!(ada.full_name, "Ada Lovelace");
    sync.stop().await;
}

async fn start_with_policy(park: bool) -> SyncStack {
    let config = EmulatorConfig {
        deletion_job_after: Some(Duration::ZERO),
        ..EmulatorConfig::for_tests()
    };
    let policy = pb::TenantPolicy {
        deactivate_on_disable: true,
        delete_on_delete: true,
        username_mapping: pb::UsernameMapping::LocalPart as i32,
        active_device: if park {
            pb::ActiveDevicePolicy::Park
        } else {
            pb::ActiveDevicePolicy::Deactivate
        } as i32,
        lookalike_groups: pb::LookalikeGroupPolicy::Park as i32,
    };
    SyncStack::start_on(
        config,
        None,
        Some(policy),
        dirsync_tests::sync::fast_reconcile,
    )
    .await
}

/// Pushes a user, gives it an active device in MaaS360, then deletes it in Entra.
async fn delete_a_user_with_an_active_device(sync: &SyncStack) -> String {
    let id = create_user(sync, "bob@contoso.example", "Bob").await;
    sync.wait_converged(SETTLE).await;
    let bob = sync
        .emulator
        .state()
        .users
        .into_iter()
        .find(|user| user.user_name == "bob")
        .unwrap();
    sync.emulator
        .set_devices(
            &bob.user_identifier,
            vec![Device {
                csn: "IPHONE-1".to_owned(),
                platform: "iOS".to_owned(),
                active: true,
            }],
        )
        .unwrap();
    assert_eq!(sync.scim.delete(&format!("/Users/{id}")).await.status, 204);
    id
}

#[tokio::test]
async fn a_user_with_an_active_device_is_deactivated_when_maas360_refuses_its_deletion() {
    let sync = start_with_policy(false).await;
    let id = delete_a_user_with_an_active_device(&sync).await;
    let status = sync.wait_settled(SETTLE).await;
    assert_eq!(status.parked, 0, "{status:?}");
    let state = sync.emulator.state();
    let bob = state
        .users
        .iter()
        .find(|user| user.user_name == "bob")
        .unwrap();
    assert!(
        bob.status.eq_ignore_ascii_case("inactive"),
        "kept, deactivated: {bob:?}"
    );
    let audit = pb::work_service_client::WorkServiceClient::new(sync.stack.grpc.channel().await)
        .list_audit_entries(pb::ListAuditEntriesRequest {
            tenant: "synced".to_owned(),
            resource_id: id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let routes: Vec<(&str, &str)> = audit
        .entries
        .iter()
        .rev()
        .map(|entry| (entry.route.as_str(), entry.outcome.as_str()))
        .collect();
    assert!(
        routes.ends_with(&[
            ("delete_user", "refused_active_device"),
            ("deactivate_user", "ok")
        ]),
        "the audit says what happened: {routes:?}"
    );
    sync.stop().await;
}

#[tokio::test]
async fn with_the_park_policy_a_refused_deletion_waits_for_an_operator() {
    let sync = start_with_policy(true).await;
    delete_a_user_with_an_active_device(&sync).await;
    let status = sync.wait_settled(SETTLE).await;
    assert_eq!(status.parked, 1, "{status:?}");
    let parked = pb::work_service_client::WorkServiceClient::new(sync.stack.grpc.channel().await)
        .list_parked(pb::ListParkedRequest {
            tenant: "synced".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        parked.resources[0].reason.contains("active device"),
        "{:?}",
        parked.resources
    );
    let state = sync.emulator.state();
    let bob = state
        .users
        .iter()
        .find(|user| user.user_name == "bob")
        .unwrap();
    assert!(bob.status.eq_ignore_ascii_case("active"), "{bob:?}");
    sync.stop().await;
}

#[tokio::test]
async fn a_user_queued_for_deletion_is_created_again_only_after_maas360s_job() {
    // MaaS360 queues deletions for a daily job.
    let config = EmulatorConfig {
        deletion_job_after: None,
        ..EmulatorConfig::for_tests()
    };
    let sync = SyncStack::start_on(config, None, None, dirsync_tests::sync::fast_reconcile).await;
    let id = create_user(&sync, "carol@contoso.example", "Carol").await;
    sync.wait_converged(SETTLE).await;
    assert_eq!(sync.scim.delete(&format!("/Users/{id}")).await.status, 204);
    sync.wait_converged(SETTLE).await;
    let state = sync.emulator.state();
    assert!(state.users.iter().all(|user| user.is_pending_deletion()));
    let deletes: u64 = sync
        .emulator
        .request_counts()
        .get("delete_user")
        .map_or(0, |by_status| by_status.values().sum());
    assert_eq!(deletes, 1, "a queued deletion is done: never sent twice");

    // Entra creates the user again before the job ran: dirsync must not adopt the user
    // MaaS360 is about to delete.
    create_user(&sync, "carol@contoso.example", "Carol").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = sync.work_status().await;
    assert_eq!(
        status.queue_depth, 1,
        "waiting for MaaS360's job: {status:?}"
    );
    assert_eq!(status.parked, 0);
    assert_eq!(sync.emulator.run_deletion_job(), 1);
    sync.wait_converged(SETTLE).await;
    let state = sync.emulator.state();
    let carols: Vec<_> = state
        .users
        .iter()
        .filter(|user| user.user_name == "carol")
        .collect();
    assert_eq!(carols.len(), 1, "{carols:?}");
    assert!(
        carols[0].status.eq_ignore_ascii_case("active"),
        "{carols:?}"
    );
    sync.stop().await;
}

#[tokio::test]
async fn the_mapping_service_reads_user_groups_only_with_their_member_counts() {
    let user = |name: &str| SeedUser {
        user_name: name.to_owned(),
        domain: "contoso.example".to_owned(),
        email: format!("{name}@contoso.example"),
        ..Default::default()
    };
    let seed = Seed {
        users: vec![user("u1"), user("u2"), user("u3")],
        groups: vec![
            SeedGroup {
                name: "Sales".to_owned(),
                members: vec![
                    "u1@contoso.example".to_owned(),
                    "u2@contoso.example".to_owned(),
                ],
                ..Default::default()
            },
            SeedGroup {
                name: "Kiosks".to_owned(),
                group_type: Some(1),
                ..Default::default()
            },
        ],
    };
    let sync = SyncStack::start_on(
        EmulatorConfig::for_tests(),
        Some(seed),
        None,
        dirsync_tests::sync::fast_reconcile,
    )
    .await;
    let groups = pb::maas360_read_service_client::Maas360ReadServiceClient::new(
        sync.stack.grpc.channel().await,
    )
    .list_maas360_user_groups(pb::ListMaas360UserGroupsRequest {
        tenant: "synced".to_owned(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .groups;
    let names: Vec<(&str, u64)> = groups
        .iter()
        .map(|group| (group.name.as_str(), group.user_count))
        .collect();
    assert_eq!(
        names,
        vec![("Sales", 2)],
        "device groups are not user groups"
    );
    assert_eq!(groups[0].group_type, "3");
    let users = pb::maas360_read_service_client::Maas360ReadServiceClient::new(
        sync.stack.grpc.channel().await,
    )
    .list_maas360_users(pb::ListMaas360UsersRequest {
        tenant: "synced".to_owned(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(users.total_size, 3);
    sync.stop().await;
}
