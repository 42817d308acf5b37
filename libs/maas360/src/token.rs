//! The MaaS360 token: obtaining it (auth 1.0 or 2.0), refreshing it (2.0, through its own
//! route), caching it, renewing it ahead of expiry or after a 401, with at most one renewal in
//! flight however many callers need a token.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{AuthVersion, ClientOptions, Credentials};
use crate::error::Maas360Error;
use crate::lenient::{signed, text};
use crate::routes::{Route, RouteName};
use crate::transport::{Call, Transport, describe};
use dirsync_http::Secret;

/// `errorCode` of a refused user name or password: "Invalid credentials" (docs/maas360.md
/// §2.2).
const INVALID_CREDENTIALS: i64 = 1002;

/// A token handed to one request, with the generation that lets a 401 tell whether someone
/// else has already replaced it.
#[derive(Clone, Debug)]
pub(crate) struct Lease {
    pub(crate) token: Secret,
    pub(crate) generation: u64,
}

#[derive(Debug)]
struct Held {
    token: Secret,
    refresh: Option<Secret>,
    obtained: Instant,
}

#[derive(Debug, Default)]
struct State {
    held: Option<Held>,
    generation: u64,
    /// The outcome of the last failed attempt, shared with callers that queued behind it so a
    /// refused password costs one call, not one per waiting request.
    last_error: Option<Maas360Error>,
}

/// What an authentication route answered with.
struct Issued {
    token: Secret,
    refresh: Option<Secret>,
}

pub(crate) struct TokenCache {
    // A tokio mutex, held across the authentication call on purpose: waiting on it is what
    // makes concurrent callers share one renewal.
    state: Mutex<State>,
    attempts: AtomicU64,
}

impl TokenCache {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            attempts: AtomicU64::new(0),
        }
    }

    /// A token that is not due for renewal, renewing first if needed.
    pub(crate) async fn lease(&self, ctx: &AuthContext<'_>) -> Result<Lease, Maas360Error> {
        let seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if let Some(held) = &state.held
            && ctx.fresh(held)
        {
            return Ok(lease_of(&state, held));
        }
        match self.renew(&mut state, seen, ctx, false).await {
            Ok(lease) => Ok(lease),
            // Inside the renew-before window the old token still works; use it rather than
            // fail the call, and try renewing again next time.
            Err(error) => match &state.held {
                Some(held) if ctx.usable(held) => Ok(lease_of(&state, held)),
                _ => Err(error),
            },
        }
    }

    /// A replacement for a token MaaS360 refused (401, errorCode 1009). If another caller has
    /// already replaced it, that token is reused instead of authenticating again.
    pub(crate) async fn lease_after_rejection(
        &self,
        rejected: u64,
        ctx: &AuthContext<'_>,
    ) -> Result<Lease, Maas360Error> {
        let seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if state.generation != rejected
            && let Some(held) = &state.held
            && ctx.fresh(held)
        {
            return Ok(lease_of(&state, held));
        }
        state.held = state.held.take().map(|held| Held {
            // The rejected token is dead; keep only its refresh token.
            token: Secret::default(),
            ..held
        });
        let result = self.renew(&mut state, seen, ctx, false).await;
        if result.is_err()
            && state
                .held
                .as_ref()
                .is_some_and(|h| h.token.expose().is_empty())
        {
            state.held = None;
        }
        result
    }

    /// One full authentication now, whatever the cache holds.
    pub(crate) async fn authenticate_now(&self, ctx: &AuthContext<'_>) -> Result<(), Maas360Error> {
        let mut state = self.state.lock().await;
        let seen = self.attempts.load(Ordering::Acquire);
        self.renew(&mut state, seen, ctx, true).await.map(|_| ())
    }

    /// One call to the refresh route now (auth 2.0), authenticating first if no refresh token
    /// is held, and without falling back to the password: it answers whether refreshing works.
    pub(crate) async fn refresh_now(&self, ctx: &AuthContext<'_>) -> Result<(), Maas360Error> {
        if ctx.options.auth_version != AuthVersion::V2 {
            return Err(Maas360Error::Config(
                "token refresh needs auth_version V2; auth 1.0 issues no refresh token".to_owned(),
            ));
        }
        let mut state = self.state.lock().await;
        let refresh = match state.held.as_ref().and_then(|h| h.refresh.clone()) {
            Some(refresh) => refresh,
            None => {
                let seen = self.attempts.load(Ordering::Acquire);
                self.renew(&mut state, seen, ctx, true).await?;
                state
                    .held
                    .as_ref()
                    .and_then(|h| h.refresh.clone())
                    .ok_or_else(|| Maas360Error::Permanent {
                        status: None,
                        detail: format!(
                            "{}: the answer carried no refreshToken",
                            ctx.options.routes.get(RouteName::AuthV2).name
                        ),
                    })?
            }
        };
        let result = ctx.refresh(&refresh).await;
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(issued) => {
                install(&mut state, issued);
                Ok(())
            }
            Err(error) => {
                // The refresh token may be spent; the next renewal uses the password.
                if let Some(held) = state.held.as_mut() {
                    held.refresh = None;
                }
                Err(error)
            }
        }
    }

    async fn renew(
        &self,
        state: &mut State,
        seen: u64,
        ctx: &AuthContext<'_>,
        force_password: bool,
    ) -> Result<Lease, Maas360Error> {
        if !force_password
            && self.attempts.load(Ordering::Acquire) != seen
            && let Some(error) = &state.last_error
        {
            return Err(error.clone());
        }
        let refresh = match (ctx.options.auth_version, force_password) {
            (AuthVersion::V2, false) => state.held.as_ref().and_then(|h| h.refresh.clone()),
            _ => None,
        };
        let result = match refresh {
            Some(refresh) => match ctx.refresh(&refresh).await {
                Ok(issued) => Ok(issued),
                // Refreshing failing is normal (expired, rotated, or no such route on this
                // tenant); full authentication still works. A rate limit is the exception:
                // a second call would only deepen it.
                Err(error) if error.is_rate_limited() => Err(error),
                Err(error) => {
                    tracing::debug!(%error, "token refresh failed; authenticating in full");
                    ctx.login().await
                }
            },
            None => ctx.login().await,
        };
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(issued) => {
                state.last_error = None;
                Ok(install(state, issued))
            }
            Err(error) => {
                state.last_error = Some(error.clone());
                Err(error)
            }
        }
    }
}

