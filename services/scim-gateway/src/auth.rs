//! Bearer-token authentication. Each token belongs to one tenant; resolved
//! tokens are trusted for a short while so that Entra's request rate does not
//! become the provisioner's token-lookup rate. A rotated token therefore stays
//! usable for at most the cache TTL. Tokens are never logged.

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
use crate::upstream::scim_error;

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
            let resolved = gateway
                .upstream
                .tenants
                .clone()
                .resolve_scim_token(pb::ResolveScimTokenRequest {
                    token: token.clone(),
                })
                .await;
            match resolved {
                Ok(response) => {
                    let tenant = response.into_inner().tenant_id;
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
