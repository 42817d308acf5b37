//! The provisioner and the directory-reader as the mapping service uses them, over their gRPC
//! contracts only (this service never reads their tables): tenants, MaaS360's user groups,
//! members, users and the migration's group writes through the provisioner (the only service
//! that talks to MaaS360, within the tenant's rate limit); Entra's groups, users and transitive
//! members through the directory-reader. Every call has a deadline.

use std::time::Duration;

use dirsync_proto::directory::v1 as directory;
use dirsync_proto::provisioner::v1 as provisioner;
use dirsync_runtime::request_id::Propagate;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::error::{MappingError, Result};

type Traced = InterceptedService<Channel, Propagate>;

/// Largest message accepted: a page of MaaS360 groups with their distributions.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// MaaS360 serves at most 250 a page.
const MAAS360_PAGE: i32 = 250;
/// Graph's largest page of members.
const MEMBER_PAGE: i32 = 999;
/// Tries of a read that meets a transient failure (MaaS360 or Graph answering 5xx or
/// throttling, a service restarting) before the RPC gives up. One provisioner read can be more
/// than one MaaS360 call, so under a MaaS360 failing a third of its calls a read fails often.
const READ_ATTEMPTS: u32 = 10;
const FIRST_READ_RETRY: Duration = Duration::from_millis(200);
const MAX_READ_RETRY: Duration = Duration::from_secs(2);

/// Reads are safe to repeat: a transient failure is tried again, with backoff, a few times.
async fn read<T, F, Fut>(mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut wait = FIRST_READ_RETRY;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if error.is_transient() && attempt < READ_ATTEMPTS => {
                tracing::debug!(%error, attempt, "read failed; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_READ_RETRY);
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Every item of a paged read: `page` reads the page a token names and answers its items and
/// the next token (empty after the last page). Each page is retried on its own.
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String)>>,
{
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let (batch, next) = read(|| page(page_token.clone())).await?;
        items.extend(batch);
        if next.is_empty() {
            return Ok(items);
        }
        page_token = next;
    }
}

/// A tenant as the mapping service needs it.
#[derive(Clone, Debug)]
pub(crate) struct Tenant {
    pub(crate) id: String,
    /// MaaS360's username is the whole userName (true) or its local part (false).
    pub(crate) full_username: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    tenants: provisioner::tenant_service_client::TenantServiceClient<Traced>,
    maas360: provisioner::maas360_read_service_client::Maas360ReadServiceClient<Traced>,
    writes: provisioner::maas360_group_write_service_client::Maas360GroupWriteServiceClient<Traced>,
    work: provisioner::work_service_client::WorkServiceClient<Traced>,
    directory: directory::directory_reader_service_client::DirectoryReaderServiceClient<Traced>,
}

fn channel(url: &str, timeout: Duration) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .connect_lazy())
}

impl Upstream {
    /// Connects on first use, so the mapping service can start before the others.
    pub(crate) fn connect_lazy(
        provisioner_url: &str,
        directory_url: &str,
        timeout: Duration,
    ) -> Result<Self, tonic::transport::Error> {
        let to_provisioner = channel(provisioner_url, timeout)?;
        let to_directory = channel(directory_url, timeout)?;
        Ok(Self {
            tenants: provisioner::tenant_service_client::TenantServiceClient::with_interceptor(
                to_provisioner.clone(),
                Propagate,
            ),
            maas360:
                provisioner::maas360_read_service_client::Maas360ReadServiceClient::with_interceptor(
                    to_provisioner.clone(),
                    Propagate,
                )
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            writes: provisioner::maas360_group_write_service_client::Maas360GroupWriteServiceClient::with_interceptor(
                to_provisioner.clone(),
                Propagate,
            ),
            work: provisioner::work_service_client::WorkServiceClient::with_interceptor(
                to_provisioner,
                Propagate,
            ),
            directory:
                directory::directory_reader_service_client::DirectoryReaderServiceClient::with_interceptor(
                    to_directory,
                    Propagate,
                )
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        })
    }