/// Makes `issued` the held token, in a new generation.
fn install(state: &mut State, issued: Issued) -> Lease {
    state.generation += 1;
    let held = Held {
        token: issued.token,
        refresh: issued.refresh,
        obtained: Instant::now(),
    };
    let lease = lease_of(state, &held);
    state.held = Some(held);
    lease
}

fn lease_of(state: &State, held: &Held) -> Lease {
    Lease {
        token: held.token.clone(),
        generation: state.generation,
    }
}

/// Everything an authentication call needs, borrowed from the client.
pub(crate) struct AuthContext<'a> {
    pub(crate) credentials: &'a Credentials,
    pub(crate) options: &'a ClientOptions,
    pub(crate) transport: &'a Transport,
}

impl AuthContext<'_> {
    fn fresh(&self, held: &Held) -> bool {
        let renew_at = self
            .options
            .token_lifetime
            .saturating_sub(self.options.renew_before);
        !held.token.expose().is_empty() && held.obtained.elapsed() < renew_at
    }

    fn usable(&self, held: &Held) -> bool {
        !held.token.expose().is_empty() && held.obtained.elapsed() < self.options.token_lifetime
    }

    /// Full authentication: the `authRequest.maaS360AdminAuth` fields of docs/maas360.md §2.2,
    /// password and app access key included (2.0 takes the same, §2.3).
    async fn login(&self) -> Result<Issued, Maas360Error> {
        let c = self.credentials;
        let route = self.options.routes.get(match self.options.auth_version {
            AuthVersion::V1 => RouteName::AuthV1,
            AuthVersion::V2 => RouteName::AuthV2,
        });
        let params = vec![
            ("billingID", c.billing_id.clone()),
            ("platformID", c.platform_id.clone()),
            ("appID", c.app_id.clone()),
            ("appVersion", c.app_version.clone()),
            ("appAccessKey", c.app_access_key.expose().to_owned()),
            ("userName", c.admin_user.clone()),
            ("password", c.password.expose().to_owned()),
        ];
        self.exchange(route, params, None).await
    }

    /// The refresh route: billingID, userName, appID, appVersion, platformID and the refresh
    /// token, with no password and no access key (docs/maas360.md §2.3).
    async fn refresh(&self, refresh: &Secret) -> Result<Issued, Maas360Error> {
        let c = self.credentials;
        let route = self.options.routes.get(RouteName::RefreshToken);
        let params = vec![
            ("billingID", c.billing_id.clone()),
            ("userName", c.admin_user.clone()),
            ("appID", c.app_id.clone()),
            ("appVersion", c.app_version.clone()),
            ("platformID", c.platform_id.clone()),
            ("refreshToken", refresh.expose().to_owned()),
        ];
        self.exchange(route, params, Some("refresh token")).await
    }

    /// One authentication call. `refused` names the part to blame on a refusal when the grant
    /// itself decides it (the refresh token); otherwise MaaS360's answer does.
    async fn exchange(
        &self,
        route: &Route,
        params: Vec<(&'static str, String)>,
        refused: Option<&str>,
    ) -> Result<Issued, Maas360Error> {
        let call = Call {
            route,
            url: self.transport.url(
                route,
                &[("billingID", self.credentials.billing_id.as_str())],
            )?,
            params,
        };
        let reply = self.transport.execute(&call, None).await?;
        let status = reply.status.as_u16();
        let desc = describe(reply.body.as_ref());
        let response = reply
            .body
            .as_ref()
            .map(|body| body.get("authResponse").unwrap_or(body));
        let code = response.and_then(|r| signed(r.get("errorCode")));
        let part = || refused.map_or_else(|| refused_part(&desc, code), str::to_owned);
        match status {
            200..=299 => {}
            401 | 403 => {
                return Err(Maas360Error::Auth {
                    part: part(),
                    detail: format!("{}: HTTP {status} {desc}", route.name),
                    status: Some(status),
                });
            }
            429 => {
                return Err(Maas360Error::RateLimited {
                    detail: format!("{}: HTTP {status} {desc}", route.name),
                    retry_after: reply.rate_limit_wait(),
                    status: Some(status),
                });
            }
            408 | 500..=599 => {
                return Err(Maas360Error::Retryable {
                    detail: format!("{}: HTTP {status} {desc}", route.name),
                    retry_after: reply.retry_after,
                    status: Some(status),
                });
            }
            _ => {
                return Err(Maas360Error::Permanent {
                    status: Some(status),
                    detail: format!(
                        "{}: HTTP {status} {desc} ({} {} is {} {})",
                        route.name,
                        route.method.as_str(),
                        route.template,
                        route.evidence.tag(),
                        route.source
                    ),
                });
            }
        }
        let Some(response) = response else {
            return Err(Maas360Error::Permanent {
                status: Some(status),
                detail: format!("{}: response is not JSON", route.name),
            });
        };
        // Clients check errorCode, not the HTTP status: refusals come back as 200 (docs/maas360.md §2.2).
        if let Some(code) = code.filter(|c| *c != 0) {
            return Err(Maas360Error::Auth {
                part: part(),
                detail: format!("{}: errorCode {code}: {desc}", route.name),
                status: Some(status),
            });
        }
        let token = text(response.get("authToken"));
        if token.is_empty() {
            return Err(Maas360Error::Permanent {
                status: Some(status),
                detail: format!("{}: no authToken in the response", route.name),
            });
        }
        let refresh = Some(text(response.get("refreshToken")))
            .filter(|r| !r.is_empty())
            .map(Secret::new);
        tracing::debug!(route = route.name.as_str(), "authenticated to MaaS360");
        Ok(Issued {
            token: Secret::new(token),
            refresh,
        })
    }
}

