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
use crate::rate_limit::{RateLimitHeaders, RateLimitObserver};
use crate::routes::{Encoding, Method, Route, Success};
use dirsync_http::Secret;

/// Responses larger than this are refused rather than buffered; the largest legitimate one
/// (a 250-user page) is far smaller.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A fully described request, repeated as is for the single retry after a 401. Its parameters
/// travel as the route's [`Encoding`] says.
#[derive(Clone, Debug)]
pub(crate) struct Call<'a> {
    pub(crate) route: &'a Route,
    pub(crate) url: Url,
    pub(crate) params: Vec<(&'static str, String)>,
}

/// A response whose status has not been judged yet.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    /// The Retry-After header (seconds or HTTP date).
    pub(crate) retry_after: Option<Duration>,
    /// `X-Rate-Limit-ResetWindow`: when a rate limit lifts. Only a rate-limit refusal uses it
    /// as a wait; a server error that happens to carry it is no reason to pause.
    pub(crate) reset_window: Option<Duration>,
    /// `None` when the body was empty or not JSON.
    pub(crate) body: Option<Value>,
    pub(crate) body_len: usize,
}

impl Reply {
    /// How long a rate-limit refusal asks to wait: its Retry-After, else the reset window.
    pub(crate) fn rate_limit_wait(&self) -> Option<Duration> {
        self.retry_after.or(self.reset_window)
    }
}

