//! Running a Graph emulator: the router, the checks every Graph read passes (bearer token,
//! permissions, throttling), and the handle tests and the demo hold.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dirsync_entra_simulator::Directory;
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::admin;
use super::api::{self, ReadContext, Target};
use super::auth;
use super::batch;
use super::config::{DeltaExpiry, GraphEmulatorConfig, Throttle};
use super::seed::{GraphSeed, SeedGroup, SeedUser};
use super::shared::{App, Inner};
use super::tenant::{AdminError, GraphStateDump};
use super::tokens::TokenCheck;
use super::traffic::{GraphViolation, Verdict};
use super::wire::{GraphReply, RequestIds};

/// How long `stop` waits for open connections to finish before cutting them.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// `$batch` bodies beyond this are refused (20 GETs need a few kilobytes).
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Serves the emulator on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: GraphEmulatorConfig,
    seed: GraphSeed,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = App::new(config, seed)?;
    run(listener, app, shutdown).await
}

/// Binds `127.0.0.1:0` and serves in the background until the handle is stopped or dropped.
pub async fn start(
    config: GraphEmulatorConfig,
    seed: GraphSeed,
) -> io::Result<GraphEmulatorHandle> {
    let app = App::new(config, seed)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, app.clone(), async move {
        // A dropped sender (the handle dropped) also means stop.
        let _ = rx.await;
    }));
    Ok(GraphEmulatorHandle {
        addr,
        app,
        shutdown: Some(tx),
        task,
    })
}

async fn run(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let router = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(auth::token))
        .route("/v1.0/{*rest}", get(graph_get).post(graph_post))
        .merge(admin::router())
        .fallback(unmatched)
        .with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The root of links: the configured public URL, else `http://{Host}`.
pub(crate) fn base_url(app: &App, headers: &HeaderMap) -> String {
    if let Some(url) = &app.config().public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn read_context(app: &App, headers: &HeaderMap) -> ReadContext {
    ReadContext {
        base: base_url(app, headers),
        eventual: headers
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual")),
    }
}

fn unauthorized(message: &str) -> GraphReply {
    GraphReply::error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    )
    .with_header("WWW-Authenticate", "Bearer realm=\"\"".to_owned())
}

/// The permissions of the request's bearer token, or the 401 Graph answers.
fn authorize(inner: &Inner, headers: &HeaderMap) -> Result<Arc<BTreeSet<String>>, GraphReply> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(unauthorized("Access token is empty."));
    };
    match inner.tokens.check(token) {
        TokenCheck::Valid(roles) => Ok(roles),
        TokenCheck::Expired => Err(unauthorized(
            "Lifetime validation failed, the token is expired.",
        )),
        TokenCheck::Unknown => Err(unauthorized("Access token validation failure.")),
    }
}

