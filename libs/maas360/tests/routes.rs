//! Routes as data, end to end: the client's table against the emulator's, the docs against the
//! table, and the probe over real sockets: it finds a route the emulator moved, and a routes
//! file that names the new path makes it pass again without a rebuild.

use std::collections::BTreeMap;
use std::time::Duration;

use dirsync_emulators::maas360::{
    self as emu, Distribution, EmulatorConfig, EmulatorHandle, Seed, SeedGroup, SeedUser,
};
use dirsync_maas360::probe::{self, ProbeOptions, ProbeReport, StepOutcome};
use dirsync_maas360::{
    AuthVersion, ClientOptions, Credentials, Evidence, Maas360Client, RouteName, RouteTable, Secret,
};

// ---- the client's table and the emulator's ----

/// Differences between the client's default routes and the emulator's that are meant to be
/// there, with why. Every other difference fails the test: the two tables are written
/// separately on purpose (an emulator that imported the client's paths could never catch a
/// wrong one), so they must be compared.
const DECLARED_DIFFERENCES: &[(&str, &str)] = &[];

/// A path with its placeholder names erased: `{groupID}` and `{groupIdentifier}` match the
/// same requests.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn client_and_emulator_route_tables_differ_only_where_declared() {
    let client: BTreeMap<String, (String, String)> = RouteTable::defaults()
        .iter()
        .map(|r| {
            (
                r.name.as_str().to_owned(),
                (r.method.as_str().to_owned(), shape(&r.template)),
            )
        })
        .collect();
    let emulator: BTreeMap<String, (String, String)> = emu::default_routes()
        .into_iter()
        .map(|r| (r.name, (r.method, shape(&r.path))))
        .collect();
    let mut differences = BTreeMap::new();
    for name in client.keys().chain(emulator.keys()) {
        let (c, e) = (client.get(name), emulator.get(name));
        if c != e {
            differences.insert(name.clone(), format!("client {c:?}, emulator {e:?}"));
        }
    }
    let declared: BTreeMap<&str, &str> = DECLARED_DIFFERENCES.iter().copied().collect();
    let undeclared: Vec<String> = differences
        .iter()
        .filter(|(name, _)| !declared.contains_key(name.as_str()))
        .map(|(name, what)| format!("{name}: {what}"))
        .collect();
    assert!(
        undeclared.is_empty(),
        "the client and the emulator disagree on routes nobody declared: {undeclared:#?}"
    );
    let stale: Vec<&&str> = declared
        .keys()
        .filter(|name| !differences.contains_key(**name))
        .collect();
    assert!(
        stale.is_empty(),
        "declared differences that no longer differ: {stale:?}"
    );
}

#[test]
fn the_routes_document_lists_every_default_with_its_evidence() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/maas360-routes.md");
    let doc = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => panic!("{path}: {e}"),
    };
    assert!(doc.contains("Setup → Web Services API → Documentation"));
    for route in RouteTable::defaults().iter() {
        let row = doc
            .lines()
            .find(|line| line.starts_with(&format!("| `{}` |", route.name)));
        let Some(row) = row else {
            panic!("docs/maas360-routes.md has no row for {}", route.name)
        };
        for expected in [
            format!("`{}`", route.template),
            format!("| {} |", route.method.as_str()),
            format!("| {} |", route.success.as_str()),
            route.evidence.tag().to_owned(),
        ] {
            assert!(
                row.contains(&expected),
                "{}: {expected} not in {row}",
                route.name
            );
        }
        assert!(route.evidence != Evidence::Operator);
    }
}

// ---- the probe over real sockets ----

fn credentials(base_url: &str, cfg: &EmulatorConfig) -> Credentials {
    Credentials {
        base_url: base_url.to_owned(),
        billing_id: cfg.billing_id.clone(),
        admin_user: cfg.admin_user.clone(),
        password: Secret::new(cfg.password.clone()),
        app_id: cfg.app_id.clone(),
        app_version: cfg.app_version.clone(),
        platform_id: cfg.platform_id.clone(),
        app_access_key: Secret::new(cfg.app_access_key.clone()),
    }
}

