//! The emulator's own HTTP API under `/_emulator/` (no Graph auth): change the directory as
//! an administrator would (each change recorded for delta), expire tokens, switch throttling
//! and permissions, inspect state, traffic and violations, reset.
//!
//! - `POST /_emulator/users` (a seed user: Graph field names) → 201 `{"id"}`
//! - `PATCH /_emulator/users/{id}` (properties by Graph name)
//! - `POST /_emulator/users/{id}/soft-delete`, `…/restore`, `…/hard-delete`
//! - `POST /_emulator/groups` (`{"id"?, "displayName", "members"?}`) → 201 `{"id"}`
//! - `PATCH /_emulator/groups/{id}`, `DELETE /_emulator/groups/{id}`
//! - `POST /_emulator/groups/{id}/members` (`{"id": member}`),
//!   `DELETE /_emulator/groups/{id}/members/{member}`
//! - `POST /_emulator/expire-delta-tokens` (optional `{"reply": "gone"|"syncStateNotFound"}`)
//! - `POST /_emulator/expire-tokens`
//! - `GET|PUT /_emulator/throttle`, `GET|PUT /_emulator/roles`
//! - `GET /_emulator/state`, `GET /_emulator/requests`, `GET /_emulator/violations`
//! - `POST /_emulator/reset`

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::config::{DeltaExpiry, Throttle};
use super::seed::{SeedGroup, SeedUser};
use super::shared::App;
use super::tenant::{AdminError, GraphStateDump};
use super::traffic::GraphViolation;

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/_emulator/users", post(create_user))
        .route("/_emulator/users/{id}", patch(update_user))
        .route("/_emulator/users/{id}/soft-delete", post(soft_delete_user))
        .route("/_emulator/users/{id}/restore", post(restore_user))
        .route("/_emulator/users/{id}/hard-delete", post(hard_delete_user))
        .route("/_emulator/groups", post(create_group))
        .route(
            "/_emulator/groups/{id}",
            patch(update_group).delete(delete_group),
        )
        .route("/_emulator/groups/{id}/members", post(add_member))
        .route(
            "/_emulator/groups/{id}/members/{member}",
            delete(remove_member),
        )
        .route("/_emulator/expire-delta-tokens", post(expire_delta_tokens))
        .route("/_emulator/expire-tokens", post(expire_tokens))
        .route("/_emulator/throttle", get(get_throttle).put(put_throttle))
        .route("/_emulator/roles", get(get_roles).put(put_roles))
        .route("/_emulator/state", get(state))
        .route("/_emulator/requests", get(requests))
        .route("/_emulator/violations", get(violations))
        .route("/_emulator/reset", post(reset))
}

fn refused(error: &AdminError) -> Response {
    let status = match error {
        AdminError::NotFound(_) => StatusCode::NOT_FOUND,
        AdminError::Conflict(_) => StatusCode::CONFLICT,
        AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
    };
    (status, Json(json!({"error": error.to_string()}))).into_response()
}

fn bad_body(rejection: &JsonRejection) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": rejection.body_text()})),
    )
        .into_response()
}

fn done(result: Result<(), AdminError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => refused(&error),
    }
}

fn created(result: Result<String, AdminError>) -> Response {
    match result {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(error) => refused(&error),
    }
}

async fn create_user(
    State(app): State<App>,
    body: Result<Json<SeedUser>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(user)) => created(app.with(|i| i.tenant.create_user(&user))),
        Err(rejection) => bad_body(&rejection),
    }
}

async fn update_user(
    State(app): State<App>,
    Path(id): Path<String>,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(changes)) => done(app.with(|i| i.tenant.update_user(&id, &changes))),
        Err(rejection) => bad_body(&rejection),
    }
}

async fn soft_delete_user(State(app): State<App>, Path(id): Path<String>) -> Response {
    done(app.with(|i| i.tenant.soft_delete_user(&id)))
}

async fn restore_user(State(app): State<App>, Path(id): Path<String>) -> Response {
    done(app.with(|i| i.tenant.restore_user(&id)))
}

