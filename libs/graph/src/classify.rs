//! Judging a reply: Graph's error envelope and Entra ID's token errors become [`GraphError`]s.

use serde_json::Value;

use crate::aadsts::{CredentialKind, TokenError};
use crate::error::{AuthPart, GraphError, is_resync_code};
use crate::transport::Reply;

/// `{"error": {"code", "message", "innerError": {...}}}` (docs/graph.md §2.6): code and message.
pub(crate) fn envelope(body: Option<&Value>) -> (String, String) {
    let error = body.and_then(|b| b.get("error"));
    let field = |name| {
        error
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (field("code"), field("message"))
}

/// The error for a Graph reply that is not a success.
pub(crate) fn graph_error(route: &str, reply: &Reply) -> GraphError {
    let status = reply.status.as_u16();
    let (code, message) = envelope(reply.body.as_ref());
    let message = if message.is_empty() {
        format!("{route}: HTTP {status}")
    } else {
        format!("{route}: {message}")
    };
    match status {
        // A token the client just obtained or renewed, refused.
        401 => GraphError::Auth {
            part: AuthPart::AccessToken,
            code,
            message,
        },
        // `Authorization_RequestDenied`: the app lacks a permission or its admin consent
        // (docs/graph.md §2.6, §8). Graph uses other codes for 403 elsewhere; all mean the same to a
        // reader.
        403 => GraphError::Auth {
            part: AuthPart::Permission,
            code,
            message,
        },
        404 => GraphError::NotFound { code, message },
        // docs/graph.md §3.6: 410 Gone means "restart with a full sync", whatever the code; so do
        // the resync codes under any 4xx.
        410 => GraphError::DeltaExpired {
            status,
            code,
            message,
            location: reply.location.clone(),
        },
        400..=499 if is_resync_code(&code) => GraphError::DeltaExpired {
            status,
            code,
            message,
            location: reply.location.clone(),
        },
        // docs/graph.md §4.2: key on the status and Retry-After, never on the body code.
        429 => GraphError::Throttled {
            retry_after: reply.retry_after,
            detail: format!("{message} ({code})"),
        },
        500 | 502 | 503 | 504 => GraphError::Transient {
            status: Some(status),
            retry_after: reply.retry_after,
            detail: format!("{message} ({code})"),
        },
        _ => GraphError::Permanent {
            status,
            code,
            message,
        },
    }
}

/// The error for a token-endpoint reply that is not a success.
pub(crate) fn token_error(reply: &Reply, kind: CredentialKind) -> GraphError {
    let status = reply.status.as_u16();
    if let Some(refusal) = reply.body.as_ref().and_then(TokenError::parse)
        && matches!(status, 400 | 401 | 403)
    {
        return GraphError::Auth {
            part: refusal.refused_part(kind),
            code: refusal.code(),
            message: refusal.description,
        };
    }
    match status {
        429 => GraphError::Throttled {
            retry_after: reply.retry_after,
            detail: format!("token endpoint: HTTP {status}"),
        },
        500 | 502 | 503 | 504 => GraphError::Transient {
            status: Some(status),
            retry_after: reply.retry_after,
            detail: format!("token endpoint: HTTP {status}"),
        },
        // A 404 here means the login URL or tenant path is wrong, not the tenant's name.
        _ => GraphError::Permanent {
            status,
            code: String::new(),
            message: format!("token endpoint: HTTP {status}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::StatusCode;
    use serde_json::json;

    use super::*;

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
            retry_after: Some(Duration::from_secs(2)),
            location: Some("https://graph.microsoft.com/v1.0/users/delta?$deltatoken=".to_owned()),
            body: Some(body),
        }
    }

    fn graph(code: &str) -> Value {
        json!({"error": {"code": code, "message": "m", "innerError": {}}})
    }

    #[test]
    fn statuses_map_to_the_callers_next_move() {
        assert!(matches!(
            graph_error("r", &reply(403, graph("Authorization_RequestDenied"))),
            GraphError::Auth {
                part: AuthPart::Permission,
                ..
            }
        ));
        assert!(matches!(
            graph_error("r", &reply(401, graph("InvalidAuthenticationToken"))),
            GraphError::Auth {
                part: AuthPart::AccessToken,
                ..
            }
        ));
        assert!(matches!(
            graph_error("r", &reply(404, graph("Request_ResourceNotFound"))),
            GraphError::NotFound { .. }
        ));
        let throttled = graph_error("r", &reply(429, graph("x")));
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(2)));
        assert!(matches!(
            graph_error("r", &reply(503, graph("x"))),
            GraphError::Transient {
                status: Some(503),
                ..
            }
        ));
        assert!(matches!(
            graph_error("r", &reply(400, graph("Request_BadRequest"))),
            GraphError::Permanent { status: 400, .. }
        ));
    }

    #[test]
    fn every_resync_signal_is_delta_expired() {
        let gone = graph_error("r", &reply(410, graph("whatever")));
        assert!(matches!(
            gone,
            GraphError::DeltaExpired {
                status: 410,
                location: Some(_),
                ..
            }
        ));
        for code in ["syncStateNotFound", "SyncStateNotFound", "resyncRequired"] {
            assert!(
                graph_error("r", &reply(400, graph(code))).needs_resync(),
                "{code}"
            );
        }
    }

    #[test]
    fn token_refusals_name_the_part() {
        let body = json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215]});
        let error = token_error(&reply(401, body), CredentialKind::Secret);
        assert_eq!(error.auth_part(), Some(AuthPart::ClientSecret));
        assert!(error.to_string().contains("AADSTS7000215"));
        let error = token_error(&reply(503, json!({})), CredentialKind::Secret);
        assert!(error.is_retryable());
    }
}
