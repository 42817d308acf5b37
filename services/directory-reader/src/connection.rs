//! A tenant's Entra connection: validating what a caller sets, storing it (the secret only by
//! reference), building a Graph client from it (the secret or certificate read at that moment,
//! so a rotated file takes effect at once), and checking it with one token request and one
//! Graph read. A refusal names the part to fix.

use std::time::Duration;

use dirsync_graph::{
    AuthPart, Certificate, ClientCredential, ClientOptions, Cloud, Credentials, GraphClient,
    GraphError, Organization,
};
use dirsync_proto::common::v1::SecretReference;
use dirsync_proto::directory::v1 as pb;
use dirsync_proto::errors::{ApiError, ErrorReason};
use dirsync_runtime::config::DirectoryConfig;

use crate::entity::connection;
use crate::error::{DirectoryError, PART_KEY, Result, part_name, quoted};

const SECRET: &str = "secret";
const CERTIFICATE: &str = "certificate";
const MAX_ID: usize = 256;
/// The whole connection check (token and read, with a retry) ends within this.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

fn cloud_name(cloud: pb::EntraCloud) -> &'static str {
    match cloud {
        pb::EntraCloud::GccHigh => "gcc_high",
        pb::EntraCloud::Custom => "custom",
        pb::EntraCloud::Global | pb::EntraCloud::Unspecified => "global",
    }
}

fn cloud_of(name: &str) -> pb::EntraCloud {
    match name {
        "gcc_high" => pb::EntraCloud::GccHigh,
        "custom" => pb::EntraCloud::Custom,
        _ => pb::EntraCloud::Global,
    }
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && !url.contains(['?', '#', ' '])
        && url.len() <= 2048
}

/// A connection as a caller sets it, checked field by field into what is stored (not yet its
/// check time or organization).
pub(crate) fn validate(
    tenant_id: &str,
    connection: Option<&pb::EntraConnection>,
    now: i64,
) -> Result<connection::Model> {
    let Some(connection) = connection else {
        return Err(DirectoryError::invalid(
            "connection",
            "connection is required: the Entra tenant, the client id and a secret or certificate",
        ));
    };
    let entra_tenant_id = connection.entra_tenant_id.trim();
    if entra_tenant_id.is_empty()
        || entra_tenant_id.len() > MAX_ID
        || !entra_tenant_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
    {
        return Err(DirectoryError::invalid(
            "connection.entra_tenant_id",
            "entra_tenant_id must be the Entra directory id (a GUID) or a verified domain",
        ));
    }
    let client_id = connection.client_id.trim();
    if client_id.is_empty()
        || client_id.len() > MAX_ID
        || !client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(DirectoryError::invalid(
            "connection.client_id",
            "client_id must be the application (client) id of the app registration (a GUID)",
        ));
    }
    let (kind, field, reference) = match &connection.credential {
        Some(pb::entra_connection::Credential::ClientSecret(reference)) => {
            (SECRET, "connection.client_secret", reference)
        }
        Some(pb::entra_connection::Credential::Certificate(reference)) => {
            (CERTIFICATE, "connection.certificate", reference)
        }
        None => {
            return Err(DirectoryError::invalid(
                "connection.client_secret",
                "a client_secret or a certificate is required, by reference (env or file)",
            ));
        }
    };
    let credential_ref = dirsync_runtime::secrets::to_text(Some(reference))
        .map_err(|error| DirectoryError::invalid(field, format!("{field}: {error}")))?;
    let cloud = pb::EntraCloud::try_from(connection.cloud).map_err(|_| {
        DirectoryError::invalid("connection.cloud", "cloud is not a known EntraCloud")
    })?;
    let (login_url, graph_url) = if cloud == pb::EntraCloud::Custom {
        for (field, url) in [
            ("connection.login_url", &connection.login_url),
            ("connection.graph_url", &connection.graph_url),
        ] {
            if !is_http_url(url.trim()) {
                return Err(DirectoryError::invalid(
                    field,
                    format!("{field} must be an http(s) URL without query for ENTRA_CLOUD_CUSTOM"),
                ));
            }
        }
        (
            connection.login_url.trim().to_owned(),
            connection.graph_url.trim().to_owned(),
        )
    } else {
        for (field, url) in [
            ("connection.login_url", &connection.login_url),
            ("connection.graph_url", &connection.graph_url),
        ] {
            if !url.trim().is_empty() {
                return Err(DirectoryError::invalid(
                    field,
                    format!("{field} is only for ENTRA_CLOUD_CUSTOM"),
                ));
            }
        }
        (String::new(), String::new())
    };
    Ok(connection::Model {
        tenant_id: tenant_id.to_owned(),
        entra_tenant_id: entra_tenant_id.to_owned(),
        client_id: client_id.to_owned(),
        credential_kind: kind.to_owned(),
        credential_ref,
        cloud: cloud_name(cloud).to_owned(),
        login_url,
        graph_url,
        organization: String::new(),
        checked_at: now,
        updated_at: now,
    })
}

