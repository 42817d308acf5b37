//! The SCIM 2.0 gateway Microsoft Entra's provisioning service calls. It holds
//! nothing durable: every request is translated into provisioner RPCs and
//! back. Entra forgives nothing, so the rules are strict: filter queries never
//! 404, a problem with the request is a 4xx with the right `scimType`, and only
//! a fault on our side is a 5xx (which Entra retries).
//!
//! Modules:
//! - [`server`]: the HTTP/1.1 accept loop (header timeout, connection bound, paths as Entra
//!   spells them); [`http`]: bodies, query parameters, SCIM responses and errors.
//! - [`auth`]: bearer tokens, their cache, and the provisioner's revocation feed.
//! - [`users`], [`groups`]: the SCIM resources; [`discovery`]: the discovery documents;
//!   [`render`]: provisioner records as SCIM resources.
//! - [`upstream`]: the provisioner's gRPC clients, retried on a broken connection, and its
//!   statuses as SCIM errors.

mod auth;
mod discovery;
mod groups;
mod http;
mod render;
mod server;
mod upstream;
mod users;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use dirsync_runtime::DirsyncConfig;
use dirsync_runtime::config::ScimConfig;
use tokio::net::TcpListener;

pub use upstream::{ProvisionerChannel, UpstreamError};

/// The path every SCIM route lives under.
pub const SCIM_PREFIX: &str = "/scim/v2";

/// Shared state of every request handler.
#[derive(Debug)]
pub(crate) struct Gateway {
    pub(crate) upstream: upstream::Upstream,
    pub(crate) tokens: auth::TokenCache,
    pub(crate) base_url: String,
    pub(crate) max_page_size: u32,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_read_timeout: std::time::Duration,
    /// The task following token revocations; it ends with the gateway.
    pub(crate) revocation_watch: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let watch = self.revocation_watch.get_mut().map_or(None, Option::take);
        if let Some(watch) = watch {
            watch.abort();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("SCIM gateway HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Builds the gateway's HTTP router, and starts following the provisioner's token
/// revocations for as long as the router lives.
pub fn router(config: &ScimConfig) -> Result<Router, GatewayError> {
    router_over(config, None)
}

/// Like [`router`], calling the provisioner through `provisioner` when given (the all-in-one
/// process passes its own services, in process) instead of dialling `provisioner_url`.
pub fn router_over(
    config: &ScimConfig,
    provisioner: Option<ProvisionerChannel>,
) -> Result<Router, GatewayError> {
    let upstream = match provisioner {
        Some(channel) => upstream::Upstream::over(channel),
        None => upstream::Upstream::connect_lazy(&config.provisioner_url, config.upstream_timeout)?,
    };
    let gateway = Arc::new(Gateway {
        tokens: auth::TokenCache::new(config.token_cache_ttl),
        upstream,
        base_url: config.base_url(),
        max_page_size: config.max_page_size,
        max_body_bytes: config.max_body_bytes,
        body_read_timeout: config.body_read_timeout,
        revocation_watch: std::sync::Mutex::new(None),
    });
    let watch = tokio::spawn(auth::watch_revocations(
        Arc::downgrade(&gateway),
        gateway.upstream.tenants.clone(),
    ));
    if let Ok(mut slot) = gateway.revocation_watch.lock() {
        *slot = Some(watch);
    }

    let authenticated = Router::new()
        .route("/Users", get(users::list).post(users::create))
        .route(
            "/Users/{id}",
            get(users::get)
                .put(users::replace)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route("/Groups", get(groups::list).post(groups::create))
        .route(
            "/Groups/{id}",
            get(groups::get)
                .put(groups::replace)
                .patch(groups::patch)
                .delete(groups::delete),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            auth::require_tenant,
        ));
    // Discovery documents hold no tenant data; RFC 7644 §4 lets them be read
    // without authentication, which also lets people check a deployment.
    let discovery = Router::new()
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type));

    let scim = authenticated
        .merge(discovery)
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .with_state(gateway);
    Ok(Router::new()
        .nest(SCIM_PREFIX, scim)
        .route("/healthz", get(|| async { "ok" }))
        // A tenant URL entered wrongly (`/scim/v1`, no prefix) is refused in SCIM's terms too.
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        // Bodies are read with the configured limit in the handlers, which
        // answer 413 as a SCIM error rather than axum's plain text.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(http::limit_headers))
        .layer(axum::middleware::from_fn(http::observe_request)))
}

/// Serves the gateway on `listener` until `shutdown` resolves.
pub async fn serve(
    config: &ScimConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    serve_over(config, None, listener, shutdown).await
}

/// Like [`serve`], calling the provisioner through `provisioner` when given.
pub async fn serve_over(
    config: &ScimConfig,
    provisioner: Option<ProvisionerChannel>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let app = router_over(config, provisioner)?;
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, base_url = %config.base_url(), "SCIM gateway serving");
    server::serve(app, listener, config.header_read_timeout, shutdown).await?;
    tracing::info!(addr = ?addr, "SCIM gateway stopped");
    Ok(())
}

/// Runs the gateway alone, configured by `config`.
pub async fn run(
    config: &DirsyncConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    serve(&config.scim, listener, shutdown).await
}
