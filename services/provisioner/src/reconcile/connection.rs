//! A tenant's MaaS360 connection. Secrets are stored only as references (an
//! environment variable or a file of the provisioner), read when a client is
//! built, and never echoed or logged.

use dirsync_maas360::{
    AuthVersion, ClientOptions, Credentials, Maas360Client, Maas360Error, Secret,
};
use dirsync_proto::provisioner::v1 as pb;
use dirsync_runtime::config::ProvisionerConfig;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::Policy;
use super::identity::UsernameMapping;
use crate::entity::tenant;
use crate::error::{ProvisionerError, Result};
use crate::store::Store;

/// A connection as stored: every field, secrets as references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantConnection {
    pub(crate) tenant_id: String,
    pub(crate) base_url: String,
    pub(crate) billing_id: String,
    pub(crate) admin_user: String,
    pub(crate) app_id: String,
    pub(crate) app_version: String,
    pub(crate) platform_id: String,
    pub(crate) password_ref: String,
    pub(crate) app_access_key_ref: String,
    pub(crate) policy: Policy,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretError {
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("cannot read secret file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("secret reference {0:?} is neither env:NAME nor file:PATH")]
    BadReference(String),
    #[error("the secret at {0} is empty")]
    Empty(String),
    #[error("{0}")]
    Client(String),
}

/// `env:NAME` or `file:PATH`, as stored.
pub(crate) fn reference_text(
    reference: Option<&pb::SecretReference>,
    field: &str,
) -> Result<String> {
    let invalid = |reason: &str| {
        ProvisionerError::invalid(
            &format!("maas360.{field}"),
            format!("maas360.{field}: {reason}"),
        )
    };
    match reference.and_then(|reference| reference.source.as_ref()) {
        Some(pb::secret_reference::Source::Env(name)) => {
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                Ok(format!("env:{name}"))
            } else {
                Err(invalid(
                    "an environment variable name is letters, digits and _",
                ))
            }
        }
        Some(pb::secret_reference::Source::File(path)) if !path.trim().is_empty() => {
            Ok(format!("file:{}", path.trim()))
        }
        Some(pb::secret_reference::Source::File(_)) => Err(invalid("the file path is empty")),
        None => Err(invalid(
            "give it by reference: an environment variable (env) or a file (file)",
        )),
    }
}

pub(crate) fn reference_pb(text: &str) -> Option<pb::SecretReference> {
    let source = if let Some(name) = text.strip_prefix("env:") {
        pb::secret_reference::Source::Env(name.to_owned())
    } else {
        pb::secret_reference::Source::File(text.strip_prefix("file:")?.to_owned())
    };
    Some(pb::SecretReference {
        source: Some(source),
    })
}

fn resolve(reference: &str) -> std::result::Result<Secret, SecretError> {
    let value = if let Some(name) = reference.strip_prefix("env:") {
        std::env::var(name).map_err(|_| SecretError::MissingEnv(name.to_owned()))?
    } else if let Some(path) = reference.strip_prefix("file:") {
        std::fs::read_to_string(path)
            .map_err(|error| SecretError::File {
                path: path.to_owned(),
                reason: error.to_string(),
            })?
            .trim_end_matches(['\r', '\n'])
            .to_owned()
    } else {
        return Err(SecretError::BadReference(reference.to_owned()));
    };
    if value.is_empty() {
        return Err(SecretError::Empty(reference.to_owned()));
    }
    Ok(Secret::new(value))
}

