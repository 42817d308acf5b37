//! A tenant's MaaS360 connection. Secrets are stored only as references (an
//! environment variable or a file of the provisioner), read when a client is
//! built, and never echoed or logged.

use dirsync_maas360::routes::RouteTable;
use dirsync_maas360::{AuthVersion, ClientOptions, Credentials, Maas360Client, Maas360Error};
use dirsync_proto::common::v1 as common;
use dirsync_proto::provisioner::v1 as pb;
use dirsync_runtime::config::ProvisionerConfig;
use dirsync_runtime::secrets::{self, SecretError, resolve};
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
    /// The tenant's overrides of MaaS360 routes (a TOML routes file), validated when set.
    pub(crate) routes_toml: Option<String>,
    pub(crate) policy: Policy,
}

/// The route table of a routes file laid over the defaults; a refusal names the route.
pub(crate) fn routes(routes_toml: Option<&str>) -> std::result::Result<RouteTable, String> {
    match routes_toml.filter(|text| !text.trim().is_empty()) {
        Some(text) => RouteTable::defaults()
            .with_overrides(text, "the tenant's routes file")
            .map_err(|error| error.to_string()),
        None => Ok(RouteTable::defaults()),
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{0}")]
    Client(String),
}

/// `env:NAME` or `file:PATH`, as stored; a refusal names the field.
pub(crate) fn reference_text(
    reference: Option<&common::SecretReference>,
    field: &str,
) -> Result<String> {
    secrets::to_text(reference).map_err(|error| {
        ProvisionerError::invalid(
            &format!("maas360.{field}"),
            format!("maas360.{field}: {error}"),
        )
    })
}

impl TenantConnection {
    /// Changes when anything that shapes the client or the policy changes.
    pub(crate) fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{:?}|{:?}",
            self.base_url,
            self.billing_id,
            self.admin_user,
            self.app_id,
            self.app_version,
            self.platform_id,
            self.password_ref,
            self.app_access_key_ref,
            self.routes_toml,
            self.policy
        )
    }

    /// A client with the secrets read now.
    pub(crate) fn client(
        &self,
        settings: &ProvisionerConfig,
    ) -> std::result::Result<Maas360Client, ClientError> {
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
            routes: routes(self.routes_toml.as_deref()).map_err(ClientError::Client)?,
            ..ClientOptions::default()
        };
        Maas360Client::new(credentials, options)
            .map_err(|error| ClientError::Client(error.to_string()))
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
            routes_toml: {
                routes(Some(&connection.routes_toml))
                    .map_err(|error| ProvisionerError::invalid("maas360.routes_toml", error))?;
                Some(connection.routes_toml.clone()).filter(|text| !text.trim().is_empty())
            },
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
            password: secrets::to_reference(&self.password_ref),
            app_access_key: secrets::to_reference(&self.app_access_key_ref),
            routes_toml: self.routes_toml.clone().unwrap_or_default(),
        }
    }
}

pub(crate) fn policy_of(model: &tenant::Model) -> Policy {
    Policy {
        deactivate_on_disable: model.deactivate_on_disable,
        delete_on_delete: model.delete_on_delete,
        username_mapping: UsernameMapping::from_stored(&model.username_mapping),
        park_on_active_device: model.active_device_policy == "park",
        import_lookalike_groups: model.lookalike_group_policy == "import",
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
        routes_toml: model.maas360_routes_toml.clone(),
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
