//! Which MaaS360 user group an Entra group writes to, asked of the mapping service when a group
//! is first provisioned (by SCIM push or by the pull sync) and before a member leaves a group.
//!
//! Option 1 (docs/maas360.md §8): an operator maps an Entra group onto an existing MaaS360 group
//! that carries app and policy distributions, and the migration applies it. Until it is applied
//! the group must not be created or adopted by name, or devices could lose what the existing
//! group distributes. A provisioner without a mapping service (an empty `mapping_url` outside
//! `dirsync serve`) resolves every group as unmapped; look-alikes are still parked.

use std::time::Duration;

use dirsync_proto::mapping::v1 as pb;
use tonic::transport::{Channel, Endpoint};

use super::backend::BackendError;

/// How an Entra group resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// No mapping: Option 2 rules (a new group, unless a look-alike carries distributions).
    Unmapped,
    /// A mapping exists and is not applied yet: create nothing, wait.
    Pending { mapping_id: String, state: String },
    /// Applied: write into this MaaS360 group.
    Mapped {
        mapping_id: String,
        group_id: String,
        group_name: String,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct MappingResolver {
    client: Option<pb::mapping_service_client::MappingServiceClient<Channel>>,
}

impl MappingResolver {
    /// A resolver that asks the mapping service at `url`; none when `url` is empty. The channel
    /// connects on first use, so the mapping service may start after the provisioner.
    pub(crate) fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        if url.trim().is_empty() {
            return Ok(Self { client: None });
        }
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|error| format!("provisioner.mapping_url {url:?}: {error}"))?
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout);
        Ok(Self {
            client: Some(pb::mapping_service_client::MappingServiceClient::new(
                endpoint.connect_lazy(),
            )),
        })
    }

    /// Whether a mapping service is asked at all.
    pub(crate) fn is_configured(&self) -> bool {
        self.client.is_some()
    }

    /// Resolves a group by its Entra object id (the SCIM externalId), then by display name.
    /// A mapping service that cannot be reached is a transient failure: the group waits rather
    /// than being created without its mapping.
    pub(crate) async fn resolve(
        &self,
        tenant_id: &str,
        external_id: Option<&str>,
        display_name: &str,
    ) -> Result<Resolution, BackendError> {
        let Some(client) = &self.client else {
            return Ok(Resolution::Unmapped);
        };
        let request = pb::ResolveGroupRequest {
            tenant: tenant_id.to_owned(),
            entra_group_id: external_id.unwrap_or_default().to_owned(),
            display_name: display_name.to_owned(),
        };
        let answer = match client.clone().resolve_group(request).await {
            Ok(answer) => answer.into_inner(),
            // A mapping service that holds no mappings for anyone (an older one) maps nothing.
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                return Ok(Resolution::Unmapped);
            }
            Err(status) => {
                return Err(BackendError::Unavailable(format!(
                    "the mapping service did not resolve group {display_name:?}: {}: {}",
                    status.code(),
                    status.message()
                )));
            }
        };
        let mapping = answer.mapping.unwrap_or_default();
        Ok(match pb::Resolution::try_from(answer.resolution) {
            Ok(pb::Resolution::Mapped) if !mapping.target_group_id.is_empty() => {
                Resolution::Mapped {
                    mapping_id: mapping.mapping_id,
                    group_id: mapping.target_group_id,
                    group_name: mapping.target_group_name,
                }
            }
            Ok(pb::Resolution::Pending | pb::Resolution::Mapped) => Resolution::Pending {
                mapping_id: mapping.mapping_id,
                state: pb::MappingState::try_from(mapping.state)
                    .map(|state| state.as_str_name().to_owned())
                    .unwrap_or_default(),
            },
            _ => Resolution::Unmapped,
        })
    }
}

/// A group name as people compare names: lower case, letters and digits only, so that
/// "Sales-Team", "sales team" and "SALES_TEAM" look alike.
pub(crate) fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_look_alike_ignoring_case_spaces_and_punctuation() {
        assert_eq!(name_key("Sales-Team"), name_key("sales team"));
        assert_eq!(name_key("SALES_TEAM"), name_key("Sales.Team!"));
        assert_eq!(name_key("Ventes Équipe"), "venteséquipe");
        assert_ne!(name_key("Sales"), name_key("Sales 2"));
    }

    #[tokio::test]
    async fn without_a_mapping_service_every_group_is_unmapped() {
        let resolver = MappingResolver::new("", Duration::from_secs(1)).unwrap_or_else(|e| {
            panic!("{e}");
        });
        assert_eq!(
            resolver.resolve("t", Some("oid"), "Sales").await,
            Ok(Resolution::Unmapped)
        );
    }

    #[tokio::test]
    async fn an_unreachable_mapping_service_is_transient() {
        // A port nothing listens on: the group must wait, not be created without its mapping.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        drop(listener);
        let resolver =
            MappingResolver::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(1))
                .unwrap_or_else(|e| panic!("{e}"));
        let resolved = resolver.resolve("t", None, "Sales").await;
        assert!(
            matches!(&resolved, Err(error) if error.is_transient()),
            "{resolved:?}"
        );
    }
}
