//! IBM's "Option 1" end to end (docs/maas360.md §8, issue 13 point 6): MaaS360 holds user groups
//! that carry app and policy distributions before Entra does. The mapping service checks,
//! proposes, maps, plans (writing nothing), applies (in the background, resumably, nothing twice)
//! and verifies, reading Entra through the directory-reader from the Graph emulator and MaaS360
//! through the provisioner from the MaaS360 emulator; Entra's groups then write, by SCIM push or
//! by pull, into the groups the mappings name, and no device loses a distribution the plan did
//! not list. Option 2 (import) is what an empty MaaS360 gets. The provisioner's own rules for
//! unmapped look-alikes and deleted groups are in `group_safety`.
//!
//! Every scenario has its own emulators, tenant and database. Directory used throughout:
//! Entra holds ana, raj, lee, mia and zoe (`@contoso.example`), "Sales Team" = {ana, raj, lee}
//! and "Engineering" = {mia, zoe}; MaaS360 holds the local users ana, raj, old.timer and kiosk
//! (each with an iPhone), a sales group (groupID 7001, named per scenario) = {ana, raj,
//! old.timer} carrying the scenario's apps and policies, "Lobby Kiosks" (7002) = {kiosk}
//! carrying an app, and "Legacy Empty" (7003) carrying nothing.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dirsync_emulators::graph::{
    GraphEmulatorConfig, GraphEmulatorHandle, GraphSeed, SeedGroup as EntraGroup,
    SeedUser as EntraUser,
};
use dirsync_emulators::maas360::{
    Device, Distribution, EmulatorConfig, Faults, GroupDump, Seed, SeedGroup, SeedUser, StateDump,
};
use dirsync_proto::directory::v1 as directory;
use dirsync_proto::errors::ErrorReason;
use dirsync_proto::mapping::v1 as pb;
use dirsync_proto::mapping::v1::mapping_service_client::MappingServiceClient;
use dirsync_proto::provisioner::v1 as provisioner;
use dirsync_tests::pull::PullStack;
use dirsync_tests::sync::SyncStack;
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;

const SETTLE: Duration = Duration::from_secs(60);
/// How long an apply of these few groups may take.
const APPLY: Duration = Duration::from_secs(60);
const DOMAIN: &str = "contoso.example";

const ANA: &str = "00000000-0000-4000-8000-000000000101";
const RAJ: &str = "00000000-0000-4000-8000-000000000102";
const LEE: &str = "00000000-0000-4000-8000-000000000103";
const MIA: &str = "00000000-0000-4000-8000-000000000104";
const ZOE: &str = "00000000-0000-4000-8000-000000000105";
const SALES: &str = "00000000-0000-4000-8000-0000000000a1";
const ENGINEERING: &str = "00000000-0000-4000-8000-0000000000a2";

const SALES_GROUP: &str = "7001";
const KIOSK_GROUP: &str = "7002";
const EMPTY_GROUP: &str = "7003";
const EVERYONE_GROUP: &str = "7004";

// ---------------------------------------------------------------------------
// The directories on both sides
// ---------------------------------------------------------------------------

fn upn(name: &str) -> String {
    format!("{name}@{DOMAIN}")
}

fn entra_users() -> [(&'static str, &'static str); 5] {
    [
        (ANA, "ana"),
        (RAJ, "raj"),
        (LEE, "lee"),
        (MIA, "mia"),
        (ZOE, "zoe"),
    ]
}

/// Entra: five enabled users, "Sales Team" = {ana, raj, lee}, "Engineering" = {mia, zoe}.
fn entra() -> GraphSeed {
    let users = entra_users()
        .into_iter()
        .map(|(id, name)| EntraUser {
            id: id.to_owned(),
            user_principal_name: upn(name),
            display_name: Some(format!("{name} Example")),
            given_name: Some(name.to_owned()),
            surname: Some("Example".to_owned()),
            mail: Some(upn(name)),
            account_enabled: true,
            ..EntraUser::default()
        })
        .collect();
    let group = |id: &str, name: &str, members: &[&str]| EntraGroup {
        id: id.to_owned(),
        display_name: name.to_owned(),
        description: None,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
    };
    GraphSeed {
        users,
        groups: vec![
            group(SALES, "Sales Team", &[ANA, RAJ, LEE]),
            group(ENGINEERING, "Engineering", &[MIA, ZOE]),
        ],
    }
}

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

fn local_user(name: &str, device: usize) -> SeedUser {
    SeedUser {
        user_name: name.to_owned(),
        domain: DOMAIN.to_owned(),
        email: upn(name),
        full_name: format!("{name} (local)"),
        devices: vec![Device {
            csn: format!("OPTION1-IPHONE-{device:03}"),
            platform: "iOS".to_owned(),
            active: true,
        }],
        ..SeedUser::default()
    }
}

/// MaaS360 before Entra: the sales group (7001) named `sales_name` = {ana, raj, old.timer}
/// carrying `apps` and `policies`, "Lobby Kiosks" (7002) = {kiosk} with a kiosk app, "Legacy
/// Empty" (7003) with nothing, and `extra` groups.
fn maas360(
    sales_name: &str,
    apps: &[Distribution],
    policies: &[Distribution],
    extra: Vec<SeedGroup>,
) -> Seed {
    let mut groups = vec![
        SeedGroup {
            group_identifier: Some(SALES_GROUP.to_owned()),
            name: sales_name.to_owned(),
            members: vec!["ana".to_owned(), "raj".to_owned(), "old.timer".to_owned()],
            apps: apps.to_vec(),
            policies: policies.to_vec(),
            ..SeedGroup::default()
        },
        SeedGroup {
            group_identifier: Some(KIOSK_GROUP.to_owned()),
            name: "Lobby Kiosks".to_owned(),
            members: vec!["kiosk".to_owned()],
            apps: vec![app("com.contoso.kiosk", "Kiosk Browser")],
            ..SeedGroup::default()
        },
        SeedGroup {
            group_identifier: Some(EMPTY_GROUP.to_owned()),
            name: "Legacy Empty".to_owned(),
            ..SeedGroup::default()
        },
    ];
    groups.extend(extra);
    Seed {
        users: ["ana", "raj", "old.timer", "kiosk"]
            .iter()
            .enumerate()
            .map(|(index, name)| local_user(name, index))
            .collect(),
        groups,
    }
}

fn sales_apps() -> Vec<Distribution> {
    vec![app("com.contoso.crm", "CRM")]
}

fn sales_policies() -> Vec<Distribution> {
    vec![policy("pol-sales-ios", "Sales iOS", "iOS")]
}

// ---------------------------------------------------------------------------
// The stack: MaaS360 seeded, Entra in the Graph emulator, the tenant connected to both
// ---------------------------------------------------------------------------

struct Option1 {
    sync: SyncStack,
    graph: GraphEmulatorHandle,
    secret_file: PathBuf,
}

impl Option1 {
    /// A MaaS360 emulator holding `seed`, a Graph emulator holding [`entra`], and a tenant in
    /// `mode` with both connections (the mapping service reads Entra through the
    /// directory-reader whatever the mode).
    async fn start(seed: Option<Seed>, mode: provisioner::TenantMode) -> Self {
        let graph = dirsync_emulators::graph::start(GraphEmulatorConfig::for_tests(), entra())
            .await
            .unwrap_or_else(|e| panic!("Graph emulator: {e}"));
        let emulator_config = EmulatorConfig {
            deletion_job_after: Some(Duration::ZERO),
            ..EmulatorConfig::for_tests()
        };
        let sync = SyncStack::start_on(emulator_config, seed, None, |_| {}).await;
        let secret_file = std::env::temp_dir().join(format!(
            "dirsync-option1-secret-{}-{}",
            std::process::id(),
            graph.addr().port()
        ));
        std::fs::write(&secret_file, &graph.config().client_secret)
            .unwrap_or_else(|e| panic!("writing {}: {e}", secret_file.display()));
        let stack = Self {
            sync,
            graph,
            secret_file,
        };
        if mode != provisioner::TenantMode::Push {
            provisioner::tenant_service_client::TenantServiceClient::new(stack.channel().await)
                .set_tenant_mode(provisioner::SetTenantModeRequest {
                    tenant: stack.tenant(),
                    mode: mode as i32,
                })
                .await
                .unwrap_or_else(|e| panic!("SetTenantMode: {e:?}"));
        }
        directory::directory_reader_service_client::DirectoryReaderServiceClient::new(
            stack.channel().await,
        )
        .set_entra_connection(directory::SetEntraConnectionRequest {
            tenant: stack.tenant(),
            connection: Some(dirsync_tests::pull::connection(
                &stack.graph,
                &stack.secret_file,
            )),
        })
        .await
        .unwrap_or_else(|e| panic!("SetEntraConnection: {e:?}"));
        stack
    }

