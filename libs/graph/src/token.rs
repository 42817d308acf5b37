//! The app-only access token: requesting it (secret or certificate, docs/graph.md §1),
//! caching it until shortly before it expires, renewing it once after a 401, with at most one
//! request to the token endpoint in flight however many callers need a token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::Secret;
use crate::assertion::{ASSERTION_TYPE, client_assertion};
use crate::classify::token_error;
use crate::cloud::Endpoints;
use crate::credentials::{ClientCredential, Credentials};
use crate::error::GraphError;
use crate::retry::Retrying;
use crate::transport::{Payload, Request};

/// A token handed to one request, with the generation that lets a 401 tell whether another
/// caller has already replaced it.
#[derive(Clone, Debug)]
pub(crate) struct Lease {
    pub(crate) token: Secret,
    pub(crate) generation: u64,
}

#[derive(Debug)]
struct Held {
    token: Secret,
    /// From here on, callers renew first.
    renew_at: Instant,
    /// Until here the token still works, should a renewal fail.
    expires_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    held: Option<Held>,
    generation: u64,
    /// The last failed request's error, handed to callers that queued behind it, so refused
    /// credentials cost one token request rather than one per waiting caller.
    last_error: Option<GraphError>,
}

/// When to renew a token that lives `lifetime`: `renew_before` ahead of its expiry, but never
/// earlier than half-way, so a short-lived token is still used for a while.
pub(crate) fn renew_after(lifetime: Duration, renew_before: Duration) -> Duration {
    lifetime.saturating_sub(renew_before.min(lifetime / 2))
}

pub(crate) struct TokenCache {
    // A tokio mutex held across the token request on purpose: waiting on it is what makes
    // concurrent callers share one renewal.
    state: Mutex<State>,
    attempts: AtomicU64,
}

/// Everything a token request needs, borrowed from the client.
pub(crate) struct Issuer<'a> {
    pub(crate) credentials: &'a Credentials,
    pub(crate) endpoints: &'a Endpoints,
    pub(crate) sender: &'a Retrying,
}

impl TokenCache {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            attempts: AtomicU64::new(0),
        }
    }

    /// A token not yet due for renewal, renewing first when needed.
    pub(crate) async fn lease(&self, issuer: &Issuer<'_>) -> Result<Lease, GraphError> {
        let seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let Some(held) = &state.held
            && now < held.renew_at
        {
            return Ok(lease_of(&state, held));
        }
        match self.renew(&mut state, Some(seen), issuer).await {
            Ok(lease) => Ok(lease),
            // Inside the renewal window the old token still works: use it rather than fail
            // the call, and try renewing again next time.
            Err(error) => match &state.held {
                Some(held) if Instant::now() < held.expires_at => Ok(lease_of(&state, held)),
                _ => Err(error),
            },
        }
    }

    /// A replacement for a token Graph answered 401 to. When another caller has replaced it
    /// already, that token is used instead of requesting one more.
    pub(crate) async fn lease_after_rejection(
        &self,
        rejected: u64,
        issuer: &Issuer<'_>,
    ) -> Result<Lease, GraphError> {
        let seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if state.generation != rejected
            && let Some(held) = &state.held
            && Instant::now() < held.renew_at
        {
            return Ok(lease_of(&state, held));
        }
        // The rejected token is dead whatever its expiry said.
        state.held = None;
        self.renew(&mut state, Some(seen), issuer).await
    }

    /// One token request now, whatever the cache holds (the connection check).
    pub(crate) async fn renew_now(&self, issuer: &Issuer<'_>) -> Result<Lease, GraphError> {
        let mut state = self.state.lock().await;
        self.renew(&mut state, None, issuer).await
    }

    /// Requests a token, unless `seen` shows that a request failed while this caller queued,
    /// in which case that failure is the answer.
    async fn renew(
        &self,
        state: &mut State,
        seen: Option<u64>,
        issuer: &Issuer<'_>,
    ) -> Result<Lease, GraphError> {
        if let Some(seen) = seen
            && self.attempts.load(Ordering::Acquire) != seen
            && let Some(error) = &state.last_error
        {
            return Err(error.clone());
        }
        let requested = Instant::now();
        let result = issuer.issue().await;
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok((token, lifetime)) => {
                state.generation += 1;
                state.last_error = None;
                let renew_at =
                    requested + renew_after(lifetime, issuer.sender.options.renew_before);
                let held = Held {
                    token,
                    renew_at,
                    expires_at: requested + lifetime,
                };
                let lease = lease_of(state, &held);
                state.held = Some(held);
                Ok(lease)
            }
            Err(error) => {
                state.last_error = Some(error.clone());
                Err(error)
            }
        }
    }
}

fn lease_of(state: &State, held: &Held) -> Lease {
    Lease {
        token: held.token.clone(),
        generation: state.generation,
    }
}

impl Issuer<'_> {
    /// `POST {login}/{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`
    /// (docs/graph.md §1.1, §1.2): the token and its lifetime.
    async fn issue(&self) -> Result<(Secret, Duration), GraphError> {
        let credentials = self.credentials;
        let mut form = vec![
            ("client_id", credentials.client_id.clone()),
            ("scope", self.endpoints.scope.clone()),
            ("grant_type", "client_credentials".to_owned()),
        ];
        match &credentials.credential {
            ClientCredential::Secret(secret) => {
                form.push(("client_secret", secret.expose().to_owned()));
            }
            ClientCredential::Certificate(certificate) => {
                let assertion = client_assertion(
                    certificate,
                    &credentials.client_id,
                    self.endpoints.token.as_str(),
                    SystemTime::now(),
                )?;
                form.push(("client_assertion_type", ASSERTION_TYPE.to_owned()));
                form.push(("client_assertion", assertion.expose().to_owned()));
            }
        }
        let request = Request {
            route: "token",
            post: true,
            url: self.endpoints.token.clone(),
            payload: Payload::Form(form),
        };
        let reply = self.sender.send(&request, None).await?;
        if !reply.status.is_success() {
            let error = token_error(&reply, credentials.credential.kind());
            tracing::warn!(error = %error, "token request refused");
            return Err(error);
        }
        let body = reply.body.unwrap_or(Value::Null);
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                GraphError::InvalidResponse("token response without access_token".to_owned())
            })?;
        // `expires_in` is a number of seconds (docs/graph.md §1.3); some proxies send it as a
        // string.
        let lifetime = match body.get("expires_in") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| {
            GraphError::InvalidResponse("token response without expires_in".to_owned())
        })?;
        tracing::debug!(lifetime_s = lifetime, "obtained a Graph access token");
        Ok((Secret::new(token), Duration::from_secs(lifetime)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_ahead_of_expiry_but_not_before_half_way() {
        let min = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(renew_after(min(60), min(5)), min(55));
        assert_eq!(
            renew_after(Duration::from_secs(3599), min(5)),
            Duration::from_secs(3299)
        );
        assert_eq!(renew_after(min(6), min(5)), min(3));
        assert_eq!(renew_after(Duration::ZERO, min(5)), Duration::ZERO);
    }
}
