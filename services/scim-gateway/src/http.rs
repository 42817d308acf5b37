//! SCIM over HTTP: content types, bodies with a size limit, query parameters,
//! and responses with the headers Entra and SCIM testers look for.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dirsync_scim::{ScimError, ScimType};
use serde_json::Value;

pub(crate) const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// A SCIM JSON response with the given status.
pub(crate) fn scim_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    response
}

/// A resource response with `ETag` and, when given, `Location`.
pub(crate) fn resource_response(
    status: StatusCode,
    body: &Value,
    version: i64,
    location: Option<&str>,
) -> Response {
    let mut response = scim_response(status, body);
    if let Ok(etag) = HeaderValue::from_str(&dirsync_scim::meta::etag(version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The `{id}` of a resource path, for handlers. A percent-encoded id that does not decode to
/// UTF-8, or holds a NUL, names no resource: it is a SCIM 404 like any other unknown id, not
/// axum's plain-text rejection (nor a database error).
#[derive(Debug)]
pub(crate) struct ResourceId(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for ResourceId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            // No resource has a NUL in its id (and PostgreSQL cannot even look one up).
            Ok(Path(id)) if id.contains('\0') => Err(ApiError(ScimError::not_found(
                "no such resource: the id contains the NUL character",
            ))),
            Ok(Path(id)) => Ok(Self(id)),
            Err(PathRejection::FailedToDeserializePathParams(rejection)) => Err(ApiError(
                ScimError::not_found(format!("no such resource: {}", rejection.body_text())),
            )),
            Err(rejection) => {
                tracing::error!(%rejection, "a resource route has no id");
                Err(ApiError(ScimError::internal("internal error")))
            }
        }
    }
}

/// A handler's failure, answered as a SCIM error body with its status.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) ScimError);

impl From<ScimError> for ApiError {
    fn from(error: ScimError) -> Self {
        Self(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

pub(crate) fn error_response(error: &ScimError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    scim_response(status, &error.to_json())
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Largest request head (all header names and values) the gateway reads; Entra sends well
/// under 2 KB.
pub(crate) const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses requests whose headers are larger than [`MAX_HEADER_BYTES`], as a SCIM error.
pub(crate) async fn limit_headers(request: Request, next: Next) -> Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > MAX_HEADER_BYTES {
        return error_response(&ScimError::new(
            431,
            None,
            format!("the request headers are larger than {MAX_HEADER_BYTES} bytes"),
        ));
    }
    next.run(request).await
}

/// Reads a JSON body: `application/scim+json` or `application/json` (or no
/// content type at all), at most `limit` bytes, within `timeout`.
pub(crate) async fn json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Value, ScimError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let content_type = content_type
            .to_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if !(media_type == SCIM_CONTENT_TYPE
            || media_type == "application/json"
            || media_type.is_empty())
        {
            return Err(ScimError::new(
                415,
                None,
                format!(
                    "unsupported content type {media_type:?}: send application/scim+json or application/json"
                ),
            ));
        }
    }
    let bytes: Bytes = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| {
            ScimError::new(
                408,
                None,
                format!(
                    "the request body did not arrive within {}",
                    humantime::format_duration(timeout)
                ),
            )
        })?
        .map_err(|_| {
            ScimError::payload_too_large(format!("the request body is larger than {limit} bytes"))
        })?;
    if bytes.is_empty() {
        return Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            "the request body is empty",
        ));
    }
    serde_json::from_slice(&bytes).map_err(|error| {
        ScimError::bad_request(
            ScimType::InvalidSyntax,
            format!("the request body is not valid JSON: {error}"),
        )
    })
}

/// The query parameters SCIM defines; anything else (such as Entra's bare
/// `aadOptscim062020` flag) is ignored.
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    pub(crate) filter: String,
    pub(crate) start_index: u32,
    /// `None` when the client gave no count.
    pub(crate) count: Option<u32>,
    pub(crate) attributes: Vec<String>,
    pub(crate) excluded_attributes: Vec<String>,
}

