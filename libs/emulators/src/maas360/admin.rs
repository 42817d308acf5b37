//! The emulator's own HTTP API under `/_emulator/` (no MaaS360 auth): inspect state and
//! traffic, change faults at run time, expire tokens, reset.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::{Faults, RateLimitSettings};
use super::routes::ServedRoute;
use super::shared::App;
use super::state::{Device, StateDump};
use super::traffic::Violation;

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/_emulator/state", get(state))
        .route("/_emulator/requests", get(requests))
        .route("/_emulator/violations", get(violations))
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/faults", get(get_faults).put(put_faults))
        .route("/_emulator/expire-tokens", post(expire_tokens))
        .route(
            "/_emulator/rate-limit",
            get(get_rate_limit).put(put_rate_limit),
        )
        .route("/_emulator/run-deletion-job", post(run_deletion_job))
        .route(
            "/_emulator/users/{userIdentifier}/devices",
            put(put_devices),
        )
        .route("/_emulator/routes", get(routes))
        .route("/_emulator/routes/{name}", put(move_route))
}

async fn state(State(app): State<App>) -> Json<StateDump> {
    app.run_due_deletions();
    Json(app.with(|i| i.dir.dump()))
}

/// The daily job that carries out queued user deletions, now: `{"deleted": n}`.
async fn run_deletion_job(State(app): State<App>) -> Json<Value> {
    let deleted = app.with(|i| i.dir.run_deletion_job(std::time::Duration::ZERO));
    Json(json!({ "deleted": deleted }))
}

/// Replaces a user's devices: `[{"csn": "…", "platform": "iOS", "active": true}]`.
async fn put_devices(
    State(app): State<App>,
    Path(user_identifier): Path<String>,
    Json(devices): Json<Vec<Device>>,
) -> (StatusCode, Json<Value>) {
    match app.with(|i| i.dir.set_devices(&user_identifier, devices)) {
        Ok(()) => (StatusCode::NO_CONTENT, Json(Value::Null)),
        Err(refusal) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": refusal.to_string()})),
        ),
    }
}

async fn requests(
    State(app): State<App>,
) -> Json<std::collections::BTreeMap<String, std::collections::BTreeMap<u16, u64>>> {
    Json(app.with(|i| i.traffic.counts()))
}

async fn violations(State(app): State<App>) -> Json<Vec<Violation>> {
    Json(app.with(|i| i.traffic.violations()))
}

async fn reset(State(app): State<App>) -> StatusCode {
    app.reset();
    StatusCode::NO_CONTENT
}

async fn get_faults(State(app): State<App>) -> Json<Faults> {
    Json(app.with(|i| i.traffic.faults().clone()))
}

async fn put_faults(State(app): State<App>, Json(faults): Json<Faults>) -> Json<Faults> {
    let faults = sanitize(faults);
    app.with(|i| i.traffic.set_faults(faults.clone()));
    Json(faults)
}

async fn expire_tokens(State(app): State<App>) -> StatusCode {
    app.with(|i| i.tokens.expire_access());
    StatusCode::NO_CONTENT
}

async fn get_rate_limit(State(app): State<App>) -> Json<RateLimitSettings> {
    Json(app.with(|i| i.traffic.rate_limit_settings().clone()))
}

/// How the limit is signalled; the limit itself is `rate_limit_per_minute` in the faults.
async fn put_rate_limit(
    State(app): State<App>,
    Json(settings): Json<RateLimitSettings>,
) -> Json<RateLimitSettings> {
    app.with(|i| i.traffic.set_rate_limit_settings(settings.clone()));
    Json(settings)
}

async fn routes(State(app): State<App>) -> Json<Vec<ServedRoute>> {
    Json(app.with(|i| i.routes.served()))
}

#[derive(Deserialize)]
struct RouteMove {
    path: String,
}

/// `PUT /_emulator/routes/edit_user {"path": "/…/{billingID}/{userIdentifier}"}`: serve the
/// route there from now on (until reset).
async fn move_route(
    State(app): State<App>,
    Path(name): Path<String>,
    Json(change): Json<RouteMove>,
) -> (StatusCode, Json<Value>) {
    match app.with(|i| i.routes.move_route(&name, &change.path)) {
        Ok(()) => (StatusCode::OK, Json(json!(app.with(|i| i.routes.served())))),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error.to_string()})),
        ),
    }
}

/// A rate outside 0–1 (or NaN) from a hand-written faults file means "none" or "all".
pub(crate) fn sanitize(mut faults: Faults) -> Faults {
    faults.fault_rate = if faults.fault_rate.is_nan() {
        0.0
    } else {
        faults.fault_rate.clamp(0.0, 1.0)
    };
    faults
}
