//! The provisioner as the directory-reader sees it, over its gRPC contract only (the
//! provisioner owns tenants and desired state; this service never reads its tables): tenant
//! resolution, the tenant's current desired state read in pages, the pull sync's writes (each
//! marked `WRITE_SOURCE_PULL`, so the provisioner refuses them for a tenant in push mode), and
//! the MaaS360 reads drift needs. Every call has a deadline.

use std::time::Duration;

use dirsync_proto::provisioner::v1 as pb;
use dirsync_runtime::request_id::Propagate;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::desired::UserAttributes;
use crate::error::{DirectoryError, Result};
use crate::plan::{CurrentGroup, CurrentUser};

type Traced = InterceptedService<Channel, Propagate>;

/// Largest message accepted from the provisioner: a page of groups with their members can
/// be large (a group of 100k members is a few megabytes).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// Users per ListUsers page (the provisioner caps pages at `scim.max_page_size`).
const USER_PAGE: i32 = 1000;
/// Groups per ListGroups page; each comes with all its members.
const GROUP_PAGE: i32 = 50;
/// MaaS360 serves at most 250 a page.
const MAAS360_PAGE: i32 = 250;

/// A tenant as the directory-reader needs it.
#[derive(Clone, Debug)]
pub(crate) struct TenantInfo {
    pub(crate) id: String,
    pub(crate) mode: pb::TenantMode,
    /// MaaS360's username is the whole userName (true) or its local part (false).
    pub(crate) full_username: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Provisioner {
    tenants: pb::tenant_service_client::TenantServiceClient<Traced>,
    users: pb::user_service_client::UserServiceClient<Traced>,
    groups: pb::group_service_client::GroupServiceClient<Traced>,
    maas360: pb::maas360_read_service_client::Maas360ReadServiceClient<Traced>,
}

const SOURCE: i32 = pb::WriteSource::Pull as i32;

impl Provisioner {
    /// Connects on first use, so the directory-reader can start before the provisioner.
    pub(crate) fn connect_lazy(
        url: &str,
        timeout: Duration,
    ) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .connect_lazy();
        Ok(Self {
            tenants: pb::tenant_service_client::TenantServiceClient::with_interceptor(
                channel.clone(),
                Propagate,
            )
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
            users: pb::user_service_client::UserServiceClient::with_interceptor(
                channel.clone(),
                Propagate,
            )
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
            groups: pb::group_service_client::GroupServiceClient::with_interceptor(
                channel.clone(),
                Propagate,
            )
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
            maas360: pb::maas360_read_service_client::Maas360ReadServiceClient::with_interceptor(
                channel, Propagate,
            )
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
        })
    }

    /// The tenant named by id or name (TENANT_NOT_FOUND from the provisioner otherwise).
    pub(crate) async fn tenant(&self, tenant: &str) -> Result<TenantInfo> {
        if tenant.trim().is_empty() {
            return Err(DirectoryError::invalid(
                "tenant",
                "tenant is required (its id or its name)",
            ));
        }
        let found = self
            .tenants
            .clone()
            .get_tenant(pb::GetTenantRequest {
                tenant: tenant.trim().to_owned(),
            })
            .await?
            .into_inner()
            .tenant
            .ok_or_else(|| DirectoryError::Internal("GetTenant answered no tenant".to_owned()))?;
        let full_username = found
            .policy
            .as_ref()
            .is_some_and(|policy| policy.username_mapping == pb::UsernameMapping::Full as i32);
        Ok(TenantInfo {
            id: found.tenant_id,
            mode: pb::TenantMode::try_from(found.mode).unwrap_or(pb::TenantMode::Unspecified),
            full_username,
        })
    }

    /// Every user of the tenant's desired state.
    pub(crate) async fn current_users(&self, tenant_id: &str) -> Result<Vec<CurrentUser>> {
        all_pages(|page_token| {
            let mut client = self.users.clone();
            let request = pb::ListUsersRequest {
                tenant: tenant_id.to_owned(),
                page_size: USER_PAGE,
                page_token,
                view: pb::UserView::Full.into(),
                ..Default::default()
            };
            async move {
                let page = client.list_users(request).await?.into_inner();
                let users = page.users.into_iter().map(current_user).collect();
                Ok((users, page.next_page_token))
            }
        })
        .await
    }

