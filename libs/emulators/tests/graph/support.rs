//! An emulator, a plain HTTP client, and a token.

use std::time::Duration;

use dirsync_emulators::graph::{self as emu, GraphEmulatorConfig, GraphEmulatorHandle, GraphSeed};
use reqwest::StatusCode;
use serde_json::Value;

pub(crate) async fn start(config: GraphEmulatorConfig, seed: GraphSeed) -> GraphEmulatorHandle {
    match emu::start(config, seed).await {
        Ok(handle) => handle,
        Err(error) => panic!("emulator did not start: {error}"),
    }
}

pub(crate) fn http() -> reqwest::Client {
    match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(error) => panic!("reqwest: {error}"),
    }
}

/// A reply read whole: status, headers we look at, JSON body (`Null` when not JSON).
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub(crate) async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => panic!("request: {error}"),
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

/// The token form for the configured application, secret in the form.
pub(crate) fn token_form(config: &GraphEmulatorConfig, base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", config.client_id.clone()),
        ("client_secret", config.client_secret.clone()),
        ("scope", format!("{base}/.default")),
        ("grant_type", "client_credentials".to_owned()),
    ]
}

pub(crate) async fn token(handle: &GraphEmulatorHandle) -> String {
    let config = handle.config();
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        handle.base_url(),
        config.tenant_id
    );
    let answer = send(
        http()
            .post(url)
            .form(&token_form(config, &handle.base_url())),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body["access_token"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default()
}

/// `GET {base}{path}` with a fresh token.
pub(crate) async fn get(handle: &GraphEmulatorHandle, path: &str) -> Answer {
    let token = token(handle).await;
    get_with(handle, &token, path).await
}

pub(crate) async fn get_with(handle: &GraphEmulatorHandle, token: &str, path: &str) -> Answer {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        format!("{}{path}", handle.base_url())
    };
    send(http().get(url).bearer_auth(token)).await
}

pub(crate) fn ids(body: &Value) -> Vec<String> {
    body["value"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
