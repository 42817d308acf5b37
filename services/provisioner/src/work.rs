//! The work queue as operators see it: depth, in flight, parked with reasons, retry, whether
//! MaaS360 answers the tenant, and the audit of every MaaS360 write.

use dirsync_proto::common::v1 as common;
use dirsync_proto::provisioner::v1 as pb;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tonic::{Request, Response, Status};

use crate::entity::{ResourceKind, group, maas360_audit, sync_state, user};
use crate::error::{ProvisionerError, Result};
use crate::reconcile::{health, queue};
use crate::store::{Store, now_ms};

const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

/// The page size of a cursor-paged list: 0 is the default page, never "nothing".
pub(crate) fn clamp_page_size(requested: i32) -> Result<u64> {
    match u64::try_from(requested) {
        Ok(0) => Ok(DEFAULT_PAGE),
        Ok(size) => Ok(Ord::min(size, MAX_PAGE)),
        Err(_) => Err(ProvisionerError::invalid(
            "page_size",
            "page_size must not be negative",
        )),
    }
}

use dirsync_proto::time::{from_unix_ms as timestamp, to_unix_ms as unix_ms};

fn resource_kind(kind: ResourceKind) -> common::ResourceKind {
    match kind {
        ResourceKind::User => common::ResourceKind::User,
        ResourceKind::Group => common::ResourceKind::Group,
    }
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

    /// A name people recognise: the userName or displayName, else the id.
    async fn display(&self, row: &sync_state::Model) -> Result<String> {
        let db = self.store.db();
        let key = (row.tenant_id.clone(), row.resource_id.clone());
        let name = match row.kind {
            ResourceKind::User => user::Entity::find_by_id(key)
                .one(db)
                .await?
                .map(|user| user.user_name),
            ResourceKind::Group => group::Entity::find_by_id(key)
                .one(db)
                .await?
                .map(|group| group.display_name),
        };
        Ok(name.unwrap_or_else(|| row.resource_id.clone()))
    }

    async fn maas360_health(&self, tenant_id: &str) -> Result<pb::Maas360Health> {
        let Some(record) = health::read(&self.store, tenant_id).await? else {
            return Ok(pb::Maas360Health::default());
        };
        let reachability = if record.reachable {
            pb::Maas360Reachability::Reachable
        } else {
            pb::Maas360Reachability::Unreachable
        };
        Ok(pb::Maas360Health {
            reachability: reachability as i32,
            unreachable_since: record.unreachable_since.map(timestamp),
            next_probe_time: record.next_probe_at.map(timestamp),
            last_error: record.last_error.unwrap_or_default(),
            last_error_time: record.last_error_at.map(timestamp),
        })
    }

    async fn audit(
        &self,
        request: pb::ListAuditEntriesRequest,
    ) -> Result<pb::ListAuditEntriesResponse> {
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        let size = clamp_page_size(request.page_size)?;
        let mut query =
            maas360_audit::Entity::find().filter(maas360_audit::Column::TenantId.eq(tenant_id));
        if !request.resource_id.is_empty() {
            query = query.filter(maas360_audit::Column::ResourceId.eq(request.resource_id.clone()));
        }
        if let Some(since) = &request.since {
            query = query.filter(maas360_audit::Column::At.gte(unix_ms(since)));
        }
        if let Some(until) = &request.until {
            query = query.filter(maas360_audit::Column::At.lt(unix_ms(until)));
        }
        if !request.page_token.is_empty() {
            let before: i64 = request.page_token.parse().map_err(|_| {
                ProvisionerError::invalid("page_token", "page_token is not one this server issued")
            })?;
            query = query.filter(maas360_audit::Column::Id.lt(before));
        }
        let rows = query
            .order_by_desc(maas360_audit::Column::Id)
            .limit(size + 1)
            .all(self.store.db())
            .await?;
        let more = rows.len() as u64 > size;
        let entries: Vec<pb::AuditEntry> = rows
            .into_iter()
            .take(usize::try_from(size).unwrap_or(usize::MAX))
            .map(|row| pb::AuditEntry {
                id: row.id,
                kind: resource_kind(row.kind) as i32,
                resource_id: row.resource_id,
                route: row.action,
                target: row.target,
                outcome: row.outcome,
                error: row.detail.unwrap_or_default(),
                time: Some(timestamp(row.at)),
                worker: row.worker.unwrap_or_default(),
                attempt_start_time: row.attempt_started_at.map(timestamp),
            })
            .collect();
        let next_page_token = match (more, entries.last()) {
            (true, Some(last)) => last.id.to_string(),
            _ => String::new(),
        };
        Ok(pb::ListAuditEntriesResponse {
            entries,
            next_page_token,
        })
    }
}

