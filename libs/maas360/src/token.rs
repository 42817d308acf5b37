//! The MaaS360 token: obtaining it (auth 1.0 or 2.0), caching it, renewing it ahead of expiry
//! or after a 401, with at most one renewal in flight however many callers need a token.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{AuthVersion, ClientOptions, Credentials};
use crate::error::Maas360Error;
use crate::lenient::{signed, text};
use crate::routes::{Route, RouteName};
use crate::secret::Secret;
use crate::transport::{Call, Transport, describe};

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

/// What to present to the authenticate API.
enum Grant {
    Password,
    Refresh(Secret),
}

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

    /// A replacement for a token MaaS360 answered 401 to. If another caller has already
    /// replaced it, that token is reused instead of authenticating again.
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

    /// One password authentication now, whatever the cache holds.
    pub(crate) async fn authenticate_now(&self, ctx: &AuthContext<'_>) -> Result<(), Maas360Error> {
        let mut state = self.state.lock().await;
        let seen = self.attempts.load(Ordering::Acquire);
        self.renew(&mut state, seen, ctx, true).await.map(|_| ())
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
            Some(refresh) => match ctx.login(Grant::Refresh(refresh)).await {
                // A refused refresh token is normal (expired, rotated); the password still works.
                Err(Maas360Error::Auth { .. }) => ctx.login(Grant::Password).await,
                other => other,
            },
            None => ctx.login(Grant::Password).await,
        };
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(issued) => {
                state.generation += 1;
                state.last_error = None;
                let held = Held {
                    token: issued.token,
                    refresh: issued.refresh,
                    obtained: Instant::now(),
                };
                let lease = Lease {
                    token: held.token.clone(),
                    generation: state.generation,
                };
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

    fn route(&self) -> &Route {
        self.options.routes.get(match self.options.auth_version {
            AuthVersion::V1 => RouteName::AuthV1,
            AuthVersion::V2 => RouteName::AuthV2,
        })
    }

    async fn login(&self, grant: Grant) -> Result<Issued, Maas360Error> {
        let c = self.credentials;
        let route = self.route();
        let (secret_field, secret) = match &grant {
            Grant::Password => ("password", c.password.expose()),
            Grant::Refresh(refresh) => ("refreshToken", refresh.expose()),
        };
        // The JSON envelope of maas360-api.md §2.2; 2.0 uses the same one (§2.3). On refresh
        // the refresh token replaces the password and the other fields stay [inferred].
        let params = vec![
            ("billingID", c.billing_id.clone()),
            ("platformID", c.platform_id.clone()),
            ("appID", c.app_id.clone()),
            ("appVersion", c.app_version.clone()),
            ("appAccessKey", c.app_access_key.expose().to_owned()),
            ("userName", c.admin_user.clone()),
            (secret_field, secret.to_owned()),
        ];
        let call = Call {
            route,
            url: self
                .transport
                .url(route, &[("billingID", c.billing_id.as_str())])?,
            params,
        };
        let reply = self.transport.execute(&call, None).await?;
        let status = reply.status.as_u16();
        let desc = describe(reply.body.as_ref());
        let what = match grant {
            Grant::Password => None,
            Grant::Refresh(_) => Some("refresh token"),
        };
        match status {
            200..=299 => {}
            401 | 403 => {
                return Err(Maas360Error::Auth {
                    part: what.map_or_else(|| refused_part(&desc), str::to_owned),
                    detail: format!("{}: HTTP {status} {desc}", route.name),
                    status: Some(status),
                });
            }
            408 | 429 | 500..=599 => {
                return Err(Maas360Error::Retryable {
                    detail: format!("{}: HTTP {status} {desc}", route.name),
                    retry_after: reply.retry_after,
                    status: Some(status),
                });
            }
            _ => {
                return Err(Maas360Error::Permanent {
                    status: Some(status),
                    detail: format!("{}: {desc}", route.name),
                });
            }
        }
        let Some(body) = reply.body else {
            return Err(Maas360Error::Permanent {
                status: Some(status),
                detail: format!("{}: response is not JSON", route.name),
            });
        };
        // Clients check errorCode, not the HTTP status: refusals come back as 200 (§2.2).
        let response = body.get("authResponse").unwrap_or(&body);
        let code = signed(response.get("errorCode")).unwrap_or(0);
        if code != 0 {
            return Err(Maas360Error::Auth {
                part: what.map_or_else(|| refused_part(&desc), str::to_owned),
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

/// Which credential MaaS360's `errorDesc` says it refused. The exact texts are not documented
/// (the Error Codes chapter is a gap, maas360-api.md §11), so this reads keywords.
pub(crate) fn refused_part(desc: &str) -> String {
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
    } else if d.contains("password")
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
        assert_eq!(refused_part("Invalid billing ID"), "billing id");
        assert_eq!(
            refused_part("Invalid username or password"),
            "admin credentials"
        );
        assert_eq!(refused_part("Invalid app access key"), "app access key");
        assert_eq!(refused_part("Invalid application ID"), "app id");
        assert_eq!(
            refused_part("Invalid or expired refresh token"),
            "refresh token"
        );
        assert_eq!(refused_part("Something odd"), "unknown");
    }
}
