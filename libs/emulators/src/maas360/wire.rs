//! What goes over the wire: reading request parameters from the query and from a form, JSON
//! or XML body; writing responses as XML (the default) or JSON (`Accept: application/json`),
//! with MaaS360's XML-to-JSON habits when switched on.

use std::collections::BTreeMap;

use axum::extract::Request;
use axum::http::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::routes::Operation;
use super::state::Refusal;
use super::xml::{leaf_elements, to_xml};

/// Request bodies beyond this are refused; MaaS360 requests are a few hundred bytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Xml,
    Json,
}

pub(crate) fn format_of(headers: &HeaderMap) -> Format {
    let json = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("application/json"));
    if json { Format::Json } else { Format::Xml }
}

/// A MaaS360 API request, with query and body parameters merged into one map.
pub(crate) struct ApiRequest {
    pub(crate) operation: Operation,
    pub(crate) path: BTreeMap<String, String>,
    pub(crate) headers: HeaderMap,
    pub(crate) params: BTreeMap<String, String>,
    pub(crate) format: Format,
    pub(crate) quirks: bool,
}

impl ApiRequest {
    pub(crate) fn path(&self, name: &str) -> &str {
        self.path.get(name).map_or("", String::as_str)
    }

    /// A parameter, with surrounding whitespace removed; empty counts as absent.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn reply(&self, status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body,
            retry_after: None,
            format: self.format,
            quirks: self.quirks,
        }
    }

    /// An older write route's answer: HTTP 200 and `{"actionResponse":{"actionStatus":0|1,
    /// "description":…}}` (docs/maas360.md §3.4), plus any `fields` on success.
    pub(crate) fn action(&self, outcome: Result<Map<String, Value>, Refusal>) -> Reply {
        let body = match outcome {
            Ok(mut fields) => {
                fields.insert("actionStatus".to_owned(), json!(0));
                fields
                    .entry("description")
                    .or_insert_with(|| json!("Operation completed successfully"));
                json!({ "actionResponse": fields })
            }
            Err(refusal) => {
                let mut fields = Map::new();
                fields.insert("actionStatus".to_owned(), json!(1));
                fields.insert("description".to_owned(), json!(refusal.to_string()));
                if let Refusal::ActiveDevice(_) = refusal {
                    // A code of our own, [inferred]: the real one is not public.
                    fields.insert("errorCode".to_owned(), json!(ERR_ACTIVE_DEVICE));
                }
                json!({ "actionResponse": fields })
            }
        };
        self.reply(StatusCode::OK, body)
    }
}

/// `errorCode` that comes with a refused deletion of a user with an active device.
pub(crate) const ERR_ACTIVE_DEVICE: u32 = 1020;

impl ApiRequest {
    /// Reads a request for `operation` whose path parameters the route table has decoded.
    pub(crate) async fn read(
        req: Request,
        operation: Operation,
        path: BTreeMap<String, String>,
        quirks: bool,
    ) -> Result<Self, Reply> {
        let (parts, body) = req.into_parts();
        let format = format_of(&parts.headers);
        let bad = |detail: &str| Reply {
            status: StatusCode::BAD_REQUEST,
            body: json!({"errorCode": 400, "errorDesc": detail}),
            retry_after: None,
            format,
            quirks,
        };
        let mut params = BTreeMap::new();
        if let Some(query) = parts.uri.query() {
            params.extend(form_pairs(query));
        }
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| bad("Request body too large or unreadable"))?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            let content_type = parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            let text = String::from_utf8_lossy(&bytes);
            if content_type.contains("json") {
                let value: Value =
                    serde_json::from_str(&text).map_err(|_| bad("Malformed JSON body"))?;
                flatten(&value, None, &mut params);
            } else if content_type.contains("xml") {
                params.extend(leaf_elements(&text));
            } else {
                params.extend(form_pairs(&text));
            }
        }
        Ok(Self {
            operation,
            path,
            headers: parts.headers,
            params,
            format,
            quirks,
        })
    }
}

/// Leaf values of a JSON body by their own key, so `{"authRequest":{"maaS360AdminAuth":{…}}}`
/// and a flat object read the same. Lists of scalars join with commas, like `groupIds`.
fn flatten(value: &Value, key: Option<&str>, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(v, Some(k), out);
            }
        }
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            if let Some(key) = key {
                let joined: Vec<String> = items.iter().map(scalar_text).collect();
                out.insert(key.to_owned(), joined.join(","));
            }
        }
        Value::Array(items) => {
            for item in items {
                flatten(item, key, out);
            }
        }
        scalar => {
            if let Some(key) = key {
                out.insert(key.to_owned(), scalar_text(scalar));
            }
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `application/x-www-form-urlencoded` pairs; undecodable bytes are kept lossily.
pub(crate) fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response in canonical form (real arrays, real numbers), rendered on the way out.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    /// The `Retry-After` header value, seconds or an HTTP date.
    pub(crate) retry_after: Option<String>,
    pub(crate) format: Format,
    pub(crate) quirks: bool,
}

impl Reply {
    /// An error body with `errorCode` and `errorDesc`, used for HTTP-level failures.
    pub(crate) fn error(
        status: StatusCode,
        code: u32,
        desc: &str,
        format: Format,
        quirks: bool,
    ) -> Self {
        Self {
            status,
            body: json!({"errorCode": code, "errorDesc": desc}),
            retry_after: None,
            format,
            quirks,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let (content_type, text) = match self.format {
            Format::Xml => ("application/xml", to_xml(&self.body)),
            Format::Json if self.quirks => ("application/json", xml_habits(self.body).to_string()),
            Format::Json => ("application/json", self.body.to_string()),
        };
        let mut response = (self.status, text).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(value) = self
            .retry_after
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
        response
    }
}

/// What MaaS360's XML-to-JSON conversion does to a tree: a one-element list becomes the
/// element itself, an empty list disappears, and every number becomes a string.
pub(crate) fn xml_habits(value: Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Array(mut items) if items.len() == 1 => xml_habits(items.remove(0)),
        Value::Array(items) => Value::Array(items.into_iter().map(xml_habits).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !matches!(v, Value::Array(items) if items.is_empty()))
                .map(|(k, v)| (k, xml_habits(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn habits_turn_single_lists_into_objects_and_numbers_into_strings() {
        let v = xml_habits(json!({"users": {"count": 1, "user": [{"n": 2}], "none": []}}));
        assert_eq!(v, json!({"users": {"count": "1", "user": {"n": "2"}}}));
    }

    #[test]
    fn decodes_forms_and_flattens_json() {
        let pairs = form_pairs("userName=j+doe&email=j%40x.com&bad=%zz&flag");
        assert_eq!(pairs[0], ("userName".to_owned(), "j doe".to_owned()));
        assert_eq!(pairs[1].1, "j@x.com");
        assert_eq!(pairs[2].1, "%zz");
        assert_eq!(pairs[3], ("flag".to_owned(), String::new()));
        let mut out = BTreeMap::new();
        flatten(&json!({"a": {"b": 1, "ids": ["1", 2]}}), None, &mut out);
        assert_eq!(out.get("b").map(String::as_str), Some("1"));
        assert_eq!(out.get("ids").map(String::as_str), Some("1,2"));
    }
}