/// The users and groups of a tenant that Entra knows by these externalIds.
async fn by_external_id(
    db: &impl sea_orm::ConnectionTrait,
    tenant_id: &str,
    external_ids: &[String],
) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for chunk in external_ids.chunks(500) {
        let users: Vec<String> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::TenantId.eq(tenant_id))
            .filter(user::Column::ExternalId.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        let groups: Vec<String> = group::Entity::find()
            .select_only()
            .column(group::Column::Id)
            .filter(group::Column::TenantId.eq(tenant_id))
            .filter(group::Column::ExternalId.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        ids.extend(users);
        ids.extend(groups);
    }
    Ok(ids)
}

#[tonic::async_trait]
impl pb::work_service_server::WorkService for WorkApi {
    async fn get_work_status(
        &self,
        request: Request<pb::GetWorkStatusRequest>,
    ) -> Result<Response<pb::GetWorkStatusResponse>, Status> {
        let tenant_id = self.store.tenant_id(&request.into_inner().tenant).await?;
        let now = now_ms();
        let queued = Condition::all()
            .add(sync_state::Column::Pending.eq(true))
            .add(sync_state::Column::Parked.eq(false));
        let in_flight = Condition::all()
            .add(sync_state::Column::Pending.eq(true))
            .add(sync_state::Column::LeaseUntil.gt(now));
        let parked = Condition::all().add(sync_state::Column::Parked.eq(true));
        let in_sync = Condition::all().add(sync_state::Column::Pending.eq(false));
        let status = pb::WorkStatus {
            queue_depth: self.count(&tenant_id, queued).await?,
            in_flight: self.count(&tenant_id, in_flight).await?,
            parked: self.count(&tenant_id, parked).await?,
            in_sync: self.count(&tenant_id, in_sync).await?,
            maas360_health: Some(self.maas360_health(&tenant_id).await?),
            tenant_id,
        };
        Ok(Response::new(pb::GetWorkStatusResponse {
            status: Some(status),
        }))
    }

    async fn list_parked(
        &self,
        request: Request<pb::ListParkedRequest>,
    ) -> Result<Response<pb::ListParkedResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        let size = clamp_page_size(request.page_size)?;
        let after = request.page_token;
        let base = sync_state::Entity::find()
            .filter(sync_state::Column::TenantId.eq(tenant_id))
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
                kind: resource_kind(row.kind) as i32,
                resource_id: row.resource_id.clone(),
                display: self.display(row).await?,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                reason: row.last_error.clone().unwrap_or_default(),
                park_time: row.parked_at.map(timestamp),
            });
        }
        let next_page_token = match rows.last() {
            Some(last) if rows.len() as u64 == size => last.resource_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListParkedResponse {
            resources,
            next_page_token,
            total_size: i64::try_from(total).unwrap_or(i64::MAX),
        }))
    }

    async fn retry_parked(
        &self,
        request: Request<pb::RetryParkedRequest>,
    ) -> Result<Response<pb::RetryParkedResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        let resource_ids = if request.resource_ids.is_empty() && request.external_ids.is_empty() {
            None
        } else {
            let mut ids = request.resource_ids;
            ids.extend(by_external_id(self.store.db(), &tenant_id, &request.external_ids).await?);
            Some(ids)
        };
        let write = self.store.write().await?;
        let requeued = queue::requeue_parked(
            &write.txn,
            &tenant_id,
            queue::Requeue {
                kind: None,
                resource_ids,
            },
        )
        .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant_id, requeued, "parked resources requeued");
        Ok(Response::new(pb::RetryParkedResponse { requeued }))
    }

    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        Ok(Response::new(self.audit(request.into_inner()).await?))
    }
}
