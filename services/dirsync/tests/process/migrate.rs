//! Option 1 as an operator runs it: `dirsync migrate` and `dirsync mapping` against a running
//! `dirsync serve`, with MaaS360 and Microsoft Graph emulated. Each command's `--json` is one JSON
//! object on stdout, and exit codes say what happened.

use std::process::{Command, Output};
use std::time::Duration;

use dirsync_emulators::graph::{
    GraphEmulatorConfig, GraphSeed, SeedGroup as EntraGroup, SeedUser as EntraUser,
};
use dirsync_emulators::maas360::{Device, Distribution, EmulatorConfig, Seed, SeedGroup, SeedUser};
use serde_json::Value;

use crate::support::{DIRSYNC, Process, Secrets, create_tenant, free_port, wait_grpc};

const DOMAIN: &str = "contoso.example";

fn entra() -> GraphSeed {
    let user = |id: &str, name: &str| EntraUser {
        id: id.to_owned(),
        user_principal_name: format!("{name}@{DOMAIN}"),
        display_name: Some(name.to_owned()),
        mail: Some(format!("{name}@{DOMAIN}")),
        account_enabled: true,
        ..EntraUser::default()
    };
    GraphSeed {
        users: vec![
            user("00000000-0000-4000-8000-000000000001", "ana"),
            user("00000000-0000-4000-8000-000000000002", "lee"),
        ],
        groups: vec![EntraGroup {
            id: "00000000-0000-4000-8000-0000000000a1".to_owned(),
            display_name: "Sales Team".to_owned(),
            description: None,
            members: vec![
                "00000000-0000-4000-8000-000000000001".to_owned(),
                "00000000-0000-4000-8000-000000000002".to_owned(),
            ],
        }],
    }
}

/// MaaS360 before Entra: "SALES-TEAM" carries an app and a policy; ana (in Entra) and kiosk
/// (not in Entra) are its members, each with a device.
fn maas360() -> Seed {
    let local = |name: &str| SeedUser {
        user_name: name.to_owned(),
        domain: DOMAIN.to_owned(),
        email: format!("{name}@{DOMAIN}"),
        full_name: name.to_owned(),
        devices: vec![Device {
            csn: format!("CLI-{name}"),
            platform: "iOS".to_owned(),
            active: true,
        }],
        ..SeedUser::default()
    };
    Seed {
        users: vec![local("ana"), local("kiosk")],
        groups: vec![SeedGroup {
            group_identifier: Some("7001".to_owned()),
            name: "SALES-TEAM".to_owned(),
            members: vec![format!("ana@{DOMAIN}"), format!("kiosk@{DOMAIN}")],
            apps: vec![Distribution {
                id: "com.contoso.crm".to_owned(),
                name: "CRM".to_owned(),
                platform: "iOS".to_owned(),
                app_type: "2".to_owned(),
            }],
            policies: vec![Distribution {
                id: "Sales Policy".to_owned(),
                name: "Sales Policy".to_owned(),
                platform: "iOS".to_owned(),
                app_type: String::new(),
            }],
            ..SeedGroup::default()
        }],
    }
}

