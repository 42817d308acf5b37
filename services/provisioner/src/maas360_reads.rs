//! The MaaS360 reads the mapping service needs (user groups with their member counts and
//! distributions, the users of a group), through the tenant's client and rate limiter: never
//! from the store.

use std::sync::Arc;

use dirsync_maas360::{Maas360Error, Page};
use dirsync_proto::errors::ErrorReason;
use dirsync_proto::provisioner::v1 as pb;
use tonic::{Request, Response, Status};

use crate::error::{ProvisionerError, Result};
use crate::reconcile::{Reconciler, TenantRuntime};
use crate::store::Store;

/// MaaS360 serves at most 250 items a page.
const MAAS360_PAGE: u32 = 250;

#[derive(Debug)]
pub(crate) struct Maas360ReadApi {
    store: Store,
    reconciler: Arc<Reconciler>,
}

impl Maas360ReadApi {
    pub(crate) fn new(store: Store, reconciler: Arc<Reconciler>) -> Self {
        Self { store, reconciler }
    }

    async fn runtime(&self, tenant: &str) -> Result<Arc<TenantRuntime>> {
        Ok(tenant_runtime(&self.store, &self.reconciler, tenant)
            .await?
            .1)
    }
}

/// The tenant a request names and the runtime (client, limiter, breaker) its MaaS360 calls
/// go through.
pub(crate) async fn tenant_runtime(
    store: &Store,
    reconciler: &Reconciler,
    tenant: &str,
) -> Result<(String, Arc<TenantRuntime>)> {
    let tenant_id = store.tenant_id(tenant).await?;
    let runtime = reconciler
        .tenant_runtime(&tenant_id)
        .await
        .ok_or_else(|| {
            ProvisionerError::refused(
                ErrorReason::NoMaas360Connection,
                "the tenant has no usable MaaS360 connection; set one with `dirsync tenant set-maas360`",
            )
        })?;
    Ok((tenant_id, runtime))
}

/// One MaaS360 call of a read, paced by the tenant's limiter like the workers' calls.
async fn paced<T>(
    runtime: &TenantRuntime,
    call: impl std::future::Future<Output = Result<T, Maas360Error>>,
) -> Result<T> {
    runtime.limiter.acquire().await;
    let result = call.await;
    runtime.honour_rate_limit().await;
    result.map_err(|error| ProvisionerError::maas360(&error))
}

/// The MaaS360 page a request asks for: 1-based page numbers travel as the page token.
fn maas360_page(page_size: i32, page_token: &str) -> Result<(u32, u32)> {
    let number = if page_token.is_empty() {
        1
    } else {
        page_token
            .parse::<u32>()
            .ok()
            .filter(|number| *number >= 1)
            .ok_or_else(|| {
                ProvisionerError::invalid("page_token", "page_token is not one this server issued")
            })?
    };
    let size = u32::try_from(crate::work::clamp_page_size(page_size)?)
        .unwrap_or(MAAS360_PAGE)
        .min(MAAS360_PAGE);
    Ok((number, size))
}

fn next_token<T>(number: u32, page: &Page<T>) -> String {
    let seen = u64::from(number) * u64::from(page.page_size.max(1));
    if page.items.is_empty() || seen >= page.total {
        String::new()
    } else {
        (number + 1).to_string()
    }
}

fn maas360_user(user: &dirsync_maas360::Maas360User) -> pb::Maas360User {
    pb::Maas360User {
        user_id: user.user_identifier.clone(),
        username: user.user_name.clone(),
        domain: user.domain.clone(),
        email: user.email.clone(),
        status: user.status.clone(),
        full_name: user.full_name.clone(),
    }
}

pub(crate) fn distributions(
    distributions: &[dirsync_maas360::Distribution],
) -> Vec<pb::Distribution> {
    distributions
        .iter()
        .map(|distribution| pb::Distribution {
            id: distribution.id.clone(),
            name: distribution.name.clone(),
            platform: distribution.platform.clone(),
            app_type: distribution.app_type.clone(),
        })
        .collect()
}

#[tonic::async_trait]
impl pb::maas360_read_service_server::Maas360ReadService for Maas360ReadApi {
    async fn list_maas360_user_groups(
        &self,
        request: Request<pb::ListMaas360UserGroupsRequest>,
    ) -> Result<Response<pb::ListMaas360UserGroupsResponse>, Status> {
        let request = request.into_inner();
        let runtime = self.runtime(&request.tenant).await?;
        let (number, size) = maas360_page(request.page_size, &request.page_token)?;
        let page = paced(&runtime, runtime.client.list_groups(number, size)).await?;
        let user_group_type = runtime.client.user_group_type();
        let mut groups = Vec::new();
        // Device groups share MaaS360's group list; only user groups carry users.
        for group in page
            .items
            .iter()
            .filter(|group| group.type_code() == Some(user_group_type))
        {
            let user_count = paced(
                &runtime,
                runtime
                    .client
                    .user_group_member_count(&group.group_identifier),
            )
            .await?;
            groups.push(pb::Maas360UserGroup {
                group_id: group.group_identifier.clone(),
                name: group.name.clone(),
                group_type: group.group_type.clone(),
                user_count,
                app_distributions: distributions(&group.app_distributions),
                policy_distributions: distributions(&group.policy_distributions),
                category: group.category.clone(),
            });
        }
        Ok(Response::new(pb::ListMaas360UserGroupsResponse {
            next_page_token: next_token(number, &page),
            // MaaS360's total counts every group type; the user groups among them are known
            // only page by page.
            total_size: 0,
            groups,
        }))
    }

    async fn list_maas360_group_users(
        &self,
        request: Request<pb::ListMaas360GroupUsersRequest>,
    ) -> Result<Response<pb::ListMaas360GroupUsersResponse>, Status> {
        let request = request.into_inner();
        let runtime = self.runtime(&request.tenant).await?;
        if request.group_id.trim().is_empty() {
            return Err(ProvisionerError::invalid("group_id", "group_id is required").into());
        }
        let (number, size) = maas360_page(request.page_size, &request.page_token)?;
        let page = paced(
            &runtime,
            runtime
                .client
                .users_in_group(&request.group_id, number, size),
        )
        .await?;
        let users = page.items.iter().map(maas360_user).collect();
        Ok(Response::new(pb::ListMaas360GroupUsersResponse {
            users,
            next_page_token: next_token(number, &page),
            total_size: i64::try_from(page.total).unwrap_or(i64::MAX),
        }))
    }

    async fn list_maas360_users(
        &self,
        request: Request<pb::ListMaas360UsersRequest>,
    ) -> Result<Response<pb::ListMaas360UsersResponse>, Status> {
        let request = request.into_inner();
        let runtime = self.runtime(&request.tenant).await?;
        let (number, size) = maas360_page(request.page_size, &request.page_token)?;
        let search = dirsync_maas360::UserSearch {
            partial_user_name: None,
            domain: None,
            email: None,
            exact: false,
            page_number: number,
            page_size: size,
        };
        let page = paced(&runtime, runtime.client.search_users(&search)).await?;
        Ok(Response::new(pb::ListMaas360UsersResponse {
            users: page.items.iter().map(maas360_user).collect(),
            next_page_token: next_token(number, &page),
            total_size: i64::try_from(page.total).unwrap_or(i64::MAX),
        }))
    }
}