/// A stored connection as the API shows it: the secret's reference, never the secret.
pub(crate) fn to_pb(model: &connection::Model) -> pb::EntraConnection {
    let reference = dirsync_runtime::secrets::to_reference(&model.credential_ref)
        .unwrap_or(SecretReference { source: None });
    pb::EntraConnection {
        entra_tenant_id: model.entra_tenant_id.clone(),
        client_id: model.client_id.clone(),
        credential: Some(if model.credential_kind == CERTIFICATE {
            pb::entra_connection::Credential::Certificate(reference)
        } else {
            pb::entra_connection::Credential::ClientSecret(reference)
        }),
        cloud: cloud_of(&model.cloud) as i32,
        login_url: model.login_url.clone(),
        graph_url: model.graph_url.clone(),
    }
}

/// The Graph root a stored connection points at (for checking links handed back in cursors).
pub(crate) fn graph_root(model: &connection::Model) -> String {
    let cloud = cloud(model);
    cloud.graph_url().trim_end_matches('/').to_owned()
}

fn cloud(model: &connection::Model) -> Cloud {
    match cloud_of(&model.cloud) {
        pb::EntraCloud::GccHigh => Cloud::GccHigh,
        pb::EntraCloud::Custom => Cloud::Custom {
            login_url: model.login_url.clone(),
            graph_url: model.graph_url.clone(),
        },
        _ => Cloud::Global,
    }
}

/// Why a client cannot be built from a connection: the request field at fault and why.
#[derive(Debug)]
pub(crate) struct BuildError {
    pub(crate) field: &'static str,
    pub(crate) message: String,
}

impl BuildError {
    /// For a connection being set: INVALID_ARGUMENT naming the field.
    pub(crate) fn invalid(self) -> DirectoryError {
        DirectoryError::invalid(self.field, self.message)
    }

    /// For a stored connection: it no longer works as stored.
    pub(crate) fn stored(self) -> DirectoryError {
        DirectoryError::refused(
            ErrorReason::NoEntraConnection,
            format!("the stored Entra connection is unusable: {}", self.message),
        )
    }
}

/// How a client is paced: for a sync, or for a quick check that must end within an RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Use {
    Sync,
    Check,
}

/// A Graph client for `model`, reading its secret or certificate now.
pub(crate) fn client(
    model: &connection::Model,
    config: &DirectoryConfig,
    usage: Use,
) -> Result<GraphClient, BuildError> {
    let certificate = model.credential_kind == CERTIFICATE;
    let field = if certificate {
        "connection.certificate"
    } else {
        "connection.client_secret"
    };
    let secret =
        dirsync_runtime::secrets::resolve(&model.credential_ref).map_err(|error| BuildError {
            field,
            message: format!("{field}: {error}"),
        })?;
    let credential = if certificate {
        // One PEM holds the certificate and its private key.
        let pem = secret.expose().as_bytes();
        let certificate = Certificate::from_pem(pem, pem).map_err(|error| BuildError {
            field,
            message: format!("{field}: {error}"),
        })?;
        ClientCredential::Certificate(certificate)
    } else {
        ClientCredential::Secret(secret)
    };
    let mut options = ClientOptions {
        request_timeout: config.graph_timeout,
        max_concurrency: usize::try_from(config.graph_concurrency)
            .unwrap_or(4)
            .max(1),
        ..ClientOptions::default()
    };
    if usage == Use::Check {
        // A check answers within the caller's RPC: one retry, short waits.
        options.request_timeout = options.request_timeout.min(Duration::from_secs(8));
        options.max_retries = 1;
        options.max_retry_after = Duration::from_secs(2);
        options.backoff =
            dirsync_http::Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
    }
    GraphClient::new(
        Credentials {
            tenant_id: model.entra_tenant_id.clone(),
            client_id: model.client_id.clone(),
            credential,
        },
        cloud(model),
        options,
    )
    .map_err(|error| BuildError {
        field: match &error {
            GraphError::Config(message) if message.starts_with("login_url") => {
                "connection.login_url"
            }
            GraphError::Config(message) if message.starts_with("graph_url") => {
                "connection.graph_url"
            }
            _ => "connection",
        },
        message: error.to_string(),
    })
}

/// One token request and one Graph read, within [`CHECK_TIMEOUT`].
pub(crate) async fn check(client: &GraphClient) -> Result<Organization, GraphError> {
    match tokio::time::timeout(CHECK_TIMEOUT, client.check_connection()).await {
        Ok(result) => result,
        Err(_) => Err(GraphError::Transient {
            status: None,
            retry_after: None,
            detail: format!("no answer within {CHECK_TIMEOUT:?}"),
        }),
    }
}