async fn hard_delete_user(State(app): State<App>, Path(id): Path<String>) -> Response {
    done(app.with(|i| i.tenant.hard_delete_user(&id)))
}

async fn create_group(
    State(app): State<App>,
    body: Result<Json<SeedGroup>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(group)) => created(app.with(|i| i.tenant.create_group(&group))),
        Err(rejection) => bad_body(&rejection),
    }
}

async fn update_group(
    State(app): State<App>,
    Path(id): Path<String>,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(changes)) => done(app.with(|i| i.tenant.update_group(&id, &changes))),
        Err(rejection) => bad_body(&rejection),
    }
}

async fn delete_group(State(app): State<App>, Path(id): Path<String>) -> Response {
    done(app.with(|i| i.tenant.delete_group(&id)))
}

#[derive(Deserialize)]
struct MemberRef {
    id: String,
}

async fn add_member(
    State(app): State<App>,
    Path(id): Path<String>,
    body: Result<Json<MemberRef>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(member)) => done(app.with(|i| i.tenant.add_member(&id, &member.id))),
        Err(rejection) => bad_body(&rejection),
    }
}

async fn remove_member(
    State(app): State<App>,
    Path((id, member)): Path<(String, String)>,
) -> Response {
    done(app.with(|i| i.tenant.remove_member(&id, &member)))
}

#[derive(Deserialize, Default)]
struct ExpireDelta {
    #[serde(default)]
    reply: Option<DeltaExpiry>,
}

/// Expires every delta token issued so far; `reply` also switches how they are refused.
async fn expire_delta_tokens(State(app): State<App>, body: axum::body::Bytes) -> Response {
    let options = if body.iter().all(u8::is_ascii_whitespace) {
        ExpireDelta::default()
    } else {
        match serde_json::from_slice::<ExpireDelta>(&body) {
            Ok(options) => options,
            Err(error) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": error.to_string()})),
                )
                    .into_response();
            }
        }
    };
    app.with(|i| {
        i.delta_epoch += 1;
        if let Some(reply) = options.reply {
            i.delta_expiry = reply;
        }
    });
    StatusCode::NO_CONTENT.into_response()
}

async fn expire_tokens(State(app): State<App>) -> StatusCode {
    app.with(|i| i.tokens.expire_all());
    StatusCode::NO_CONTENT
}

async fn get_throttle(State(app): State<App>) -> Json<Throttle> {
    Json(app.with(|i| i.traffic.throttle().clone()))
}

async fn put_throttle(
    State(app): State<App>,
    body: Result<Json<Throttle>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(throttle)) => {
            let applied = app.with(|i| {
                i.traffic.set_throttle(throttle);
                i.traffic.throttle().clone()
            });
            Json(applied).into_response()
        }
        Err(rejection) => bad_body(&rejection),
    }
}

async fn get_roles(State(app): State<App>) -> Json<BTreeSet<String>> {
    Json(app.with(|i| (*i.roles).clone()))
}

/// The permissions tokens issued from now on carry; existing tokens keep theirs.
async fn put_roles(
    State(app): State<App>,
    body: Result<Json<BTreeSet<String>>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(roles)) => {
            app.with(|i| i.roles = Arc::new(roles.clone()));
            Json(roles).into_response()
        }
        Err(rejection) => bad_body(&rejection),
    }
}

async fn state(State(app): State<App>) -> Json<GraphStateDump> {
    Json(app.with(|i| i.tenant.dump()))
}

async fn requests(State(app): State<App>) -> Json<BTreeMap<String, BTreeMap<u16, u64>>> {
    Json(app.with(|i| i.traffic.counts()))
}

async fn violations(State(app): State<App>) -> Json<Vec<GraphViolation>> {
    Json(app.with(|i| i.traffic.violations()))
}

async fn reset(State(app): State<App>) -> StatusCode {
    app.reset();
    StatusCode::NO_CONTENT
}