/// A read whose token is valid: permission check, throttling, then the read itself.
pub(crate) fn admitted_read(
    app: &App,
    inner: &mut Inner,
    ctx: &ReadContext,
    roles: &BTreeSet<String>,
    target: &Target,
) -> GraphReply {
    let config = app.config();
    if !api::allowed(&target.route, roles) {
        return GraphReply::error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    match inner
        .traffic
        .admit(target.route.name(), config.retry_after_grace)
    {
        Verdict::Pass => api::read(inner, config, ctx, target),
        Verdict::Throttle {
            status,
            retry_after,
        } => {
            // docs/graph.md §4.2 found no directory 429 body; this code is the one commonly
            // reported, unverified there. Clients must key on the status.
            let (code, message) = match status {
                StatusCode::TOO_MANY_REQUESTS => (
                    "Request_ThrottledTemporarily",
                    "Too many requests. Retry after the time the Retry-After header gives.",
                ),
                StatusCode::GATEWAY_TIMEOUT => ("GatewayTimeout", "The gateway timed out."),
                _ => (
                    "ServiceUnavailable",
                    "The service is temporarily unavailable.",
                ),
            };
            let mut reply = GraphReply::error(status, code, message);
            if let Some(value) = retry_after {
                reply = reply.with_header("Retry-After", value);
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                reply = reply
                    .with_header(
                        "x-ms-throttle-scope",
                        format!(
                            "Tenant_Application/Read/{}/{}",
                            config.client_id, config.tenant_id
                        ),
                    )
                    .with_header(
                        "x-ms-throttle-information",
                        "ResourceUnitLimitExceeded".to_owned(),
                    );
            }
            reply
        }
    }
}

async fn graph_get(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    let ids = RequestIds::from_headers(&headers);
    let ctx = read_context(&app, &headers);
    let reply = app.with(|inner| {
        let (route, reply) = match Target::parse(uri) {
            Err(reply) => ("unknown", reply),
            Ok(target) => (
                target.route.name(),
                match authorize(inner, &headers) {
                    Err(reply) => reply,
                    Ok(roles) => admitted_read(&app, inner, &ctx, &roles, &target),
                },
            ),
        };
        let reply = reply.finish(&ids);
        inner.traffic.count(route, reply.status);
        reply
    });
    reply.into_response()
}

async fn graph_post(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let ids = RequestIds::from_headers(&headers);
    let ctx = read_context(&app, &headers);
    let reply = app.with(|inner| {
        let reply = if uri.path() != "/v1.0/$batch" {
            GraphReply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "Request_BadRequest",
                "The Graph emulator is read-only: only POST /v1.0/$batch is served.",
            )
        } else if body.len() > MAX_BATCH_BYTES {
            GraphReply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BadRequest",
                "The batch request is too large.",
            )
        } else {
            match (
                authorize(inner, &headers),
                serde_json::from_slice::<Value>(&body),
            ) {
                (Err(reply), _) => reply,
                (Ok(_), Err(_)) => GraphReply::error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Invalid batch payload format: the body is not JSON.",
                ),
                (Ok(roles), Ok(body)) => batch::batch(&app, inner, &ctx, &roles, &body),
            }
        };
        let reply = reply.finish(&ids);
        inner.traffic.count("batch", reply.status);
        reply
    });
    reply.into_response()
}

async fn unmatched(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    let ids = RequestIds::from_headers(&headers);
    app.with(|inner| inner.traffic.count("unmatched", StatusCode::NOT_FOUND));
    GraphReply::error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("No such path on the Graph emulator: {}", uri.path()),
    )
    .finish(&ids)
    .into_response()
}

