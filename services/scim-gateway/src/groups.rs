//! `/Groups`: created empty, then filled and emptied by PATCH with explicit
//! member additions and removals (never a rewrite of the member list). Group
//! PATCH answers 204, as Entra expects.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use dirsync_proto::provisioner::v1 as pb;
use dirsync_scim::{PatchRequest, ScimError};
use serde_json::Value;

use crate::Gateway;
use crate::auth::Tenant;
use crate::http::{
    ListQuery, error_response, json_body, no_content, resource_response, scim_response,
};
use crate::render;
use crate::upstream::scim_error;

fn respond(result: Result<Response, ScimError>) -> Response {
    result.unwrap_or_else(|error| error_response(&error))
}

async fn fetch(
    gateway: &Gateway,
    tenant_id: String,
    id: String,
    include_members: bool,
) -> Result<pb::Group, ScimError> {
    Ok(gateway
        .upstream
        .groups
        .clone()
        .get_group(pb::GetGroupRequest {
            tenant_id,
            id,
            include_members,
        })
        .await
        .map_err(scim_error)?
        .into_inner())
}

pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            let query = ListQuery::parse(&raw, gateway.max_page_size)?;
            let with_members = query.wants("members");
            let listed = gateway
                .upstream
                .groups
                .clone()
                .list_groups(pb::ListGroupsRequest {
                    tenant_id,
                    filter: query.filter.clone(),
                    start_index: query.start_index,
                    count: query.count.unwrap_or(0),
                    default_count: query.count.is_none(),
                    include_members: with_members,
                })
                .await
                .map_err(scim_error)?
                .into_inner();
            let resources: Vec<Value> = listed
                .groups
                .iter()
                .map(|group| query.project(&render::group(&gateway.base_url, group, with_members)))
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
            let with_members = query.wants("members");
            let group = fetch(&gateway, tenant_id, id, with_members).await?;
            let resource = render::group(&gateway.base_url, &group, with_members);
            Ok(resource_response(
                StatusCode::OK,
                &query.project(&resource),
                group.version,
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
            let input = dirsync_scim::parse_group(&document)?;
            let has_members = !input.member_ids.is_empty();
            let created = gateway
                .upstream
                .groups
                .clone()
                .create_group(pb::CreateGroupRequest {
                    tenant_id: tenant_id.clone(),
                    display_name: input.display_name,
                    external_id: input.external_id.unwrap_or_default(),
                    member_user_ids: input.member_ids,
                })
                .await
                .map_err(scim_error)?
                .into_inner();
            let group = if has_members {
                fetch(&gateway, tenant_id, created.id.clone(), true).await?
            } else {
                created
            };
            let location = render::group_location(&gateway.base_url, &group.id);
            Ok(resource_response(
                StatusCode::CREATED,
                &render::group(&gateway.base_url, &group, true),
                group.version,
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
            let document = json_body(&headers, body, gateway.max_body_bytes).await?;
            let input = dirsync_scim::parse_group(&document)?;
            gateway
                .upstream
                .groups
                .clone()
                .update_group(pb::UpdateGroupRequest {
                    tenant_id: tenant_id.clone(),
                    id: id.clone(),
                    display_name: Some(input.display_name),
                    external_id: Some(input.external_id.unwrap_or_default()),
                    remove_all_members: true,
                    remove_member_user_ids: Vec::new(),
                    add_member_user_ids: input.member_ids,
                    expected_version: 0,
                })
                .await
                .map_err(scim_error)?;
            let group = fetch(&gateway, tenant_id, id, true).await?;
            Ok(resource_response(
                StatusCode::OK,
                &render::group(&gateway.base_url, &group, true),
                group.version,
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
            let body = json_body(&headers, body, gateway.max_body_bytes).await?;
            let request = PatchRequest::parse(&body)?;
            let plan = dirsync_scim::plan_group_patch(&request)?;
            gateway
                .upstream
                .groups
                .clone()
                .update_group(pb::UpdateGroupRequest {
                    tenant_id,
                    id,
                    display_name: plan.display_name,
                    external_id: plan.external_id.map(Option::unwrap_or_default),
                    remove_all_members: plan.remove_all_members,
                    remove_member_user_ids: plan.remove_members,
                    add_member_user_ids: plan.add_members,
                    expected_version: 0,
                })
                .await
                .map_err(scim_error)?;
            Ok(no_content())
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
                .groups
                .clone()
                .delete_group(pb::DeleteGroupRequest { tenant_id, id })
                .await
                .map_err(scim_error)?;
            Ok(no_content())
        }
        .await,
    )
}