impl TenantConnection {
    /// Changes when anything that shapes the client or the policy changes.
    pub(crate) fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{:?}",
            self.base_url,
            self.billing_id,
            self.admin_user,
            self.app_id,
            self.app_version,
            self.platform_id,
            self.password_ref,
            self.app_access_key_ref,
            self.policy
        )
    }

    /// A client with the secrets read now.
    pub(crate) fn client(
        &self,
        settings: &ProvisionerConfig,
    ) -> std::result::Result<Maas360Client, SecretError> {
        let credentials = Credentials {
            base_url: self.base_url.clone(),
            billing_id: self.billing_id.clone(),
            admin_user: self.admin_user.clone(),
            password: resolve(&self.password_ref)?,
            app_id: self.app_id.clone(),
            app_version: self.app_version.clone(),
            platform_id: self.platform_id.clone(),
            app_access_key: resolve(&self.app_access_key_ref)?,
        };
        let options = ClientOptions {
            auth_version: if settings.maas360_auth == "v1" {
                AuthVersion::V1
            } else {
                AuthVersion::V2
            },
            request_timeout: settings.maas360_timeout,
            ..ClientOptions::default()
        };
        Maas360Client::new(credentials, options)
            .map_err(|error| SecretError::Client(error.to_string()))
    }

    /// From a request; validates every field.
    pub(crate) fn from_request(
        tenant_id: &str,
        connection: &pb::Maas360Connection,
        policy: Policy,
    ) -> Result<Self> {
        let required = |value: &str, field: &str| -> Result<String> {
            let value = value.trim();
            if value.is_empty() {
                Err(ProvisionerError::invalid(
                    &format!("maas360.{field}"),
                    format!("maas360.{field} is required"),
                ))
            } else {
                Ok(value.to_owned())
            }
        };
        let base_url = required(&connection.base_url, "base_url")?;
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(ProvisionerError::invalid(
                "maas360.base_url",
                "maas360.base_url must be an http(s) URL",
            ));
        }
        Ok(Self {
            tenant_id: tenant_id.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            billing_id: required(&connection.billing_id, "billing_id")?,
            admin_user: required(&connection.admin_user, "admin_user")?,
            app_id: required(&connection.app_id, "app_id")?,
            app_version: required(&connection.app_version, "app_version")?,
            platform_id: required(&connection.platform_id, "platform_id")?,
            password_ref: reference_text(connection.password.as_ref(), "password")?,
            app_access_key_ref: reference_text(
                connection.app_access_key.as_ref(),
                "app_access_key",
            )?,
            policy,
        })
    }

    /// One authentication call; a refusal says which part was refused.
    pub(crate) async fn check(&self, settings: &ProvisionerConfig) -> Result<()> {
        let client = self.client(settings).map_err(|error| {
            ProvisionerError::invalid("maas360", format!("MaaS360 connection: {error}"))
        })?;
        match client.authenticate().await {
            Ok(()) => Ok(()),
            Err(Maas360Error::Auth { part, detail, .. }) => Err(ProvisionerError::invalid(
                "maas360",
                format!("MaaS360 refused the {part}: {detail}"),
            )),
            Err(error) if error.is_retryable() => Err(ProvisionerError::refused(
                dirsync_proto::errors::ErrorReason::Maas360Unavailable,
                format!(
                    "MaaS360 at {} did not answer the authentication check: {error}",
                    self.base_url
                ),
            )),
            Err(error) => Err(ProvisionerError::invalid(
                "maas360",
                format!("MaaS360 authentication failed: {error}"),
            )),
        }
    }

    pub(crate) fn to_pb(&self) -> pb::Maas360Connection {
        pb::Maas360Connection {
            base_url: self.base_url.clone(),
            billing_id: self.billing_id.clone(),
            admin_user: self.admin_user.clone(),
            app_id: self.app_id.clone(),
            app_version: self.app_version.clone(),
            platform_id: self.platform_id.clone(),
            password: reference_pb(&self.password_ref),
            app_access_key: reference_pb(&self.app_access_key_ref),
        }
    }
}

pub(crate) fn policy_of(model: &tenant::Model) -> Policy {
    Policy {
        deactivate_on_disable: model.deactivate_on_disable,
        delete_on_delete: model.delete_on_delete,
        username_mapping: UsernameMapping::from_stored(&model.username_mapping),
    }
}

pub(crate) fn from_model(model: &tenant::Model) -> Option<TenantConnection> {
    Some(TenantConnection {
        tenant_id: model.tenant_id.clone(),
        base_url: model.maas360_base_url.clone()?,
        billing_id: model.maas360_billing_id.clone()?,
        admin_user: model.maas360_admin_user.clone()?,
        app_id: model.maas360_app_id.clone()?,
        app_version: model.maas360_app_version.clone()?,
        platform_id: model.maas360_platform_id.clone()?,
        password_ref: model.maas360_password_ref.clone()?,
        app_access_key_ref: model.maas360_app_access_key_ref.clone()?,
        policy: policy_of(model),
    })
}

/// Every tenant with a MaaS360 connection.
pub(crate) async fn load_all(store: &Store) -> Result<Vec<TenantConnection>> {
    Ok(tenant::Entity::find()
        .filter(tenant::Column::Maas360BaseUrl.is_not_null())
        .all(store.db())
        .await?
        .iter()
        .filter_map(from_model)
        .collect())
}