fn client(handle: &EmulatorHandle, cfg: &EmulatorConfig, routes: RouteTable) -> Maas360Client {
    let options = ClientOptions {
        auth_version: AuthVersion::V2,
        request_timeout: Duration::from_secs(10),
        routes,
        ..ClientOptions::default()
    };
    match Maas360Client::new(credentials(&handle.base_url(), cfg), options) {
        Ok(client) => client,
        Err(error) => panic!("client: {error}"),
    }
}

/// A tenant with one user group and its one member, next to a device group.
fn tenant() -> Seed {
    Seed {
        users: vec![SeedUser {
            user_name: "jdoe".to_owned(),
            domain: "contoso.com".to_owned(),
            email: "jdoe@contoso.com".to_owned(),
            ..SeedUser::default()
        }],
        groups: vec![
            SeedGroup {
                name: "Sales".to_owned(),
                members: vec!["jdoe".to_owned()],
                apps: vec![Distribution {
                    id: "com.contoso.crm".to_owned(),
                    name: "CRM".to_owned(),
                    platform: "iOS".to_owned(),
                    app_type: "2".to_owned(),
                }],
                policies: vec![Distribution {
                    id: "p-ios".to_owned(),
                    name: "iOS Baseline".to_owned(),
                    platform: "iOS".to_owned(),
                    ..Distribution::default()
                }],
                ..SeedGroup::default()
            },
            SeedGroup {
                name: "Kiosks".to_owned(),
                group_type: Some(0),
                ..SeedGroup::default()
            },
        ],
    }
}

async fn emulator(cfg: &EmulatorConfig, seed: Option<Seed>) -> EmulatorHandle {
    match emu::start(cfg.clone(), seed).await {
        Ok(handle) => handle,
        Err(error) => panic!("emulator: {error}"),
    }
}

fn write() -> ProbeOptions {
    ProbeOptions {
        write: true,
        ..ProbeOptions::default()
    }
}

fn outcomes(report: &ProbeReport) -> Vec<(String, StepOutcome)> {
    report
        .steps
        .iter()
        .map(|s| (s.route.as_str().to_owned(), s.outcome))
        .collect()
}

/// Nothing named with the probe's prefix is left, apart from users queued for deletion.
fn nothing_left_behind(handle: &EmulatorHandle) {
    let state = handle.state();
    let users: Vec<_> = state
        .users
        .iter()
        .filter(|u| u.user_name.starts_with("dirsync-probe-") && !u.is_pending_deletion())
        .collect();
    assert!(users.is_empty(), "{users:?}");
    assert!(
        !state
            .groups
            .iter()
            .any(|g| g.name.starts_with("dirsync-probe-")),
        "{:?}",
        state.groups
    );
}

#[tokio::test]
async fn read_only_probe_passes_against_the_emulator() {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(&cfg, Some(tenant())).await;
    let report = probe::run(
        &client(&handle, &cfg, RouteTable::defaults()),
        &ProbeOptions::default(),
    )
    .await;
    assert!(report.passed, "{report:#?}");
    let routes: Vec<&str> = report.steps.iter().map(|s| s.route.as_str()).collect();
    assert_eq!(
        routes,
        [
            "auth_v2",
            "refresh_token",
            "search_users",
            "list_groups",
            "users_in_group"
        ]
    );
    let members = report.steps.last().and_then(|s| s.note.clone());
    assert_eq!(members.as_deref(), Some("\"Sales\": 1 members"));
    // Nothing was written.
    assert_eq!(handle.state().users.len(), 1);
    let writes: u64 = handle
        .request_counts()
        .iter()
        .filter(|(route, _)| route.contains("add") || route.contains("delete"))
        .flat_map(|(_, by_status)| by_status.values())
        .sum();
    assert_eq!(writes, 0);
    // Serialisable for --json.
    let json = serde_json::to_value(&report).unwrap_or_default();
    assert_eq!(json["passed"], serde_json::Value::Bool(true));
    assert_eq!(json["steps"][1]["route"], "refresh_token");
    assert_eq!(json["steps"][1]["outcome"], "ok");
    assert_eq!(json["steps"][1]["evidence"], "[code]");
    handle.stop().await;
}

