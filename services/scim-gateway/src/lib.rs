//! The SCIM 2.0 gateway Microsoft Entra's provisioning service calls. It holds
//! nothing durable: every request is translated into provisioner RPCs and
//! back. Entra forgives nothing, so the rules are strict: filter queries never
//! 404, a problem with the request is a 4xx with the right `scimType`, and only
//! a fault on our side is a 5xx (which Entra retries).

mod auth;
mod discovery;
mod groups;
mod http;
mod render;
mod upstream;
mod users;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use dirsync_runtime::DirsyncConfig;
use dirsync_runtime::config::ScimConfig;
use tokio::net::TcpListener;

pub use upstream::UpstreamError;

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
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("SCIM gateway HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Builds the gateway's HTTP router.
pub fn router(config: &ScimConfig) -> Result<Router, GatewayError> {
    let upstream = upstream::Upstream::connect_lazy(
        &config.provisioner_url,
        Duration::from_millis(config.upstream_timeout_ms),
    )?;
    let gateway = Arc::new(Gateway {
        tokens: auth::TokenCache::new(Duration::from_millis(config.token_cache_ttl_ms)),
        upstream,
        base_url: config.base_url(),
        max_page_size: config.max_page_size,
        max_body_bytes: config.max_body_bytes,
    });

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
        // Bodies are read with the configured limit in the handlers, which
        // answer 413 as a SCIM error rather than axum's plain text.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(http::observe_request)))
}

/// Serves the gateway on `listener` until `shutdown` resolves.
pub async fn serve(
    config: &ScimConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let app = router(config)?;
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, base_url = %config.base_url(), "SCIM gateway serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
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
