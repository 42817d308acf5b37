//! Graph reads: auth answers, the error envelope, paging, `$select`, `$top`, members, and
//! the violation log (early retries, rebuilt links).

use std::time::Duration;

use dirsync_emulators::graph::{GraphEmulatorConfig, GraphSeed, Throttle};
use reqwest::StatusCode;

use crate::support::{get, get_with, http, ids, send, start, token};

#[tokio::test]
async fn tokens_are_checked_and_errors_use_graphs_envelope() {
    let handle = start(
        GraphEmulatorConfig::for_tests(),
        GraphSeed::generate(5, 2, 0, 1),
    )
    .await;
    let url = format!("{}/v1.0/users", handle.base_url());
    let answer = send(http().get(&url).header("client-request-id", "abc-123")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["error"]["code"], "InvalidAuthenticationToken");
    let inner = &answer.body["error"]["innerError"];
    assert_eq!(inner["client-request-id"], "abc-123");
    assert!(inner["request-id"].is_string() && inner["date"].is_string());
    assert_eq!(answer.header("client-request-id"), Some("abc-123"));
    assert!(answer.header("request-id").is_some());

    let token = token(&handle).await;
    handle.expire_access_tokens();
    let answer = get_with(&handle, &token, "/v1.0/users").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired"))
    );

    // Permissions are fixed when a token is issued.
    handle.set_app_roles(["GroupMember.Read.All"]);
    let answer = get(&handle, "/v1.0/users").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.body["error"]["code"], "Authorization_RequestDenied");
    let answer = get(&handle, "/v1.0/groups").await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn lists_page_by_100_with_links_that_repeat_the_query() {
    let seed = GraphSeed::generate(150, 3, 0, 2);
    let handle = start(GraphEmulatorConfig::for_tests(), seed.clone()).await;
    let token = token(&handle).await;
    let first = get_with(&handle, &token, "/v1.0/users").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(ids(&first.body).len(), 100, "default page size");
    assert!(
        first.body["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("/v1.0/$metadata#users"))
    );
    // The default set: no accountEnabled (docs/graph.md §2.1), unset properties as null.
    let user = &first.body["value"][0];
    assert!(user.get("accountEnabled").is_none());
    assert!(user.get("mobilePhone").is_some_and(|v| v.is_null()));

    let selected = get_with(
        &handle,
        &token,
        "/v1.0/users?$select=id,accountEnabled&$top=60",
    )
    .await;
    assert!(
        selected.body["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("#users(id,accountEnabled)"))
    );
    let next = selected.body["@odata.nextLink"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let prefix = format!(
        "{}/v1.0/users?$select=id,accountEnabled&$top=60&$skiptoken=",
        handle.base_url()
    );
    assert!(next.starts_with(&prefix), "{next}");
    let second = get_with(&handle, &token, &next).await;
    let third = get_with(
        &handle,
        &token,
        second.body["@odata.nextLink"].as_str().unwrap_or_default(),
    )
    .await;
    assert!(third.body.get("@odata.nextLink").is_none(), "last page");
    let mut all = [ids(&selected.body), ids(&second.body), ids(&third.body)].concat();
    all.sort();
    let mut expected: Vec<String> = seed.users.iter().map(|u| u.id.clone()).collect();
    expected.sort();
    assert_eq!(all, expected);
    assert!(handle.violations().is_empty(), "{:?}", handle.violations());

    let too_big = get_with(&handle, &token, "/v1.0/users?$top=1000").await;
    assert_eq!(too_big.status, StatusCode::BAD_REQUEST);
    assert!(
        too_big.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Must be between 1 and 999 inclusive"))
    );
    let unknown = get_with(&handle, &token, "/v1.0/users?$select=id,shoeSize").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let counted = get_with(&handle, &token, "/v1.0/groups?$count=true").await;
    assert!(
        counted.body.get("@odata.count").is_none(),
        "ignored without ConsistencyLevel"
    );
    let counted = crate::support::send(
        http()
            .get(format!("{}/v1.0/groups?$count=true", handle.base_url()))
            .bearer_auth(&token)
            .header("ConsistencyLevel", "eventual"),
    )
    .await;
    assert_eq!(counted.body["@odata.count"], 3);
}

#[tokio::test]
async fn a_rebuilt_next_link_is_recorded() {
    let handle = start(
        GraphEmulatorConfig::for_tests(),
        GraphSeed::generate(20, 2, 0, 3),
    )
    .await;
    let token = token(&handle).await;
    let first = get_with(&handle, &token, "/v1.0/users?$top=5").await;
    let next = first.body["@odata.nextLink"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let rebuilt = next.replace("$top=5", "$top=10");
    let answer = get_with(&handle, &token, &rebuilt).await;
    assert_eq!(answer.status, StatusCode::OK);
    let violations = handle.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].kind, "rebuiltLink");
    // Following it exactly is fine.
    get_with(&handle, &token, &next).await;
    assert_eq!(handle.violations().len(), 1);
}

#[tokio::test]
async fn coming_back_before_retry_after_is_recorded() {
    let config = GraphEmulatorConfig {
        retry_after_grace: Duration::ZERO,
        ..GraphEmulatorConfig::for_tests()
    };
    let handle = start(config, GraphSeed::generate(5, 1, 0, 4)).await;
    let token = token(&handle).await;
    handle.set_throttle(Throttle {
        next: 1,
        retry_after_secs: 1.0,
        ..Throttle::default()
    });
    let throttled = get_with(&handle, &token, "/v1.0/users").await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.header("retry-after"), Some("1"));
    assert!(throttled.header("x-ms-throttle-scope").is_some());
    let early = get_with(&handle, &token, "/v1.0/users").await;
    assert_eq!(early.status, StatusCode::OK);
    let violations = handle.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].kind, "earlyRetry");
}

