//! `/Users`: Entra's matching queries, create, PATCH (applied to the stored
//! document under a version precondition, retried on conflict), PUT, DELETE.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use dirsync_proto::provisioner::v1 as pb;
use dirsync_scim::{PatchRequest, ScimError, ScimType};
use serde_json::Value;
use tonic::Code;

use crate::Gateway;
use crate::auth::Tenant;
use crate::http::{
    ListQuery, error_response, json_body, no_content, resource_response, scim_response,
};
use crate::render;
use crate::upstream::scim_error;

/// Concurrent writers to one user are rare (Entra sends one operation per
/// object at a time), so a few attempts settle any race.
const MAX_PATCH_ATTEMPTS: usize = 8;

fn respond(result: Result<Response, ScimError>) -> Response {
    result.unwrap_or_else(|error| error_response(&error))
}

/// `If-Match: W/"3"` as a version precondition; absent or `*` is none.
fn if_match_version(headers: &HeaderMap) -> Result<i64, ScimError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(0);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(0);
    }
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map_err(|_| {
            ScimError::bad_request(
                ScimType::InvalidVers,
                format!("If-Match {text:?} is not a version this server issued"),
            )
        })
}

pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            let query = ListQuery::parse(&raw, gateway.max_page_size)?;
            let listed = gateway
                .upstream
                .users
                .clone()
                .list_users(pb::ListUsersRequest {
                    tenant_id,
                    filter: query.filter.clone(),
                    start_index: query.start_index,
                    count: query.count.unwrap_or(0),
                    default_count: query.count.is_none(),
                })
                .await
                .map_err(scim_error)?
                .into_inner();
            let resources: Vec<Value> = listed
                .users
                .iter()
                .map(|user| query.project(&render::user(&gateway.base_url, user)))
                .collect();
            Ok(scim_response(
                StatusCode::OK,
                &dirsync_scim::list_response(
                    resources,
                    listed.total_results,
                    u64::from(listed.start_index),
                ),
            ))
        }
        .await,
    )
}

pub(crate) async fn get(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    Path(id): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            let query = ListQuery::parse(&raw, gateway.max_page_size)?;
            let user = gateway
                .upstream
                .users
                .clone()
                .get_user(pb::GetUserRequest { tenant_id, id })
                .await
                .map_err(scim_error)?
                .into_inner();
            let resource = render::user(&gateway.base_url, &user);
            Ok(resource_response(
                StatusCode::OK,
                &query.project(&resource),
                user.version,
                None,
            ))
        }
        .await,
    )
}

pub(crate) async fn create(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            let document = json_body(&headers, body, gateway.max_body_bytes).await?;
            let user = gateway
                .upstream
                .users
                .clone()
                .create_user(pb::CreateUserRequest {
                    tenant_id,
                    user: Some(pb::UserInput {
                        scim_json: document.to_string(),
                    }),
                })
                .await
                .map_err(scim_error)?
                .into_inner();
            let location = render::user_location(&gateway.base_url, &user.id);
            Ok(resource_response(
                StatusCode::CREATED,
                &render::user(&gateway.base_url, &user),
                user.version,
                Some(&location),
            ))
        }
        .await,
    )
}

pub(crate) async fn replace(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            let expected_version = if_match_version(&headers)?;
            let document = json_body(&headers, body, gateway.max_body_bytes).await?;
            let user = gateway
                .upstream
                .users
                .clone()
                .replace_user(pb::ReplaceUserRequest {
                    tenant_id,
                    id,
                    user: Some(pb::UserInput {
                        scim_json: document.to_string(),
                    }),
                    expected_version,
                })
                .await
                .map_err(scim_error)?
                .into_inner();
            Ok(resource_response(
                StatusCode::OK,
                &render::user(&gateway.base_url, &user),
                user.version,
                None,
            ))
        }
        .await,
    )
}

pub(crate) async fn patch(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            let required_version = if_match_version(&headers)?;
            let body = json_body(&headers, body, gateway.max_body_bytes).await?;
            let request = PatchRequest::parse(&body)?;
            let mut users = gateway.upstream.users.clone();
            for _ in 0..MAX_PATCH_ATTEMPTS {
                let current = users
                    .get_user(pb::GetUserRequest {
                        tenant_id: tenant_id.clone(),
                        id: id.clone(),
                    })
                    .await
                    .map_err(scim_error)?
                    .into_inner();
                if required_version != 0 && required_version != current.version {
                    return Err(ScimError::precondition_failed(format!(
                        "If-Match names version {required_version}; the user is at version {}",
                        current.version
                    )));
                }
                let mut document: Value = serde_json::from_str(&current.scim_json)
                    .map_err(|_| ScimError::internal("stored user document is unreadable"))?;
                dirsync_scim::apply_patch(&mut document, &request)?;
                let replaced = users
                    .replace_user(pb::ReplaceUserRequest {
                        tenant_id: tenant_id.clone(),
                        id: id.clone(),
                        user: Some(pb::UserInput {
                            scim_json: document.to_string(),
                        }),
                        expected_version: current.version,
                    })
                    .await;
                match replaced {
                    Ok(user) => {
                        let user = user.into_inner();
                        return Ok(resource_response(
                            StatusCode::OK,
                            &render::user(&gateway.base_url, &user),
                            user.version,
                            None,
                        ));
                    }
                    Err(status) if status.code() == Code::FailedPrecondition => {
                        tracing::debug!(user = %id, "user changed under a PATCH; applying it again");
                    }
                    Err(status) => return Err(scim_error(status)),
                }
            }
            Err(ScimError::unavailable(
                "the user kept changing while this PATCH was applied; retry",
            ))
        }
        .await,
    )
}

pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    Path(id): Path<String>,
) -> Response {
    respond(
        async {
            gateway
                .upstream
                .users
                .clone()
                .delete_user(pb::DeleteUserRequest { tenant_id, id })
                .await
                .map_err(scim_error)?;
            Ok(no_content())
        }
        .await,
    )
}
