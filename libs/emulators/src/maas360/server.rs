//! Running an emulator: the router, the traffic middleware every API request passes through,
//! and the handle tests and the demo hold.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::admin;
use super::api;
use super::config::{EmulatorConfig, Faults, RateLimitSettings, RetryAfterStyle};
use super::routes::{Match, Operation, RouteError, ServedRoute};
use super::seed::Seed;
use super::shared::App;
use super::state::{Device, StateDump};
use super::traffic::{Admission, IGNORED_RETRY_AFTER, Violation};
use super::wire::{ApiRequest, Reply, format_of};

/// How long `stop` waits for open connections to finish before cutting them.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the emulator on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: EmulatorConfig,
    seed: Option<Seed>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = App::new(sanitized(config), seed)?;
    run(listener, app, shutdown).await
}

/// Binds `127.0.0.1:0` and serves in the background until the handle is stopped or dropped.
pub async fn start(config: EmulatorConfig, seed: Option<Seed>) -> io::Result<EmulatorHandle> {
    let app = App::new(sanitized(config), seed)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, app.clone(), async move {
        // A dropped sender (the handle dropped) also means stop.
        let _ = rx.await;
    }));
    Ok(EmulatorHandle {
        addr,
        app,
        shutdown: Some(tx),
        task,
    })
}

fn sanitized(mut config: EmulatorConfig) -> EmulatorConfig {
    config.faults = admin::sanitize(config.faults);
    config
}

async fn run(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // The admin API is routed by axum; every other path goes through the emulator's own route
    // table, whose paths can move at run time.
    let router = Router::new()
        .merge(admin::router())
        .fallback(api)
        .with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// One MaaS360 API request: find its operation, pass it through the traffic checks (latency,
/// outages, rate limits, injected errors), answer it and count it.
async fn api(State(app): State<App>, req: Request) -> Response {
    let mut response = route_and_answer(&app, req).await;
    // Every MaaS360 answer carries the rate-limit headers while a limit is set
    // (docs/maas360.md §7).
    if let Some((remaining, reset)) = app.with(|i| i.traffic.rate_headers()) {
        let headers = response.headers_mut();
        headers.insert(RATE_LIMIT_REMAINING, HeaderValue::from(remaining));
        headers.insert(RATE_LIMIT_RESET_WINDOW, HeaderValue::from(reset));
    }
    response
}

/// Requests left in the current window (docs/maas360.md §7).
const RATE_LIMIT_REMAINING: HeaderName = HeaderName::from_static("x-rate-limit-remaining");
/// Seconds until the window resets (docs/maas360.md §7).
const RATE_LIMIT_RESET_WINDOW: HeaderName = HeaderName::from_static("x-rate-limit-resetwindow");

async fn route_and_answer(app: &App, req: Request) -> Response {
    app.run_due_deletions();
    let format = format_of(req.headers());
    let quirks = app.config().one_element_as_object;
    let found = app.with(|i| i.routes.find(req.method(), req.uri().path()));
    let (op, path) = match found {
        Match::Found(op, path) => (op, path),
        Match::WrongMethod(op) => {
            app.with(|i| i.traffic.count(op.name(), StatusCode::METHOD_NOT_ALLOWED));
            return Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                405,
                "Method not allowed",
                format,
                quirks,
            )
            .into_response();
        }
        Match::None => {
            app.with(|i| i.traffic.count("unmatched", StatusCode::NOT_FOUND));
            return Reply::error(StatusCode::NOT_FOUND, 404, "No such API", format, quirks)
                .into_response();
        }
    };
    let latency = app.with(|i| i.traffic.latency());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let grace = app.config().retry_after_grace;
    let admission = app.with(|i| i.traffic.admit(op.name(), op.is_auth(), grace));
    let response = match admission {
        Admission::Pass => answer(app, op, req, path).await,
        Admission::Reject {
            status,
            retry_after,
            desc,
        } => {
            let mut reply = Reply::error(status, u32::from(status.as_u16()), desc, format, quirks);
            let style = app.with(|i| i.traffic.rate_limit_settings().retry_after);
            reply.retry_after = retry_after.and_then(|secs| retry_after_value(style, secs));
            reply.into_response()
        }
        Admission::FailAfter(status) => {
            // The change is applied and its answer thrown away, like a response lost on the way.
            let _lost = answer(app, op, req, path).await;
            Reply::error(
                status,
                u32::from(status.as_u16()),
                "Injected server error",
                format,
                quirks,
            )
            .into_response()
        }
    };
    app.with(|i| i.traffic.count(op.name(), response.status()));
    response
}