#[tokio::test]
async fn read_only_probe_says_what_it_could_not_check() {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(&cfg, None).await;
    let report = probe::run(
        &client(&handle, &cfg, RouteTable::defaults()),
        &ProbeOptions::default(),
    )
    .await;
    assert!(!report.passed, "no user group, so one route is unchecked");
    let last = report.steps.last();
    assert_eq!(last.map(|s| s.outcome), Some(StepOutcome::Skipped));
    assert!(
        last.and_then(|s| s.note.as_deref())
            .is_some_and(|n| n.contains("no user group"))
    );

    // With refused credentials nothing else can be checked.
    let mut creds = credentials(&handle.base_url(), &cfg);
    creds.password = Secret::new("wrong");
    let refused = match Maas360Client::new(creds, ClientOptions::default()) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let report = probe::run(&refused, &write()).await;
    assert!(!report.passed);
    assert_eq!(report.steps[0].route, RouteName::AuthV1);
    assert_eq!(report.steps[0].outcome, StepOutcome::Failed);
    assert_eq!(
        report.steps[0].status,
        Some(200),
        "refusals come back as 200"
    );
    assert!(
        report.steps[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("admin credentials") && !e.contains("wrong")),
        "{:?}",
        report.steps[0].error
    );
    assert!(
        report.steps[1..]
            .iter()
            .all(|s| s.outcome == StepOutcome::Skipped)
    );
    assert_eq!(report.steps.len(), 17);
    handle.stop().await;
}

#[tokio::test]
async fn write_probe_passes_and_cleans_up() {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(&cfg, Some(tenant())).await;
    let report = probe::run(&client(&handle, &cfg, RouteTable::defaults()), &write()).await;
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.steps.len(), 17);
    for copied in [RouteName::DistributeApp, RouteName::ChangeGroupPolicy] {
        let step = report.steps.iter().find(|s| s.route == copied);
        assert_eq!(
            step.map(|s| s.outcome),
            Some(probe::StepOutcome::Ok),
            "{report:#?}"
        );
    }
    assert!(report.cleanup.is_empty() && report.leftovers.is_empty());
    let every: Vec<&str> = report.steps.iter().map(|s| s.route.as_str()).collect();
    for name in RouteName::ALL {
        if name != RouteName::AuthV1 {
            assert!(every.contains(&name.as_str()), "{name} not probed");
        }
    }
    let deleted = report
        .steps
        .iter()
        .find(|s| s.route == RouteName::DeleteUser);
    assert_eq!(
        deleted.and_then(|s| s.note.as_deref()),
        Some("queued for MaaS360's daily deletion job")
    );
    // The throwaway user waits for the daily job; the group is gone.
    let state = handle.state();
    let pending = state.pending_deletions();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].user_name.starts_with("dirsync-probe-"));
    assert!(pending[0].domain.ends_with(".invalid"));
    nothing_left_behind(&handle);
    assert_eq!(handle.run_deletion_job(), 1);
    assert_eq!(
        handle.state().users.len(),
        1,
        "only the tenant's own user is left"
    );
    handle.stop().await;
}

