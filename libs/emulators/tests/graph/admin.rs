//! The admin API under `/_emulator/`.

use dirsync_emulators::graph::{GraphEmulatorConfig, GraphSeed, GraphStateDump};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{get, http, send, start};

#[tokio::test]
async fn administers_users_groups_and_switches() {
    let handle = start(
        GraphEmulatorConfig::for_tests(),
        GraphSeed::generate(4, 1, 0, 11),
    )
    .await;
    let admin = |path: &str| format!("{}/_emulator/{path}", handle.base_url());
    let client = http();

    let created = send(client.post(admin("users")).json(&json!({
        "userPrincipalName": "ada@contoso.example", "displayName": "Ada", "accountEnabled": true
    })))
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let user = created.body["id"].as_str().unwrap_or_default().to_owned();
    let duplicate = send(client.post(admin("users")).json(&json!({
        "userPrincipalName": "ADA@contoso.example"
    })))
    .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let patched = send(
        client
            .patch(admin(&format!("users/{user}")))
            .json(&json!({"displayName": "Ada L."})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT);

    let group = send(client.post(admin("groups")).json(&json!({
        "displayName": "Engineers", "members": [user]
    })))
    .await;
    assert_eq!(group.status, StatusCode::CREATED);
    let group = group.body["id"].as_str().unwrap_or_default().to_owned();
    let outer = send(
        client
            .post(admin("groups"))
            .json(&json!({"displayName": "Everyone"})),
    )
    .await;
    let outer = outer.body["id"].as_str().unwrap_or_default().to_owned();
    let nested = send(
        client
            .post(admin(&format!("groups/{outer}/members")))
            .json(&json!({"id": group})),
    )
    .await;
    assert_eq!(nested.status, StatusCode::NO_CONTENT);
    let members = get(&handle, &format!("/v1.0/groups/{outer}/transitiveMembers")).await;
    let found: Vec<&str> = members.body["value"]
        .as_array()
        .map(|v| v.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        found.contains(&user.as_str()) && found.contains(&group.as_str()),
        "{found:?}"
    );

    let soft = send(client.post(admin(&format!("users/{user}/soft-delete")))).await;
    assert_eq!(soft.status, StatusCode::NO_CONTENT);
    let state: GraphStateDump =
        serde_json::from_value(send(client.get(admin("state"))).await.body).unwrap_or_default();
    assert!(state.deleted_users.iter().any(|u| u.id == user));
    assert!(state.users.iter().all(|u| u.id != user));
    let restored = send(client.post(admin(&format!("users/{user}/restore")))).await;
    assert_eq!(restored.status, StatusCode::NO_CONTENT);
    let hard = send(client.post(admin(&format!("users/{user}/hard-delete")))).await;
    assert_eq!(hard.status, StatusCode::NO_CONTENT);
    let again = send(client.post(admin(&format!("users/{user}/restore")))).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let removed = send(client.delete(admin(&format!("groups/{outer}/members/{group}")))).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let deleted = send(client.delete(admin(&format!("groups/{group}")))).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let throttle = send(
        client
            .put(admin("throttle"))
            .json(&json!({"rate": 2.0, "status": 418})),
    )
    .await;
    assert_eq!(throttle.body["rate"], 1.0, "clamped");
    assert_eq!(throttle.body["status"], 429, "only 429/503/504");
    let off = send(client.put(admin("throttle")).json(&json!({"rate": 0.0}))).await;
    assert_eq!(off.status, StatusCode::OK);
    let roles = send(
        client
            .put(admin("roles"))
            .json(&json!(["Directory.Read.All"])),
    )
    .await;
    assert_eq!(roles.status, StatusCode::OK);
    assert_eq!(
        get(&handle, "/v1.0/organization").await.status,
        StatusCode::OK
    );
    let expired = send(
        client
            .post(admin("expire-delta-tokens"))
            .json(&json!({"reply": "syncStateNotFound"})),
    )
    .await;
    assert_eq!(expired.status, StatusCode::NO_CONTENT);
    assert_eq!(
        send(client.post(admin("expire-tokens"))).await.status,
        StatusCode::NO_CONTENT
    );

    let requests = send(client.get(admin("requests"))).await;
    assert_eq!(requests.body["organization"]["200"], 1);
    assert!(requests.body["token"].is_object());
    let violations = send(client.get(admin("violations"))).await;
    assert_eq!(violations.body, Value::Array(Vec::new()));

    assert_eq!(
        send(client.post(admin("reset"))).await.status,
        StatusCode::NO_CONTENT
    );
    let state = handle.state();
    assert_eq!(state.users.len(), 4);
    assert_eq!(state.groups.len(), 1);
    assert_eq!(state.change_log_position, 0);
    assert!(handle.request_counts().is_empty());
}
