//! One HTTP exchange with Entra ID or Graph: the concurrency bound, the timeout, the body cap,
//! the headers every call carries, and the per-route call counts. Nothing here retries or
//! judges a status; [`crate::client`] does both.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::Secret;
use crate::error::GraphError;

/// Bodies beyond this are refused rather than buffered. The largest legitimate one, a `$batch`
/// of 20 pages of 999 members, is well under it.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone, Debug)]
pub(crate) enum Payload {
    None,
    /// The token request (docs/graph.md §1.1).
    Form(Vec<(&'static str, String)>),
    /// `$batch` (docs/graph.md §5).
    Json(Value),
}

/// A request, kept whole so it can be sent again after a 401 or a retryable failure.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    /// Route name for counts and logs (`"users"`, `"token"`, …); never a URL with ids.
    pub(crate) route: &'static str,
    pub(crate) post: bool,
    pub(crate) url: Url,
    pub(crate) payload: Payload,
}

/// A response whose status has not been judged yet.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) location: Option<String>,
    /// `None` when the body was empty or not JSON.
    pub(crate) body: Option<Value>,
}

/// A failure before a complete response arrived.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Timeout, refused connection, reset: worth retrying.
    Network(String),
    /// Nothing to retry: an oversized body, a request that cannot be built.
    Fatal(GraphError),
}

pub(crate) struct Transport {
    http: reqwest::Client,
    permits: Semaphore,
    counts: Mutex<BTreeMap<(String, String), u64>>,
}

impl Transport {
    pub(crate) fn new(timeout: Duration, max_concurrency: usize) -> Result<Self, GraphError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| GraphError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            permits: Semaphore::new(max_concurrency),
            counts: Mutex::new(BTreeMap::new()),
        })
    }

    /// Sends once under a concurrency permit; `bearer` goes in `Authorization`.
    pub(crate) async fn send(
        &self,
        request: &Request,
        bearer: Option<&Secret>,
    ) -> Result<Reply, Failure> {
        let _permit = self.permits.acquire().await.map_err(|_| {
            Failure::Fatal(GraphError::Config("the client is shutting down".to_owned()))
        })?;
        let mut builder = if request.post {
            self.http.post(request.url.clone())
        } else {
            self.http.get(request.url.clone())
        };
        builder = builder
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            // Lets Microsoft support find the call; a fresh one per exchange.
            .header("client-request-id", uuid::Uuid::new_v4().to_string());
        if let Some(token) = bearer {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    Failure::Fatal(GraphError::InvalidResponse(
                        "the access token is not a valid header value".to_owned(),
                    ))
                })?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        builder = match &request.payload {
            Payload::None => builder,
            Payload::Form(fields) => builder.form(fields),
            Payload::Json(value) => builder
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(value.to_string()),
        };
        let mut response = match builder.send().await {
            Ok(response) => response,
            Err(error) => return Err(self.network_failure(request.route, &error)),
        };
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header(RETRY_AFTER).and_then(|v| dirsync_http::retry_after(&v));
        let location = header(LOCATION);
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                        self.count(request.route, "oversized");
                        return Err(Failure::Fatal(GraphError::InvalidResponse(format!(
                            "{}: response larger than {MAX_BODY_BYTES} bytes",
                            request.route
                        ))));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => return Err(self.network_failure(request.route, &error)),
            }
        }
        self.count(request.route, status.as_str());
        tracing::debug!(
            route = request.route,
            status = status.as_u16(),
            "Graph call"
        );
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        Ok(Reply {
            status,
            retry_after,
            location,
            body,
        })
    }

    fn network_failure(&self, route: &'static str, error: &reqwest::Error) -> Failure {
        let outcome = if error.is_timeout() {
            "timeout"
        } else if error.is_connect() {
            "connect"
        } else {
            "transport"
        };
        self.count(route, outcome);
        tracing::debug!(route, outcome, "Graph call failed");
        if error.is_builder() {
            return Failure::Fatal(GraphError::Config(format!("{route}: {error}")));
        }
        // reqwest's message names the URL, which carries ids and paging tokens but never a
        // credential: tokens travel in headers and secrets in the form body.
        Failure::Network(format!("{route} ({outcome}): {error}"))
    }

    fn count(&self, route: &str, outcome: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .entry((route.to_owned(), outcome.to_owned()))
            .or_insert(0) += 1;
    }

    pub(crate) fn counts(&self) -> BTreeMap<(String, String), u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
