//! Delta on the wire: link shapes, `@removed`, `members@delta`, empty pages, `latest`, and
//! both kinds of expiry.

use dirsync_emulators::graph::{DeltaExpiry, GraphEmulatorConfig, GraphSeed};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{get_with, start, token};

/// Follows a round to its deltaLink: every item, the number of empty pages, the deltaLink.
async fn round(
    handle: &dirsync_emulators::graph::GraphEmulatorHandle,
    token: &str,
    first: &str,
) -> (Vec<Value>, usize, String) {
    let mut items = Vec::new();
    let mut empty = 0;
    let mut url = first.to_owned();
    for _ in 0..1000 {
        let answer = get_with(handle, token, &url).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let value = answer.body["value"].as_array().cloned().unwrap_or_default();
        if value.is_empty() {
            empty += 1;
        }
        items.extend(value);
        if let Some(next) = answer.body["@odata.nextLink"].as_str() {
            assert!(next.contains("/delta?$skiptoken="), "{next}");
            url = next.to_owned();
            continue;
        }
        let delta = answer.body["@odata.deltaLink"].as_str().unwrap_or_default();
        assert!(delta.contains("/delta?$deltatoken="), "{delta}");
        return (items, empty, delta.to_owned());
    }
    panic!("no deltaLink after 1000 pages");
}

#[tokio::test]
async fn rounds_report_removals_with_their_reason_and_skip_empty_pages() {
    let config = GraphEmulatorConfig {
        delta_page_size: 4,
        // One change-log entry per page: pages that find only group changes are empty.
        delta_scan_per_page: 1,
        ..GraphEmulatorConfig::for_tests()
    };
    let handle = start(config, GraphSeed::generate(10, 3, 0, 6)).await;
    let token = token(&handle).await;
    let state = handle.state();
    let (items, _, delta_link) = round(
        &handle,
        &token,
        "/v1.0/users/delta?$select=id,displayName,accountEnabled",
    )
    .await;
    assert_eq!(items.len(), 10);
    assert!(
        items
            .iter()
            .all(|i| i.get("accountEnabled").is_some() && i.get("mail").is_none())
    );

    let user = |i: usize| state.users[i].id.clone();
    let group = state.groups[0].id.clone();
    let member = state.groups[0]
        .members
        .iter()
        .find(|m| **m != user(0) && **m != user(1))
        .cloned()
        .unwrap_or_default();
    for result in [
        handle.soft_delete_user(&user(0)),
        handle.hard_delete_user(&user(1)),
        handle.remove_member(&group, &member),
    ] {
        if let Err(error) = result {
            panic!("{error}");
        }
    }
    let (items, empty, _) = round(&handle, &token, &delta_link).await;
    assert!(empty >= 1, "pages with nothing to report still lead on");
    let removed: Vec<(String, String)> = items
        .iter()
        .filter_map(|i| {
            Some((
                i["id"].as_str()?.to_owned(),
                i["@removed"]["reason"].as_str()?.to_owned(),
            ))
        })
        .collect();
    assert!(
        removed.contains(&(user(0), "changed".to_owned())),
        "{items:?}"
    );
    assert!(
        removed.contains(&(user(1), "deleted".to_owned())),
        "{items:?}"
    );
    assert!(handle.violations().is_empty(), "{:?}", handle.violations());
}

#[tokio::test]
async fn groups_carry_members_delta_and_latest_starts_from_now() {
    let handle = start(
        GraphEmulatorConfig::for_tests(),
        GraphSeed::generate(8, 2, 0, 7),
    )
    .await;
    let token = token(&handle).await;
    let state = handle.state();
    let (items, _, _) = round(
        &handle,
        &token,
        "/v1.0/groups/delta?$select=displayName,members",
    )
    .await;
    let first = items
        .iter()
        .find(|i| i["id"] == state.groups[0].id.as_str());
    let members = first
        .and_then(|g| g["members@delta"].as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(members.len(), state.groups[0].members.len());
    assert!(
        members
            .iter()
            .all(|m| m["@odata.type"] == "#microsoft.graph.user")
    );

    let latest = get_with(
        &handle,
        &token,
        "/v1.0/groups/delta?$select=displayName,members&$deltatoken=latest",
    )
    .await;
    assert_eq!(latest.body["value"].as_array().map(Vec::len), Some(0));
    let from_now = latest.body["@odata.deltaLink"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (g0, g1) = (state.groups[0].id.clone(), state.groups[1].id.clone());
    let leaving = state.groups[0].members[0].clone();
    for result in [
        handle.add_member(&g1, &g0),
        handle.remove_member(&g0, &leaving),
    ] {
        if let Err(error) = result {
            panic!("{error}");
        }
    }
    let (items, _, _) = round(&handle, &token, &from_now).await;
    assert_eq!(items.len(), 2, "{items:?}");
    let delta_of = |id: &str| -> Vec<Value> {
        items
            .iter()
            .find(|i| i["id"] == id)
            .and_then(|g| g["members@delta"].as_array().cloned())
            .unwrap_or_default()
    };
    let added = delta_of(&g1);
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["@odata.type"], "#microsoft.graph.group");
    assert_eq!(added[0]["id"], g0.as_str());
    let gone = delta_of(&g0);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0]["id"], leaving.as_str());
    assert_eq!(gone[0]["@removed"]["reason"], "deleted");
}

#[tokio::test]
async fn expired_tokens_answer_gone_or_sync_state_not_found() {
    let handle = start(
        GraphEmulatorConfig::for_tests(),
        GraphSeed::generate(3, 1, 0, 8),
    )
    .await;
    let token = token(&handle).await;
    let (_, _, delta_link) = round(&handle, &token, "/v1.0/users/delta?$select=id").await;
    handle.expire_delta_tokens();
    let gone = get_with(&handle, &token, &delta_link).await;
    assert_eq!(gone.status, StatusCode::GONE);
    let location = gone.header("location").unwrap_or_default().to_owned();
    assert!(
        location.ends_with("/v1.0/users/delta?$deltatoken="),
        "{location}"
    );
    // The Location starts a fresh round.
    let (items, _, delta_link) = round(&handle, &token, &location).await;
    assert_eq!(items.len(), 3);

    handle.set_delta_expiry(DeltaExpiry::SyncStateNotFound);
    handle.expire_delta_tokens();
    let refused = get_with(&handle, &token, &delta_link).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["error"]["code"], "syncStateNotFound");
    let garbage = get_with(&handle, &token, "/v1.0/users/delta?$deltatoken=garbage").await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert_eq!(garbage.body["error"]["code"], "syncStateNotFound");
}
