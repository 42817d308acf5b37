//! `/Groups`: created empty, then filled and emptied by PATCH with explicit
//! member additions and removals (never a rewrite of the member list). Group
//! PATCH answers 204, as Entra expects.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use dirsync_proto::provisioner::v1 as pb;
use dirsync_scim::{PatchRequest, ScimError};
use serde_json::Value;

use crate::Gateway;
use crate::auth::Tenant;
use crate::http::{
    ApiError, ListQuery, ResourceId, json_body, no_content, resource_response, scim_response,
};
use crate::render;
use crate::upstream::{call, fresh};
use crate::users::stored;

async fn fetch(
    gateway: &Gateway,
    tenant_id: String,
    id: String,
    include_members: bool,
) -> Result<pb::Group, ScimError> {
    let request = pb::GetGroupRequest {
        tenant: tenant_id,
        id,
        include_members,
    };
    stored(
        call(fresh!(gateway.upstream.groups, get_group, request))
            .await?
            .group,
    )
}

pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(&raw, gateway.max_page_size)?;
    let with_members = query.wants("members");
    let request = pb::ListGroupsRequest {
        tenant: tenant_id,
        filter: query.filter.clone(),
        page_size: query.page_size(),
        page_token: String::new(),
        start_index: query.start_index,
        count_only: query.count_only(),
        include_members: with_members,
    };
    let listed = call(fresh!(gateway.upstream.groups, list_groups, request)).await?;
    let resources: Vec<Value> = listed
        .groups
        .iter()
        .map(|group| query.project(&render::group(&gateway.base_url, group, with_members)))
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
    let input = dirsync_scim::parse_group(&document)?;
    let has_members = !input.member_ids.is_empty();
    let request = pb::CreateGroupRequest {
        source: pb::WriteSource::Scim as i32,
        tenant: tenant_id.clone(),
        display_name: input.display_name,
        external_id: input.external_id.unwrap_or_default(),
        member_user_ids: input.member_ids,
    };
    let created = stored(
        call(fresh!(gateway.upstream.groups, create_group, request))
            .await?
            .group,
    )?;
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

pub(crate) async fn replace(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    ResourceId(id): ResourceId,
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
    let input = dirsync_scim::parse_group(&document)?;
    let request = pb::UpdateGroupRequest {
        source: pb::WriteSource::Scim as i32,
        tenant: tenant_id.clone(),
        id: id.clone(),
        display_name: Some(input.display_name),
        external_id: Some(input.external_id.unwrap_or_default()),
        remove_all_members: true,
        remove_member_user_ids: Vec::new(),
        add_member_user_ids: input.member_ids,
        expected_version: 0,
    };
    call(fresh!(gateway.upstream.groups, update_group, request)).await?;
    let group = fetch(&gateway, tenant_id, id, true).await?;
    Ok(resource_response(
        StatusCode::OK,
        &render::group(&gateway.base_url, &group, true),
        group.version,
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
    let body = json_body(
        &headers,
        body,
        gateway.max_body_bytes,
        gateway.body_read_timeout,
    )
    .await?;
    let request = PatchRequest::parse(&body)?;
    let plan = dirsync_scim::plan_group_patch(&request)?;
    let request = pb::UpdateGroupRequest {
        source: pb::WriteSource::Scim as i32,
        tenant: tenant_id,
        id,
        display_name: plan.display_name,
        external_id: plan.external_id.map(Option::unwrap_or_default),
        remove_all_members: plan.remove_all_members,
        remove_member_user_ids: plan.remove_members,
        add_member_user_ids: plan.add_members,
        expected_version: 0,
    };
    call(fresh!(gateway.upstream.groups, update_group, request)).await?;
    Ok(no_content())
}

pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    Extension(Tenant(tenant_id)): Extension<Tenant>,
    ResourceId(id): ResourceId,
) -> Result<Response, ApiError> {
    let request = pb::DeleteGroupRequest {
        source: pb::WriteSource::Scim as i32,
        tenant: tenant_id,
        id,
    };
    call(fresh!(gateway.upstream.groups, delete_group, request)).await?;
    Ok(no_content())
}
