//! `POST /v1.0/$batch` (docs/graph.md §5): up to 20 relative GETs, each authorised,
//! throttled and counted on its own like a top-level read; answers matched by id, in a
//! shuffled order; `dependsOn` honoured (424 after a failed dependency).

use std::collections::HashMap;

use axum::http::{StatusCode, Uri};
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

use super::api::{ReadContext, Target};
use super::shared::{App, Inner};
use super::wire::{GraphReply, RequestIds};

/// At most 20 requests per batch (docs/graph.md §5).
pub(crate) const MAX_REQUESTS: usize = 20;

fn invalid(message: impl Into<String>) -> GraphReply {
    GraphReply::error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// The answer to a `$batch` whose envelope is authorised; `roles` are the token's.
pub(crate) fn batch(
    app: &App,
    inner: &mut Inner,
    ctx: &ReadContext,
    roles: &std::collections::BTreeSet<String>,
    body: &Value,
) -> GraphReply {
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return invalid("Invalid batch payload format: a 'requests' array is required.");
    };
    if requests.len() > MAX_REQUESTS {
        return invalid(format!(
            "Number of batch request steps exceeds the maximum of {MAX_REQUESTS}."
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(requests.len());
    for request in requests {
        let Some(id) = request
            .get("id")
            .and_then(Value::as_str)
            .filter(|i| !i.is_empty())
        else {
            return invalid("Each batch request needs a non-empty string 'id'.");
        };
        if ids.iter().any(|seen| seen.eq_ignore_ascii_case(id)) {
            return invalid(format!("Batch request id '{id}' is not unique."));
        }
        ids.push(id.to_owned());
    }
    // Statuses by id, for dependsOn; requests run in the order given, so a dependency must
    // come earlier.
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::with_capacity(requests.len());
    for (request, id) in requests.iter().zip(&ids) {
        let reply = item(app, inner, ctx, roles, request, &statuses);
        let reply = match reply {
            Ok(reply) => reply,
            Err(whole) => return whole,
        };
        statuses.insert(id.to_ascii_lowercase(), reply.status.as_u16());
        let mut response = Map::new();
        response.insert("id".to_owned(), Value::String(id.clone()));
        response.insert("status".to_owned(), json!(reply.status.as_u16()));
        response.insert("headers".to_owned(), Value::Object(reply.header_object()));
        if let Some(body) = reply.body {
            response.insert("body".to_owned(), body);
        }
        responses.push(Value::Object(response));
    }
    if app.config().shuffle_batch {
        responses.shuffle(&mut rand::rng());
    }
    GraphReply::ok(json!({ "responses": responses }))
}

/// One item's answer; `Err` fails the whole batch (a malformed dependency).
fn item(
    app: &App,
    inner: &mut Inner,
    ctx: &ReadContext,
    roles: &std::collections::BTreeSet<String>,
    request: &Value,
    statuses: &HashMap<String, u16>,
) -> Result<GraphReply, GraphReply> {
    let ids = RequestIds::new(
        request
            .pointer("/headers/client-request-id")
            .and_then(Value::as_str),
    );
    if let Some(depends) = request.get("dependsOn") {
        let Some(depends) = depends.as_array() else {
            return Err(invalid("'dependsOn' must be an array of request ids."));
        };
        for dependency in depends {
            let Some(status) = dependency
                .as_str()
                .and_then(|d| statuses.get(&d.to_ascii_lowercase()))
            else {
                return Err(invalid(format!(
                    "'dependsOn' names {dependency}, which is not an earlier request of this batch."
                )));
            };
            if *status >= 400 {
                return Ok(GraphReply::error(
                    StatusCode::FAILED_DEPENDENCY,
                    "FailedDependency",
                    "The request was not executed because a request it depends on failed.",
                )
                .finish(&ids));
            }
        }
    }
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !method.eq_ignore_ascii_case("GET") {
        return Ok(GraphReply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            format!("The Graph emulator answers only GET inside $batch, not {method}."),
        )
        .finish(&ids));
    }
    // Relative URLs only; the leading slash is optional (docs/graph.md §5).
    if url.contains("://") || url.is_empty() {
        return Ok(invalid("A batch request URL must be relative, e.g. /users.").finish(&ids));
    }
    let path = format!("/v1.0/{}", url.trim_start_matches('/'));
    let Ok(uri) = path.parse::<Uri>() else {
        return Ok(invalid(format!("'{url}' is not a valid URL.")).finish(&ids));
    };
    let target = match Target::parse(uri) {
        Ok(target) => target,
        Err(reply) => return Ok(reply.finish(&ids)),
    };
    let eventual = request
        .get("headers")
        .and_then(Value::as_object)
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("ConsistencyLevel"))
        })
        .and_then(|(_, v)| v.as_str())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    let ctx = ReadContext {
        eventual,
        ..ctx.clone()
    };
    let route = target.route.name();
    let reply = super::server::admitted_read(app, inner, &ctx, roles, &target);
    let reply = reply.finish(&ids);
    inner.traffic.count(route, reply.status);
    Ok(reply)
}
