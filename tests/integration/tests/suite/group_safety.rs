//! No device loses an app or a policy because of a group name: an unmapped Entra group that
//! looks like a MaaS360 group carrying distributions is parked, never adopted or duplicated,
//! until an operator maps it or allows the import; a MaaS360 group that carries distributions
//! or was adopted is never deleted because Entra deleted its group; and the MaaS360 writes a
//! migration makes through the provisioner are idempotent and audited.

use std::time::Duration;

use dirsync_emulators::maas360::{Distribution, EmulatorConfig, Seed, SeedGroup, SeedUser};
use dirsync_proto::provisioner::v1 as pb;
use dirsync_tests::sync::{SyncStack, fast_reconcile};
use serde_json::json;
use tonic::Code;

const SETTLE: Duration = Duration::from_secs(60);

fn app(id: &str, name: &str) -> Distribution {
    Distribution {
        id: id.to_owned(),
        name: name.to_owned(),
        platform: "iOS".to_owned(),
        app_type: "2".to_owned(),
    }
}

fn policy(id: &str, name: &str, platform: &str) -> Distribution {
    Distribution {
        id: id.to_owned(),
        name: name.to_owned(),
        platform: platform.to_owned(),
        app_type: String::new(),
    }
}

/// MaaS360 before Entra: "Sales Team" carries an app and a policy for its two members;
/// "Legacy Empty" carries nothing.
fn legacy_maas360() -> Seed {
    let user = |name: &str| SeedUser {
        user_name: name.to_owned(),
        domain: "contoso.example".to_owned(),
        email: format!("{name}@contoso.example"),
        full_name: name.to_owned(),
        ..SeedUser::default()
    };
    Seed {
        users: vec![user("ana"), user("raj")],
        groups: vec![
            SeedGroup {
                group_identifier: Some("7001".to_owned()),
                name: "Sales Team".to_owned(),
                members: vec!["ana".to_owned(), "raj".to_owned()],
                apps: vec![app("com.contoso.crm", "CRM")],
                policies: vec![policy("pol-1", "Sales iOS", "iOS")],
                ..SeedGroup::default()
            },
            SeedGroup {
                group_identifier: Some("7002".to_owned()),
                name: "Legacy Empty".to_owned(),
                ..SeedGroup::default()
            },
        ],
    }
}

async fn start(seed: Seed) -> SyncStack {
    let config = EmulatorConfig {
        deletion_job_after: Some(Duration::ZERO),
        ..EmulatorConfig::for_tests()
    };
    SyncStack::start_on(config, Some(seed), None, fast_reconcile).await
}

