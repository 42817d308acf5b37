//! Graph's wire habits: the error envelope with `innerError`, the `request-id` and
//! `client-request-id` headers on every answer, the OData content type, and the date formats
//! Graph and Entra ID write (docs/graph.md §2.1, §2.6, §1.3).

use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The content type Graph answers collections with (docs/graph.md §2.1).
pub(crate) const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// The ids that tie an answer to its request: a fresh `request-id`, and the caller's
/// `client-request-id` echoed (a fresh one when the caller sent none).
#[derive(Clone, Debug)]
pub(crate) struct RequestIds {
    pub(crate) request_id: String,
    pub(crate) client_request_id: String,
}

impl RequestIds {
    pub(crate) fn new(client_request_id: Option<&str>) -> Self {
        let request_id = uuid::Uuid::new_v4().to_string();
        let client_request_id = client_request_id
            .filter(|id| !id.is_empty() && id.len() <= 128)
            .map_or_else(|| request_id.clone(), str::to_owned);
        Self {
            request_id,
            client_request_id,
        }
    }

    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        Self::new(
            headers
                .get("client-request-id")
                .and_then(|v| v.to_str().ok()),
        )
    }
}

/// An answer from the Graph API, before it becomes an HTTP response or a `$batch` item.
#[derive(Clone, Debug)]
pub(crate) struct GraphReply {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Option<Value>,
}

impl GraphReply {
    pub(crate) fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            headers: vec![("Content-Type", ODATA_JSON.to_owned())],
            body: Some(body),
        }
    }

    /// `{"error": {"code", "message", "innerError": {date, request-id, client-request-id}}}`;
    /// the inner ids are filled in by [`GraphReply::finish`].
    pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", "application/json".to_owned())],
            body: Some(
                json!({"error": {"code": code, "message": message.into(), "innerError": {}}}),
            ),
        }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Adds the ids every Graph answer carries, in its headers and in an error's innerError.
    pub(crate) fn finish(mut self, ids: &RequestIds) -> Self {
        if let Some(inner) = self
            .body
            .as_mut()
            .and_then(|b| b.get_mut("error"))
            .and_then(|e| e.get_mut("innerError"))
            .and_then(Value::as_object_mut)
        {
            inner.insert(
                "date".to_owned(),
                Value::String(iso_date(SystemTime::now())),
            );
            inner.insert(
                "request-id".to_owned(),
                Value::String(ids.request_id.clone()),
            );
            inner.insert(
                "client-request-id".to_owned(),
                Value::String(ids.client_request_id.clone()),
            );
        }
        self.headers.push(("request-id", ids.request_id.clone()));
        self.headers
            .push(("client-request-id", ids.client_request_id.clone()));
        self.headers.push(("OData-Version", "4.0".to_owned()));
        self
    }

    /// The headers as a `$batch` item carries them.
    pub(crate) fn header_object(&self) -> Map<String, Value> {
        self.headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), Value::String(value.clone())))
            .collect()
    }
}

impl IntoResponse for GraphReply {
    fn into_response(self) -> Response {
        let mut response = match &self.body {
            Some(body) => (self.status, body.to_string()).into_response(),
            None => self.status.into_response(),
        };
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// `2025-02-13T10:17:06`, as in `innerError.date` (docs/graph.md §2.6).
pub(crate) fn iso_date(at: SystemTime) -> String {
    DateTime::<Utc>::from(at)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// `2016-01-09 02:02:12Z`, as in Entra's error `timestamp` (docs/graph.md §1.3).
pub(crate) fn aad_timestamp(at: SystemTime) -> String {
    DateTime::<Utc>::from(at)
        .format("%Y-%m-%d %H:%M:%SZ")
        .to_string()
}

/// `Fri, 31 Dec 1999 23:59:59 GMT` (RFC 9110 IMF-fixdate), for Retry-After as a date.
pub(crate) fn http_date(at: SystemTime) -> String {
    DateTime::<Utc>::from(at)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn date_formats() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_799);
        assert_eq!(iso_date(at), "1999-12-31T23:59:59");
        assert_eq!(aad_timestamp(at), "1999-12-31 23:59:59Z");
        assert_eq!(http_date(at), "Fri, 31 Dec 1999 23:59:59 GMT");
    }

    #[test]
    fn errors_carry_the_request_ids() {
        let ids = RequestIds::new(Some("client-1"));
        let reply = GraphReply::error(StatusCode::FORBIDDEN, "Authorization_RequestDenied", "no")
            .finish(&ids);
        let inner = reply
            .body
            .as_ref()
            .and_then(|b| b.pointer("/error/innerError"))
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(inner["client-request-id"], "client-1");
        assert_eq!(inner["request-id"], ids.request_id.as_str());
        assert!(inner["date"].is_string());
        assert!(
            reply
                .headers
                .iter()
                .any(|(n, v)| *n == "client-request-id" && v == "client-1")
        );
    }
}