#[tokio::test]
async fn a_moved_route_fails_the_probe_until_a_routes_file_names_its_new_path() {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(&cfg, Some(tenant())).await;
    let moved = "/user-apis/user/2.0/users/customer/{billingID}/{userIdentifier}/edit";
    assert!(handle.move_route("edit_user", moved).is_ok());

    // The built-in table still calls the old path: the probe names the route and why.
    let report = probe::run(&client(&handle, &cfg, RouteTable::defaults()), &write()).await;
    assert!(!report.passed);
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1, "{:#?}", outcomes(&report));
    let edit = failures[0];
    assert_eq!(edit.route, RouteName::EditUser);
    assert_eq!(edit.status, Some(404));
    assert_eq!(edit.evidence, "[inferred]");
    assert_eq!(
        edit.path,
        "/user-apis/user/1.0/editUser/customer/{billingID}/user/{userIdentifier}"
    );
    assert!(
        edit.error
            .as_deref()
            .is_some_and(|e| e.contains("No such API") && e.contains("routes file")),
        "{:?}",
        edit.error
    );
    // The steps after it still ran, and nothing was left behind.
    assert!(report.leftovers.is_empty(), "{:?}", report.leftovers);
    nothing_left_behind(&handle);

    // A routes file with the tenant's path: same binary, new table, the probe passes.
    let file = std::env::temp_dir().join(format!("dirsync-routes-{}.toml", std::process::id()));
    let written = std::fs::write(
        &file,
        format!(
            "# from Setup > Web Services API > Documentation\n[routes.edit_user]\npath = \"{moved}\"\n"
        ),
    );
    assert!(written.is_ok());
    let table = RouteTable::load(&file);
    let _ = std::fs::remove_file(&file);
    let table = match table {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let report = probe::run(&client(&handle, &cfg, table), &write()).await;
    assert!(report.passed, "{:#?}", outcomes(&report));
    let edit = report.steps.iter().find(|s| s.route == RouteName::EditUser);
    assert_eq!(edit.map(|s| s.evidence.as_str()), Some("[operator]"));
    assert_eq!(edit.map(|s| s.path.as_str()), Some(moved));
    handle.stop().await;
}

#[tokio::test]
async fn the_probe_cleans_up_after_a_failed_step() {
    // Adding to a group fails: the membership checks cannot run, the rest does, and both the
    // user and the group are removed anyway.
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(&cfg, Some(tenant())).await;
    assert!(
        handle
            .move_route(
                "add_groups_to_user",
                "/user-apis/user/1.0/groups/add/customer/{billingID}/user/{userIdentifier}"
            )
            .is_ok()
    );
    let report = probe::run(&client(&handle, &cfg, RouteTable::defaults()), &write()).await;
    assert!(!report.passed);
    let by_check: BTreeMap<&str, StepOutcome> = report
        .steps
        .iter()
        .map(|s| (s.check.as_str(), s.outcome))
        .collect();
    assert_eq!(
        by_check.get("add the user to the group"),
        Some(&StepOutcome::Failed)
    );
    assert_eq!(
        by_check.get("see the user among the group's members"),
        Some(&StepOutcome::Skipped)
    );
    assert_eq!(by_check.get("delete the user"), Some(&StepOutcome::Ok));
    assert_eq!(
        by_check.get("delete the user group"),
        Some(&StepOutcome::Ok)
    );
    nothing_left_behind(&handle);

    // Deleting fails: the cleanup tries again, then leaves the user deactivated and says so.
    assert!(
        handle
            .move_route(
                "delete_user",
                "/user-apis/user/1.0/users/delete/customer/{billingID}/{userIdentifier}"
            )
            .is_ok()
    );
    let report = probe::run(&client(&handle, &cfg, RouteTable::defaults()), &write()).await;
    assert!(!report.passed);
    let cleanup: Vec<(&str, StepOutcome)> = report
        .cleanup
        .iter()
        .map(|s| (s.route.as_str(), s.outcome))
        .collect();
    assert_eq!(
        cleanup,
        [
            ("delete_user", StepOutcome::Failed),
            ("deactivate_user", StepOutcome::Ok)
        ]
    );
    assert_eq!(report.leftovers.len(), 1, "{:?}", report.leftovers);
    assert!(report.leftovers[0].starts_with("user dirsync-probe-"));
    assert!(report.leftovers[0].ends_with("deactivated"));
    let state = handle.state();
    let left: Vec<_> = state
        .users
        .iter()
        .filter(|u| u.user_name.starts_with("dirsync-probe-") && !u.is_pending_deletion())
        .collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].status, "Inactive");
    assert!(
        !state
            .groups
            .iter()
            .any(|g| g.name.starts_with("dirsync-probe-"))
    );
    handle.stop().await;
}