/// A running Graph emulator. Dropping it stops the server too; `stop` also waits for it.
pub struct GraphEmulatorHandle {
    addr: SocketAddr,
    app: App,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl std::fmt::Debug for GraphEmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphEmulatorHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl GraphEmulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: a client's login URL and Graph URL both.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &GraphEmulatorConfig {
        self.app.config()
    }

    /// Users, soft-deleted users and groups as they are now.
    pub fn state(&self) -> GraphStateDump {
        self.app.with(|i| i.tenant.dump())
    }

    /// Requests per route name (`token`, `users`, `group_members`, `batch`, …; `$batch` items
    /// under their own route) and HTTP status, since start or the last reset.
    pub fn request_counts(&self) -> BTreeMap<String, BTreeMap<u16, u64>> {
        self.app.with(|i| i.traffic.counts())
    }

    /// Requests on `route`, whatever their status.
    pub fn requests_to(&self, route: &str) -> u64 {
        self.request_counts()
            .get(route)
            .map_or(0, |by_status| by_status.values().sum())
    }

    /// Clients that came back before a Retry-After ran out, or rebuilt a link.
    pub fn violations(&self) -> Vec<GraphViolation> {
        self.app.with(|i| i.traffic.violations())
    }

    pub fn create_user(&self, user: &SeedUser) -> Result<String, AdminError> {
        self.app.with(|i| i.tenant.create_user(user))
    }

    /// Changes properties, named as Graph names them.
    pub fn update_user(&self, id: &str, changes: &Map<String, Value>) -> Result<(), AdminError> {
        self.app.with(|i| i.tenant.update_user(id, changes))
    }

    /// Moves the user to deleted items: restorable; `@removed: changed` in delta.
    pub fn soft_delete_user(&self, id: &str) -> Result<(), AdminError> {
        self.app.with(|i| i.tenant.soft_delete_user(id))
    }

    pub fn restore_user(&self, id: &str) -> Result<(), AdminError> {
        self.app.with(|i| i.tenant.restore_user(id))
    }

    /// Deletes the user for good: `@removed: deleted` in delta.
    pub fn hard_delete_user(&self, id: &str) -> Result<(), AdminError> {
        self.app.with(|i| i.tenant.hard_delete_user(id))
    }

    pub fn create_group(&self, group: &SeedGroup) -> Result<String, AdminError> {
        self.app.with(|i| i.tenant.create_group(group))
    }

    pub fn update_group(&self, id: &str, changes: &Map<String, Value>) -> Result<(), AdminError> {
        self.app.with(|i| i.tenant.update_group(id, changes))
    }

    pub fn delete_group(&self, id: &str) -> Result<(), AdminError> {
        self.app.with(|i| i.tenant.delete_group(id))
    }

    /// Adds a user or a group (told apart by id) to a group.
    pub fn add_member(&self, group: &str, member: &str) -> Result<(), AdminError> {
        self.app.with(|i| i.tenant.add_member(group, member))
    }

    pub fn remove_member(&self, group: &str, member: &str) -> Result<(), AdminError> {
        self.app.with(|i| i.tenant.remove_member(group, member))
    }

    /// Makes the tenant match an Entra simulator directory (see [`GraphSeed::from_directory`]);
    /// each difference becomes a change that delta reports.
    pub fn apply_directory(&self, directory: &Directory) -> Result<(), AdminError> {
        self.app.with(|i| i.tenant.apply_directory(directory))
    }

    /// Every delta token and delta skiptoken issued so far is refused from now on.
    pub fn expire_delta_tokens(&self) {
        self.app.with(|i| i.delta_epoch += 1);
    }

    /// How expired delta tokens are refused from now on.
    pub fn set_delta_expiry(&self, expiry: DeltaExpiry) {
        self.app.with(|i| i.delta_expiry = expiry);
    }

    /// From now on each deltaLink points `entries` change-log entries back, so the next round
    /// delivers them again (replays, docs/graph.md §3.5); 0 turns replays off.
    pub fn set_delta_replay(&self, entries: u64) {
        self.app.with(|i| i.delta_replay = entries);
    }

    /// Every access token issued so far stops working.
    pub fn expire_access_tokens(&self) {
        self.app.with(|i| i.tokens.expire_all());
    }

    pub fn throttle(&self) -> Throttle {
        self.app.with(|i| i.traffic.throttle().clone())
    }

    pub fn set_throttle(&self, throttle: Throttle) {
        self.app.with(|i| i.traffic.set_throttle(throttle));
    }

    /// The application permissions tokens issued from now on carry.
    pub fn set_app_roles<I, S>(&self, roles: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let roles: BTreeSet<String> = roles.into_iter().map(Into::into).collect();
        self.app.with(|i| i.roles = Arc::new(roles));
    }

    /// Back to the seed: directory, tokens, counts, violations, throttling; delta tokens
    /// issued before are refused.
    pub fn reset(&self) {
        self.app.reset();
    }

    /// Stops accepting, lets open requests finish (up to a few seconds), then returns.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let abort = self.task.abort_handle();
        match tokio::time::timeout(STOP_TIMEOUT, &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "Graph emulator stopped with an error"),
            Ok(Err(error)) => tracing::warn!(%error, "Graph emulator task failed"),
            Err(_) => abort.abort(),
        }
    }
}