fn run(grpc: u16, args: &[&str]) -> Output {
    Command::new(DIRSYNC)
        .args(args)
        .args(["--server", &format!("127.0.0.1:{grpc}")])
        .env_remove("DIRSYNC_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// The one JSON object a `--json` command prints, and whether it exited 0.
fn json(grpc: u16, args: &[&str]) -> (Value, bool) {
    let output = run(grpc, args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
        panic!(
            "{args:?} printed no JSON object ({error}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (value, output.status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_migrates_a_group_with_the_cli_and_nothing_is_lost() {
    let maas360_config = EmulatorConfig::for_tests();
    let emulator = dirsync_emulators::maas360::start(maas360_config.clone(), Some(maas360()))
        .await
        .unwrap();
    let graph_config = GraphEmulatorConfig::for_tests();
    let graph = dirsync_emulators::graph::start(graph_config.clone(), entra())
        .await
        .unwrap();
    let secrets = Secrets::write(&maas360_config);
    let data = std::env::temp_dir().join(format!("dirsync-cli-option1-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    let entra_secret = data.join("entra-secret");
    std::fs::write(&entra_secret, &graph_config.client_secret).unwrap();

    let grpc = free_port();
    let env: Vec<(String, String)> = [
        (
            "DIRSYNC__DATABASE__URL",
            format!("sqlite://{}/dirsync.db", data.display()),
        ),
        ("DIRSYNC__GRPC__LISTEN", format!("127.0.0.1:{grpc}")),
        ("DIRSYNC__SCIM__LISTEN", "127.0.0.1:0".to_owned()),
        ("DIRSYNC__METRICS__LISTEN", "127.0.0.1:0".to_owned()),
        ("DIRSYNC__LOG__LEVEL", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    let _server = Process::spawn(&["serve"], &env);
    let channel = wait_grpc(grpc).await;
    create_tenant(
        channel,
        "acme",
        secrets.connection(&emulator, &maas360_config),
    )
    .await;
    let connected = run(
        grpc,
        &[
            "tenant",
            "set-entra",
            "acme",
            "--entra-tenant-id",
            &graph_config.tenant_id,
            "--client-id",
            &graph_config.client_id,
            "--client-secret-file",
            &entra_secret.display().to_string(),
            "--login-url",
            &graph.base_url(),
            "--graph-url",
            &graph.base_url(),
        ],
    );
    assert!(
        connected.status.success(),
        "{}",
        String::from_utf8_lossy(&connected.stderr)
    );

    let (check, ok) = json(grpc, &["migrate", "check", "acme", "--json"]);
    assert!(ok, "{check}");
    assert_eq!(check["recommendation"], "option1", "{check}");

    let (proposals, ok) = json(grpc, &["migrate", "propose", "acme", "--json"]);
    assert!(ok, "{proposals}");
    let text = proposals.to_string();
    assert!(
        text.contains("SALES-TEAM") && text.contains("Sales Team"),
        "{proposals}"
    );

    let set = run(
        grpc,
        &[
            "mapping",
            "set",
            "acme",
            "--entra-group",
            "Sales Team",
            "--maas360-group",
            "SALES-TEAM",
            "--mode",
            "adopt",
        ],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    // A second Entra group onto the same MaaS360 group is refused, naming the first mapping.
    let again = run(
        grpc,
        &[
            "mapping",
            "set",
            "acme",
            "--entra-group",
            "00000000-0000-4000-8000-0000000000a1",
            "--maas360-group",
            "7001",
            "--mode",
            "copy",
        ],
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already mapped"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let (listed, ok) = json(grpc, &["mapping", "list", "acme", "--json"]);
    assert!(ok && listed.to_string().contains("SALES-TEAM"), "{listed}");

    let (plan, ok) = json(grpc, &["migrate", "plan", "acme", "--json"]);
    assert!(ok, "{plan}");
    let plan_id = plan["plan_id"].as_str().unwrap().to_owned();
    assert_eq!(plan["losses"], serde_json::json!([]), "{plan}");
    assert!(
        plan.to_string().contains("kiosk@contoso.example"),
        "legacy member listed: {plan}"
    );

    let stale = run(
        grpc,
        &[
            "migrate",
            "apply",
            "acme",
            "--plan",
            "0123456789abcdef01234567",
        ],
    );
    assert!(!stale.status.success());
    assert!(
        String::from_utf8_lossy(&stale.stderr).contains("stale"),
        "{}",
        String::from_utf8_lossy(&stale.stderr)
    );

    let (applied, ok) = json(
        grpc,
        &["migrate", "apply", "acme", "--plan", &plan_id, "--json"],
    );
    assert!(ok, "{applied}");
    assert_eq!(applied["state"], "succeeded", "{applied}");

    // Nothing was removed or written to the adopted group by the migration itself.
    let state = emulator.state();
    let members = state.memberships.get("7001").cloned().unwrap_or_default();
    assert_eq!(members.len(), 2, "{members:?}");

    let (verified, ok) = json(grpc, &["migrate", "verify", "acme", "--json"]);
    assert!(ok, "{verified}");
    assert_eq!(verified["ok"], true, "{verified}");

    // An applied mapping is not deleted: the Entra group writes into the adopted group.
    let delete = run(
        grpc,
        &["mapping", "delete", "acme", "--entra-group", "Sales Team"],
    );
    assert!(!delete.status.success());
    tokio::time::sleep(Duration::from_millis(10)).await;
    let _ = std::fs::remove_dir_all(&data);
}
