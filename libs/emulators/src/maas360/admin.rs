//! The emulator's own HTTP API under `/_emulator/` (no MaaS360 auth): inspect state and
//! traffic, change faults at run time, expire tokens, reset.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::config::Faults;
use super::shared::App;
use super::state::StateDump;
use super::traffic::Violation;

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/_emulator/state", get(state))
        .route("/_emulator/requests", get(requests))
        .route("/_emulator/violations", get(violations))
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/faults", get(get_faults).put(put_faults))
        .route("/_emulator/expire-tokens", post(expire_tokens))
}

async fn state(State(app): State<App>) -> Json<StateDump> {
    Json(app.with(|i| i.dir.dump()))
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

/// A rate outside 0–1 (or NaN) from a hand-written faults file means "none" or "all".
pub(crate) fn sanitize(mut faults: Faults) -> Faults {
    faults.fault_rate = if faults.fault_rate.is_nan() {
        0.0
    } else {
        faults.fault_rate.clamp(0.0, 1.0)
    };
    faults
}
