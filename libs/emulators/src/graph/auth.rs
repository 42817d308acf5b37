//! The Entra ID token endpoint, `POST /{tenant}/oauth2/v2.0/token`, client-credentials
//! grant only (docs/graph.md §1): a client secret in the form or in Basic auth, or a client
//! assertion signed by a registered certificate; each refused part answered with Entra's
//! error body and AADSTS code (docs/graph.md §1.3).

use std::time::SystemTime;

use axum::extract::rejection::FormRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::assertion::{self, AssertionError};
use super::config::GraphEmulatorConfig;
use super::shared::App;
use super::wire::aad_timestamp;

/// `client_assertion_type` of a JWT assertion (docs/graph.md §1.2).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Graph's application id: `{it}/.default` names Graph in every cloud.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// An Entra refusal: HTTP status, OAuth error, AADSTS code, message.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    code: u64,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, error: &'static str, code: u64, message: impl Into<String>) -> Self {
        Self {
            status,
            error,
            code,
            message: message.into(),
        }
    }

    /// Entra's error body (docs/graph.md §1.3): the description carries the code, then trace and
    /// correlation ids and a timestamp on their own lines.
    fn into_response(self) -> Response {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let timestamp = aad_timestamp(SystemTime::now());
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.code, self.message
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        (self.status, Json(body)).into_response()
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .filter(|v| !v.is_empty())
}

/// `Authorization: Basic base64(client_id:client_secret)` (RFC 6749 §2.3.1; docs/graph.md §1.1).
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Whether `scope` names this emulator's Graph (or Graph by its real names) with `/.default`.
fn graph_scope(scope: &str, base: &str) -> bool {
    let Some(resource) = scope.trim().strip_suffix("/.default") else {
        return false;
    };
    let resource = resource.trim_end_matches('/');
    resource.eq_ignore_ascii_case(base)
        || resource.eq_ignore_ascii_case("https://graph.microsoft.com")
        || resource.eq_ignore_ascii_case("https://graph.microsoft.us")
        || resource.eq_ignore_ascii_case(GRAPH_APP_ID)
}

pub(crate) async fn token(
    State(app): State<App>,
    Path(tenant): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let base = super::server::base_url(&app, &headers);
    let audience = format!("{base}{}", uri.path());
    let response = match form {
        Ok(Form(form)) => match check(app.config(), &tenant, &audience, &base, &headers, &form) {
            Ok(()) => {
                let config = app.config();
                let token = app.with(|inner| {
                    let roles = inner.roles.clone();
                    inner.tokens.issue(config.token_lifetime, roles)
                });
                let lifetime = config.token_lifetime.as_secs();
                (
                    StatusCode::OK,
                    [("Cache-Control", "no-store"), ("Pragma", "no-cache")],
                    Json(json!({
                        "token_type": "Bearer",
                        "expires_in": lifetime,
                        "ext_expires_in": lifetime,
                        "access_token": token,
                    })),
                )
                    .into_response()
            }
            Err(refusal) => refusal.into_response(),
        },
        Err(_) => Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        )
        .into_response(),
    };
    app.with(|inner| inner.traffic.count("token", response.status()));
    response
}

/// The checks in the order Entra makes them: tenant, grant, client, scope, credential.
fn check(
    config: &GraphEmulatorConfig,
    tenant: &str,
    audience: &str,
    base: &str,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<(), Refusal> {
    if !tenant.eq_ignore_ascii_case(&config.tenant_id)
        && !tenant.eq_ignore_ascii_case(&config.tenant_domain)
    {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ));
    }
    let grant = field(form, "grant_type").unwrap_or_default();
    if grant != "client_credentials" {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        ));
    }
    let basic = basic_auth(headers);
    let Some(client_id) = field(form, "client_id").or(basic.as_ref().map(|(id, _)| id.as_str()))
    else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        ));
    };
    if !client_id.eq_ignore_ascii_case(&config.client_id) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
            ),
        ));
    }
    let scope = field(form, "scope").unwrap_or_default();
    if !scope.trim().ends_with("/.default") {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    }
    if !graph_scope(scope, base) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        ));
    }
    if let Some(assertion) = field(form, "client_assertion") {
        if field(form, "client_assertion_type") != Some(JWT_BEARER) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                700023,
                "The client_assertion_type is not supported; it must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            ));
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return assertion::verify(
            assertion,
            &config.certificates,
            &config.client_id,
            audience,
            now,
        )
        .map_err(|error| assertion_refusal(error, audience));
    }
    let secret = field(form, "client_secret").or(basic.as_ref().map(|(_, s)| s.as_str()));
    match secret {
        Some(secret) if secret == config.client_secret => Ok(()),
        Some(_) => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                config.client_id
            ),
        )),
        None => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
    }
}

/// The Entra refusal for each way an assertion fails. AADSTS700027 (certificate), 700024
/// (validity), 700021 (client id) and 50027 (malformed) are general knowledge, not in
/// docs/graph.md.
fn assertion_refusal(error: AssertionError, audience: &str) -> Refusal {
    let unauthorized = |code, message: String| {
        Refusal::new(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
    };
    match error {
        AssertionError::Malformed(why) => {
            unauthorized(50027, format!("JWT token is invalid or malformed: {why}."))
        }
        AssertionError::UnknownCertificate(thumbprint) => unauthorized(
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}']"
            ),
        ),
        AssertionError::BadSignature => unauthorized(
            700027,
            "Client assertion failed signature validation.".to_owned(),
        ),
        AssertionError::WrongClient => unauthorized(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter."
                .to_owned(),
        ),
        AssertionError::WrongAudience(aud) => unauthorized(
            50027,
            format!("Invalid JWT token: the audience '{aud}' is not '{audience}'."),
        ),
        AssertionError::OutsideValidity => unauthorized(
            700024,
            "Client assertion is not within its valid time range.".to_owned(),
        ),
    }
}
