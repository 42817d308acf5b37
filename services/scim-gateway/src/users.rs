//! `/Users`: Entra's matching queries, create, PATCH (applied to the stored
//! document under a version precondition, retried on conflict), PUT, DELETE.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use dirsync_proto::provisioner::v1 as pb;
use dirsync_scim::{PatchRequest, ScimError, ScimType};
use serde_json::Value;
use tonic::Code;

use crate::Gateway;
use crate::auth::Tenant;
use crate::http::{
    ApiError, ListQuery, ResourceId, json_body, no_content, resource_response, scim_response,
};
use crate::render;
use crate::upstream::{call, call_status, fresh, scim_error};

/// Concurrent writers to one user are rare (Entra sends one operation per
/// object at a time), so a few attempts settle any race.
const MAX_PATCH_ATTEMPTS: usize = 8;

/// A SCIM document as the provisioner's user input.
fn scim_input(document: &Value) -> pb::UserInput {
    pb::UserInput {
        source: Some(pb::user_input::Source::ScimJson(document.to_string())),
    }
}

/// The user a provisioner answer carries; its absence is a fault on our side.
pub(crate) fn stored<T>(resource: Option<T>) -> Result<T, ScimError> {
    resource.ok_or_else(|| ScimError::internal("the provisioner answered without the resource"))
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
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(&raw, gateway.max_page_size)?;
    let request = pb::ListUsersRequest {
        tenant: tenant_id,
        filter: query.filter.clone(),
        page_size: query.page_size(),
        page_token: String::new(),
        start_index: query.start_index,
        count_only: query.count_only(),
        view: pb::UserView::Basic.into(),
    };
    let listed = call(fresh!(gateway.upstream.users, list_users, request)).await?;
    let resources: Vec<Value> = listed
        .users
        .iter()
        .map(|user| query.project(&render::user(&gateway.base_url, user)))
        .collect();
    Ok(scim_response(
        StatusCode::OK,
        &dirsync_scim::list_response(
            resources,
            u64::try_from(listed.total_size).unwrap_or(0),
            u64::from(listed.start_index),
        ),
    ))
}

pub(crate) async fn get(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    ResourceId(id): ResourceId,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(&raw, gateway.max_page_size)?;
    let request = pb::GetUserRequest {
        tenant: tenant_id,
        id,
        view: pb::UserView::Basic.into(),
    };
    let user = stored(
        call(fresh!(gateway.upstream.users, get_user, request))
            .await?
            .user,
    )?;
    let resource = render::user(&gateway.base_url, &user);
    Ok(resource_response(
        StatusCode::OK,
        &query.project(&resource),
        user.version,
        None,
    ))
}

pub(crate) async fn create(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let document = json_body(
        &headers,
        body,
        gateway.max_body_bytes,
        gateway.body_read_timeout,
    )
    .await?;
    let request = pb::CreateUserRequest {
        source: pb::WriteSource::Scim as i32,
        tenant: tenant_id,
        user: Some(scim_input(&document)),
    };
    let user = stored(
        call(fresh!(gateway.upstream.users, create_user, request))
            .await?
            .user,
    )?;
    let location = render::user_location(&gateway.base_url, &user.id);
    Ok(resource_response(
        StatusCode::CREATED,
        &render::user(&gateway.base_url, &user),
        user.version,
        Some(&location),
    ))
}

pub(crate) async fn replace(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    ResourceId(id): ResourceId,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let expected_version = if_match_version(&headers)?;
    let document = json_body(
        &headers,
        body,
        gateway.max_body_bytes,
        gateway.body_read_timeout,
    )
    .await?;
    let request = pb::ReplaceUserRequest {
        source: pb::WriteSource::Scim as i32,
        tenant: tenant_id,
        id,
        user: Some(scim_input(&document)),
        expected_version,
    };
    let user = stored(
        call(fresh!(gateway.upstream.users, replace_user, request))
            .await?
            .user,
    )?;
    Ok(resource_response(
        StatusCode::OK,
        &render::user(&gateway.base_url, &user),
        user.version,
        None,
    ))
}

pub(crate) async fn patch(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    ResourceId(id): ResourceId,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let required_version = if_match_version(&headers)?;
    let body = json_body(
        &headers,
        body,
        gateway.max_body_bytes,
        gateway.body_read_timeout,
    )
    .await?;
    let request = PatchRequest::parse(&body)?;
    let get = pb::GetUserRequest {
        tenant: tenant_id.clone(),
        id: id.clone(),
        view: pb::UserView::Basic.into(),
    };
    for _ in 0..MAX_PATCH_ATTEMPTS {
        let current = stored(
            call(fresh!(gateway.upstream.users, get_user, get))
                .await?
                .user,
        )?;
        if required_version != 0 && required_version != current.version {
            return Err(ScimError::precondition_failed(format!(
                "If-Match names version {required_version}; the user is at version {}",
                current.version
            ))
            .into());
        }
        let mut document: Value = serde_json::from_str(&current.scim_json)
            .map_err(|_| ScimError::internal("stored user document is unreadable"))?;
        dirsync_scim::apply_patch(&mut document, &request)?;
        let replace = pb::ReplaceUserRequest {
            source: pb::WriteSource::Scim as i32,
            tenant: tenant_id.clone(),
            id: id.clone(),
            user: Some(scim_input(&document)),
            expected_version: current.version,
        };
        let replaced = call_status(fresh!(gateway.upstream.users, replace_user, replace)).await;
        match replaced {
            Ok(replaced) => {
                let user = stored(replaced.user)?;
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
            Err(status) => return Err(scim_error(status).into()),
        }
    }
    Err(ScimError::unavailable("the user kept changing while this PATCH was applied; retry").into())
}

pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    ResourceId(id): ResourceId,
) -> Result<Response, ApiError> {
    let request = pb::DeleteUserRequest {
        source: pb::WriteSource::Scim as i32,
        tenant: tenant_id,
        id,
    };
    call(fresh!(gateway.upstream.users, delete_user, request)).await?;
    Ok(no_content())
}