impl ListQuery {
    pub(crate) fn parse(
        raw: &HashMap<String, String>,
        max_page_size: u32,
    ) -> Result<Self, ScimError> {
        let mut query = ListQuery {
            start_index: 1,
            ..ListQuery::default()
        };
        for (name, value) in raw {
            match name.to_ascii_lowercase().as_str() {
                "filter" => query.filter = value.clone(),
                "startindex" => {
                    // RFC 7644 §3.4.2.4: a value below 1 is read as 1.
                    let index: i64 = value.trim().parse().map_err(|_| {
                        ScimError::bad_request(
                            ScimType::InvalidValue,
                            format!("startIndex {value:?} is not an integer"),
                        )
                    })?;
                    query.start_index = u32::try_from(index.max(1)).unwrap_or(u32::MAX);
                }
                "count" => {
                    // A negative count is read as 0; a large one is capped.
                    let count: i64 = value.trim().parse().map_err(|_| {
                        ScimError::bad_request(
                            ScimType::InvalidValue,
                            format!("count {value:?} is not an integer"),
                        )
                    })?;
                    query.count = Some(
                        u32::try_from(count.max(0))
                            .unwrap_or(u32::MAX)
                            .min(max_page_size),
                    );
                }
                "attributes" => query.attributes = dirsync_scim::parse_attribute_list(value),
                "excludedattributes" => {
                    query.excluded_attributes = dirsync_scim::parse_attribute_list(value)
                }
                _ => {}
            }
        }
        Ok(query)
    }

    /// The provisioner's page size: SCIM's `count`, or 0 for the default page.
    pub(crate) fn page_size(&self) -> i32 {
        self.count
            .map_or(0, |count| i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// `count=0`: RFC 7644 asks only for `totalResults`.
    pub(crate) fn count_only(&self) -> bool {
        self.count == Some(0)
    }

    pub(crate) fn project(&self, resource: &Value) -> Value {
        if self.attributes.is_empty() && self.excluded_attributes.is_empty() {
            resource.clone()
        } else {
            dirsync_scim::project(resource, &self.attributes, &self.excluded_attributes)
        }
    }

    /// Whether the client wants an attribute returned (by default it is).
    pub(crate) fn wants(&self, attribute: &str) -> bool {
        let named = |list: &[String]| {
            list.iter().any(|name| {
                let name = name.to_ascii_lowercase();
                let bare = name.rsplit(':').next().unwrap_or(&name);
                bare == attribute
                    || bare.starts_with(&format!("{attribute}."))
                    || bare.starts_with(&format!("{attribute}["))
            })
        };
        if !self.attributes.is_empty() {
            return named(&self.attributes);
        }
        !named(&self.excluded_attributes)
    }
}

pub(crate) async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    error_response(&ScimError::not_found(format!(
        "no SCIM endpoint {method} {}",
        uri.path()
    )))
}

pub(crate) async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    error_response(&ScimError::new(
        405,
        None,
        format!("{method} is not supported on {}", uri.path()),
    ))
}

/// One log line per request (method, path, status, latency, request id),
/// request counts and latency per route, and the request id set for the
/// provisioner calls the request makes. Never headers or bodies, which carry
/// tokens and personal data.
pub(crate) async fn observe_request(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(
            || "unmatched".to_owned(),
            |matched| matched.as_str().to_owned(),
        );
    let request_id = dirsync_runtime::request_id::from_header(
        request
            .headers()
            .get(dirsync_runtime::request_id::HEADER)
            .and_then(|value| value.to_str().ok()),
    );
    let mut response =
        dirsync_runtime::request_id::scope(request_id.clone(), next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(dirsync_runtime::request_id::HEADER, value);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    let labels = vec![
        ("method", method.to_string()),
        ("route", route),
        ("status", status.to_string()),
    ];
    let registry = dirsync_runtime::metrics::registry();
    registry.increment(
        "dirsync_scim_requests_total",
        "SCIM requests by method, route and status.",
        labels.clone(),
    );
    registry.observe(
        "dirsync_scim_request_duration_seconds",
        "SCIM request latency by method, route and status.",
        labels,
        elapsed,
    );
    let elapsed_ms = elapsed * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, %path, status, elapsed_ms, %request_id, "SCIM request failed");
    } else {
        tracing::debug!(%method, %path, status, elapsed_ms, %request_id, "SCIM request");
    }
    response
}