    /// Every group of the tenant's desired state, with its members.
    pub(crate) async fn current_groups(&self, tenant_id: &str) -> Result<Vec<CurrentGroup>> {
        all_pages(|page_token| {
            let mut client = self.groups.clone();
            let request = pb::ListGroupsRequest {
                tenant: tenant_id.to_owned(),
                page_size: GROUP_PAGE,
                page_token,
                include_members: true,
                ..Default::default()
            };
            async move {
                let page = client.list_groups(request).await?.into_inner();
                let groups = page.groups.into_iter().map(current_group).collect();
                Ok((groups, page.next_page_token))
            }
        })
        .await
    }

    /// How many users the tenant's desired state holds.
    pub(crate) async fn count_users(&self, tenant_id: &str) -> Result<u64> {
        let page = self
            .users
            .clone()
            .list_users(pb::ListUsersRequest {
                tenant: tenant_id.to_owned(),
                count_only: true,
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(u64::try_from(page.total_size).unwrap_or(0))
    }

    /// One user by id; `None` when the provisioner no longer has it.
    pub(crate) async fn get_user(&self, tenant_id: &str, id: &str) -> Result<Option<CurrentUser>> {
        match self
            .users
            .clone()
            .get_user(pb::GetUserRequest {
                tenant: tenant_id.to_owned(),
                id: id.to_owned(),
                view: pb::UserView::Full.into(),
            })
            .await
        {
            Ok(reply) => Ok(reply.into_inner().user.map(current_user)),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(status.into()),
        }
    }

    /// The users whose `attribute` (userName or externalId) equals `value`.
    pub(crate) async fn find_users(
        &self,
        tenant_id: &str,
        attribute: &str,
        value: &str,
    ) -> Result<Vec<CurrentUser>> {
        let page = self
            .users
            .clone()
            .list_users(pb::ListUsersRequest {
                tenant: tenant_id.to_owned(),
                filter: equals(attribute, value),
                page_size: 10,
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(page.users.into_iter().map(current_user).collect())
    }

    /// One group by id, with its members; `None` when the provisioner no longer has it.
    pub(crate) async fn get_group(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<CurrentGroup>> {
        match self
            .groups
            .clone()
            .get_group(pb::GetGroupRequest {
                tenant: tenant_id.to_owned(),
                id: id.to_owned(),
                include_members: true,
            })
            .await
        {
            Ok(reply) => Ok(reply.into_inner().group.map(current_group)),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(status.into()),
        }
    }

    /// The groups whose `attribute` (externalId or displayName) equals `value`, with members.
    pub(crate) async fn find_groups(
        &self,
        tenant_id: &str,
        attribute: &str,
        value: &str,
    ) -> Result<Vec<CurrentGroup>> {
        let page = self
            .groups
            .clone()
            .list_groups(pb::ListGroupsRequest {
                tenant: tenant_id.to_owned(),
                filter: equals(attribute, value),
                page_size: 10,
                include_members: true,
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(page.groups.into_iter().map(current_group).collect())
    }

    pub(crate) async fn create_user(
        &self,
        tenant_id: &str,
        attrs: &UserAttributes,
    ) -> Result<String> {
        let created = self
            .users
            .clone()
            .create_user(pb::CreateUserRequest {
                tenant: tenant_id.to_owned(),
                user: Some(user_input(attrs)),
                source: SOURCE,
            })
            .await?
            .into_inner();
        Ok(created.user.map(|user| user.id).unwrap_or_default())
    }

    pub(crate) async fn replace_user(
        &self,
        tenant_id: &str,
        id: &str,
        version: i64,
        attrs: &UserAttributes,
    ) -> Result<()> {
        self.users
            .clone()
            .replace_user(pb::ReplaceUserRequest {
                tenant: tenant_id.to_owned(),
                id: id.to_owned(),
                user: Some(user_input(attrs)),
                expected_version: version,
                source: SOURCE,
            })
            .await?;
        Ok(())
    }

    pub(crate) async fn delete_user(&self, tenant_id: &str, id: &str) -> Result<()> {
        self.users
            .clone()
            .delete_user(pb::DeleteUserRequest {
                tenant: tenant_id.to_owned(),
                id: id.to_owned(),
                source: SOURCE,
            })
            .await?;
        Ok(())
    }

    pub(crate) async fn create_group(
        &self,
        tenant_id: &str,
        display_name: &str,
        external_id: &str,
        members: Vec<String>,
    ) -> Result<String> {
        let created = self
            .groups
            .clone()
            .create_group(pb::CreateGroupRequest {
                tenant: tenant_id.to_owned(),
                display_name: display_name.to_owned(),
                external_id: external_id.to_owned(),
                member_user_ids: members,
                source: SOURCE,
            })
            .await?
            .into_inner();
        Ok(created.group.map(|group| group.id).unwrap_or_default())
    }

    pub(crate) async fn update_group(&self, request: pb::UpdateGroupRequest) -> Result<()> {
        self.groups
            .clone()
            .update_group(pb::UpdateGroupRequest {
                source: SOURCE,
                ..request
            })
            .await?;
        Ok(())
    }

    pub(crate) async fn delete_group(&self, tenant_id: &str, id: &str) -> Result<()> {
        self.groups
            .clone()
            .delete_group(pb::DeleteGroupRequest {
                tenant: tenant_id.to_owned(),
                id: id.to_owned(),
                source: SOURCE,
            })
            .await?;
        Ok(())
    }

    /// Every MaaS360 user of the tenant.
    pub(crate) async fn maas360_users(&self, tenant_id: &str) -> Result<Vec<pb::Maas360User>> {
        all_pages(|page_token| {
            let mut client = self.maas360.clone();
            let request = pb::ListMaas360UsersRequest {
                tenant: tenant_id.to_owned(),
                page_size: MAAS360_PAGE,
                page_token,
            };
            async move {
                let page = client.list_maas360_users(request).await?.into_inner();
                Ok((page.users, page.next_page_token))
            }
        })
        .await
    }

    /// Every MaaS360 user group of the tenant (id and name).
    pub(crate) async fn maas360_groups(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<pb::Maas360UserGroup>> {
        all_pages(|page_token| {
            let mut client = self.maas360.clone();
            let request = pb::ListMaas360UserGroupsRequest {
                tenant: tenant_id.to_owned(),
                page_size: MAAS360_PAGE,
                page_token,
            };
            async move {
                let page = client.list_maas360_user_groups(request).await?.into_inner();
                Ok((page.groups, page.next_page_token))
            }
        })
        .await
    }

    /// The users of one MaaS360 group.
    pub(crate) async fn maas360_group_users(
        &self,
        tenant_id: &str,
        group_id: &str,
    ) -> Result<Vec<pb::Maas360User>> {
        all_pages(|page_token| {
            let mut client = self.maas360.clone();
            let request = pb::ListMaas360GroupUsersRequest {
                tenant: tenant_id.to_owned(),
                group_id: group_id.to_owned(),
                page_size: MAAS360_PAGE,
                page_token,
            };
            async move {
                let page = client.list_maas360_group_users(request).await?.into_inner();
                Ok((page.users, page.next_page_token))
            }
        })
        .await
    }
}

/// Every item of a paged read: `page` reads the page a token names and answers its items and
/// the next token (empty after the last page).
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String)>>,
{
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let (batch, next) = page(page_token).await?;
        items.extend(batch);
        if next.is_empty() {
            return Ok(items);
        }
        page_token = next;
    }
}

fn user_input(attrs: &UserAttributes) -> pb::UserInput {
    pb::UserInput {
        source: Some(pb::user_input::Source::Fields(attrs.to_fields())),
    }
}

/// Only the typed fields are kept: the SCIM document would double the memory.
fn current_user(user: pb::User) -> CurrentUser {
    CurrentUser {
        attrs: UserAttributes::from_fields(&user.fields.unwrap_or_default()),
        id: user.id,
        version: user.version,
    }
}

fn current_group(group: pb::Group) -> CurrentGroup {
    CurrentGroup {
        id: group.id,
        display_name: group.display_name,
        external_id: group.external_id,
        members: group.members.into_iter().map(|m| m.user_id).collect(),
    }
}

/// A SCIM filter `attribute eq "value"`, the value quoted as a JSON string (RFC 7644 §3.4.2.2).
fn equals(attribute: &str, value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned());
    format!("{attribute} eq {quoted}")
}
