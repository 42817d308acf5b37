//! One HTTP exchange with MaaS360: URL building, headers, the timeout, the body cap, call
//! counting, and turning statuses and error bodies into [`Maas360Error`]s.
//!
//! Nothing here retries: callers own backoff, and this layer only classifies.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::error::Maas360Error;
use crate::lenient::{signed, text, text_of};
use crate::routes::{Method, Route};
use crate::secret::Secret;

/// Responses larger than this are refused rather than buffered; the largest legitimate one
/// (a 250-user page) is far smaller.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// What goes in the request body.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    None,
    /// v1 POST operations take form parameters (maas360-api.md §3).
    Form(Vec<(&'static str, String)>),
    /// Authentication and 2.0 operations take JSON (§2.2, §3).
    Json(Value),
}

/// A fully described request, rebuilt for the single retry after a 401.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) route: Route,
    pub(crate) url: Url,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Body,
}

/// A response whose status has not been judged yet.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<Duration>,
    /// `None` when the body was empty or not JSON.
    pub(crate) body: Option<Value>,
    pub(crate) body_len: usize,
}

pub(crate) struct Transport {
    http: reqwest::Client,
    base: Url,
    counts: Mutex<BTreeMap<(String, String), u64>>,
}

impl Transport {
    pub(crate) fn new(base_url: &str, timeout: Duration) -> Result<Self, Maas360Error> {
        let base = Url::parse(base_url.trim())
            .map_err(|e| Maas360Error::Config(format!("base_url {base_url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Maas360Error::Config(format!(
                "base_url {base_url:?} must be an http(s) URL"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Maas360Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            counts: Mutex::new(BTreeMap::new()),
        })
    }

    /// Fills a route template; each parameter becomes exactly one percent-encoded segment, so
    /// an identifier containing `/` or `?` cannot change which operation is called.
    pub(crate) fn url(&self, route: &Route, params: &[(&str, &str)]) -> Result<Url, Maas360Error> {
        let mut url = self.base.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| Maas360Error::Config("base_url cannot hold a path".to_owned()))?;
            segments.pop_if_empty();
            for part in route.template.split('/').filter(|s| !s.is_empty()) {
                let value = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) => params
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| *v)
                        .ok_or_else(|| {
                            Maas360Error::Config(format!("route {} needs {name}", route.name))
                        })?,
                    None => part,
                };
                segments.push(value);
            }
        }
        Ok(url)
    }

    pub(crate) async fn execute(
        &self,
        call: &Call,
        token: Option<&Secret>,
    ) -> Result<Reply, Maas360Error> {
        let mut request = match call.route.method {
            Method::Get => self.http.get(call.url.clone()),
            Method::Post => self.http.post(call.url.clone()),
            Method::Delete => self.http.delete(call.url.clone()),
        };
        request = request.header(ACCEPT, HeaderValue::from_static("application/json"));
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(&format!("MaaS token=\"{}\"", token.expose()))
                .map_err(|_| Maas360Error::Permanent {
                    status: None,
                    detail: "MaaS360 issued a token that is not a valid header value".to_owned(),
                })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        request = match &call.body {
            Body::None => request,
            Body::Form(fields) => request.form(fields),
            Body::Json(value) => request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(value.to_string()),
        };

        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Err(self.transport_error(&call.route, &error)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(dirsync_http::retry_after);
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                        self.count(&call.route, "oversized");
                        return Err(Maas360Error::Permanent {
                            status: Some(status.as_u16()),
                            detail: format!(
                                "{}: response larger than {MAX_BODY_BYTES} bytes",
                                call.route.name
                            ),
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => return Err(self.transport_error(&call.route, &error)),
            }
        }
        self.count(&call.route, status.as_str());
        tracing::debug!(
            route = call.route.name,
            status = status.as_u16(),
            "MaaS360 call"
        );
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        Ok(Reply {
            status,
            retry_after,
            body,
            body_len: bytes.len(),
        })
    }

    fn transport_error(&self, route: &Route, error: &reqwest::Error) -> Maas360Error {
        let outcome = if error.is_timeout() {
            "timeout"
        } else if error.is_connect() {
            "connect"
        } else {
            "transport"
        };
        self.count(route, outcome);
        tracing::debug!(route = route.name, outcome, "MaaS360 call failed");
        if error.is_builder() {
            return Maas360Error::Config(format!("{}: {error}", route.name));
        }
        // Query strings carry only user names and paging, never secrets, so the URL may stay.
        Maas360Error::Retryable {
            detail: format!("{} ({outcome}): {error}", route.name),
            retry_after: None,
        }
    }

    fn count(&self, route: &Route, outcome: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .entry((route.name.to_owned(), outcome.to_owned()))
            .or_insert(0) += 1;
    }

    pub(crate) fn counts(&self) -> BTreeMap<(String, String), u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The most specific human-readable error text MaaS360 put in a body, if any.
pub(crate) fn describe(body: Option<&Value>) -> String {
    let Some(body) = body else {
        return String::new();
    };
    let candidates = [
        body.get("actionResponse"),
        body.get("authResponse"),
        body.get("response"),
        Some(body),
    ];
    for object in candidates.into_iter().flatten() {
        let desc = text_of(
            object,
            &["errorDesc", "description", "errorMessage", "message"],
        );
        if !desc.is_empty() {
            return desc;
        }
    }
    String::new()
}

/// `responseCode` of a 2.0 error body, top-level or under `response` (maas360-api.md §3).
fn response_code(body: Option<&Value>) -> Option<i64> {
    let body = body?;
    signed(body.get("responseCode"))
        .or_else(|| signed(body.get("response").and_then(|r| r.get("responseCode"))))
}

fn mentions_duplicate(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    lower.contains("already exist") || lower.contains("duplicate")
}

fn mentions_missing(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    lower.contains("not found") || lower.contains("does not exist") || lower.contains("no such")
}

/// Judges a resource-API reply (not authentication), returning its JSON body on success.
pub(crate) fn classify(route: &Route, reply: Reply) -> Result<Value, Maas360Error> {
    let status = reply.status;
    let code = status.as_u16();
    let desc = describe(reply.body.as_ref());
    let detail = if desc.is_empty() {
        format!("{}: HTTP {code}", route.name)
    } else {
        format!("{}: {desc}", route.name)
    };
    if status.is_success() {
        let Some(body) = reply.body else {
            return Err(Maas360Error::Permanent {
                status: Some(code),
                detail: format!(
                    "{}: response is not JSON ({} bytes)",
                    route.name, reply.body_len
                ),
            });
        };
        return check_success_body(route, code, body);
    }
    Err(match code {
        401 => Maas360Error::Auth {
            part: "token".to_owned(),
            detail,
        },
        404 => Maas360Error::NotFound { detail },
        409 => Maas360Error::AlreadyExists { detail },
        408 | 425 | 429 | 500..=599 => Maas360Error::Retryable {
            detail,
            retry_after: reply.retry_after,
        },
        // The reference advises backing off on 403 bodies that mention limits (§7).
        403 if desc.to_ascii_lowercase().contains("limit") => Maas360Error::Retryable {
            detail,
            retry_after: reply.retry_after,
        },
        _ if response_code(reply.body.as_ref()) == Some(7) || mentions_duplicate(&desc) => {
            Maas360Error::AlreadyExists { detail }
        }
        _ if status.is_client_error() && mentions_missing(&desc) => {
            Maas360Error::NotFound { detail }
        }
        _ => Maas360Error::Permanent {
            status: Some(code),
            detail,
        },
    })
}

/// MaaS360 reports many failures with HTTP 200: a non-zero `errorCode`, or an
/// `actionResponse` whose status is "Failure" (maas360-api.md §2.2, §3).
fn check_success_body(route: &Route, code: u16, body: Value) -> Result<Value, Maas360Error> {
    let desc = describe(Some(&body));
    let detail = format!("{}: {desc}", route.name);
    if let Some(action) = body.get("actionResponse") {
        let status = text(action.get("status"));
        let action_status = signed(action.get("actionStatus"));
        let failed = status.eq_ignore_ascii_case("failure")
            || status.eq_ignore_ascii_case("failed")
            || action_status.is_some_and(|s| s != 0);
        if failed {
            return Err(if mentions_duplicate(&desc) {
                Maas360Error::AlreadyExists { detail }
            } else if mentions_missing(&desc) {
                Maas360Error::NotFound { detail }
            } else {
                Maas360Error::Permanent {
                    status: Some(code),
                    detail,
                }
            });
        }
    }
    let error_code = signed(body.get("errorCode"))
        .or_else(|| signed(body.get("authResponse").and_then(|a| a.get("errorCode"))));
    if error_code.is_some_and(|c| c != 0) {
        return Err(Maas360Error::Permanent {
            status: Some(code),
            detail,
        });
    }
    if response_code(Some(&body)).is_some_and(|c| c != 0) {
        return Err(
            if response_code(Some(&body)) == Some(7) || mentions_duplicate(&desc) {
                Maas360Error::AlreadyExists { detail }
            } else {
                Maas360Error::Permanent {
                    status: Some(code),
                    detail,
                }
            },
        );
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::routes;

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
            retry_after: Some(Duration::from_secs(3)),
            body: Some(body),
            body_len: 10,
        }
    }

    #[test]
    fn classifies_statuses_and_bodies() {
        let r = routes::ADD_USER;
        let e = classify(&r, reply(429, json!({"errorCode": 429}))).err();
        assert_eq!(
            e.and_then(|e| e.retry_after()),
            Some(Duration::from_secs(3))
        );
        let e = classify(&r, reply(502, json!({}))).err();
        assert!(e.is_some_and(|e| e.is_retryable()));
        let e = classify(
            &r,
            reply(
                200,
                json!({"actionResponse": {"status": "Failure", "description": "User already exists"}}),
            ),
        );
        assert!(matches!(e, Err(Maas360Error::AlreadyExists { .. })));
        let e = classify(
            &r,
            reply(
                200,
                json!({"actionResponse": {"status": "Failure", "description": "Invalid email"}}),
            ),
        );
        assert!(
            matches!(e, Err(Maas360Error::Permanent { status: Some(200), ref detail }) if detail.contains("Invalid email"))
        );
        let e = classify(&r, reply(400, json!({"response": {"responseCode": "7"}})));
        assert!(matches!(e, Err(Maas360Error::AlreadyExists { .. })));
        let e = classify(&r, reply(400, json!({"errorDesc": "bad pageSize"})));
        assert!(matches!(
            e,
            Err(Maas360Error::Permanent {
                status: Some(400),
                ..
            })
        ));
        let ok = classify(
            &r,
            reply(200, json!({"actionResponse": {"status": "Success"}})),
        );
        assert!(ok.is_ok());
    }
}
