//! Bearer-token authentication. Each token belongs to one tenant; resolved
//! tokens are trusted for a short while so that Entra's request rate does not
//! become the provisioner's token-lookup rate. The provisioner tells the
//! gateway at once when a tenant's tokens are rotated or revoked (a watch
//! stream), so a rotation through the provisioner this gateway talks to takes
//! effect at once; one made through another replica takes effect within the
//! cache lifetime. Tokens are never logged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use dirsync_proto::provisioner::v1 as pb;
use dirsync_scim::ScimError;
use tokio::sync::RwLock;
use tonic::Code;

use crate::Gateway;
use crate::http::error_response;
use crate::upstream::{call_status, fresh, scim_error};

/// Entries kept before the cache is cleared; bounds memory under a flood of
/// distinct valid tokens.
const MAX_CACHED_TOKENS: usize = 10_000;

/// The tenant a request was authenticated as.
#[derive(Debug, Clone)]
pub(crate) struct Tenant(pub(crate) String);

#[derive(Debug)]
pub(crate) struct TokenCache {
    ttl: Duration,
    entries: RwLock<HashMap<String, (String, Instant)>>,
}

impl TokenCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    async fn get(&self, token: &str) -> Option<String> {
        let entries = self.entries.read().await;
        match entries.get(token) {
            Some((tenant, at)) if at.elapsed() < self.ttl => Some(tenant.clone()),
            _ => None,
        }
    }

    async fn put(&self, token: &str, tenant: &str) {
        let mut entries = self.entries.write().await;
        if entries.len() >= MAX_CACHED_TOKENS {
            entries.clear();
        }
        entries.insert(token.to_owned(), (tenant.to_owned(), Instant::now()));
    }

    /// Forgets every token of `tenant`: it is resolved again on its next use.
    async fn evict_tenant(&self, tenant: &str) {
        self.entries
            .write()
            .await
            .retain(|_, (cached, _)| cached != tenant);
    }

    async fn clear(&self) {
        self.entries.write().await.clear();
    }
}

/// How long the watch waits before reconnecting after its stream broke.
const WATCH_RETRY: Duration = Duration::from_secs(1);

/// Follows the provisioner's token revocations for as long as the gateway lives, evicting each
/// revoked tenant's tokens. While the stream is down nothing is known to be missed only up to
/// the cache lifetime, so every reconnection starts from an empty cache.
pub(crate) async fn watch_revocations(
    tokens: std::sync::Weak<Gateway>,
    mut tenants: pb::tenant_service_client::TenantServiceClient<crate::upstream::Traced>,
) {
    loop {
        let stream = tenants
            .watch_scim_token_revocations(pb::WatchScimTokenRevocationsRequest {})
            .await;
        if let Some(gateway) = tokens.upgrade() {
            gateway.tokens.clear().await;
        } else {
            return;
        }
        match stream {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(revoked)) => match tokens.upgrade() {
                            Some(gateway) => gateway.tokens.evict_tenant(&revoked.tenant_id).await,
                            None => return,
                        },
                        Ok(None) => break,
                        Err(status) => {
                            tracing::debug!(code = ?status.code(), "token revocation watch ended");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::debug!(code = ?status.code(), "token revocation watch unavailable");
            }
        }
        tokio::time::sleep(WATCH_RETRY).await;
    }
}

fn bearer_token(request: &Request) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

fn unauthorized(detail: &str) -> Response {
    let mut response = error_response(&ScimError::unauthorized(detail));
    response.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"dirsync\""),
    );
    response
}

/// Resolves the bearer token to its tenant, or answers 401.
pub(crate) async fn require_tenant(
    State(gateway): State<Arc<Gateway>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer_token(&request).map(str::to_owned) else {
        return unauthorized("a bearer token is required");
    };
    let tenant = match gateway.tokens.get(&token).await {
        Some(tenant) => tenant,
        None => {
            let request = pb::ResolveScimTokenRequest {
                token: token.clone(),
            };
            let resolved = call_status(fresh!(
                gateway.upstream.tenants,
                resolve_scim_token,
                request
            ))
            .await;
            match resolved {
                Ok(response) => {
                    let tenant = response.tenant_id;
                    gateway.tokens.put(&token, &tenant).await;
                    tenant
                }
                Err(status) if status.code() == Code::Unauthenticated => {
                    tracing::info!("rejected an unknown or revoked SCIM token");
                    return unauthorized("the bearer token is not valid");
                }
                Err(status) => return error_response(&scim_error(status)),
            }
        }
    };
    request.extensions_mut().insert(Tenant(tenant));
    next.run(request).await
}