    /// The tenant named by id or name (TENANT_NOT_FOUND from the provisioner otherwise).
    pub(crate) async fn tenant(&self, tenant: &str) -> Result<Tenant> {
        if tenant.trim().is_empty() {
            return Err(MappingError::invalid(
                "tenant",
                "tenant is required (its id or its name)",
            ));
        }
        let found = self
            .tenants
            .clone()
            .get_tenant(provisioner::GetTenantRequest {
                tenant: tenant.trim().to_owned(),
            })
            .await
            .map_err(MappingError::provisioner)?
            .into_inner()
            .tenant
            .ok_or_else(|| MappingError::internal("GetTenant answered no tenant"))?;
        let full_username = found.policy.as_ref().is_some_and(|policy| {
            policy.username_mapping == provisioner::UsernameMapping::Full as i32
        });
        Ok(Tenant {
            id: found.tenant_id,
            full_username,
        })
    }

    /// MaaS360's user groups, with their distributions.
    pub(crate) async fn maas360_groups(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<provisioner::Maas360UserGroup>> {
        all_pages(|page_token| {
            let mut client = self.maas360.clone();
            let request = provisioner::ListMaas360UserGroupsRequest {
                tenant: tenant_id.to_owned(),
                page_size: MAAS360_PAGE,
                page_token,
            };
            async move {
                let page = client
                    .list_maas360_user_groups(request)
                    .await
                    .map_err(MappingError::provisioner)?
                    .into_inner();
                Ok((page.groups, page.next_page_token))
            }
        })
        .await
    }

    pub(crate) async fn maas360_group_users(
        &self,
        tenant_id: &str,
        group_id: &str,
    ) -> Result<Vec<provisioner::Maas360User>> {
        all_pages(|page_token| {
            let mut client = self.maas360.clone();
            let request = provisioner::ListMaas360GroupUsersRequest {
                tenant: tenant_id.to_owned(),
                group_id: group_id.to_owned(),
                page_size: MAAS360_PAGE,
                page_token,
            };
            async move {
                let page = client
                    .list_maas360_group_users(request)
                    .await
                    .map_err(MappingError::provisioner)?
                    .into_inner();
                Ok((page.users, page.next_page_token))
            }
        })
        .await
    }

    pub(crate) async fn maas360_users(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<provisioner::Maas360User>> {
        all_pages(|page_token| {
            let mut client = self.maas360.clone();
            let request = provisioner::ListMaas360UsersRequest {
                tenant: tenant_id.to_owned(),
                page_size: MAAS360_PAGE,
                page_token,
            };
            async move {
                let page = client
                    .list_maas360_users(request)
                    .await
                    .map_err(MappingError::provisioner)?
                    .into_inner();
                Ok((page.users, page.next_page_token))
            }
        })
        .await
    }

    /// The Graph attribute the tenant's userNames come from (userPrincipalName unless the pull
    /// settings say otherwise).
    pub(crate) async fn username_attribute(&self, tenant_id: &str) -> Result<String> {
        let answer = self
            .directory
            .clone()
            .get_entra_connection(directory::GetEntraConnectionRequest {
                tenant: tenant_id.to_owned(),
            })
            .await
            .map_err(MappingError::directory)?
            .into_inner();
        Ok(answer
            .pull
            .map(|pull| pull.username_attribute)
            .filter(|attribute| !attribute.trim().is_empty())
            .unwrap_or_else(|| "userPrincipalName".to_owned()))
    }

    pub(crate) async fn entra_groups(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<directory::DirectoryGroup>> {
        // The whole stream is read again after a failure halfway.
        read(|| {
            let mut client = self.directory.clone();
            let request = directory::StreamGroupsRequest {
                tenant: tenant_id.to_owned(),
                group_scope: Vec::new(),
            };
            async move {
                let mut stream = client
                    .stream_groups(request)
                    .await
                    .map_err(MappingError::directory)?
                    .into_inner();
                let mut groups = Vec::new();
                while let Some(message) = stream.message().await.map_err(MappingError::directory)? {
                    groups.extend(message.group);
                }
                Ok(groups)
            }
        })
        .await
    }

    pub(crate) async fn entra_users(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<directory::DirectoryUser>> {
        // The whole stream is read again after a failure halfway.
        read(|| {
            let mut client = self.directory.clone();
            let request = directory::StreamUsersRequest {
                tenant: tenant_id.to_owned(),
                group_scope: Vec::new(),
            };
            async move {
                let mut stream = client
                    .stream_users(request)
                    .await
                    .map_err(MappingError::directory)?
                    .into_inner();
                let mut users = Vec::new();
                while let Some(message) = stream.message().await.map_err(MappingError::directory)? {
                    users.extend(message.user);
                }
                Ok(users)
            }
        })
        .await
    }

    /// The object ids of a group's users, through nested groups.
    pub(crate) async fn entra_transitive_users(
        &self,
        tenant_id: &str,
        group_id: &str,
    ) -> Result<Vec<String>> {
        all_pages(|page_token| {
            let mut client = self.directory.clone();
            let request = directory::ListGroupMembersRequest {
                tenant: tenant_id.to_owned(),
                group: group_id.to_owned(),
                depth: dirsync_proto::common::v1::MembershipDepth::Transitive as i32,
                page_size: MEMBER_PAGE,
                page_token,
            };
            async move {
                let page = client
                    .list_group_members(request)
                    .await
                    .map_err(MappingError::directory)?
                    .into_inner();
                let users = page
                    .members
                    .into_iter()
                    .filter(|member| {
                        member.kind == dirsync_proto::common::v1::ResourceKind::User as i32
                    })
                    .map(|member| member.id)
                    .collect();
                Ok((users, page.next_page_token))
            }
        })
        .await
    }

    /// Creates the copy group, or finds the one of that name a previous attempt created.
    pub(crate) async fn create_group(
        &self,
        tenant_id: &str,
        name: &str,
        operation_id: &str,
    ) -> Result<provisioner::Maas360UserGroup> {
        self.writes
            .clone()
            .create_maas360_user_group(provisioner::CreateMaas360UserGroupRequest {
                tenant: tenant_id.to_owned(),
                name: name.to_owned(),
                operation_id: operation_id.to_owned(),
            })
            .await
            .map_err(MappingError::provisioner)?
            .into_inner()
            .group
            .ok_or_else(|| MappingError::internal("CreateMaas360UserGroup answered no group"))
    }

    pub(crate) async fn add_distribution(
        &self,
        request: provisioner::AddMaas360GroupDistributionRequest,
    ) -> Result<bool> {
        Ok(self
            .writes
            .clone()
            .add_maas360_group_distribution(request)
            .await
            .map_err(MappingError::provisioner)?
            .into_inner()
            .added)
    }

    pub(crate) async fn remove_group_users(
        &self,
        tenant_id: &str,
        group_id: &str,
        user_ids: Vec<String>,
        operation_id: &str,
    ) -> Result<u32> {
        Ok(self
            .writes
            .clone()
            .remove_maas360_group_users(provisioner::RemoveMaas360GroupUsersRequest {
                tenant: tenant_id.to_owned(),
                group_id: group_id.to_owned(),
                user_ids,
                operation_id: operation_id.to_owned(),
            })
            .await
            .map_err(MappingError::provisioner)?
            .into_inner()
            .removed)
    }

    /// Requeues the groups the provisioner parked or held for these Entra groups' mappings.
    pub(crate) async fn retry_parked(
        &self,
        tenant_id: &str,
        entra_ids: Vec<String>,
    ) -> Result<u64> {
        Ok(self
            .work
            .clone()
            .retry_parked(provisioner::RetryParkedRequest {
                tenant: tenant_id.to_owned(),
                resource_ids: Vec::new(),
                external_ids: entra_ids,
            })
            .await
            .map_err(MappingError::provisioner)?
            .into_inner()
            .requeued)
    }
}
