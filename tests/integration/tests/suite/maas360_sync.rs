//! SCIM in, MaaS360 emulator out, over real sockets: what Entra pushes ends
//! up in MaaS360 exactly, through faults, rate limits, restarts and token
//! expiry, with nothing lost, duplicated or sent against a Retry-After.

use std::time::Duration;

use dirsync_emulators::maas360::{Faults, Outage};
use dirsync_proto::provisioner::v1 as pb;
use dirsync_tests::http::ScimClient;
use dirsync_tests::sync::{Ledger, SentUser, SyncStack, assert_mirrors};
use serde_json::{Value, json};

const SETTLE: Duration = Duration::from_secs(90);

async fn create_user(scim: &ScimClient, sent: &mut Ledger, index: usize) -> String {
    let name = format!("user{index:03}@contoso.example");
    let user = SentUser {
        user_name: name.clone(),
        // Mail on another domain than the UPN, as many tenants have: MaaS360's email
        // must come from the work email, never from the userName.
        email: format!("user{index:03}@mail.contoso.example"),
        display_name: format!("User {index}"),
        active: true,
    };
    let reply = scim
        .post(
            "/Users",
            &json!({"userName": user.user_name, "active": user.active, "displayName": user.display_name,
                    "emails": [{"type": "work", "primary": true, "value": user.email}]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    sent.user_created(&id, user);
    id
}

async fn create_group(
    scim: &ScimClient,
    sent: &mut Ledger,
    name: &str,
    members: &[String],
) -> String {
    let reply = scim
        .post("/Groups", &json!({"displayName": name, "externalId": name}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    sent.group_created(&id, name);
    for chunk in members.chunks(10) {
        let add = json!({"Operations": [{"op": "Add", "path": "members",
            "value": chunk.iter().map(|m| json!({"value": m})).collect::<Vec<Value>>()}]});
        assert_eq!(scim.patch(&format!("/Groups/{id}"), &add).await.status, 204);
        sent.members_added(&id, chunk);
    }
    id
}

/// Calls MaaS360 answered on routes whose name contains `route`.
fn route_count(sync: &SyncStack, route: &str) -> u64 {
    sync.emulator
        .request_counts()
        .iter()
        .filter(|(name, _)| name.contains(route))
        .flat_map(|(_, by_status)| by_status.values())
        .sum()
}

async fn patch_user(scim: &ScimClient, id: &str, operations: Value) {
    let reply = scim
        .patch(&format!("/Users/{id}"), &json!({"Operations": operations}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
}

/// A directory with users, groups, memberships, a disabled user, a deleted
/// user, a removed membership and a renamed user.
async fn push_directory(scim: &ScimClient, sent: &mut Ledger, users: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for index in 0..users {
        ids.push(create_user(scim, sent, index).await);
    }
    let sales = create_group(scim, sent, "Sales", &ids[..users / 2]).await;
    create_group(scim, sent, "Engineering", &ids[users / 3..]).await;
    create_group(scim, sent, "Empty", &[]).await;
    patch_user(
        scim,
        &ids[1],
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    sent.user_changed(&ids[1], |user| user.active = false);
    assert_eq!(scim.delete(&format!("/Users/{}", ids[2])).await.status, 204);
    sent.user_deleted(&ids[2]);
    let remove =
        json!({"Operations": [{"op": "Remove", "path": "members", "value": [{"value": ids[3]}]}]});
    assert_eq!(
        scim.patch(&format!("/Groups/{sales}"), &remove)
            .await
            .status,
        204
    );
    sent.members_removed(&sales, [&ids[3]]);
    patch_user(scim, &ids[4], json!([{"op": "replace", "path": "displayName", "value": "Renamed Four"},
                                      {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "four@contoso.example"}])).await;
    sent.user_changed(&ids[4], |user| {
        user.display_name = "Renamed Four".to_owned();
        user.email = "four@contoso.example".to_owned();
    });
    // A renamed UPN renames the MaaS360 user rather than making a new one.
    patch_user(
        scim,
        &ids[5],
        json!([{"op": "Replace", "path": "userName", "value": "renamed005@contoso.example"}]),
    )
    .await;
    sent.user_changed(&ids[5], |user| {
        user.user_name = "renamed005@contoso.example".to_owned();
    });
    ids
}

#[tokio::test]
async fn pushed_users_groups_and_memberships_end_up_in_maas360_exactly() {
    let sync = SyncStack::start(Faults::default()).await;
    let mut sent = Ledger::default();
    push_directory(&sync.scim, &mut sent, 24).await;
    sync.wait_converged(SETTLE).await;
    assert_mirrors(&sync, &sent);

    let state = sync.emulator.state();
    let disabled = state.user("user001", "contoso.example").unwrap();
    assert_eq!(disabled.status, "Inactive", "active=false deactivates");
    assert!(
        state.user("user002", "contoso.example").is_none(),
        "DELETE deletes"
    );
    assert_eq!(
        state.user("user004", "contoso.example").unwrap().email,
        "four@contoso.example"
    );
    // Every write is audited.
    let db = dirsync_store::connect(sync.stack.db.options())
        .await
        .unwrap();
    use sea_orm::ConnectionTrait;
    let audited = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM maas360_audit WHERE outcome = 'ok'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert!(audited >= 24 + 3, "audited writes: {audited}");
    db.close().await.unwrap();

    // The mapping service's view of MaaS360, through the provisioner.
    let mut reads = pb::maas360_read_service_client::Maas360ReadServiceClient::new(
        sync.stack.grpc.channel().await,
    );
    let groups = reads
        .list_maas360_user_groups(pb::ListMaas360UserGroupsRequest {
            tenant: sync.tenant_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = groups.groups.iter().map(|g| g.name.as_str()).collect();
    assert!(
        names.contains(&"Sales") && names.contains(&"Engineering") && names.contains(&"Empty"),
        "{names:?}"
    );
    let sales = groups.groups.iter().find(|g| g.name == "Sales").unwrap();
    let mut members = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = reads
            .list_maas360_group_users(pb::ListMaas360GroupUsersRequest {
                tenant: sync.tenant_id.clone(),
                group_id: sales.group_id.clone(),
                page_size: 25,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        members.extend(page.users.into_iter().map(|u| u.username));
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    // Sales got users 0..12, less the deleted user002 and the removed user003.
    assert_eq!(members.len(), 10, "{members:?}");
    assert!(!members.iter().any(|m| m == "user002" || m == "user003"));

    // A settled user renamed in Entra, display name and UPN at once, is edited in
    // place: the same MaaS360 user, under its new name, in the same groups.
    let before = sync.emulator.state();
    let (renamed_id, original) = sent
        .users
        .iter()
        .find(|(_, user)| user.user_name == "user007@contoso.example")
        .map(|(id, user)| (id.clone(), user.clone()))
        .unwrap();
    let maas360_id = before
        .user("user007", "contoso.example")
        .unwrap()
        .user_identifier
        .clone();
    let adds_before = route_count(&sync, "add_user");
    patch_user(
        &sync.scim,
        &renamed_id,
        json!([{"op": "Replace", "path": "userName", "value": "grace.hopper@contoso.example"},
               {"op": "Replace", "path": "displayName", "value": "Grace Hopper"}]),
    )
    .await;
    sent.user_changed(&renamed_id, |user| {
        user.user_name = "grace.hopper@contoso.example".to_owned();
        user.display_name = "Grace Hopper".to_owned();
    });
    sync.wait_converged(SETTLE).await;
    assert_mirrors(&sync, &sent);
    let after = sync.emulator.state();
    assert!(after.user(&original.user_name, "contoso.example").is_none());
    let renamed = after.user("grace.hopper", "contoso.example").unwrap();
    assert_eq!(
        renamed.user_identifier, maas360_id,
        "edited, not re-created"
    );
    assert_eq!(renamed.full_name, "Grace Hopper");
    assert_eq!(renamed.email, original.email, "the email was not touched");
    assert_eq!(route_count(&sync, "add_user"), adds_before, "no create");
    sync.stop().await;
}

#[tokio::test]
async fn converges_through_5xx_429_and_latency_without_loss_or_duplicates() {
    let faults = Faults {
        fault_rate: 0.3,
        latency_ms: 5,
        rate_limit_per_minute: 900,
        seed: 7,
        ..Faults::default()
    };
    let sync = SyncStack::start(faults).await;
    let mut sent = Ledger::default();
    push_directory(&sync.scim, &mut sent, 40).await;
    sync.wait_converged(SETTLE).await;
    assert_mirrors(&sync, &sent);

    let counts = sync.emulator.request_counts();
    let failures: u64 = counts
        .values()
        .flat_map(|by_status| by_status.iter())
        .filter(|(status, _)| **status >= 500)
        .map(|(_, count)| count)
        .sum();
    assert!(failures > 10, "faults were injected: {counts:?}");
    let violations = sync.emulator.retry_after_violations();
    assert!(
        violations.is_empty(),
        "requests ignored a Retry-After: {violations:?}"
    );
    sync.stop().await;
}

#[tokio::test]
async fn rate_limited_work_honours_retry_after() {
    // 41 calls (an authentication and one create per user) against a limit
    // of 30 a minute, signalled only by 429 with Retry-After (no rate-limit
    // headers to pace by): some wait for MaaS360's Retry-After.
    let faults = Faults {
        rate_limit_per_minute: 30,
        ..Faults::default()
    };
    let sync = SyncStack::start(faults).await;
    let mut sent = Ledger::default();
    sync.emulator
        .set_rate_limit_settings(dirsync_emulators::maas360::RateLimitSettings {
            headers: false,
            ..Default::default()
        });
    for index in 0..40 {
        create_user(&sync.scim, &mut sent, index).await;
    }
    sync.wait_converged(SETTLE).await;
    assert_mirrors(&sync, &sent);
    let limited: u64 = sync
        .emulator
        .request_counts()
        .values()
        .filter_map(|by_status| by_status.get(&429))
        .sum();
    assert!(limited > 0, "the limit was hit");
    assert!(sync.emulator.retry_after_violations().is_empty());
    sync.stop().await;
}

#[tokio::test]
async fn stopping_the_provisioner_mid_queue_and_restarting_converges() {
    let faults = Faults {
        latency_ms: 40,
        ..Faults::default()
    };
    let mut sync = SyncStack::start_with(faults, |config| {
        config.provisioner.workers = 2;
        config.provisioner.tenant_concurrency = 2;
    })
    .await;
    let mut sent = Ledger::default();
    push_directory(&sync.scim, &mut sent, 30).await;
    // Stop while work is still queued.
    let before = sync.work_status().await;
    assert!(before.queue_depth > 0, "work is still queued: {before:?}");
    let addr = sync.stack.grpc.addr;
    let old = std::mem::replace(
        &mut sync.stack.grpc,
        dirsync_tests::start_grpc_on(&sync.stack.config, {
            // The old server must release the port first.
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
        })
        .await,
    );
    old.stop().await;
    let interim = std::mem::replace(
        &mut sync.stack.grpc,
        dirsync_tests::start_grpc_on(
            &sync.stack.config,
            tokio::net::TcpListener::bind(addr).await.unwrap(),
        )
        .await,
    );
    interim.stop().await;
    sync.wait_converged(SETTLE).await;
    assert_mirrors(&sync, &sent);
    sync.stop().await;
}

#[tokio::test]
async fn an_outage_parks_nothing_and_work_resumes_by_itself_when_maas360_answers() {
    // Backoff may grow to the production cap: what brings the work back at once is the
    // breaker closing, not a short backoff.
    let sync = SyncStack::start_with(Faults::default(), |config| {
        config.provisioner.backoff_base = Duration::from_millis(200);
        config.provisioner.backoff_max = Duration::from_secs(15 * 60);
        config.provisioner.breaker_failure_threshold = 3;
        config.provisioner.breaker_cooldown = Duration::from_millis(500);
    })
    .await;
    let mut sent = Ledger::default();
    let outage = Duration::from_secs(4);
    sync.emulator.set_faults(Faults {
        outage: Some(Outage {
            starts_after: Duration::ZERO,
            lasts: outage,
        }),
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    for index in 0..5 {
        create_user(&sync.scim, &mut sent, index).await;
    }
    let mut work = pb::work_service_client::WorkServiceClient::new(sync.stack.grpc.channel().await);

    // During the outage: the tenant shows as unreachable with its next probe, nothing parks.
    let unreachable = loop {
        let status = sync.work_status().await;
        let health = status.maas360_health.clone().unwrap_or_default();
        if health.reachability == pb::Maas360Reachability::Unreachable as i32 {
            break status;
        }
        assert!(
            started.elapsed() < outage,
            "the breaker did not open during the outage: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let health = unreachable.maas360_health.clone().unwrap_or_default();
    assert!(health.unreachable_since.is_some(), "{health:?}");
    assert!(health.next_probe_time.is_some(), "{health:?}");
    assert!(
        health.last_error.contains("503"),
        "the last error says why: {health:?}"
    );
    assert_eq!(
        unreachable.parked, 0,
        "a transient failure parks nothing: {unreachable:?}"
    );
    assert!(sync.emulator.state().users.is_empty());

    // The outage ends by itself; nobody types a command.
    sync.wait_converged(SETTLE).await;
    assert!(
        started.elapsed() < outage + Duration::from_secs(20),
        "the work resumed when MaaS360 answered, not after its backoff: {:?}",
        started.elapsed()
    );
    assert_mirrors(&sync, &sent);
    let status = sync.work_status().await;
    let health = status.maas360_health.unwrap_or_default();
    assert_eq!(
        health.reachability,
        pb::Maas360Reachability::Reachable as i32,
        "{health:?}"
    );
    assert!(health.unreachable_since.is_none());
    assert!(
        health.last_error.contains("503"),
        "the last error stays visible: {health:?}"
    );

    // The audit tells the story: refused calls while MaaS360 was down, then the creates.
    let audit = work
        .list_audit_entries(pb::ListAuditEntriesRequest {
            tenant: "synced".to_owned(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let failed = audit
        .entries
        .iter()
        .filter(|entry| entry.outcome == "retryable")
        .count();
    let created = audit
        .entries
        .iter()
        .filter(|entry| entry.route == "add_user" && entry.outcome == "ok")
        .count();
    assert!(failed >= 3, "{:?}", audit.entries);
    assert_eq!(created, 5, "{:?}", audit.entries);
    assert!(
        audit
            .entries
            .iter()
            .all(|entry| !entry.worker.is_empty() && entry.attempt_start_time.is_some())
    );
    sync.stop().await;
}

#[tokio::test]
async fn a_user_maas360_cannot_take_is_parked_until_entra_fixes_it() {
    let sync = SyncStack::start(Faults::default()).await;
    let reply = sync
        .scim
        .post("/Users", &json!({"userName": "no-domain"}))
        .await;
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let status = sync.wait_settled(SETTLE).await;
    assert_eq!(status.parked, 1);
    let parked = pb::work_service_client::WorkServiceClient::new(sync.stack.grpc.channel().await)
        .list_parked(pb::ListParkedRequest {
            tenant: sync.tenant_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        parked.resources[0].reason.contains("domain"),
        "{}",
        parked.resources[0].reason
    );
    // A new desired state is tried afresh.
    patch_user(&sync.scim, &id, json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "nd@contoso.example"}])).await;
    sync.wait_converged(SETTLE).await;
    assert!(
        sync.emulator
            .state()
            .user("no-domain", "contoso.example")
            .is_some()
    );
    sync.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_renewed_without_failing_work() {
    let sync = SyncStack::start(Faults::default()).await;
    let mut sent = Ledger::default();
    for index in 0..5 {
        create_user(&sync.scim, &mut sent, index).await;
    }
    sync.wait_converged(SETTLE).await;
    let grants_before: u64 = sync.emulator.auth_grants().values().sum();
    sync.emulator.expire_tokens();
    for index in 5..10 {
        create_user(&sync.scim, &mut sent, index).await;
    }
    sync.wait_converged(SETTLE).await;
    assert_mirrors(&sync, &sent);
    let grants_after: u64 = sync.emulator.auth_grants().values().sum();
    assert!(grants_after > grants_before, "the token was renewed");
    sync.stop().await;
}

#[tokio::test]
async fn quick_updates_to_one_user_become_one_write() {
    let sync = SyncStack::start(Faults::default()).await;
    // A second tenant with no MaaS360 connection yet: its work waits.
    let mut tenants =
        pb::tenant_service_client::TenantServiceClient::new(sync.stack.grpc.channel().await);
    let created = tenants
        .create_tenant(pb::CreateTenantRequest {
            name: "later".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let later = created.tenant.unwrap().tenant_id;
    let scim = ScimClient::new(sync.stack.scim_base(), Some(created.scim_token));
    let id = create_user(&scim, &mut Ledger::default(), 900).await;
    for round in 0..10 {
        patch_user(
            &scim,
            &id,
            json!([{"op": "replace", "path": "displayName", "value": format!("Name {round}")}]),
        )
        .await;
    }
    let connection = tenants
        .get_tenant(pb::GetTenantRequest {
            tenant: sync.tenant_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .and_then(|tenant| tenant.maas360)
        .unwrap();
    tenants
        .set_maas360_connection(pb::SetMaas360ConnectionRequest {
            tenant: later.clone(),
            maas360: Some(connection),
        })
        .await
        .unwrap();
    let work = pb::work_service_client::WorkServiceClient::new(sync.stack.grpc.channel().await);
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        let status = work
            .clone()
            .get_work_status(pb::GetWorkStatusRequest {
                tenant: later.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap_or_default();
        if status.queue_depth == 0 && status.in_flight == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not converge: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let state = sync.emulator.state();
    assert_eq!(
        state.user("user900", "contoso.example").unwrap().full_name,
        "Name 9"
    );
    let counts = sync.emulator.request_counts();
    let writes: u64 = counts
        .iter()
        .filter(|(route, _)| route.contains("add_user") || route.contains("edit_user"))
        .flat_map(|(_, by_status)| by_status.values())
        .sum();
    assert_eq!(writes, 1, "one create, no edits: {counts:?}");
    sync.stop().await;
}

#[tokio::test]
async fn bad_maas360_credentials_are_refused_naming_the_part() {
    let sync = SyncStack::start(Faults::default()).await;
    let mut tenants =
        pb::tenant_service_client::TenantServiceClient::new(sync.stack.grpc.channel().await);
    let mut connection = tenants
        .get_tenant(pb::GetTenantRequest {
            tenant: sync.tenant_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .and_then(|tenant| tenant.maas360)
        .unwrap();
    connection.billing_id = "99999999".to_owned();
    let refused = tenants
        .set_maas360_connection(pb::SetMaas360ConnectionRequest {
            tenant: sync.tenant_id.clone(),
            maas360: Some(connection.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().to_lowercase().contains("billing"),
        "{}",
        refused.message()
    );
    connection.password = Some(dirsync_proto::common::v1::SecretReference {
        source: Some(dirsync_proto::common::v1::secret_reference::Source::Env(
            "DIRSYNC_TEST_SURELY_UNSET".to_owned(),
        )),
    });
    let missing = tenants
        .set_maas360_connection(pb::SetMaas360ConnectionRequest {
            tenant: sync.tenant_id.clone(),
            maas360: Some(connection),
        })
        .await
        .unwrap_err();
    assert!(
        missing.message().contains("DIRSYNC_TEST_SURELY_UNSET"),
        "{}",
        missing.message()
    );
    assert!(!missing.message().contains("emulator-password"));
    sync.stop().await;
}