/// A 429's Retry-After in the configured form. An HTTP date is rounded up to the whole second,
/// so a client that honours it never arrives before the window ends.
fn retry_after_value(style: RetryAfterStyle, secs: u64) -> Option<String> {
    match style {
        RetryAfterStyle::Seconds => Some(secs.to_string()),
        RetryAfterStyle::HttpDate => {
            let at = SystemTime::now() + Duration::from_secs(secs);
            let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
            let rounded = UNIX_EPOCH
                + Duration::from_secs(
                    since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0),
                );
            Some(httpdate::fmt_http_date(rounded))
        }
        RetryAfterStyle::Omitted => None,
    }
}

async fn answer(
    app: &App,
    op: Operation,
    req: Request,
    path: std::collections::BTreeMap<String, String>,
) -> Response {
    match ApiRequest::read(req, op, path, app.config().one_element_as_object).await {
        Ok(req) => api::handle(app, op, &req).into_response(),
        Err(reply) => reply.into_response(),
    }
}

/// A running emulator. Dropping it stops the server too; `stop` also waits for it.
pub struct EmulatorHandle {
    addr: SocketAddr,
    app: App,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the value for a client's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Users (with their devices and distributions, pending deletions included), groups and
    /// memberships as they are now.
    pub fn state(&self) -> StateDump {
        self.app.run_due_deletions();
        self.app.with(|i| i.dir.dump())
    }

    /// The daily job that carries out queued user deletions, run now; returns how many users
    /// it deleted.
    pub fn run_deletion_job(&self) -> usize {
        self.app
            .with(|i| i.dir.run_deletion_job(std::time::Duration::ZERO))
    }

    /// Replaces a user's devices (an active one blocks deleting the user).
    pub fn set_devices(&self, user_identifier: &str, devices: Vec<Device>) -> Result<(), String> {
        self.app
            .with(|i| i.dir.set_devices(user_identifier, devices))
            .map_err(|e| e.to_string())
    }

    /// Requests per route name and HTTP status since start or the last reset.
    pub fn request_counts(&self) -> BTreeMap<String, BTreeMap<u16, u64>> {
        self.app.with(|i| i.traffic.counts())
    }

    /// Requests that arrived while a Retry-After the emulator gave was still running.
    pub fn retry_after_violations(&self) -> Vec<Violation> {
        self.app.with(|i| {
            i.traffic
                .violations()
                .into_iter()
                .filter(|v| v.kind == IGNORED_RETRY_AFTER)
                .collect()
        })
    }

    /// Everything a client did against what the evidence says MaaS360 expects: requests that
    /// ignored a Retry-After, a password or access key sent on token refresh.
    pub fn violations(&self) -> Vec<Violation> {
        self.app.with(|i| i.traffic.violations())
    }

    /// Successful authentications per grant: `"password"` or `"refresh_token"`.
    pub fn auth_grants(&self) -> BTreeMap<String, u64> {
        self.app.with(|i| i.grants.clone())
    }

    /// How the rate limit is signalled from now on (headers, 429, Retry-After form).
    pub fn set_rate_limit_settings(&self, settings: RateLimitSettings) {
        self.app
            .with(|i| i.traffic.set_rate_limit_settings(settings));
    }

    /// Accepted `Authorization: MaaS token=…` headers by quote style: `"single"` (as IBM's own
    /// integration sends) or `"double"` (as IBM's documentation shows).
    pub fn authorization_styles(&self) -> BTreeMap<String, u64> {
        self.app.with(|i| i.quote_styles.clone())
    }

    pub fn set_faults(&self, faults: Faults) {
        let faults = admin::sanitize(faults);
        self.app.with(|i| i.traffic.set_faults(faults));
    }

    /// The MaaS360 routes as served now.
    pub fn routes(&self) -> Vec<ServedRoute> {
        self.app.with(|i| i.routes.served())
    }

    /// Serves route `name` (a client route name such as `edit_user`) at `path` from now on;
    /// the old path answers 404, as a MaaS360 whose API differs from the defaults would.
    pub fn move_route(&self, name: &str, path: &str) -> Result<(), RouteError> {
        self.app.with(|i| i.routes.move_route(name, path))
    }

    /// Every access token issued so far stops working (refresh tokens still do).
    pub fn expire_tokens(&self) {
        self.app.with(|i| i.tokens.expire_access());
    }

    /// Every refresh token issued so far stops working.
    pub fn expire_refresh_tokens(&self) {
        self.app.with(|i| i.tokens.expire_refresh());
    }

    /// Back to the seed: directory, tokens, counts, violations and faults.
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
            Ok(Ok(Err(error))) => tracing::warn!(%error, "MaaS360 emulator stopped with an error"),
            Ok(Err(error)) => tracing::warn!(%error, "MaaS360 emulator task failed"),
            Err(_) => abort.abort(),
        }
    }
}
