//! How the simulated job talks to the SCIM server: pacing, one request and its reply, and the
//! two stops that hold for every task of a cycle: a `Retry-After` pause and a rejected token.
//!
//! Nothing here retries. Entra retries a failed operation in a later cycle, not at once
//! (`docs/entra-scim.md §8`), so a failure goes back to the job that sent it.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::requests::{SCIM_CONTENT_TYPE, error_detail};

/// Longest `Retry-After` the simulator honours; a misbehaving server must not
/// be able to stall a run indefinitely.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Longest single pacing wait, guarding against absurdly low rates.
const MAX_PACING_WAIT: Duration = Duration::from_secs(3600);
/// Replies Entra reads are small (one resource or one page); a larger body
/// means a broken server, and must not exhaust memory.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Requests sent, per kind (`query`, `create`, `patch`, `delete`).
#[derive(Debug, Default)]
pub(super) struct RequestCounts {
    pub(super) by_kind: BTreeMap<&'static str, u64>,
}

/// The connection to the SCIM server, shared by the tasks of a cycle.
pub(super) struct Transport {
    client: reqwest::Client,
    /// The SCIM base URL, without a query string.
    pub(super) base: Url,
    auth: HeaderValue,
    pacer: Option<Pacer>,
    /// Set from `Retry-After`; no request starts before it.
    paused_until: Mutex<Option<Instant>>,
    /// Set on 401: the status and the server's detail. Every task stops at its next request.
    rejection: Mutex<Option<(u16, String)>>,
}

/// A reply as the job reads it: status and the whole (bounded) body.
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) body: Vec<u8>,
}

/// Why no reply came back.
pub(super) enum SendError {
    /// The job was quarantined (401) while this task waited.
    Aborted,
    Transport(String),
}

impl Transport {
    pub(super) fn new(
        client: reqwest::Client,
        base: Url,
        auth: HeaderValue,
        pacer: Option<Pacer>,
    ) -> Self {
        Self {
            client,
            base,
            auth,
            pacer,
            paused_until: Mutex::new(None),
            rejection: Mutex::new(None),
        }
    }

    /// Whether the server rejected the bearer token.
    pub(super) fn rejected(&self) -> bool {
        lock(&self.rejection).is_some()
    }

    /// The 401's status and detail, once the server rejected the bearer token.
    pub(super) fn rejection(&self) -> Option<(u16, String)> {
        lock(&self.rejection).clone()
    }

    async fn wait_out_pause(&self) {
        let until = *lock(&self.paused_until);
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                tokio::time::sleep(until - now).await;
            }
        }
    }

    /// Sends one request after any pause and pacing, and reads the whole reply. A 429 or 503
    /// with `Retry-After` pauses every task; a 401 stops them.
    pub(super) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        kind: &'static str,
        counts: &mut RequestCounts,
    ) -> Result<Reply, SendError> {
        if self.rejected() {
            return Err(SendError::Aborted);
        }
        self.wait_out_pause().await;
        if let Some(pacer) = &self.pacer {
            pacer.acquire().await;
        }
        if self.rejected() {
            return Err(SendError::Aborted);
        }
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, SCIM_CONTENT_TYPE);
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| SendError::Transport(format!("could not encode body: {e}")))?;
            request = request.header(CONTENT_TYPE, SCIM_CONTENT_TYPE).body(bytes);
        }
        *counts.by_kind.entry(kind).or_insert(0) += 1;
        tracing::debug!(%method, url = %url, "SCIM request");
        let mut response = request
            .send()
            .await
            .map_err(|e| SendError::Transport(describe_transport(&e)))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(dirsync_http::retry_after)
            .map(|delay| delay.min(MAX_RETRY_AFTER));
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| SendError::Transport(describe_transport(&e)))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(SendError::Transport(format!(
                    "{status} response larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if (status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE)
            && let Some(delay) = retry_after
        {
            // Entra (since ~2025) pauses the job for Retry-After; the failed
            // request itself waits for the next cycle.
            let until = Instant::now() + delay;
            let mut paused = lock(&self.paused_until);
            if paused.is_none_or(|current| current < until) {
                *paused = Some(until);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            let mut rejection = lock(&self.rejection);
            if rejection.is_none() {
                *rejection = Some((status.as_u16(), error_detail(&body)));
            }
        }
        Ok(Reply { status, body })
    }
}

/// Token bucket with a capacity of one request, i.e. evenly spaced requests.
pub(super) struct Pacer {
    rate: f64,
    state: tokio::sync::Mutex<PacerState>,
}

struct PacerState {
    tokens: f64,
    last: Instant,
}

impl Pacer {
    /// `None` unless `rate` is a positive, finite number of requests per second.
    pub(super) fn new(rate: f64) -> Option<Self> {
        (rate.is_finite() && rate > 0.0).then(|| Self {
            rate,
            state: tokio::sync::Mutex::new(PacerState {
                tokens: 1.0,
                last: Instant::now(),
            }),
        })
    }

    async fn acquire(&self) {
        let wait = {
            let mut state = self.state.lock().await;
            let now = Instant::now();
            let refill = now.duration_since(state.last).as_secs_f64() * self.rate;
            state.tokens = (state.tokens + refill).min(1.0);
            state.last = now;
            // Reserve the token even when it is not there yet, so concurrent
            // callers queue behind each other instead of all waking together.
            state.tokens -= 1.0;
            if state.tokens < 0.0 {
                Duration::try_from_secs_f64(-state.tokens / self.rate)
                    .unwrap_or(MAX_PACING_WAIT)
                    .min(MAX_PACING_WAIT)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A poisoned lock still holds a usable value: the pause and the rejection are plain data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Path and query, for failure messages.
pub(super) fn relative(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// A transport error with its chain of causes, which reqwest keeps out of `Display`.
fn describe_transport(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