/// Which credential MaaS360 refused, from its `errorDesc` and `errorCode`. Only 1002
/// ("Invalid credentials": the admin user or password) is documented; the other texts are not
/// (the Error Codes chapter is a gap, docs/maas360.md §10), so this reads keywords.
pub(crate) fn refused_part(desc: &str, code: Option<i64>) -> String {
    let d = desc.to_ascii_lowercase();
    let part = if d.contains("refresh") {
        "refresh token"
    } else if d.contains("billing") || d.contains("customer") {
        "billing id"
    } else if d.contains("access key") || d.contains("accesskey") {
        "app access key"
    } else if d.contains("app id") || d.contains("appid") || d.contains("application id") {
        "app id"
    } else if d.contains("platform") {
        "platform id"
    } else if d.contains("version") {
        "app version"
    } else if code == Some(INVALID_CREDENTIALS)
        || d.contains("password")
        || d.contains("user")
        || d.contains("credential")
        || d.contains("admin")
    {
        "admin credentials"
    } else {
        "unknown"
    };
    part.to_owned()
}

#[cfg(test)]
mod tests {
    use super::refused_part;

    #[test]
    fn names_the_refused_part() {
        assert_eq!(refused_part("Invalid billing ID", Some(1001)), "billing id");
        assert_eq!(
            refused_part("Invalid credentials", Some(1002)),
            "admin credentials"
        );
        assert_eq!(refused_part("", Some(1002)), "admin credentials");
        assert_eq!(
            refused_part("Invalid app access key", None),
            "app access key"
        );
        assert_eq!(refused_part("Invalid application ID", None), "app id");
        assert_eq!(
            refused_part("Invalid or expired refresh token", None),
            "refresh token"
        );
        assert_eq!(refused_part("Something odd", Some(77)), "unknown");
    }
}
