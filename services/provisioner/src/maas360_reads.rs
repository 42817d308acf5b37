//! The MaaS360 reads the mapping service needs (user groups with their distributions, the
//! users of a group), through the tenant's client and rate limiter: never from the store.

use std::sync::Arc;

use dirsync_proto::common::v1 as common;
use dirsync_proto::provisioner::v1 as pb;
use tonic::{Request, Response, Status};

use crate::error::{ProvisionerError, Result};
use crate::reconcile::{Reconciler, TenantRuntime};
use crate::store::Store;
use crate::work::page_size;

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
        let tenant = crate::tenants::find(self.store.db(), tenant).await?;
        self.reconciler
            .tenant_runtimes()
            .await
            .remove(&tenant.tenant_id)
            .ok_or_else(|| {
                ProvisionerError::invalid(
                    "invalidValue",
                    format!("tenant {} has no usable MaaS360 connection", tenant.name),
                )
            })
    }
}

fn read_error(error: dirsync_maas360::Maas360Error) -> Status {
    if error.is_retryable() {
        Status::unavailable(format!("MaaS360 did not answer: {error}"))
    } else {
        Status::failed_precondition(format!("MaaS360 refused the read: {error}"))
    }
}

/// The MaaS360 page a request asks for: 1-based page numbers travel as the
/// page token, and MaaS360 serves at most 250 a page.
fn maas360_page(page: Option<&common::PageRequest>) -> (u32, u32) {
    let number = page
        .and_then(|page| page.page_token.parse().ok())
        .unwrap_or(1)
        .max(1);
    let size = u32::try_from(page_size(page)).unwrap_or(250).min(250);
    (number, size)
}

fn page_info<T>(number: u32, page: &dirsync_maas360::Page<T>) -> common::PageInfo {
    let seen = u64::from(number) * u64::from(page.page_size.max(1));
    let next_page_token = if page.items.is_empty() || seen >= page.total {
        String::new()
    } else {
        (number + 1).to_string()
    };
    common::PageInfo {
        next_page_token,
        total_size: page.total,
    }
}

#[tonic::async_trait]
impl pb::maas360_read_service_server::Maas360ReadService for Maas360ReadApi {
    async fn list_maas360_user_groups(
        &self,
        request: Request<pb::ListMaas360UserGroupsRequest>,
    ) -> Result<Response<pb::ListMaas360UserGroupsResponse>, Status> {
        let request = request.into_inner();
        let runtime = self.runtime(&request.tenant_id).await?;
        let (number, size) = maas360_page(request.page.as_ref());
        runtime.limiter.acquire().await;
        let page = runtime
            .client
            .list_groups(number, size)
            .await
            .map_err(read_error)?;
        let convert = |distributions: &[dirsync_maas360::Distribution]| {
            distributions
                .iter()
                .map(|d| pb::Distribution {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    platform: d.platform.clone(),
                })
                .collect()
        };
        let groups = page
            .items
            .iter()
            .map(|group| pb::Maas360UserGroup {
                group_id: group.group_identifier.clone(),
                name: group.name.clone(),
                group_type: group.group_type.clone(),
                user_count: 0,
                app_distributions: convert(&group.app_distributions),
                policy_distributions: convert(&group.policy_distributions),
            })
            .collect();
        Ok(Response::new(pb::ListMaas360UserGroupsResponse {
            groups,
            page: Some(page_info(number, &page)),
        }))
    }

    async fn list_maas360_group_users(
        &self,
        request: Request<pb::ListMaas360GroupUsersRequest>,
    ) -> Result<Response<pb::ListMaas360GroupUsersResponse>, Status> {
        let request = request.into_inner();
        let runtime = self.runtime(&request.tenant_id).await?;
        let (number, size) = maas360_page(request.page.as_ref());
        runtime.limiter.acquire().await;
        let page = runtime
            .client
            .users_in_group(&request.group_id, number, size)
            .await
            .map_err(read_error)?;
        let users = page
            .items
            .iter()
            .map(|user| pb::Maas360User {
                user_id: user.user_identifier.clone(),
                username: user.user_name.clone(),
                domain: user.domain.clone(),
                email: user.email.clone(),
                status: user.status.clone(),
            })
            .collect();
        Ok(Response::new(pb::ListMaas360GroupUsersResponse {
            users,
            page: Some(page_info(number, &page)),
        }))
    }
}