    fn tenant(&self) -> String {
        self.sync.tenant_id.clone()
    }

    async fn channel(&self) -> Channel {
        self.sync.stack.grpc.channel().await
    }

    async fn mapping(&self) -> MappingServiceClient<Channel> {
        MappingServiceClient::new(self.channel().await)
    }

    async fn check(&self) -> pb::CheckMigrationResponse {
        check(self.mapping().await, &self.tenant()).await
    }

    async fn propose(&self) -> Vec<pb::Proposal> {
        propose(self.mapping().await, &self.tenant()).await
    }

    async fn try_map(
        &self,
        entra_group: pb::GroupKey,
        maas360_group: pb::GroupKey,
        mode: pb::MappingMode,
        prune: bool,
        state: pb::MappingState,
    ) -> Result<pb::Mapping, tonic::Status> {
        let response = self
            .mapping()
            .await
            .create_mapping(pb::CreateMappingRequest {
                tenant: self.tenant(),
                entra_group: Some(entra_group),
                maas360_group: Some(maas360_group),
                mode: mode as i32,
                prune,
                state: state as i32,
            })
            .await?
            .into_inner();
        Ok(response
            .mapping
            .unwrap_or_else(|| panic!("CreateMapping answered without a mapping")))
    }

    /// A confirmed mapping (state left unspecified: CONFIRMED is the default).
    async fn map(
        &self,
        entra_group: pb::GroupKey,
        maas360_group: pb::GroupKey,
        mode: pb::MappingMode,
        prune: bool,
    ) -> pb::Mapping {
        let mapping = self
            .try_map(
                entra_group.clone(),
                maas360_group.clone(),
                mode,
                prune,
                pb::MappingState::Unspecified,
            )
            .await
            .unwrap_or_else(|e| {
                panic!("CreateMapping {entra_group:?} -> {maas360_group:?}: {e:?}")
            });
        assert_eq!(
            mapping.state,
            pb::MappingState::Confirmed as i32,
            "a mapping created without a state is confirmed: {mapping:?}"
        );
        mapping
    }

