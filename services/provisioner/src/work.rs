//! The work queue as operators see it (depth, in flight, parked with reasons,
//! retry), and the MaaS360 reads the mapping service needs.

use std::sync::Arc;

use dirsync_proto::common::v1 as common;
use dirsync_proto::provisioner::v1 as pb;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tonic::{Request, Response, Status};

use crate::entity::{group, sync_state, tenant, user};
use crate::error::{ProvisionerError, Result};
use crate::reconcile::{Reconciler, TenantRuntime};
use crate::store::{Kind, Store, now_ms};

const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

fn page_size(page: Option<&common::PageRequest>) -> u64 {
    match page.map_or(0, |page| u64::from(page.page_size)) {
        0 => DEFAULT_PAGE,
        size => Ord::min(size, MAX_PAGE),
    }
}

async fn ensure_tenant(store: &Store, tenant_id: &str) -> Result<()> {
    if tenant::Entity::find_by_id(tenant_id.to_owned())
        .one(store.db())
        .await?
        .is_none()
    {
        return Err(ProvisionerError::NotFound(format!(
            "tenant {tenant_id:?} not found"
        )));
    }
    Ok(())
}

#[derive(Debug)]
pub(crate) struct WorkApi {
    store: Store,
}

impl WorkApi {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    async fn count(&self, tenant_id: &str, condition: Condition) -> Result<u64> {
        Ok(sync_state::Entity::find()
            .filter(sync_state::Column::TenantId.eq(tenant_id))
            .filter(condition)
            .count(self.store.db())
            .await?)
    }

    /// A name people recognise: the userName or displayName, else what
    /// MaaS360 last confirmed, else the id.
    async fn display(&self, row: &sync_state::Model) -> Result<String> {
        let db = self.store.db();
        let key = (row.tenant_id.clone(), row.resource_id.clone());
        let name = if row.kind == Kind::User.as_str() {
            user::Entity::find_by_id(key)
                .one(db)
                .await?
                .map(|user| user.user_name)
        } else {
            group::Entity::find_by_id(key)
                .one(db)
                .await?
                .map(|group| group.display_name)
        };
        Ok(name.unwrap_or_else(|| row.resource_id.clone()))
    }
}

#[tonic::async_trait]
impl pb::work_service_server::WorkService for WorkApi {
    async fn get_work_status(
        &self,
        request: Request<pb::GetWorkStatusRequest>,
    ) -> Result<Response<pb::WorkStatus>, Status> {
        let tenant_id = request.into_inner().tenant_id;
        ensure_tenant(&self.store, &tenant_id).await?;
        let now = now_ms();
        let queued = Condition::all()
            .add(sync_state::Column::Pending.eq(true))
            .add(sync_state::Column::Parked.eq(false));
        let in_flight = Condition::all()
            .add(sync_state::Column::Pending.eq(true))
            .add(sync_state::Column::LeaseUntil.gt(now));
        let parked = Condition::all().add(sync_state::Column::Parked.eq(true));
        let in_sync = Condition::all().add(sync_state::Column::Pending.eq(false));
        Ok(Response::new(pb::WorkStatus {
            queue_depth: self.count(&tenant_id, queued).await?,
            in_flight: self.count(&tenant_id, in_flight).await?,
            parked: self.count(&tenant_id, parked).await?,
            in_sync: self.count(&tenant_id, in_sync).await?,
            tenant_id,
        }))
    }

    async fn list_parked(
        &self,
        request: Request<pb::ListParkedRequest>,
    ) -> Result<Response<pb::ListParkedResponse>, Status> {
        let request = request.into_inner();
        ensure_tenant(&self.store, &request.tenant_id).await?;
        let size = page_size(request.page.as_ref());
        let after = request.page.map(|page| page.page_token).unwrap_or_default();
        let base = sync_state::Entity::find()
            .filter(sync_state::Column::TenantId.eq(request.tenant_id.clone()))
            .filter(sync_state::Column::Parked.eq(true));
        let total = base
            .clone()
            .count(self.store.db())
            .await
            .map_err(ProvisionerError::from)?;
        let mut query = base
            .order_by_asc(sync_state::Column::ResourceId)
            .limit(size);
        if !after.is_empty() {
            query = query.filter(sync_state::Column::ResourceId.gt(after));
        }
        let rows = query
            .all(self.store.db())
            .await
            .map_err(ProvisionerError::from)?;
        let mut resources = Vec::with_capacity(rows.len());
        for row in &rows {
            resources.push(pb::ParkedResource {
                kind: if row.kind == Kind::User.as_str() {
                    common::ResourceKind::User as i32
                } else {
                    common::ResourceKind::Group as i32
                },
                resource_id: row.resource_id.clone(),
                display: self.display(row).await?,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                reason: row.last_error.clone().unwrap_or_default(),
                parked_at_unix_ms: row.parked_at.unwrap_or_default(),
            });
        }
        let next_page_token = match rows.last() {
            Some(last) if rows.len() as u64 == size => last.resource_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListParkedResponse {
            resources,
            page: Some(common::PageInfo {
                next_page_token,
                total_size: total,
            }),
        }))
    }

    async fn retry_parked(
        &self,
        request: Request<pb::RetryParkedRequest>,
    ) -> Result<Response<pb::RetryParkedResponse>, Status> {
        let request = request.into_inner();
        ensure_tenant(&self.store, &request.tenant_id).await?;
        let write = self.store.write().await?;
        let mut update = sync_state::Entity::update_many()
            .col_expr(sync_state::Column::Parked, Expr::value(false))
            .col_expr(
                sync_state::Column::ParkedAt,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(sync_state::Column::Attempts, Expr::value(0))
            .col_expr(sync_state::Column::NextAttemptAt, Expr::value(0))
            .filter(sync_state::Column::TenantId.eq(request.tenant_id.clone()))
            .filter(sync_state::Column::Parked.eq(true));
        if !request.resource_ids.is_empty() {
            update = update.filter(sync_state::Column::ResourceId.is_in(request.resource_ids));
        }
        let requeued = update
            .exec(&write.txn)
            .await
            .map_err(ProvisionerError::from)?
            .rows_affected;
        write.commit().await?;
        tracing::info!(tenant = %request.tenant_id, requeued, "parked resources requeued");
        Ok(Response::new(pb::RetryParkedResponse { requeued }))
    }
}

#[derive(Debug)]
pub(crate) struct Maas360ReadApi {
    store: Store,
    reconciler: Arc<Reconciler>,
}

impl Maas360ReadApi {
    pub(crate) fn new(store: Store, reconciler: Arc<Reconciler>) -> Self {
        Self { store, reconciler }
    }

    async fn runtime(&self, tenant_id: &str) -> Result<Arc<TenantRuntime>> {
        ensure_tenant(&self.store, tenant_id).await?;
        self.reconciler
            .tenant_runtimes()
            .await
            .remove(tenant_id)
            .ok_or_else(|| {
                ProvisionerError::invalid(
                    "invalidValue",
                    format!("tenant {tenant_id:?} has no usable MaaS360 connection"),
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