pub(crate) struct Transport {
    http: reqwest::Client,
    base: Url,
    counts: Mutex<BTreeMap<(String, String), u64>>,
    rate_limit: RateLimitObserver,
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
            rate_limit: RateLimitObserver::default(),
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
            if route.template.ends_with('/') {
                // Some clients send `.../authenticate/{billingID}/` (docs/maas360.md §2.2).
                segments.push("");
            }
        }
        Ok(url)
    }

    pub(crate) async fn execute(
        &self,
        call: &Call<'_>,
        token: Option<&Secret>,
    ) -> Result<Reply, Maas360Error> {
        let method = match call.route.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut request = self
            .http
            .request(method, call.url.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(token) = token {
            // Single quotes, as IBM's own integration sends (docs/maas360.md §2.4).
            let mut value = HeaderValue::from_str(&format!("MaaS token='{}'", token.expose()))
                .map_err(|_| Maas360Error::Permanent {
                    status: None,
                    detail: "MaaS360 issued a token that is not a valid header value".to_owned(),
                })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        request = match call.route.encoding {
            Encoding::Query if call.params.is_empty() => request,
            Encoding::Query => request.query(&call.params),
            Encoding::Form => request.form(&call.params),
            Encoding::Json => request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(json_body(&call.route.envelope, &call.params).to_string()),
        };

        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Err(self.transport_error(call.route, &error)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(dirsync_http::retry_after);
        let limits = RateLimitHeaders::read(response.headers());
        self.rate_limit.observe(status, limits, retry_after);
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                        self.count(call.route, "oversized");
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
                Err(error) => return Err(self.transport_error(call.route, &error)),
            }
        }
        self.count(call.route, status.as_str());
        tracing::debug!(
            route = call.route.name.as_str(),
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
            reset_window: limits.reset_window,
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
        tracing::debug!(route = route.name.as_str(), outcome, "MaaS360 call failed");
        if error.is_builder() {
            return Maas360Error::Config(format!("{}: {error}", route.name));
        }
        // Query strings carry only user names and paging, never secrets, so the URL may stay.
        Maas360Error::Retryable {
            detail: format!("{} ({outcome}): {error}", route.name),
            retry_after: None,
            status: None,
        }
    }

    fn count(&self, route: &Route, outcome: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .entry((route.name.as_str().to_owned(), outcome.to_owned()))
            .or_insert(0) += 1;
    }

    pub(crate) fn rate_limit(&self) -> &RateLimitObserver {
        &self.rate_limit
    }

    pub(crate) fn counts(&self) -> BTreeMap<(String, String), u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A JSON object of the fields, inside the dotted `envelope` keys if any:
/// `authRequest.maaS360AdminAuth` gives `{"authRequest":{"maaS360AdminAuth":{…}}}` (docs/maas360.md §2.2).
/// A route's JSON body: its fields wrapped in its envelope. A dotted field name nests
/// (`policyRequest.policyType`), and one ending in `[]` gathers its values into an array
/// (`policyRequest.policyName[]`), so that a route such as `changeGroupPolicy` (docs/maas360.md
/// §5.3) is still described by string pairs.
fn json_body(envelope: &str, params: &[(&'static str, String)]) -> Value {
    let mut fields = serde_json::Map::new();
    'params: for (key, value) in params {
        let (path, is_list) = match key.strip_suffix("[]") {
            Some(path) => (path, true),
            None => (*key, false),
        };
        let mut segments: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
        let Some(last) = segments.pop() else {
            continue;
        };
        let mut object = &mut fields;
        for segment in segments {
            let entry = object
                .entry(segment.to_owned())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(serde_json::Map::new());
            }
            object = match entry {
                Value::Object(inner) => inner,
                _ => continue 'params,
            };
        }
        if is_list {
            let entry = object
                .entry(last.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = entry {
                items.push(Value::String(value.clone()));
            }
        } else {
            object.insert(last.to_owned(), Value::String(value.clone()));
        }
    }
    envelope
        .rsplit('.')
        .filter(|key| !key.is_empty())
        .fold(Value::Object(fields), |inner, key| {
            let mut outer = serde_json::Map::new();
            outer.insert(key.to_owned(), inner);
            Value::Object(outer)
        })
}

/// The objects of a body where MaaS360 puts an error: the known envelopes, the root, and the
/// one object a resource route keys by its resource, as in
/// `{"adminChanges":{"errorCode":1009,"errorDesc":"Token invalid"}}` (docs/maas360.md
/// §2.5).
fn error_holders(body: &Value) -> Vec<&Value> {
    let mut holders: Vec<&Value> = ["actionResponse", "authResponse", "response"]
        .into_iter()
        .filter_map(|key| body.get(key))
        .collect();
    holders.push(body);
    if let Some(object) = body.as_object()
        && let [(_, only)] = object.iter().collect::<Vec<_>>().as_slice()
        && only.is_object()
    {
        holders.push(only);
    }
    holders
}

/// The most specific human-readable error text MaaS360 put in a body, if any.
pub(crate) fn describe(body: Option<&Value>) -> String {
    let Some(body) = body else {
        return String::new();
    };
    error_holders(body)
        .into_iter()
        .map(|object| {
            text_of(
                object,
                &["errorDesc", "description", "errorMessage", "message"],
            )
        })
        .find(|desc| !desc.is_empty())
        .unwrap_or_default()
}

/// The first `errorCode` in a body's error holders.
pub(crate) fn error_code(body: Option<&Value>) -> Option<i64> {
    error_holders(body?)
        .into_iter()
        .find_map(|object| signed(object.get("errorCode")))
}

/// MaaS360's "Token invalid" / "Token expired." code on resource routes (docs/maas360.md §2.5;
/// the 1007 one client uses came from a weak source).
pub(crate) const TOKEN_REFUSED: i64 = 1009;

/// `responseCode` of a 2.0 error body, top-level or under `response` (docs/maas360.md §3).
fn response_code(body: Option<&Value>) -> Option<i64> {
    let body = body?;
    signed(body.get("responseCode"))
        .or_else(|| signed(body.get("response").and_then(|r| r.get("responseCode"))))
}

fn mentions(detail: &str, words: &[&str]) -> bool {
    let lower = detail.to_ascii_lowercase();
    words.iter().any(|w| lower.contains(w))
}

fn mentions_duplicate(detail: &str) -> bool {
    mentions(detail, &["already exist", "duplicate"])
}

fn mentions_missing(detail: &str) -> bool {
    mentions(
        detail,
        &[
            "not found",
            "does not exist",
            "no such user",
            "no such group",
        ],
    )
}

/// The refusal MaaS360 gives while a user still has an active device (docs/maas360.md
/// §4.5); the exact text is not public, so this reads keywords.
fn mentions_active_device(detail: &str) -> bool {
    mentions(detail, &["device"]) && mentions(detail, &["active", "enrolled", "remove", "wipe"])
}

fn mentions_try_later(detail: &str) -> bool {
    mentions(
        detail,
        &[
            "try again",
            "try later",
            "temporar",
            "timed out",
            "unavailable",
            "busy",
        ],
    )
}

/// A refusal told in words: permanent unless the text says otherwise.
fn refusal(status: u16, detail: String, desc: &str) -> Maas360Error {
    let status = Some(status);
    if mentions_duplicate(desc) {
        Maas360Error::AlreadyExists { detail, status }
    } else if mentions_active_device(desc) {
        Maas360Error::ActiveDevice { detail, status }
    } else if mentions_missing(desc) {
        Maas360Error::NotFound { detail, status }
    } else if mentions_try_later(desc) {
        Maas360Error::Retryable {
            detail,
            retry_after: None,
            status,
        }
    } else {
        Maas360Error::Permanent { status, detail }
    }
}

fn token_refused(status: u16, detail: String) -> Maas360Error {
    Maas360Error::Auth {
        part: "token".to_owned(),
        detail,
        status: Some(status),
    }
}

/// Judges a resource-API reply (not authentication) by the route's success rule, returning
/// its JSON body on success.
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
    let retry_after = reply.retry_after;
    let limit_lifts = reply.rate_limit_wait();
    Err(match code {
        401 => token_refused(code, detail),
        _ if error_code(reply.body.as_ref()) == Some(TOKEN_REFUSED) => token_refused(code, detail),
        429 => Maas360Error::RateLimited {
            detail,
            retry_after: limit_lifts,
            status: Some(code),
        },
        // The reference advises backing off on 403 bodies that mention limits (docs/maas360.md §7).
        403 if mentions(&desc, &["limit"]) => Maas360Error::RateLimited {
            detail,
            retry_after: limit_lifts,
            status: Some(code),
        },
        // A 404 that does not name a missing object is more likely a wrong path than a
        // missing user; calling that "not found" would let a caller forget a live user.
        404 if mentions_missing(&desc) => Maas360Error::NotFound {
            detail,
            status: Some(code),
        },
        404 => Maas360Error::Permanent {
            status: Some(code),
            detail: format!(
                "{detail} (no such route? {} {} is {} {}; check the routes file)",
                route.method.as_str(),
                route.template,
                route.evidence.tag(),
                route.source
            ),
        },
        409 => Maas360Error::AlreadyExists {
            detail,
            status: Some(code),
        },
        408 | 425 | 500..=599 => Maas360Error::Retryable {
            detail,
            retry_after,
            status: Some(code),
        },
        _ if response_code(reply.body.as_ref()) == Some(7) => Maas360Error::AlreadyExists {
            detail,
            status: Some(code),
        },
        _ => refusal(code, detail, &desc),
    })
}

/// MaaS360 reports many failures with HTTP 200: a non-zero `errorCode`, an `actionResponse`
/// whose `actionStatus` is 1 (or `status` "Failure"), a non-zero `responseCode` (docs/maas360.md §2.2, §3,
/// §3.4). Then the route's own success rule must hold.
fn check_success_body(route: &Route, code: u16, body: Value) -> Result<Value, Maas360Error> {
    let desc = describe(Some(&body));
    let detail = if desc.is_empty() {
        format!("{}: HTTP {code} without a description", route.name)
    } else {
        format!("{}: {desc}", route.name)
    };
    let error_code = error_code(Some(&body));
    if error_code == Some(TOKEN_REFUSED) {
        return Err(token_refused(code, detail));
    }
    let action = body.get("actionResponse");
    let action_ok = action.map(action_succeeded);
    if action_ok == Some(false) || error_code.is_some_and(|c| c != 0) {
        return Err(refusal(code, detail, &desc));
    }
    match response_code(Some(&body)) {
        Some(7) => {
            return Err(Maas360Error::AlreadyExists {
                detail,
                status: Some(code),
            });
        }
        Some(c) if c != 0 => return Err(refusal(code, detail, &desc)),
        _ => {}
    }
    if route.success == Success::ActionStatus && action_ok != Some(true) {
        return Err(Maas360Error::Permanent {
            status: Some(code),
            detail: format!(
                "{}: the answer has no actionResponse with actionStatus 0; is {} {} the right route?",
                route.name,
                route.method.as_str(),
                route.template
            ),
        });
    }
    Ok(body)
}

/// `actionStatus` 0 ([IBM-code]) or `status` "Success" ([code]), docs/maas360.md §3.4.
fn action_succeeded(action: &Value) -> bool {
    match signed(action.get("actionStatus")) {
        Some(status) => status == 0,
        None => text(action.get("status")).eq_ignore_ascii_case("success"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::routes::{RouteName, RouteTable};

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
            retry_after: Some(Duration::from_secs(3)),
            reset_window: Some(Duration::from_secs(40)),
            body: Some(body),
            body_len: 10,
        }
    }

    fn judge(name: RouteName, status: u16, body: Value) -> Result<Value, Maas360Error> {
        classify(RouteTable::defaults().get(name), reply(status, body))
    }

    #[test]
    fn json_bodies_nest_dotted_fields_and_gather_lists() {
        let body = json_body(
            "changePolicyRequest",
            &[
                ("groupId", "123".to_owned()),
                ("policyRequest.policyType", "MDM".to_owned()),
                ("policyRequest.policyName[]", "Baseline".to_owned()),
                ("policyRequest.policyName[]", "Kiosk, strict".to_owned()),
            ],
        );
        assert_eq!(
            body,
            json!({"changePolicyRequest": {"groupId": "123", "policyRequest": {
                "policyType": "MDM", "policyName": ["Baseline", "Kiosk, strict"]}}})
        );
        assert_eq!(
            json_body("a.b", &[("x", "1".to_owned())]),
            json!({"a": {"b": {"x": "1"}}})
        );
    }

    #[test]
    fn classifies_statuses() {
        let e = judge(RouteName::AddUser, 429, json!({"errorCode": 429})).err();
        assert!(e.as_ref().is_some_and(Maas360Error::is_rate_limited));
        assert_eq!(
            e.and_then(|e| e.retry_after()),
            Some(Duration::from_secs(3))
        );
        let e = judge(RouteName::ListGroups, 502, json!({})).err();
        assert!(e.is_some_and(|e| e.is_retryable() && e.status() == Some(502)));
        // A server error waits for its own Retry-After, never for the rate-limit window.
        let mut no_header = reply(503, json!({}));
        no_header.retry_after = None;
        let e = classify(RouteTable::defaults().get(RouteName::ListGroups), no_header).err();
        assert!(e.is_some_and(|e| e.is_retryable() && e.retry_after().is_none()));
        let mut limited = reply(429, json!({}));
        limited.retry_after = None;
        let e = classify(RouteTable::defaults().get(RouteName::ListGroups), limited).err();
        assert_eq!(
            e.and_then(|e| e.retry_after()),
            Some(Duration::from_secs(40))
        );
        let e = judge(
            RouteName::AddUser,
            400,
            json!({"response": {"responseCode": "7"}}),
        );
        assert!(matches!(e, Err(Maas360Error::AlreadyExists { .. })));
        let e = judge(
            RouteName::SearchUsers,
            400,
            json!({"errorDesc": "bad pageSize"}),
        );
        assert!(matches!(
            e,
            Err(Maas360Error::Permanent {
                status: Some(400),
                ..
            })
        ));
        let e = judge(
            RouteName::SearchUsers,
            401,
            json!({"users": {"errorCode": 1009, "errorDesc": "Token expired."}}),
        );
        assert!(
            matches!(e, Err(Maas360Error::Auth { ref part, ref detail, status: Some(401) })
                if part == "token" && detail.contains("Token expired.")),
            "{e:?}"
        );
    }

    #[test]
    fn a_404_is_not_found_only_when_it_names_a_missing_object() {
        let e = judge(
            RouteName::EditUser,
            404,
            json!({"errorDesc": "User not found"}),
        );
        assert!(matches!(e, Err(Maas360Error::NotFound { .. })), "{e:?}");
        let e = judge(
            RouteName::EditUser,
            404,
            json!({"errorDesc": "No such API"}),
        );
        assert!(
            matches!(e, Err(Maas360Error::Permanent { status: Some(404), ref detail })
                if detail.contains("routes file") && detail.contains("[inferred]")),
            "{e:?}"
        );
    }

    #[test]
    fn action_status_one_is_an_error_with_its_description() {
        let failed = |desc: &str| {
            judge(
                RouteName::EditUser,
                200,
                json!({"actionResponse": {"actionStatus": 1, "description": desc}}),
            )
        };
        assert!(
            matches!(failed("Invalid email"), Err(Maas360Error::Permanent { status: Some(200), ref detail })
                if detail.contains("Invalid email"))
        );
        assert!(matches!(
            failed("User already exists"),
            Err(Maas360Error::AlreadyExists { .. })
        ));
        assert!(matches!(
            failed("User not found: 12"),
            Err(Maas360Error::NotFound { .. })
        ));
        assert!(matches!(
            failed("Cannot delete user: the user has active devices"),
            Err(Maas360Error::ActiveDevice { .. })
        ));
        assert!(failed("Service busy, try again later").is_err_and(|e| e.is_retryable()));
        let old_style = judge(
            RouteName::EditUser,
            200,
            json!({"actionResponse": {"status": "Failure", "description": "Invalid email"}}),
        );
        assert!(matches!(old_style, Err(Maas360Error::Permanent { .. })));
        for ok in [
            json!({"actionResponse": {"actionStatus": "0", "description": "done"}}),
            json!({"actionResponse": {"status": "Success"}}),
        ] {
            assert!(judge(RouteName::EditUser, 200, ok).is_ok());
        }
    }

    #[test]
    fn each_route_needs_its_own_success_marker() {
        // A write route that answers 200 without an actionResponse is not trusted.
        let e = judge(
            RouteName::DeactivateUser,
            200,
            json!({"users": {"count": 0}}),
        );
        assert!(matches!(e, Err(Maas360Error::Permanent { .. })), "{e:?}");
        assert!(judge(RouteName::SearchUsers, 200, json!({"users": {"count": 0}})).is_ok());
        assert!(
            judge(
                RouteName::DeleteUserGroup,
                200,
                json!({"response": {"responseCode": 0}})
            )
            .is_ok()
        );
        let e = judge(
            RouteName::DeleteUserGroup,
            200,
            json!({"response": {"responseCode": 4, "description": "Group not found"}}),
        );
        assert!(matches!(e, Err(Maas360Error::NotFound { .. })), "{e:?}");
    }

    #[test]
    fn json_bodies_are_wrapped_in_their_envelope() {
        let params = vec![("billingID", "1".to_owned()), ("userName", "a".to_owned())];
        assert_eq!(
            json_body("authRequest.maaS360AdminAuth", &params),
            json!({"authRequest": {"maaS360AdminAuth": {"billingID": "1", "userName": "a"}}})
        );
        assert_eq!(
            json_body("", &params),
            json!({"billingID": "1", "userName": "a"})
        );
    }
}
