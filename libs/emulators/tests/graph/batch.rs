//! `$batch` on the wire (docs/graph.md §5).

use dirsync_emulators::graph::{GraphEmulatorConfig, GraphSeed, Throttle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Answer, http, send, start, token};

async fn batch(
    handle: &dirsync_emulators::graph::GraphEmulatorHandle,
    token: &str,
    body: Value,
) -> Answer {
    let url = format!("{}/v1.0/$batch", handle.base_url());
    send(http().post(url).bearer_auth(token).json(&body)).await
}

fn item<'a>(answer: &'a Answer, id: &str) -> &'a Value {
    answer.body["responses"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == id))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn items_answer_on_their_own() {
    let handle = start(
        GraphEmulatorConfig::for_tests(),
        GraphSeed::generate(6, 2, 0, 9),
    )
    .await;
    let token = token(&handle).await;
    let group = handle.state().groups[0].id.clone();
    handle.set_throttle(Throttle {
        next: 1,
        retry_after_secs: 0.25,
        ..Throttle::default()
    });
    let answer = batch(
        &handle,
        &token,
        json!({"requests": [
            {"id": "1", "method": "GET", "url": "/organization"},
            {"id": "2", "method": "GET", "url": format!("groups/{group}/members?$select=id")},
            {"id": "3", "method": "GET", "url": "/groups/missing/members"},
            {"id": "4", "method": "GET", "url": "/users", "dependsOn": ["3"]},
        ]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    // The first item met the throttle: 429 with its own, fractional Retry-After.
    assert_eq!(item(&answer, "1")["status"], 429);
    assert_eq!(item(&answer, "1")["headers"]["Retry-After"], "0.25");
    assert_eq!(item(&answer, "2")["status"], 200);
    assert!(
        item(&answer, "2")["body"]["value"]
            .as_array()
            .is_some_and(|v| !v.is_empty())
    );
    assert_eq!(item(&answer, "3")["status"], 404);
    assert_eq!(item(&answer, "4")["status"], 424);
    assert_eq!(handle.requests_to("batch"), 1);
    assert_eq!(handle.requests_to("group_members"), 2);
}

#[tokio::test]
async fn malformed_batches_fail_whole() {
    let handle = start(
        GraphEmulatorConfig::for_tests(),
        GraphSeed::generate(2, 1, 0, 10),
    )
    .await;
    let token = token(&handle).await;
    let too_many: Vec<Value> = (1..=21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    let answer = batch(&handle, &token, json!({ "requests": too_many })).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let duplicate = json!({"requests": [
        {"id": "a", "method": "GET", "url": "/users"},
        {"id": "A", "method": "GET", "url": "/groups"},
    ]});
    let answer = batch(&handle, &token, duplicate).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = batch(&handle, &token, json!({"requests": "nope"})).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = batch(&handle, "not-a-token", json!({"requests": []})).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}