    async fn get_mapping(&self, mapping_id: &str) -> pb::Mapping {
        self.mapping()
            .await
            .get_mapping(pb::GetMappingRequest {
                tenant: self.tenant(),
                mapping_id: mapping_id.to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("GetMapping {mapping_id}: {e:?}"))
            .into_inner()
            .mapping
            .unwrap_or_else(|| panic!("GetMapping {mapping_id} answered without a mapping"))
    }

    async fn list_mappings(&self) -> Vec<pb::Mapping> {
        self.mapping()
            .await
            .list_mappings(pb::ListMappingsRequest {
                tenant: self.tenant(),
                page_size: 1000,
                page_token: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("ListMappings: {e:?}"))
            .into_inner()
            .mappings
    }

    async fn plan(&self) -> pb::MigrationPlan {
        self.mapping()
            .await
            .plan_migration(pb::PlanMigrationRequest {
                tenant: self.tenant(),
            })
            .await
            .unwrap_or_else(|e| panic!("PlanMigration: {e:?}"))
            .into_inner()
            .plan
            .unwrap_or_else(|| panic!("PlanMigration answered without a plan"))
    }

    async fn try_apply(&self, plan_id: &str) -> Result<pb::MigrationOperation, tonic::Status> {
        let response = self
            .mapping()
            .await
            .apply_migration(pb::ApplyMigrationRequest {
                tenant: self.tenant(),
                plan_id: plan_id.to_owned(),
            })
            .await?
            .into_inner();
        Ok(response
            .operation
            .unwrap_or_else(|| panic!("ApplyMigration answered without an operation")))
    }

    async fn operation(&self, operation_id: &str) -> pb::MigrationOperation {
        self.mapping()
            .await
            .get_migration_operation(pb::GetMigrationOperationRequest {
                tenant: self.tenant(),
                operation_id: operation_id.to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("GetMigrationOperation {operation_id:?}: {e:?}"))
            .into_inner()
            .operation
            .unwrap_or_else(|| panic!("GetMigrationOperation answered without an operation"))
    }

    /// Polls the operation until it is no longer running.
    async fn finished(&self, operation_id: &str) -> pb::MigrationOperation {
        let deadline = Instant::now() + APPLY;
        loop {
            let operation = self.operation(operation_id).await;
            if operation.state != pb::OperationState::Running as i32 {
                return operation;
            }
            assert!(
                Instant::now() < deadline,
                "the migration did not finish within {APPLY:?}: {operation:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Applies `plan`, which must start at once and succeed.
    async fn apply(&self, plan: &pb::MigrationPlan) -> pb::MigrationOperation {
        let started = self
            .try_apply(&plan.plan_id)
            .await
            .unwrap_or_else(|e| panic!("ApplyMigration {}: {e:?}", plan.plan_id));
        assert_eq!(
            started.state,
            pb::OperationState::Running as i32,
            "ApplyMigration answers at once with a running operation: {started:?}"
        );
        assert_eq!(started.plan_id, plan.plan_id, "{started:?}");
        assert!(!started.operation_id.is_empty(), "{started:?}");
        let done = self.finished(&started.operation_id).await;
        assert_eq!(
            done.state,
            pb::OperationState::Succeeded as i32,
            "the migration failed: {:?} ({done:?})",
            done.last_error
        );
        assert_eq!(done.operation_id, started.operation_id);
        assert!(
            done.steps_done >= done.steps_total,
            "a succeeded operation has done its steps: {done:?}"
        );
        done
    }

    async fn verify(&self) -> pb::VerifyMigrationResponse {
        self.mapping()
            .await
            .verify_migration(pb::VerifyMigrationRequest {
                tenant: self.tenant(),
                operation_id: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("VerifyMigration: {e:?}"))
            .into_inner()
    }

    async fn resolve(&self, entra_group_id: &str, name: &str) -> pb::ResolveGroupResponse {
        resolve(self.mapping().await, &self.tenant(), entra_group_id, name).await
    }

    /// A full pull sync (past the deletion guard), which must be applied.
    async fn pull(&self) -> directory::SyncPlan {
        let response =
            directory::directory_reader_service_client::DirectoryReaderServiceClient::new(
                self.channel().await,
            )
            .sync_tenant(directory::SyncTenantRequest {
                tenant: self.tenant(),
                full: true,
                force: true,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("SyncTenant: {e:?}"))
            .into_inner();
        assert!(response.applied, "the sync was not applied: {response:?}");
        response.plan.unwrap_or_default()
    }

    async fn parked(&self) -> Vec<provisioner::ParkedResource> {
        provisioner::work_service_client::WorkServiceClient::new(self.channel().await)
            .list_parked(provisioner::ListParkedRequest {
                tenant: self.tenant(),
                page_size: 1000,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("ListParked: {e:?}"))
            .into_inner()
            .resources
    }

    fn state(&self) -> StateDump {
        self.sync.emulator.state()
    }

    /// Member `username@domain`s of a MaaS360 group, as the emulator holds them.
    fn members(&self, group_id: &str) -> BTreeSet<String> {
        members_of(&self.state(), group_id)
    }

    /// MaaS360's group names, sorted.
    fn group_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.state().groups.into_iter().map(|g| g.name).collect();
        names.sort();
        names
    }

    /// Calls MaaS360 answered on routes whose name contains `route`.
    fn calls(&self, route: &str) -> u64 {
        self.sync
            .emulator
            .request_counts()
            .iter()
            .filter(|(name, _)| name.contains(route))
            .flat_map(|(_, by_status)| by_status.values())
            .sum()
    }

    async fn stop(self) {
        let _ = std::fs::remove_file(&self.secret_file);
        self.sync.stop().await;
        self.graph.stop().await;
    }
}

async fn check(
    mut client: MappingServiceClient<Channel>,
    tenant: &str,
) -> pb::CheckMigrationResponse {
    client
        .check_migration(pb::CheckMigrationRequest {
            tenant: tenant.to_owned(),
        })
        .await
        .unwrap_or_else(|e| panic!("CheckMigration: {e:?}"))
        .into_inner()
}

async fn propose(mut client: MappingServiceClient<Channel>, tenant: &str) -> Vec<pb::Proposal> {
    client
        .propose_mappings(pb::ProposeMappingsRequest {
            tenant: tenant.to_owned(),
            max_candidates: 0,
        })
        .await
        .unwrap_or_else(|e| panic!("ProposeMappings: {e:?}"))
        .into_inner()
        .proposals
}

async fn resolve(
    mut client: MappingServiceClient<Channel>,
    tenant: &str,
    entra_group_id: &str,
    name: &str,
) -> pb::ResolveGroupResponse {
    client
        .resolve_group(pb::ResolveGroupRequest {
            tenant: tenant.to_owned(),
            entra_group_id: entra_group_id.to_owned(),
            display_name: name.to_owned(),
        })
        .await
        .unwrap_or_else(|e| panic!("ResolveGroup {entra_group_id} {name:?}: {e:?}"))
        .into_inner()
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

fn by_id(id: &str) -> pb::GroupKey {
    pb::GroupKey {
        key: Some(pb::group_key::Key::Id(id.to_owned())),
    }
}

fn by_name(name: &str) -> pb::GroupKey {
    pb::GroupKey {
        key: Some(pb::group_key::Key::Name(name.to_owned())),
    }
}

fn by_id_or_name(value: &str) -> pb::GroupKey {
    pb::GroupKey {
        key: Some(pb::group_key::Key::IdOrName(value.to_owned())),
    }
}

fn members_of(state: &StateDump, group_id: &str) -> BTreeSet<String> {
    state
        .members(group_id)
        .iter()
        .map(|id| {
            state
                .users
                .iter()
                .find(|user| &user.user_identifier == id)
                .map(|user| format!("{}@{}", user.user_name, user.domain).to_lowercase())
                .unwrap_or_else(|| format!("<no user {id}>"))
        })
        .collect()
}

fn names(people: &[&str]) -> BTreeSet<String> {
    people.iter().map(|name| upn(name)).collect()
}

/// The `user`s of planned members, lower-cased.
fn planned(members: &[pb::PlannedMember]) -> BTreeSet<String> {
    members.iter().map(|m| m.user.to_lowercase()).collect()
}

/// What a group carries, comparable whatever the order: apps by id, policies by name and
/// platform (what MaaS360 sets a group's policies by).
fn carried(group: &GroupDump) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    (
        group.apps.iter().map(|a| a.id.clone()).collect(),
        group
            .policies
            .iter()
            .map(|p| (p.name.clone(), p.platform.clone()))
            .collect(),
    )
}

fn seeded(
    apps: &[Distribution],
    policies: &[Distribution],
) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    (
        apps.iter().map(|a| a.id.clone()).collect(),
        policies
            .iter()
            .map(|p| (p.name.clone(), p.platform.clone()))
            .collect(),
    )
}

fn group_by_id<'s>(state: &'s StateDump, id: &str) -> &'s GroupDump {
    state
        .groups
        .iter()
        .find(|group| group.group_identifier == id)
        .unwrap_or_else(|| panic!("MaaS360 lacks group {id}: {:?}", state.groups))
}

fn groups_named<'s>(state: &'s StateDump, name: &str) -> Vec<&'s GroupDump> {
    state
        .groups
        .iter()
        .filter(|group| group.name.eq_ignore_ascii_case(name))
        .collect()
}

/// What reaches a user's devices, as the emulator computes it (`app:<id>`, `policy:<id>`).
fn distributions_of(state: &StateDump, name: &str) -> Vec<String> {
    state
        .user(name, DOMAIN)
        .unwrap_or_else(|| panic!("MaaS360 lacks user {name}@{DOMAIN}"))
        .distributions
        .clone()
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-6
}

fn proposal<'p>(proposals: &'p [pb::Proposal], group_id: &str) -> &'p pb::Proposal {
    proposals
        .iter()
        .find(|p| p.maas360_group_id == group_id)
        .unwrap_or_else(|| panic!("no proposal for MaaS360 group {group_id}: {proposals:#?}"))
}

fn only_group(plan: &pb::MigrationPlan) -> &pb::GroupPlan {
    assert_eq!(
        plan.groups.len(),
        1,
        "one mapping, one group plan: {plan:#?}"
    );
    &plan.groups[0]
}

fn refusal(status: &tonic::Status) -> (Code, Option<ErrorReason>) {
    (status.code(), dirsync_proto::errors::read(status).reason)
}

async fn push_user(sync: &SyncStack, name: &str) -> String {
    let reply = sync
        .scim
        .post(
            "/Users",
            &json!({"userName": upn(name), "externalId": name, "active": true,
                    "displayName": format!("{name} Example"),
                    "emails": [{"type": "work", "primary": true, "value": upn(name)}]}),
        )
        .await;
    assert_eq!(reply.status, 201, "creating user {name}: {}", reply.raw);
    reply.body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {}", reply.raw))
        .to_owned()
}

/// As Entra does: the group created empty with its object id as externalId, then filled.
async fn push_group(sync: &SyncStack, name: &str, object_id: &str, members: &[&String]) -> String {
    let reply = sync
        .scim
        .post(
            "/Groups",
            &json!({"displayName": name, "externalId": object_id}),
        )
        .await;
    assert_eq!(reply.status, 201, "creating group {name}: {}", reply.raw);
    let id = reply.body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {}", reply.raw))
        .to_owned();
    let add = json!({"Operations": [{"op": "Add", "path": "members",
        "value": members.iter().map(|m| json!({"value": m})).collect::<Vec<Value>>()}]});
    let reply = sync.scim.patch(&format!("/Groups/{id}"), &add).await;
    assert_eq!(reply.status, 204, "filling group {name}: {}", reply.raw);
    id
}

/// Waits until `done` holds of MaaS360's state.
async fn until_maas360(
    stack: &Option1,
    what: &str,
    done: impl Fn(&StateDump) -> bool,
) -> StateDump {
    let deadline = Instant::now() + SETTLE;
    loop {
        let state = stack.state();
        if done(&state) {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "MaaS360 never reached: {what}; it holds {:?} with members {:?}",
            state.groups,
            state.memberships
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// Adopt: the Entra group writes its members into the existing MaaS360 group (a look-alike
/// name), whose apps and policies stay where they are; its member Entra lacks stays, as a
/// legacy member; no group of the Entra name is created. Provisioned by SCIM push.
#[tokio::test]
async fn option1_adopt_end_to_end_keeps_the_group_its_distributions_and_legacy_member() {
    let (apps, policies) = (sales_apps(), sales_policies());
    let stack = Option1::start(
        Some(maas360("SALES-TEAM", &apps, &policies, Vec::new())),
        provisioner::TenantMode::Push,
    )
    .await;

    // Check: a group with distributions that an Entra group resembles: migrate first.
    let check = stack.check().await;
    assert_eq!(
        check.recommendation,
        pb::MigrationOption::MigrateExisting as i32,
        "{check:#?}"
    );
    assert!(
        check.reason.trim().len() > 10,
        "the reason is a sentence: {check:?}"
    );
    assert_eq!(
        (
            check.maas360_user_groups,
            check.groups_with_distributions,
            check.entra_groups
        ),
        (3, 2, 2),
        "{check:#?}"
    );
    let resembled: Vec<&str> = check
        .resembled
        .iter()
        .map(|p| p.maas360_group_id.as_str())
        .collect();
    assert_eq!(
        resembled,
        [SALES_GROUP],
        "only the sales group resembles one: {check:#?}"
    );
    assert_eq!(
        check.resembled[0]
            .candidates
            .first()
            .map(|c| c.entra_group_id.as_str()),
        Some(SALES),
        "{check:#?}"
    );

    // Propose: every group that carries distributions, candidates best first.
    let proposals = stack.propose().await;
    let proposed: BTreeSet<&str> = proposals
        .iter()
        .map(|p| p.maas360_group_id.as_str())
        .collect();
    assert_eq!(
        proposed,
        BTreeSet::from([SALES_GROUP, KIOSK_GROUP]),
        "\"Legacy Empty\" carries nothing: {proposals:#?}"
    );
    let sales = proposal(&proposals, SALES_GROUP);
    assert_eq!(sales.maas360_group_name, "SALES-TEAM");
    assert_eq!(sales.member_count, 3, "{sales:#?}");
    assert_eq!(sales.distributions.len(), 2, "{sales:#?}");
    assert!(sales.mapping_id.is_empty(), "{sales:#?}");
    let best = sales
        .candidates
        .first()
        .unwrap_or_else(|| panic!("no candidate for SALES-TEAM: {sales:#?}"));
    assert_eq!(
        (best.entra_group_id.as_str(), best.entra_group_name.as_str()),
        (SALES, "Sales Team"),
        "{sales:#?}"
    );
    // Names equal ignoring case and punctuation; 2 of the 4 people in either group are in
    // both (ana, raj; old.timer only in MaaS360, lee only in Entra).
    assert!(close(best.name_similarity, 1.0), "{best:?}");
    assert_eq!(
        (best.matched_members, best.entra_members),
        (2, 3),
        "{best:?}"
    );
    assert!(close(best.member_overlap, 0.5), "{best:?}");
    assert!(close(best.score, 0.6 + 0.4 * 0.5), "{best:?}");
    assert!(
        sales
            .candidates
            .windows(2)
            .all(|pair| pair[0].score >= pair[1].score),
        "best first: {sales:#?}"
    );
    let kiosks = proposal(&proposals, KIOSK_GROUP);
    assert!(
        kiosks.candidates.iter().all(|c| c.score < 0.5),
        "nothing in Entra resembles the kiosks: {kiosks:#?}"
    );

    // Map: the Entra group by name, the MaaS360 group by what a person types.
    let mapping = stack
        .map(
            by_name("Sales Team"),
            by_id_or_name(SALES_GROUP),
            pb::MappingMode::Adopt,
            false,
        )
        .await;
    assert_eq!(
        (
            mapping.entra_group_id.as_str(),
            mapping.maas360_group_id.as_str(),
            mapping.maas360_group_name.as_str(),
            mapping.mode,
            mapping.prune
        ),
        (
            SALES,
            SALES_GROUP,
            "SALES-TEAM",
            pb::MappingMode::Adopt as i32,
            false
        ),
        "{mapping:#?}"
    );
    let pending = stack.resolve(SALES, "Sales Team").await;
    assert_eq!(
        pending.resolution,
        pb::Resolution::Pending as i32,
        "mapped, not applied yet: {pending:?}"
    );
    assert_eq!(
        pending.mapping.as_ref().map(|m| m.mapping_id.as_str()),
        Some(mapping.mapping_id.as_str())
    );
    let unmapped = stack.resolve(ENGINEERING, "Engineering").await;
    assert_eq!(
        unmapped.resolution,
        pb::Resolution::Unmapped as i32,
        "{unmapped:?}"
    );

    // Plan: writes nothing, and says who joins, stays and is kept as a legacy member.
    let before = stack.state();
    let plan = stack.plan().await;
    assert_eq!(stack.state(), before, "planning wrote to MaaS360");
    assert_eq!(
        stack.get_mapping(&mapping.mapping_id).await.state,
        pb::MappingState::Confirmed as i32,
        "planning changed the mapping"
    );
    assert!(!plan.plan_id.is_empty(), "{plan:#?}");
    assert_eq!(
        stack.plan().await.plan_id,
        plan.plan_id,
        "nothing changed, so the plan id is the same"
    );
    let group = only_group(&plan);
    assert_eq!(group.mapping_id, mapping.mapping_id);
    assert_eq!(group.mode, pb::MappingMode::Adopt as i32);
    assert_eq!(
        group.target_group_name, "SALES-TEAM",
        "adopt writes into the group itself"
    );
    assert_eq!(group.distributions.len(), 2, "{group:#?}");
    assert_eq!(planned(&group.joining), names(&["lee"]), "{group:#?}");
    assert_eq!(
        planned(&group.staying),
        names(&["ana", "raj"]),
        "{group:#?}"
    );
    assert_eq!(planned(&group.legacy), names(&["old.timer"]), "{group:#?}");
    assert!(
        group.leaving.is_empty(),
        "no prune, nobody leaves: {group:#?}"
    );
    let lee = &group.joining[0];
    assert_eq!(
        (lee.entra_user_id.as_str(), lee.maas360_user_id.as_str()),
        (LEE, ""),
        "lee is not in MaaS360 yet: {lee:?}"
    );
    let legacy = &group.legacy[0];
    assert!(
        legacy.entra_user_id.is_empty() && !legacy.maas360_user_id.is_empty(),
        "{legacy:?}"
    );
    assert!(plan.losses.is_empty(), "nobody loses anything: {plan:#?}");
    assert!(
        plan.unmatched_members
            .iter()
            .any(|m| m.user.eq_ignore_ascii_case(&upn("old.timer"))),
        "old.timer matches no Entra user: {plan:#?}"
    );

    // Apply.
    let names_before = stack.group_names();
    let operation = stack.apply(&plan).await;
    let applied = stack.get_mapping(&mapping.mapping_id).await;
    assert_eq!(
        applied.state,
        pb::MappingState::Applied as i32,
        "{applied:#?}"
    );
    assert_eq!(applied.target_group_id, SALES_GROUP, "{applied:#?}");
    assert_eq!(applied.operation_id, operation.operation_id, "{applied:#?}");
    assert!(
        operation
            .mappings
            .iter()
            .any(|m| m.mapping_id == mapping.mapping_id && m.target_group_id == SALES_GROUP),
        "{operation:#?}"
    );
    let mapped = stack.resolve(SALES, "Sales Team").await;
    assert_eq!(
        mapped.resolution,
        pb::Resolution::Mapped as i32,
        "{mapped:?}"
    );
    assert_eq!(
        mapped.mapping.as_ref().map(|m| m.target_group_id.as_str()),
        Some(SALES_GROUP)
    );
    assert_eq!(
        stack.group_names(),
        names_before,
        "adopting creates no group"
    );

    // Entra provisions by SCIM push.
    let mut ids = std::collections::BTreeMap::new();
    for (_, name) in entra_users() {
        ids.insert(name, push_user(&stack.sync, name).await);
    }
    push_group(
        &stack.sync,
        "Sales Team",
        SALES,
        &[&ids["ana"], &ids["raj"], &ids["lee"]],
    )
    .await;
    push_group(
        &stack.sync,
        "Engineering",
        ENGINEERING,
        &[&ids["mia"], &ids["zoe"]],
    )
    .await;
    stack.sync.wait_converged(SETTLE).await;

    let state = stack.state();
    assert_eq!(
        members_of(&state, SALES_GROUP),
        names(&["ana", "raj", "lee", "old.timer"]),
        "Entra's members joined the adopted group, the legacy member stayed"
    );
    assert_eq!(
        carried(group_by_id(&state, SALES_GROUP)),
        seeded(&apps, &policies),
        "the adopted group's distributions are unchanged"
    );
    assert_eq!(
        stack.group_names(),
        ["Engineering", "Legacy Empty", "Lobby Kiosks", "SALES-TEAM"],
        "no group named after the mapped Entra group was created"
    );
    let engineering = groups_named(&state, "Engineering");
    assert_eq!(engineering.len(), 1);
    assert_eq!(
        members_of(&state, &engineering[0].group_identifier),
        names(&["mia", "zoe"])
    );
    let lee = distributions_of(&state, "lee");
    assert!(
        lee.iter().any(|d| d.contains("com.contoso.crm")),
        "lee receives the group's app once a member: {lee:?}"
    );

    let verified = stack.verify().await;
    assert!(verified.ok, "{verified:#?}");
    assert!(verified.losses.is_empty(), "{verified:#?}");
    assert_eq!(verified.operation_id, operation.operation_id);
    assert!(
        verified.users_checked >= 2 && verified.distributions_checked >= 4,
        "ana and raj, who stay in the adopted group, each had its app and policy recorded: \
         {verified:#?}"
    );
    stack.stop().await;
}

/// Copy: a new group named after the Entra group gets the old group's apps and policies before
/// anyone joins it; the old group is left as it was; Entra's members land in the new group.
/// Provisioned by the pull sync.
#[tokio::test]
async fn option1_copy_end_to_end_creates_the_entra_named_group_with_the_old_distributions() {
    let apps = vec![
        app("com.contoso.crm", "CRM"),
        app("com.contoso.maps", "Maps"),
    ];
    let policies = vec![
        policy("pol-road-ios", "Road iOS", "iOS"),
        policy("pol-road-android", "Road Android", "Android"),
    ];
    let stack = Option1::start(
        Some(maas360("Road Warriors", &apps, &policies, Vec::new())),
        provisioner::TenantMode::Pull,
    )
    .await;
    let mapping = stack
        .map(
            by_id(SALES),
            by_id(SALES_GROUP),
            pb::MappingMode::Copy,
            false,
        )
        .await;
    assert_eq!(mapping.maas360_group_name, "Road Warriors", "{mapping:#?}");

    let plan = stack.plan().await;
    let group = only_group(&plan);
    assert_eq!(group.mode, pb::MappingMode::Copy as i32);
    assert_eq!(
        group.target_group_name, "Sales Team",
        "the copy is named after the Entra group"
    );
    assert_eq!(
        planned(&group.joining),
        names(&["ana", "raj", "lee"]),
        "every Entra member joins the copy: {group:#?}"
    );
    assert!(
        group.staying.is_empty() && group.leaving.is_empty() && group.legacy.is_empty(),
        "the old group is left as it was: {group:#?}"
    );
    let kinds: Vec<i32> = group.distributions.iter().map(|d| d.kind).collect();
    assert_eq!(
        (
            kinds
                .iter()
                .filter(|k| **k == pb::DistributionKind::App as i32)
                .count(),
            kinds
                .iter()
                .filter(|k| **k == pb::DistributionKind::Policy as i32)
                .count()
        ),
        (2, 2),
        "{group:#?}"
    );
    assert!(plan.losses.is_empty(), "{plan:#?}");

    let operation = stack.apply(&plan).await;
    let state = stack.state();
    let copies = groups_named(&state, "Sales Team");
    assert_eq!(copies.len(), 1, "one copy: {:?}", state.groups);
    let copy = copies[0].clone();
    assert_ne!(copy.group_identifier, SALES_GROUP);
    assert_eq!(
        carried(&copy),
        seeded(&apps, &policies),
        "the copy carries the old group's apps and policies"
    );
    assert!(
        members_of(&state, &copy.group_identifier).is_empty(),
        "nobody joins before the distributions are on it"
    );
    let old = group_by_id(&state, SALES_GROUP);
    assert_eq!(old.name, "Road Warriors");
    assert_eq!(
        carried(old),
        seeded(&apps, &policies),
        "the old group is unchanged"
    );
    assert_eq!(
        members_of(&state, SALES_GROUP),
        names(&["ana", "raj", "old.timer"])
    );
    let applied = stack.get_mapping(&mapping.mapping_id).await;
    assert_eq!(
        applied.state,
        pb::MappingState::Applied as i32,
        "{applied:#?}"
    );
    assert_eq!(
        applied.target_group_id, copy.group_identifier,
        "{applied:#?}"
    );
    assert_eq!(applied.target_group_name, "Sales Team", "{applied:#?}");
    assert_eq!(applied.operation_id, operation.operation_id);
    let mapped = stack.resolve(SALES, "Sales Team").await;
    assert_eq!(
        mapped.resolution,
        pb::Resolution::Mapped as i32,
        "{mapped:?}"
    );
    assert_eq!(
        mapped.mapping.map(|m| m.target_group_id),
        Some(copy.group_identifier.clone())
    );

    // Entra provisions by pull.
    stack.pull().await;
    stack.sync.wait_converged(SETTLE).await;
    let state = stack.state();
    assert_eq!(
        members_of(&state, &copy.group_identifier),
        names(&["ana", "raj", "lee"]),
        "Entra's members are in the copy"
    );
    assert_eq!(
        members_of(&state, SALES_GROUP),
        names(&["ana", "raj", "old.timer"]),
        "the old group keeps its members"
    );
    assert_eq!(
        carried(group_by_id(&state, SALES_GROUP)),
        seeded(&apps, &policies)
    );
    assert_eq!(
        groups_named(&state, "Sales Team").len(),
        1,
        "provisioning wrote into the copy, not a second group: {:?}",
        state.groups
    );
    assert_eq!(
        stack.group_names(),
        [
            "Engineering",
            "Legacy Empty",
            "Lobby Kiosks",
            "Road Warriors",
            "Sales Team"
        ]
    );
    let lee = distributions_of(&state, "lee");
    assert!(
        ["com.contoso.crm", "com.contoso.maps"]
            .iter()
            .all(|id| lee.iter().any(|d| d.contains(id))),
        "lee, new in MaaS360, receives the copied apps: {lee:?}"
    );

    let verified = stack.verify().await;
    assert!(verified.ok && verified.losses.is_empty(), "{verified:#?}");
    assert!(
        verified.users_checked >= 2 && verified.distributions_checked >= 8,
        "ana and raj, in MaaS360 and joining the copy, each had 2 apps and 2 policies \
         recorded: {verified:#?}"
    );
    stack.stop().await;
}

/// Prune: the member Entra lacks leaves the adopted group; the plan lists what they lose (not
/// what another group they stay in still gives them), and verify accepts exactly that.
#[tokio::test]
async fn option1_prune_removes_the_member_entra_lacks_and_verify_accepts_the_planned_loss() {
    let (apps, policies) = (sales_apps(), sales_policies());
    // old.timer also gets the CRM app from "Everyone".
    let everyone = SeedGroup {
        group_identifier: Some(EVERYONE_GROUP.to_owned()),
        name: "Everyone".to_owned(),
        members: vec!["ana".to_owned(), "old.timer".to_owned()],
        apps: vec![app("com.contoso.crm", "CRM")],
        ..SeedGroup::default()
    };
    let stack = Option1::start(
        Some(maas360("Sales Team", &apps, &policies, vec![everyone])),
        provisioner::TenantMode::Push,
    )
    .await;
    let mapping = stack
        .map(
            by_id(SALES),
            by_id(SALES_GROUP),
            pb::MappingMode::Adopt,
            true,
        )
        .await;
    assert!(mapping.prune, "{mapping:#?}");

    let plan = stack.plan().await;
    let group = only_group(&plan);
    assert!(group.prune);
    assert_eq!(planned(&group.leaving), names(&["old.timer"]), "{group:#?}");
    assert!(group.legacy.is_empty(), "pruned, not kept: {group:#?}");
    assert_eq!(
        planned(&group.staying),
        names(&["ana", "raj"]),
        "{group:#?}"
    );
    assert_eq!(planned(&group.joining), names(&["lee"]), "{group:#?}");
    let losses: Vec<(String, String, i32, String)> = plan
        .losses
        .iter()
        .map(|loss| {
            let distribution = loss.distribution.clone().unwrap_or_default();
            (
                loss.user.to_lowercase(),
                loss.maas360_group.clone(),
                distribution.kind,
                distribution.name,
            )
        })
        .collect();
    assert_eq!(
        losses,
        [(
            upn("old.timer"),
            "Sales Team".to_owned(),
            pb::DistributionKind::Policy as i32,
            "Sales iOS".to_owned()
        )],
        "old.timer loses the policy, not the CRM app \"Everyone\" still gives: {plan:#?}"
    );

    let before = stack.calls("remove_groups_from_user");
    let operation = stack.apply(&plan).await;
    let state = stack.state();
    assert_eq!(
        members_of(&state, SALES_GROUP),
        names(&["ana", "raj"]),
        "old.timer was pruned"
    );
    assert_eq!(
        members_of(&state, EVERYONE_GROUP),
        names(&["ana", "old.timer"]),
        "other groups are untouched"
    );
    assert_eq!(
        carried(group_by_id(&state, SALES_GROUP)),
        seeded(&apps, &policies)
    );
    let kept = distributions_of(&state, "old.timer");
    assert!(
        kept.iter().any(|d| d.contains("com.contoso.crm"))
            && !kept.iter().any(|d| d.contains("pol-sales-ios")),
        "old.timer keeps the CRM app through \"Everyone\" and loses the sales policy: {kept:?}"
    );
    assert_eq!(
        stack.calls("remove_groups_from_user") - before,
        1,
        "one removal, for old.timer"
    );

    let verified = stack.verify().await;
    assert_eq!(verified.operation_id, operation.operation_id);
    assert!(verified.ok, "the only loss was planned: {verified:#?}");
    assert!(!verified.losses.is_empty(), "{verified:#?}");
    assert!(
        verified.losses.iter().all(|loss| loss.accepted),
        "{verified:#?}"
    );
    let verified_losses: Vec<(String, i32, String)> = verified
        .losses
        .iter()
        .map(|v| {
            let loss = v.loss.clone().unwrap_or_default();
            let distribution = loss.distribution.unwrap_or_default();
            (
                loss.user.to_lowercase(),
                distribution.kind,
                distribution.name,
            )
        })
        .collect();
    assert_eq!(
        verified_losses,
        [(
            upn("old.timer"),
            pb::DistributionKind::Policy as i32,
            "Sales iOS".to_owned()
        )],
        "{verified:#?}"
    );
    assert!(
        verified.users_checked >= 1 && verified.distributions_checked >= 2,
        "old.timer's app and policy were recorded: {verified:#?}"
    );
    stack.stop().await;
}

/// The process stops in the middle of an apply (MaaS360 slow, several steps left); the next
/// process on the same database finishes the same operation, and nothing is done twice: one
/// copy group, each distribution put on it once.
#[tokio::test]
async fn option1_apply_interrupted_by_a_stop_is_finished_by_the_next_process_once() {
    let apps: Vec<Distribution> = (1..=6)
        .map(|n| app(&format!("com.contoso.app{n}"), &format!("App {n}")))
        .collect();
    let policies = vec![
        policy("pol-road-ios", "Road iOS", "iOS"),
        policy("pol-road-android", "Road Android", "Android"),
    ];
    let mut stack = Option1::start(
        Some(maas360("Road Warriors", &apps, &policies, Vec::new())),
        provisioner::TenantMode::Push,
    )
    .await;
    let mapping = stack
        .map(
            by_id(SALES),
            by_id(SALES_GROUP),
            pb::MappingMode::Copy,
            false,
        )
        .await;
    let plan = stack.plan().await;
    let writes_before = (
        stack.calls("create_user_group"),
        stack.calls("distribute_app"),
        stack.calls("change_group_policy"),
    );

    // MaaS360 slows down, so that the apply has steps in flight and left when it stops.
    stack.sync.emulator.set_faults(Faults {
        latency_ms: 200,
        ..Faults::default()
    });
    let started = stack
        .try_apply(&plan.plan_id)
        .await
        .unwrap_or_else(|e| panic!("ApplyMigration: {e:?}"));
    assert_eq!(
        started.state,
        pb::OperationState::Running as i32,
        "{started:?}"
    );
    let deadline = Instant::now() + APPLY;
    let midway = loop {
        let operation = stack.operation(&started.operation_id).await;
        assert_eq!(
            operation.state,
            pb::OperationState::Running as i32,
            "the apply ended before it could be interrupted: {operation:#?}"
        );
        if operation.steps_done >= 1 && operation.steps_done + 3 <= operation.steps_total {
            break operation;
        }
        assert!(
            Instant::now() < deadline,
            "no step done within {APPLY:?}: {operation:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // The process stops with steps left.
    let addr = stack.sync.stack.grpc.addr;
    let old = stack.sync.stack.grpc;
    old.stop().await;
    let interrupted = stack.sync.emulator.state();
    let copied = groups_named(&interrupted, "Sales Team")
        .first()
        .map(|g| g.apps.len() + g.policies.len())
        .unwrap_or(0);
    assert!(
        copied < apps.len() + policies.len(),
        "the stop came after {} of {} steps, yet the copy already carries all {copied} \
         distributions",
        midway.steps_done,
        midway.steps_total
    );

    // The next process, on the same database and address.
    stack.sync.emulator.set_faults(Faults {
        latency_ms: 20,
        ..Faults::default()
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("binding {addr} again: {e}"));
    stack.sync.stack.grpc = dirsync_tests::start_grpc_on(&stack.sync.stack.config, listener).await;
    let resumed = stack
        .try_apply(&plan.plan_id)
        .await
        .unwrap_or_else(|e| panic!("ApplyMigration again with the same plan: {e:?}"));
    assert_eq!(
        resumed.operation_id, started.operation_id,
        "the same plan is the same operation: {resumed:#?}"
    );
    let done = stack.finished(&started.operation_id).await;
    assert_eq!(
        done.state,
        pb::OperationState::Succeeded as i32,
        "the resumed migration failed: {:?} ({done:#?})",
        done.last_error
    );
    let latest = stack.operation("").await;
    assert_eq!(latest.operation_id, started.operation_id, "{latest:#?}");

    let state = stack.state();
    let copies = groups_named(&state, "Sales Team");
    assert_eq!(copies.len(), 1, "exactly one copy: {:?}", state.groups);
    let copy = copies[0];
    assert_eq!(
        (copy.apps.len(), copy.policies.len()),
        (apps.len(), policies.len()),
        "each distribution on the copy once: {copy:#?}"
    );
    assert_eq!(carried(copy), seeded(&apps, &policies));
    let old = group_by_id(&state, SALES_GROUP);
    assert_eq!(
        carried(old),
        seeded(&apps, &policies),
        "the old group is unchanged"
    );
    assert_eq!(
        members_of(&state, SALES_GROUP),
        names(&["ana", "raj", "old.timer"])
    );
    assert_eq!(
        (
            stack.calls("create_user_group") - writes_before.0,
            stack.calls("distribute_app") - writes_before.1,
            stack.calls("change_group_policy") - writes_before.2,
        ),
        (1, apps.len() as u64, policies.len() as u64),
        "MaaS360 was asked for each write once (create, apps, policies)"
    );
    let applied = stack.get_mapping(&mapping.mapping_id).await;
    assert_eq!(
        applied.state,
        pb::MappingState::Applied as i32,
        "{applied:#?}"
    );
    assert_eq!(
        applied.target_group_id, copy.group_identifier,
        "{applied:#?}"
    );
    let verified = stack.verify().await;
    assert!(verified.ok && verified.losses.is_empty(), "{verified:#?}");
    stack.stop().await;
}

/// A plan whose ground moved is refused (an Entra member, a MaaS360 distribution, a MaaS360
/// member, the mapping's pruning); a fresh plan applies, once.
#[tokio::test]
async fn option1_a_stale_plan_is_refused_and_a_fresh_one_applies() {
    let (apps, policies) = (sales_apps(), sales_policies());
    let stack = Option1::start(
        Some(maas360("Sales Team", &apps, &policies, Vec::new())),
        provisioner::TenantMode::Push,
    )
    .await;
    let mapping = stack
        .map(
            by_id(SALES),
            by_id(SALES_GROUP),
            pb::MappingMode::Adopt,
            false,
        )
        .await;
    let first = stack.plan().await;
    assert_eq!(
        stack.plan().await.plan_id,
        first.plan_id,
        "stable while nothing changes"
    );

    let stale = |status: Result<pb::MigrationOperation, tonic::Status>, after: &str| {
        let status = status
            .err()
            .unwrap_or_else(|| panic!("a plan made before {after} was applied"));
        assert_eq!(
            refusal(&status),
            (Code::FailedPrecondition, Some(ErrorReason::StalePlan)),
            "after {after}: {status:?}"
        );
    };

    // Entra: mia joins the group.
    stack
        .graph
        .add_member(SALES, MIA)
        .unwrap_or_else(|e| panic!("adding mia in Entra: {e:?}"));
    stale(
        stack.try_apply(&first.plan_id).await,
        "an Entra member joined",
    );
    let second = stack.plan().await;
    assert_ne!(second.plan_id, first.plan_id);
    assert!(
        planned(&only_group(&second).joining).contains(&upn("mia")),
        "{second:#?}"
    );

    // MaaS360: an admin distributes another app to the group.
    let mut writes =
        provisioner::maas360_group_write_service_client::Maas360GroupWriteServiceClient::new(
            stack.channel().await,
        );
    writes
        .add_maas360_group_distribution(provisioner::AddMaas360GroupDistributionRequest {
            tenant: stack.tenant(),
            group_id: SALES_GROUP.to_owned(),
            kind: provisioner::DistributionKind::App as i32,
            distribution: Some(provisioner::Distribution {
                id: "com.contoso.new".to_owned(),
                name: "New App".to_owned(),
                platform: "iOS".to_owned(),
                app_type: "2".to_owned(),
            }),
            operation_id: "portal".to_owned(),
        })
        .await
        .unwrap_or_else(|e| panic!("distributing an app: {e:?}"));
    stale(
        stack.try_apply(&second.plan_id).await,
        "a distribution was added",
    );
    let third = stack.plan().await;
    assert_ne!(third.plan_id, second.plan_id);
    assert!(
        only_group(&third)
            .distributions
            .iter()
            .any(|d| d.id == "com.contoso.new"),
        "{third:#?}"
    );

    // MaaS360: raj leaves the group.
    let raj = stack
        .state()
        .user("raj", DOMAIN)
        .map(|user| user.user_identifier.clone())
        .unwrap_or_else(|| panic!("MaaS360 lacks raj"));
    writes
        .remove_maas360_group_users(provisioner::RemoveMaas360GroupUsersRequest {
            tenant: stack.tenant(),
            group_id: SALES_GROUP.to_owned(),
            user_ids: vec![raj],
            operation_id: "portal".to_owned(),
        })
        .await
        .unwrap_or_else(|e| panic!("removing raj: {e:?}"));
    stale(
        stack.try_apply(&third.plan_id).await,
        "a MaaS360 member left",
    );
    let fourth = stack.plan().await;
    assert_ne!(fourth.plan_id, third.plan_id);
    assert!(
        planned(&only_group(&fourth).joining).contains(&upn("raj")),
        "{fourth:#?}"
    );

    // The mapping: prune.
    let updated = stack
        .mapping()
        .await
        .update_mapping(pb::UpdateMappingRequest {
            tenant: stack.tenant(),
            mapping_id: mapping.mapping_id.clone(),
            mode: None,
            prune: Some(true),
            state: None,
        })
        .await
        .unwrap_or_else(|e| panic!("UpdateMapping: {e:?}"))
        .into_inner()
        .mapping
        .unwrap_or_default();
    assert!(updated.prune, "{updated:#?}");
    stale(
        stack.try_apply(&fourth.plan_id).await,
        "the mapping began to prune",
    );
    let fresh = stack.plan().await;
    assert_ne!(fresh.plan_id, fourth.plan_id);
    assert_eq!(
        planned(&only_group(&fresh).leaving),
        names(&["old.timer"]),
        "{fresh:#?}"
    );

    let operation = stack.apply(&fresh).await;
    assert_eq!(
        stack.members(SALES_GROUP),
        names(&["ana"]),
        "old.timer pruned (raj had left)"
    );
    // The same plan again is the same operation, not a second apply nor a stale plan.
    let again = stack
        .try_apply(&fresh.plan_id)
        .await
        .unwrap_or_else(|e| panic!("ApplyMigration again: {e:?}"));
    assert_eq!(again.operation_id, operation.operation_id, "{again:#?}");
    assert_eq!(
        again.state,
        pb::OperationState::Succeeded as i32,
        "{again:#?}"
    );

    // An applied mapping is no longer changed or deleted.
    let refused = stack
        .mapping()
        .await
        .update_mapping(pb::UpdateMappingRequest {
            tenant: stack.tenant(),
            mapping_id: mapping.mapping_id.clone(),
            mode: Some(pb::MappingMode::Copy as i32),
            prune: None,
            state: None,
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("an applied mapping was changed"));
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let deleted = stack
        .mapping()
        .await
        .delete_mapping(pb::DeleteMappingRequest {
            tenant: stack.tenant(),
            target: Some(pb::delete_mapping_request::Target::MappingId(
                mapping.mapping_id.clone(),
            )),
        })
        .await;
    assert!(deleted.is_err(), "an applied mapping was deleted");
    let kept = stack.get_mapping(&mapping.mapping_id).await;
    assert_eq!(kept.state, pb::MappingState::Applied as i32, "{kept:#?}");
    assert_eq!(kept.mode, pb::MappingMode::Adopt as i32, "{kept:#?}");
    stack.stop().await;
}

/// A MaaS360 group is the target of one Entra group, and an Entra group maps to one MaaS360
/// group: a second mapping is ALREADY_EXISTS naming the first; the same mapping again is the
/// first; a proposed (unconfirmed) mapping stays out of plans.
#[tokio::test]
async fn option1_two_entra_groups_onto_one_maas360_group_are_refused_naming_the_first() {
    let stack = Option1::start(
        Some(maas360(
            "SALES-TEAM",
            &sales_apps(),
            &sales_policies(),
            Vec::new(),
        )),
        provisioner::TenantMode::Push,
    )
    .await;
    let first = stack
        .map(
            by_id(SALES),
            by_name("sales-team"),
            pb::MappingMode::Adopt,
            false,
        )
        .await;
    assert_eq!(first.maas360_group_id, SALES_GROUP, "{first:#?}");

    for (what, entra, maas360) in [
        (
            "another Entra group onto the same MaaS360 group",
            ENGINEERING,
            SALES_GROUP,
        ),
        (
            "the same Entra group onto another MaaS360 group",
            SALES,
            KIOSK_GROUP,
        ),
    ] {
        let refused = stack
            .try_map(
                by_id(entra),
                by_id(maas360),
                pb::MappingMode::Adopt,
                false,
                pb::MappingState::Confirmed,
            )
            .await
            .err()
            .unwrap_or_else(|| panic!("{what} was mapped"));
        assert_eq!(
            refusal(&refused),
            (Code::AlreadyExists, Some(ErrorReason::AlreadyExists)),
            "{what}: {refused:?}"
        );
        assert!(
            refused.message().contains(&first.mapping_id),
            "{what}: the message names mapping {}: {:?}",
            first.mapping_id,
            refused.message()
        );
    }

    // The same mapping again is the one that exists.
    let again = stack
        .map(
            by_id(SALES),
            by_id(SALES_GROUP),
            pb::MappingMode::Adopt,
            false,
        )
        .await;
    assert_eq!(again.mapping_id, first.mapping_id, "{again:#?}");

    // A proposed mapping is stored but not planned.
    let proposed = stack
        .try_map(
            by_name("Engineering"),
            by_name("Lobby Kiosks"),
            pb::MappingMode::Copy,
            false,
            pb::MappingState::Proposed,
        )
        .await
        .unwrap_or_else(|e| panic!("a proposed mapping: {e:?}"));
    assert_eq!(
        proposed.state,
        pb::MappingState::Proposed as i32,
        "{proposed:#?}"
    );
    let listed: BTreeSet<String> = stack
        .list_mappings()
        .await
        .into_iter()
        .map(|m| m.mapping_id)
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from([first.mapping_id.clone(), proposed.mapping_id.clone()])
    );
    let plan = stack.plan().await;
    assert_eq!(
        only_group(&plan).mapping_id,
        first.mapping_id,
        "only the confirmed mapping is planned"
    );
    let proposals = stack.propose().await;
    assert_eq!(
        proposal(&proposals, SALES_GROUP).mapping_id,
        first.mapping_id,
        "{proposals:#?}"
    );
    let nobody = stack
        .resolve("00000000-0000-4000-8000-0000000000ff", "Nobody")
        .await;
    assert_eq!(
        nobody.resolution,
        pb::Resolution::Unmapped as i32,
        "{nobody:?}"
    );
    stack.stop().await;
}

/// Option 2 on an empty MaaS360: the check says import, nothing is proposed, and provisioning
/// creates Entra's groups as new groups with nothing parked.
#[tokio::test]
async fn option2_on_an_empty_maas360_imports_the_groups_as_new() {
    let stack = PullStack::start(entra()).await;
    let channel = stack.sync.stack.grpc.channel().await;
    let check = check(MappingServiceClient::new(channel.clone()), &stack.tenant()).await;
    assert_eq!(
        check.recommendation,
        pb::MigrationOption::ImportNew as i32,
        "{check:#?}"
    );
    assert!(check.reason.trim().len() > 10, "{check:?}");
    assert_eq!(
        (
            check.maas360_user_groups,
            check.groups_with_distributions,
            check.entra_groups
        ),
        (0, 0, 2),
        "{check:#?}"
    );
    assert!(check.resembled.is_empty(), "{check:#?}");
    let proposals = propose(MappingServiceClient::new(channel.clone()), &stack.tenant()).await;
    assert!(proposals.is_empty(), "{proposals:#?}");
    let unmapped = resolve(
        MappingServiceClient::new(channel.clone()),
        &stack.tenant(),
        SALES,
        "Sales Team",
    )
    .await;
    assert_eq!(
        unmapped.resolution,
        pb::Resolution::Unmapped as i32,
        "{unmapped:?}"
    );

    let (plan, applied) = stack
        .sync(directory::SyncTenantRequest {
            full: true,
            ..Default::default()
        })
        .await;
    assert!(applied, "{plan:?}");
    assert_eq!(plan.group_creates, 2, "{plan:?}");
    // Converged with nothing parked, and MaaS360 is exactly Entra.
    stack.assert_maas360_matches(&stack.expected(&[])).await;
    let mut groups: Vec<String> = stack
        .sync
        .emulator
        .state()
        .groups
        .into_iter()
        .map(|g| g.name)
        .collect();
    groups.sort();
    assert_eq!(groups, ["Engineering", "Sales Team"]);
    stack.stop().await;
}

/// MaaS360 is not empty, but no group that carries distributions resembles an Entra group (and
/// one that resembles carries nothing): import is what is recommended.
#[tokio::test]
async fn option2_is_recommended_when_no_group_with_distributions_resembles_entra() {
    let seed = Seed {
        users: vec![local_user("kiosk", 1), local_user("ana", 2)],
        groups: vec![
            SeedGroup {
                group_identifier: Some(KIOSK_GROUP.to_owned()),
                name: "Lobby Kiosks".to_owned(),
                members: vec!["kiosk".to_owned()],
                apps: vec![app("com.contoso.kiosk", "Kiosk Browser")],
                ..SeedGroup::default()
            },
            SeedGroup {
                group_identifier: Some(SALES_GROUP.to_owned()),
                name: "Sales Team".to_owned(),
                members: vec!["ana".to_owned()],
                ..SeedGroup::default()
            },
        ],
    };
    let stack = Option1::start(Some(seed), provisioner::TenantMode::Push).await;
    let check = stack.check().await;
    assert_eq!(
        check.recommendation,
        pb::MigrationOption::ImportNew as i32,
        "{check:#?}"
    );
    assert_eq!(
        (check.maas360_user_groups, check.groups_with_distributions),
        (2, 1),
        "{check:#?}"
    );
    assert!(check.resembled.is_empty(), "{check:#?}");
    let proposals = stack.propose().await;
    assert_eq!(
        proposals.len(),
        1,
        "only the group with distributions: {proposals:#?}"
    );
    assert_eq!(proposals[0].maas360_group_id, KIOSK_GROUP);
    assert!(
        proposals[0].candidates.iter().all(|c| c.score < 0.5),
        "{proposals:#?}"
    );
    stack.stop().await;
}

/// An Entra group the pull sync reaches before its mapping is applied waits (parked, nothing
/// created or adopted); the apply retries it, and its members land in the mapped group without
/// another sync. Deleting the group in Entra afterwards leaves the mapped MaaS360 group and its
/// distributions in place.
#[tokio::test]
async fn option1_a_group_provisioned_before_the_apply_waits_and_the_apply_releases_it() {
    let (apps, policies) = (sales_apps(), sales_policies());
    let stack = Option1::start(
        Some(maas360("SALES-TEAM", &apps, &policies, Vec::new())),
        provisioner::TenantMode::Pull,
    )
    .await;
    let mapping = stack
        .map(
            by_id(SALES),
            by_id(SALES_GROUP),
            pb::MappingMode::Adopt,
            false,
        )
        .await;

    stack.pull().await;
    // Its members wait with it (deferred, not parked), so the queue does not empty: wait for
    // the park and for the unmapped group.
    let deadline = Instant::now() + SETTLE;
    loop {
        let parked = stack.parked().await;
        let waits = parked
            .iter()
            .any(|p| p.display == "Sales Team" && p.reason.contains(&mapping.mapping_id));
        if waits && !groups_named(&stack.state(), "Engineering").is_empty() {
            assert_eq!(parked.len(), 1, "only the mapped group waits: {parked:#?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the mapped group was not parked for mapping {} (or Engineering not created): \
             {parked:#?} {:?}",
            mapping.mapping_id,
            stack.group_names()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stack.members(SALES_GROUP),
        names(&["ana", "raj", "old.timer"]),
        "nothing written to the mapped group before the apply"
    );
    assert_eq!(
        stack.group_names(),
        ["Engineering", "Legacy Empty", "Lobby Kiosks", "SALES-TEAM"],
        "nothing created for the mapped group"
    );

    let plan = stack.plan().await;
    stack.apply(&plan).await;
    until_maas360(&stack, "lee in SALES-TEAM after the apply", |state| {
        members_of(state, SALES_GROUP) == names(&["ana", "raj", "lee", "old.timer"])
    })
    .await;
    stack.sync.wait_converged(SETTLE).await;
    assert_eq!(
        stack.group_names(),
        ["Engineering", "Legacy Empty", "Lobby Kiosks", "SALES-TEAM"]
    );
    let verified = stack.verify().await;
    assert!(verified.ok && verified.losses.is_empty(), "{verified:#?}");

    // Entra deletes the group: the mapped MaaS360 group stays, with its distributions.
    stack
        .graph
        .delete_group(SALES)
        .unwrap_or_else(|e| panic!("deleting the Entra group: {e:?}"));
    stack.pull().await;
    stack.sync.wait_converged(SETTLE).await;
    let state = stack.state();
    assert_eq!(
        carried(group_by_id(&state, SALES_GROUP)),
        seeded(&apps, &policies),
        "the mapped group and its distributions stay"
    );
    stack.stop().await;
}