/// The request field a refused part belongs to, and what to tell the caller.
fn refused_field(part: AuthPart, certificate: bool) -> (&'static str, &'static str) {
    match part {
        AuthPart::Tenant => (
            "connection.entra_tenant_id",
            "Entra does not know this tenant (directory id or domain)",
        ),
        AuthPart::Application => (
            "connection.client_id",
            "Entra does not know this application (client id) in the tenant",
        ),
        AuthPart::ClientSecret => (
            "connection.client_secret",
            "Entra refused the client secret (wrong or expired)",
        ),
        AuthPart::Certificate => (
            "connection.certificate",
            "Entra refused the certificate (not registered on the application, or expired)",
        ),
        AuthPart::Permission => (
            "connection.client_id",
            "the application lacks a Graph permission or its admin consent \
             (User.Read.All, GroupMember.Read.All, Organization.Read.All)",
        ),
        AuthPart::Scope => (
            "connection.cloud",
            "Entra refused the Graph scope of this cloud",
        ),
        AuthPart::AccessToken | AuthPart::Other if certificate => {
            ("connection.certificate", "Entra refused the credentials")
        }
        AuthPart::AccessToken | AuthPart::Other => ("connection", "Entra refused the credentials"),
    }
}

/// A failed check of a connection being set: a refusal names its field (INVALID_ARGUMENT);
/// no answer is ENTRA_UNAVAILABLE, throttling ENTRA_THROTTLED.
pub(crate) fn check_failed(error: &GraphError, certificate: bool) -> DirectoryError {
    match error {
        GraphError::Auth { part, code, .. } => {
            let (field, what) = refused_field(*part, certificate);
            DirectoryError::Refused(Box::new(
                ApiError::new(
                    ErrorReason::InvalidValue,
                    format!("{what} ({})", quoted(code)),
                )
                .field(field)
                .meta(PART_KEY, part_name(*part)),
            ))
        }
        GraphError::Config(message) => DirectoryError::invalid("connection", message.clone()),
        GraphError::Permanent { .. } | GraphError::NotFound { .. } => {
            DirectoryError::Refused(Box::new(ApiError::new(
                ErrorReason::EntraRefused,
                format!("Microsoft Graph refused the check: {error}"),
            )))
        }
        GraphError::Throttled { .. }
        | GraphError::Transient { .. }
        | GraphError::InvalidResponse(_)
        | GraphError::DeltaExpired { .. } => DirectoryError::graph(error),
    }
}

/// A failed check of a stored connection: the request is fine, the connection is not, so a
/// refusal is ENTRA_REFUSED (FAILED_PRECONDITION) naming the part.
pub(crate) fn stored_check_failed(error: &GraphError, certificate: bool) -> DirectoryError {
    match error {
        GraphError::Auth { part, code, .. } => {
            let (_, what) = refused_field(*part, certificate);
            DirectoryError::Refused(Box::new(
                ApiError::new(
                    ErrorReason::EntraRefused,
                    format!("{what} ({})", quoted(code)),
                )
                .meta(PART_KEY, part_name(*part)),
            ))
        }
        _ => DirectoryError::graph(error),
    }
}

pub(crate) fn is_certificate(model: &connection::Model) -> bool {
    model.credential_kind == CERTIFICATE
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dirsync_proto::common::v1::secret_reference::Source;

    fn connection() -> pb::EntraConnection {
        pb::EntraConnection {
            entra_tenant_id: "contoso.onmicrosoft.com".to_owned(),
            client_id: "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b".to_owned(),
            credential: Some(pb::entra_connection::Credential::ClientSecret(
                SecretReference {
                    source: Some(Source::Env("GRAPH_SECRET".to_owned())),
                },
            )),
            cloud: pb::EntraCloud::Global as i32,
            login_url: String::new(),
            graph_url: String::new(),
        }
    }

    fn field_of(error: DirectoryError) -> String {
        let status = tonic::Status::from(error);
        dirsync_proto::errors::read(&status).violations[0].0.clone()
    }

    #[test]
    fn each_field_is_checked_and_named() {
        let stored = validate("t1", Some(&connection()), 5).unwrap();
        assert_eq!(stored.credential_ref, "env:GRAPH_SECRET");
        assert_eq!(to_pb(&stored), connection());
        let mut bad = connection();
        bad.entra_tenant_id = "a b".to_owned();
        assert_eq!(
            field_of(validate("t1", Some(&bad), 5).unwrap_err()),
            "connection.entra_tenant_id"
        );
        let mut bad = connection();
        bad.credential = None;
        assert_eq!(
            field_of(validate("t1", Some(&bad), 5).unwrap_err()),
            "connection.client_secret"
        );
        let mut bad = connection();
        bad.graph_url = "http://elsewhere".to_owned();
        assert_eq!(
            field_of(validate("t1", Some(&bad), 5).unwrap_err()),
            "connection.graph_url"
        );
        let mut custom = connection();
        custom.cloud = pb::EntraCloud::Custom as i32;
        custom.login_url = "http://127.0.0.1:1".to_owned();
        assert_eq!(
            field_of(validate("t1", Some(&custom), 5).unwrap_err()),
            "connection.graph_url"
        );
    }
}
