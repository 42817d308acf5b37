//! Sending a request until it gets an answer worth judging: 429, 500, 502, 503 and 504 and network
//! failures are retried a bounded number of times, after `Retry-After` when Graph sends one and
//! after a jittered backoff otherwise (docs/graph.md §4.1).
//!
//! Graph throttles per application and tenant (docs/graph.md §4.2), so a Retry-After holds back
//! every request of the client, not only the one that got it: while requests keep arriving during
//! the wait, Graph keeps counting them (docs/graph.md §4.1).

use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::time::Instant;

use crate::Secret;
use crate::error::GraphError;
use crate::options::ClientOptions;
use crate::transport::{Failure, Reply, Request, Transport};

/// Statuses worth sending again unchanged. Every request this client makes is a read (the
/// token request and `$batch` of GETs included), so a retry never applies anything twice.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

pub(crate) struct Retrying {
    pub(crate) transport: Transport,
    pub(crate) options: ClientOptions,
    /// No request leaves before this instant: the end of the last wait Graph asked for.
    quiet_until: Mutex<Option<Instant>>,
}

impl Retrying {
    pub(crate) fn new(transport: Transport, options: ClientOptions) -> Self {
        Self {
            transport,
            options,
            quiet_until: Mutex::new(None),
        }
    }

    /// Holds every request of this client back for `wait` from now (never shortens a
    /// longer hold already in force).
    pub(crate) fn hold(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut quiet = self.quiet_until.lock().unwrap_or_else(|e| e.into_inner());
        if quiet.is_none_or(|current| current < until) {
            *quiet = Some(until);
        }
    }

    /// Waits out a hold in force.
    async fn quiet(&self) {
        let until = *self.quiet_until.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = until
            && until > Instant::now()
        {
            tokio::time::sleep_until(until).await;
        }
    }

    /// The first reply that is not retryable, or the last one when retries run out or Graph
    /// asks for a longer wait than `max_retry_after`: the caller classifies it.
    pub(crate) async fn send(
        &self,
        request: &Request,
        bearer: Option<&Secret>,
    ) -> Result<Reply, GraphError> {
        let mut failures = 0u32;
        loop {
            self.quiet().await;
            let outcome = self.transport.send(request, bearer).await;
            let wait = match &outcome {
                Ok(reply) if !is_retryable_status(reply.status) => return outcome.map_err(fatal),
                Ok(reply) => self.wait(failures + 1, reply.retry_after),
                Err(Failure::Fatal(_)) => return outcome.map_err(fatal),
                Err(Failure::Network(_)) => self.wait(failures + 1, None),
            };
            failures += 1;
            let Some(wait) = wait.filter(|_| failures <= self.options.max_retries) else {
                return match outcome {
                    Ok(reply) => Ok(reply),
                    Err(failure) => Err(fatal(failure)),
                };
            };
            tracing::debug!(
                route = request.route,
                attempt = failures,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying Graph call"
            );
            self.hold(wait);
        }
    }

    /// How long to wait before attempt `attempt + 1`; `None` when Graph asks for longer than
    /// the client may sleep.
    pub(crate) fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(wait) if wait > self.options.max_retry_after => None,
            Some(wait) => Some(wait),
            None => Some(self.options.backoff.delay(attempt)),
        }
    }
}

fn fatal(failure: Failure) -> GraphError {
    match failure {
        Failure::Fatal(error) => error,
        Failure::Network(detail) => GraphError::Transient {
            status: None,
            retry_after: None,
            detail,
        },
    }
}