async fn push_group(sync: &SyncStack, name: &str, external_id: &str) -> String {
    let reply = sync
        .scim
        .post(
            "/Groups",
            &json!({"displayName": name, "externalId": external_id}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn parked(sync: &SyncStack) -> Vec<pb::ParkedResource> {
    pb::work_service_client::WorkServiceClient::new(sync.stack.grpc.channel().await)
        .list_parked(pb::ListParkedRequest {
            tenant: sync.tenant_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .resources
}

async fn audit(sync: &SyncStack, resource_id: &str) -> Vec<pb::AuditEntry> {
    pb::work_service_client::WorkServiceClient::new(sync.stack.grpc.channel().await)
        .list_audit_entries(pb::ListAuditEntriesRequest {
            tenant: sync.tenant_id.clone(),
            resource_id: resource_id.to_owned(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

fn group_names(sync: &SyncStack) -> Vec<String> {
    let mut names: Vec<String> = sync
        .emulator
        .state()
        .groups
        .into_iter()
        .map(|group| group.name)
        .collect();
    names.sort();
    names
}

/// MaaS360 lists its groups only whole; a burst of new groups must not read the whole list
/// once per group (10k groups read 10k lists), yet look-alikes are still decided on a list read
/// for them.
#[tokio::test]
async fn a_burst_of_new_groups_reads_the_group_list_a_few_times_not_once_each() {
    let sync = start(legacy_maas360()).await;
    let mut pushed = Vec::new();
    for index in 0..16 {
        pushed.push(
            push_group(
                &sync,
                &format!("Project {index:02}"),
                &format!("oid-p{index}"),
            )
            .await,
        );
    }
    // Among them, one whose look-alike carries distributions: still parked.
    let similar = push_group(&sync, "SALES-TEAM", "oid-sales-3").await;
    let status = sync.wait_settled(SETTLE).await;
    assert_eq!(status.parked, 1, "{status:?}");
    assert!(
        parked(&sync)
            .await
            .iter()
            .any(|resource| resource.resource_id == similar)
    );
    let names = group_names(&sync);
    for index in 0..16 {
        let name = format!("Project {index:02}");
        assert_eq!(
            names.iter().filter(|held| **held == name).count(),
            1,
            "{name} once in {names:?}"
        );
    }
    let list_reads: u64 = sync
        .emulator
        .request_counts()
        .iter()
        .filter(|(route, _)| route.as_str() == "list_groups")
        .flat_map(|(_, by_status)| by_status.values())
        .sum();
    // One read for the burst (a second if it outlasts a list's freshness, or a worker's
    // read failed) and one for the look-alike's decision: far fewer than 17.
    assert!(
        (1..=6).contains(&list_reads),
        "{list_reads} group list reads for 17 new groups"
    );
}

#[tokio::test]
async fn an_unmapped_look_alike_is_parked_until_mapped_or_imported() {
    let sync = start(legacy_maas360()).await;
    let exact = push_group(&sync, "Sales Team", "oid-sales").await;
    let similar = push_group(&sync, "sales_team", "oid-sales-2").await;
    let harmless = push_group(&sync, "Legacy Empty", "oid-empty").await;
    let fresh = push_group(&sync, "Engineering", "oid-eng").await;
    let status = sync.wait_settled(SETTLE).await;
    assert_eq!(status.parked, 2, "{status:?}");

    // Neither adopted nor duplicated: MaaS360 holds its groups and one new one.
    assert_eq!(
        group_names(&sync),
        ["Engineering", "Legacy Empty", "Sales Team"]
    );
    let parked = parked(&sync).await;
    for id in [&exact, &similar] {
        let resource = parked
            .iter()
            .find(|resource| &resource.resource_id == id)
            .unwrap_or_else(|| panic!("{id} not parked: {parked:?}"));
        let reason = &resource.reason;
        assert!(
            reason.contains("\"Sales Team\" (groupID 7001)")
                && reason.contains("1 app and 1 policy")
                && reason.contains("dirsync mapping set")
                && reason.contains("--import-lookalike-groups"),
            "{reason}"
        );
    }
    // A group of its exact name that carries nothing was adopted, and it is recorded so.
    let state = sync.emulator.state();
    let sales = state.group("Sales Team").unwrap().clone();
    assert_eq!(sales.apps.len(), 1, "the legacy group is untouched");
    assert!(
        audit(&sync, &harmless)
            .await
            .iter()
            .any(|e| e.route == "list_groups")
    );
    assert!(
        audit(&sync, &fresh)
            .await
            .iter()
            .any(|e| e.route == "create_group")
    );

    // The operator allows Option 2 for this tenant: the parked groups go in at once, the exact
    // name adopting the existing group (its apps stay), the look-alike as a new group.
    let mut tenants =
        pb::tenant_service_client::TenantServiceClient::new(sync.stack.grpc.channel().await);
    let mut policy = tenants
        .get_tenant(pb::GetTenantRequest {
            tenant: sync.tenant_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .and_then(|tenant| tenant.policy)
        .unwrap();
    policy.lookalike_groups = pb::LookalikeGroupPolicy::Import as i32;
    let updated = tenants
        .set_tenant_policy(pb::SetTenantPolicyRequest {
            tenant: sync.tenant_id.clone(),
            policy: Some(policy),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        updated
            .tenant
            .and_then(|t| t.policy)
            .map(|p| p.lookalike_groups),
        Some(pb::LookalikeGroupPolicy::Import as i32)
    );
    let status = sync.wait_settled(SETTLE).await;
    assert_eq!(status.parked, 0, "{status:?}");
    assert_eq!(
        group_names(&sync),
        ["Engineering", "Legacy Empty", "Sales Team", "sales_team"]
    );
    let state = sync.emulator.state();
    assert_eq!(state.group("Sales Team").unwrap().group_identifier, "7001");
    sync.stop().await;
}

#[tokio::test]
async fn a_group_that_carries_distributions_or_was_adopted_is_never_deleted_for_entra() {
    let sync = start(legacy_maas360()).await;
    let mut tenants =
        pb::tenant_service_client::TenantServiceClient::new(sync.stack.grpc.channel().await);
    let mut policy = tenants
        .get_tenant(pb::GetTenantRequest {
            tenant: sync.tenant_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .and_then(|tenant| tenant.policy)
        .unwrap();
    policy.lookalike_groups = pb::LookalikeGroupPolicy::Import as i32;
    tenants
        .set_tenant_policy(pb::SetTenantPolicyRequest {
            tenant: sync.tenant_id.clone(),
            policy: Some(policy),
        })
        .await
        .unwrap();
    let adopted = push_group(&sync, "Sales Team", "oid-sales").await;
    let adopted_empty = push_group(&sync, "Legacy Empty", "oid-empty").await;
    let given_an_app = push_group(&sync, "Field", "oid-field").await;
    let plain = push_group(&sync, "Temporary", "oid-tmp").await;
    sync.wait_settled(SETTLE).await;

    // An admin distributes an app to "Field" in the portal after dirsync created it.
    let field_id = sync
        .emulator
        .state()
        .group("Field")
        .unwrap()
        .group_identifier
        .clone();
    let writes = pb::maas360_group_write_service_client::Maas360GroupWriteServiceClient::new(
        sync.stack.grpc.channel().await,
    );
    writes
        .clone()
        .add_maas360_group_distribution(pb::AddMaas360GroupDistributionRequest {
            tenant: sync.tenant_id.clone(),
            group_id: field_id,
            kind: pb::DistributionKind::App as i32,
            distribution: Some(pb::Distribution {
                id: "com.contoso.field".to_owned(),
                name: "Field App".to_owned(),
                platform: "iOS".to_owned(),
                app_type: "2".to_owned(),
            }),
            operation_id: "portal".to_owned(),
        })
        .await
        .unwrap();

    for id in [&adopted, &adopted_empty, &given_an_app, &plain] {
        assert_eq!(sync.scim.delete(&format!("/Groups/{id}")).await.status, 204);
    }
    let status = sync.wait_settled(SETTLE).await;
    assert_eq!(status.parked, 0, "{status:?}");
    // Only the group dirsync made and nobody gave anything to is gone.
    assert_eq!(group_names(&sync), ["Field", "Legacy Empty", "Sales Team"]);
    let state = sync.emulator.state();
    assert_eq!(state.group("Sales Team").unwrap().apps.len(), 1);
    for (id, why) in [
        (&adopted, "before dirsync adopted it"),
        (&adopted_empty, "before dirsync adopted it"),
        (&given_an_app, "carries 1 app and 0 policy"),
    ] {
        let entries = audit(&sync, id).await;
        let kept = entries
            .iter()
            .find(|entry| entry.route == "unbind_group")
            .unwrap_or_else(|| panic!("no unbind in {entries:?}"));
        assert_eq!(kept.outcome, "kept");
        assert!(kept.error.contains(why), "{}", kept.error);
        assert!(!entries.iter().any(|entry| entry.route == "delete_group"));
    }
    assert!(
        audit(&sync, &plain)
            .await
            .iter()
            .any(|entry| entry.route == "delete_group" && entry.outcome == "ok")
    );
    sync.stop().await;
}

#[tokio::test]
async fn migration_writes_are_idempotent_validated_and_audited() {
    let sync = start(legacy_maas360()).await;
    let mut writes = pb::maas360_group_write_service_client::Maas360GroupWriteServiceClient::new(
        sync.stack.grpc.channel().await,
    );
    let tenant = sync.tenant_id.clone();
    let create = |name: &str| pb::CreateMaas360UserGroupRequest {
        tenant: tenant.clone(),
        name: name.to_owned(),
        operation_id: "op-1".to_owned(),
    };
    let first = writes
        .create_maas360_user_group(create("Sales (Entra)"))
        .await
        .unwrap()
        .into_inner();
    let again = writes
        .create_maas360_user_group(create("sales (entra)"))
        .await
        .unwrap()
        .into_inner();
    assert!(first.created && !again.created);
    let copy = first.group.unwrap().group_id;
    assert_eq!(again.group.unwrap().group_id, copy);

    let source = sync.emulator.state().group("Sales Team").unwrap().clone();
    for round in 0..2 {
        for app in &source.apps {
            let added = writes
                .add_maas360_group_distribution(pb::AddMaas360GroupDistributionRequest {
                    tenant: tenant.clone(),
                    group_id: copy.clone(),
                    kind: pb::DistributionKind::App as i32,
                    distribution: Some(pb::Distribution {
                        id: app.id.clone(),
                        name: app.name.clone(),
                        platform: app.platform.clone(),
                        app_type: app.app_type.clone(),
                    }),
                    operation_id: "op-1".to_owned(),
                })
                .await
                .unwrap()
                .into_inner()
                .added;
            assert_eq!(added, round == 0);
        }
        for policy in &source.policies {
            let added = writes
                .add_maas360_group_distribution(pb::AddMaas360GroupDistributionRequest {
                    tenant: tenant.clone(),
                    group_id: copy.clone(),
                    kind: pb::DistributionKind::Policy as i32,
                    distribution: Some(pb::Distribution {
                        id: policy.id.clone(),
                        name: policy.name.clone(),
                        platform: policy.platform.clone(),
                        app_type: String::new(),
                    }),
                    operation_id: "op-1".to_owned(),
                })
                .await
                .unwrap()
                .into_inner()
                .added;
            assert_eq!(added, round == 0);
        }
    }
    let state = sync.emulator.state();
    let copied = state.group("Sales (Entra)").unwrap();
    assert_eq!(copied.apps, source.apps);
    assert_eq!(copied.policies, source.policies);
    let counts = sync.emulator.request_counts();
    let calls = |route: &str| -> u64 {
        counts
            .iter()
            .filter(|(name, _)| name.contains(route))
            .flat_map(|(_, by_status)| by_status.values())
            .sum()
    };
    assert_eq!(calls("create_user_group"), 1);
    assert_eq!(calls("distribute_app"), 1);
    assert_eq!(calls("change_group_policy"), 1);

    // Pruning: the members leave once; a repeat removes nobody.
    let members: Vec<String> = state.members("7001");
    let remove = pb::RemoveMaas360GroupUsersRequest {
        tenant: tenant.clone(),
        group_id: "7001".to_owned(),
        user_ids: members.clone(),
        operation_id: "op-1".to_owned(),
    };
    assert_eq!(
        writes
            .remove_maas360_group_users(remove.clone())
            .await
            .unwrap()
            .into_inner()
            .removed,
        2
    );
    assert_eq!(
        writes
            .remove_maas360_group_users(remove)
            .await
            .unwrap()
            .into_inner()
            .removed,
        0
    );
    assert!(sync.emulator.state().members("7001").is_empty());

    // Every write is audited under the operation.
    let entries = audit(&sync, "op-1").await;
    assert!(
        entries
            .iter()
            .any(|e| e.route == "create_user_group" && e.outcome == "ok")
    );
    assert!(
        entries
            .iter()
            .any(|e| e.route == "distribute_app" && e.outcome == "ok")
    );
    assert!(
        entries
            .iter()
            .any(|e| e.route == "distribute_app" && e.outcome == "already_exists")
    );
    assert!(
        entries
            .iter()
            .any(|e| e.route == "remove_groups_from_user" && e.outcome == "ok")
    );

    // Bad requests name the field; an unknown group is NOT_FOUND.
    let refused = writes
        .add_maas360_group_distribution(pb::AddMaas360GroupDistributionRequest {
            tenant: tenant.clone(),
            group_id: copy.clone(),
            kind: pb::DistributionKind::App as i32,
            distribution: Some(pb::Distribution {
                id: "com.contoso.x".to_owned(),
                ..Default::default()
            }),
            operation_id: "op-1".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("distribution.app_type"),
        "{}",
        refused.message()
    );
    let missing = writes
        .add_maas360_group_distribution(pb::AddMaas360GroupDistributionRequest {
            tenant: tenant.clone(),
            group_id: "999999".to_owned(),
            kind: pb::DistributionKind::Policy as i32,
            distribution: Some(pb::Distribution {
                name: "Sales iOS".to_owned(),
                platform: "iOS".to_owned(),
                ..Default::default()
            }),
            operation_id: "op-1".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let unnamed = writes
        .create_maas360_user_group(create("  "))
        .await
        .unwrap_err();
    assert_eq!(unnamed.code(), Code::InvalidArgument);
    sync.stop().await;
}