#[tokio::test]
async fn members_carry_their_type_and_transitive_expansion_survives_cycles() {
    let handle = start(
        GraphEmulatorConfig::for_tests(),
        GraphSeed::generate(12, 3, 0, 5),
    )
    .await;
    let state = handle.state();
    let (a, b, c) = (
        &state.groups[0].id,
        &state.groups[1].id,
        &state.groups[2].id,
    );
    for (parent, child) in [(a, b), (b, c), (c, a)] {
        if let Err(error) = handle.add_member(parent, child) {
            panic!("{error}");
        }
    }
    let answer = get(
        &handle,
        &format!("/v1.0/groups/{a}/members?$select=id,displayName"),
    )
    .await;
    let types: Vec<&str> = answer.body["value"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["@odata.type"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(types.contains(&"#microsoft.graph.user") && types.contains(&"#microsoft.graph.group"));
    let all = get(
        &handle,
        &format!("/v1.0/groups/{a}/transitiveMembers?$top=999"),
    )
    .await;
    let mut found = ids(&all.body);
    found.sort();
    let mut expected: Vec<String> = state
        .groups
        .iter()
        .flat_map(|g| g.members.clone())
        .chain([b.clone(), c.clone()])
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(found, expected);
    let missing = get(&handle, "/v1.0/groups/nope/members").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error"]["code"], "Request_ResourceNotFound");
}

/// 100k users and 10k groups: start-up and a full read of users and groups delta. Run with
/// `cargo test --release -p dirsync-emulators --test graph -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a release-mode measurement, seconds long"]
async fn a_large_tenant_starts_and_pages_quickly() {
    let started = std::time::Instant::now();
    let seed = GraphSeed::generate(100_000, 10_000, 3, 1);
    let generated = started.elapsed();
    let handle = start(GraphEmulatorConfig::for_tests(), seed).await;
    let ready = started.elapsed();
    let token = token(&handle).await;
    let mut url = "/v1.0/users?$select=id,userPrincipalName,accountEnabled&$top=999".to_owned();
    let mut users = 0;
    loop {
        let page = get_with(&handle, &token, &url).await;
        users += ids(&page.body).len();
        match page.body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    let read_users = started.elapsed();
    let mut url = "/v1.0/groups/delta?$select=displayName,members".to_owned();
    let mut groups = 0;
    loop {
        let page = get_with(&handle, &token, &url).await;
        groups += ids(&page.body).len();
        match page.body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    let read_groups = started.elapsed();
    println!(
        "generated {generated:?}, serving {ready:?}, {users} users read {:?}, {groups} group delta items read {:?}",
        read_users - ready,
        read_groups - read_users
    );
    assert_eq!(users, 100_000);
    assert!(groups >= 10_000);
    assert!(handle.violations().is_empty());
}
