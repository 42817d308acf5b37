//! `/ServiceProviderConfig`, `/Schemas` and `/ResourceTypes`, from the SCIM
//! library's documents, with this deployment's base URL and limits.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use dirsync_scim::ScimError;

use crate::Gateway;
use crate::http::{ResourceId, error_response, scim_response};

pub(crate) async fn service_provider_config(State(gateway): State<Arc<Gateway>>) -> Response {
    scim_response(
        StatusCode::OK,
        &dirsync_scim::service_provider_config(
            &gateway.base_url,
            gateway.max_page_size,
            gateway.max_body_bytes,
        ),
    )
}

pub(crate) async fn schemas(State(gateway): State<Arc<Gateway>>) -> Response {
    let schemas = dirsync_scim::schemas(&gateway.base_url);
    let total = schemas.len() as u64;
    scim_response(
        StatusCode::OK,
        &dirsync_scim::list_response(schemas, total, 1),
    )
}

pub(crate) async fn schema(
    State(gateway): State<Arc<Gateway>>,
    ResourceId(id): ResourceId,
) -> Response {
    match dirsync_scim::schema_by_id(&gateway.base_url, &id) {
        Some(schema) => scim_response(StatusCode::OK, &schema),
        None => error_response(&ScimError::not_found(format!("no schema {id}"))),
    }
}

pub(crate) async fn resource_types(State(gateway): State<Arc<Gateway>>) -> Response {
    let types = dirsync_scim::resource_types(&gateway.base_url);
    let total = types.len() as u64;
    scim_response(
        StatusCode::OK,
        &dirsync_scim::list_response(types, total, 1),
    )
}

pub(crate) async fn resource_type(
    State(gateway): State<Arc<Gateway>>,
    ResourceId(id): ResourceId,
) -> Response {
    match dirsync_scim::resource_type_by_id(&gateway.base_url, &id) {
        Some(resource_type) => scim_response(StatusCode::OK, &resource_type),
        None => error_response(&ScimError::not_found(format!("no resource type {id}"))),
    }
}
