//! The MaaS360 writes an Option 1 migration makes (a copy of a group, its apps and policies,
//! pruned members), for the mapping service: only the provisioner talks to MaaS360, so these go
//! through the tenant's client, rate limiter and circuit breaker like the workers' calls, and
//! each lands in the audit under the migration's operation id.
//!
//! Every write is idempotent, checked against what MaaS360 holds first: an apply resumed after a
//! crash or a lost answer repeats a step, and nothing happens twice.

use std::collections::BTreeSet;
use std::sync::Arc;

use dirsync_maas360::{Distribution, Maas360Error, Maas360Group};
use dirsync_proto::errors::ErrorReason;
use dirsync_proto::provisioner::v1 as pb;
use sea_orm::{ActiveModelTrait, Set};
use tonic::{Request, Response, Status};

use crate::entity::{ResourceKind, maas360_audit};
use crate::error::{ProvisionerError, Result};
use crate::maas360_reads::{distributions, tenant_runtime};
use crate::reconcile::breaker::Gate;
use crate::reconcile::{Reconciler, TenantRuntime};
use crate::store::{Store, now_ms};

/// Users one removal request may name.
const MAX_USERS_PER_REQUEST: usize = 1_000;
/// Longest user group name accepted (MaaS360's portal limit is not published; Entra's
/// displayName is at most 256 characters).
const MAX_GROUP_NAME_CHARS: usize = 256;
/// Members read per page when checking who is in a group.
const MEMBER_PAGE: u32 = 250;
/// Pages of members read at most (250 000 members).
const MAX_MEMBER_PAGES: u32 = 1_000;

#[derive(Debug)]
pub(crate) struct Maas360GroupWriteApi {
    store: Store,
    reconciler: Arc<Reconciler>,
}

impl Maas360GroupWriteApi {
    pub(crate) fn new(store: Store, reconciler: Arc<Reconciler>) -> Self {
        Self { store, reconciler }
    }
}

/// One tenant's writes for one operation.
struct Writer<'a> {
    store: &'a Store,
    tenant_id: String,
    runtime: Arc<TenantRuntime>,
    operation_id: String,
}

impl Writer<'_> {
    /// One MaaS360 call: refused while the tenant's breaker is open, paced by its limiter, fed
    /// to the breaker, and audited under the operation.
    async fn call<T>(
        &self,
        route: &'static str,
        target: &str,
        call: impl std::future::Future<Output = Result<T, Maas360Error>>,
    ) -> Result<T> {
        if let Gate::Open { next_probe } = self.runtime.breaker.gate() {
            let wait = next_probe
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            return Err(ProvisionerError::Refused(Box::new(
                dirsync_proto::errors::ApiError::new(
                    ErrorReason::Maas360Unavailable,
                    "MaaS360 is unreachable for this tenant; no call until its next probe",
                )
                .retry_after(wait),
            )));
        }
        self.runtime.limiter.acquire().await;
        let result = call.await;
        self.runtime.honour_rate_limit().await;
        match &result {
            Err(error) if error.is_rate_limited() => {
                if let Some(wait) = error.retry_after() {
                    self.runtime
                        .report_throttled(self.store, &self.tenant_id, wait)
                        .await;
                }
            }
            Err(error) if error.is_retryable() => {
                self.runtime
                    .report_failure(self.store, &self.tenant_id, &error.to_string())
                    .await;
            }
            _ => {
                self.runtime
                    .report_success(self.store, &self.tenant_id)
                    .await;
            }
        }
        let (outcome, detail) = match &result {
            Ok(_) => ("ok", None),
            Err(error) if error.is_rate_limited() || error.is_retryable() => {
                ("retryable", Some(error.to_string()))
            }
            Err(Maas360Error::NotFound { .. }) => ("not_found", result_detail(&result)),
            Err(Maas360Error::AlreadyExists { .. }) => ("already_exists", result_detail(&result)),
            Err(error) => ("permanent", Some(error.to_string())),
        };
        self.audit(route, target, outcome, detail).await;
        result.map_err(|error| ProvisionerError::maas360(&error))
    }

    /// Records one write (or a decision not to write) in the tenant's audit, under the
    /// operation's id. An audit that cannot be written is logged, not fatal: the write it
    /// describes already happened.
    async fn audit(&self, route: &str, target: &str, outcome: &str, detail: Option<String>) {
        let entry = maas360_audit::ActiveModel {
            tenant_id: Set(self.tenant_id.clone()),
            kind: Set(ResourceKind::Group),
            resource_id: Set(self.operation_id.clone()),
            action: Set(route.to_owned()),
            target: Set(target.to_owned()),
            outcome: Set(outcome.to_owned()),
            detail: Set(detail),
            at: Set(now_ms()),
            worker: Set(Some("migration".to_owned())),
            attempt_started_at: Set(None),
            ..Default::default()
        };
        if let Err(error) = entry.insert(self.store.db()).await {
            tracing::warn!(tenant = %self.tenant_id, %error, "cannot audit a migration write");
        }
    }

    /// The user group with this id, read now.
    async fn group(&self, group_id: &str) -> Result<Maas360Group> {
        let client = self.runtime.client.clone();
        let groups = self
            .call("list_groups", group_id, client.user_groups())
            .await?;
        groups
            .into_iter()
            .find(|group| group.group_identifier == group_id)
            .ok_or_else(|| {
                ProvisionerError::not_found(ErrorReason::Maas360NotFound, "user group", group_id)
            })
    }
}

fn result_detail<T>(result: &std::result::Result<T, Maas360Error>) -> Option<String> {
    result.as_ref().err().map(ToString::to_string)
}

impl Maas360GroupWriteApi {
    async fn writer(&self, tenant: &str, operation_id: &str) -> Result<Writer<'_>> {
        let (tenant_id, runtime) = tenant_runtime(&self.store, &self.reconciler, tenant).await?;
        let operation_id = operation_id.trim();
        Ok(Writer {
            store: &self.store,
            tenant_id,
            runtime,
            operation_id: if operation_id.is_empty() {
                "migration".to_owned()
            } else {
                operation_id.to_owned()
            },
        })
    }
}

fn to_pb(group: &Maas360Group, user_count: u64) -> pb::Maas360UserGroup {
    pb::Maas360UserGroup {
        group_id: group.group_identifier.clone(),
        name: group.name.clone(),
        group_type: group.group_type.clone(),
        user_count,
        app_distributions: distributions(&group.app_distributions),
        policy_distributions: distributions(&group.policy_distributions),
        category: group.category.clone(),
    }
}

fn required(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ProvisionerError::invalid(
            field,
            format!("{field} is required"),
        ));
    }
    Ok(value.to_owned())
}

#[tonic::async_trait]
impl pb::maas360_group_write_service_server::Maas360GroupWriteService for Maas360GroupWriteApi {
    async fn create_maas360_user_group(
        &self,
        request: Request<pb::CreateMaas360UserGroupRequest>,
    ) -> Result<Response<pb::CreateMaas360UserGroupResponse>, Status> {
        let request = request.into_inner();
        let name = required("name", &request.name)?;
        let chars = name.chars().count();
        if chars > MAX_GROUP_NAME_CHARS {
            return Err(ProvisionerError::invalid(
                "name",
                format!("name is longer than {MAX_GROUP_NAME_CHARS} characters ({chars})"),
            )
            .into());
        }
        let writer = self.writer(&request.tenant, &request.operation_id).await?;
        let client = writer.runtime.client.clone();
        let named = |groups: Vec<Maas360Group>| {
            groups
                .into_iter()
                .find(|group| group.name.eq_ignore_ascii_case(&name))
        };
        // Made already (by this operation before a crash, or by anyone): that one is the group.
        let existing = named(
            writer
                .call("list_groups", &name, client.user_groups())
                .await?,
        );
        if let Some(existing) = existing {
            writer
                .audit(
                    "create_user_group",
                    &name,
                    "already_exists",
                    Some(format!(
                        "group {} already exists; not created again",
                        existing.group_identifier
                    )),
                )
                .await;
            return Ok(Response::new(pb::CreateMaas360UserGroupResponse {
                group: Some(to_pb(&existing, 0)),
                created: false,
            }));
        }
        let created = writer
            .call("create_user_group", &name, client.create_user_group(&name))
            .await;
        let (group, created) = match created {
            Ok(id) => (
                Maas360Group {
                    group_identifier: id,
                    name: name.clone(),
                    group_type: client.user_group_type().to_string(),
                    ..Maas360Group::default()
                },
                true,
            ),
            // A lost answer: the group was made after all.
            Err(_) => match named(
                writer
                    .call("list_groups", &name, client.user_groups())
                    .await?,
            ) {
                Some(group) => (group, true),
                None => {
                    return Err(ProvisionerError::refused(
                        ErrorReason::Maas360Unavailable,
                        format!("MaaS360 did not create user group {name:?}; try again"),
                    )
                    .into());
                }
            },
        };
        tracing::info!(tenant = %writer.tenant_id, operation = %writer.operation_id, group = %name, "MaaS360 user group created for a migration");
        Ok(Response::new(pb::CreateMaas360UserGroupResponse {
            group: Some(to_pb(&group, 0)),
            created,
        }))
    }

    async fn add_maas360_group_distribution(
        &self,
        request: Request<pb::AddMaas360GroupDistributionRequest>,
    ) -> Result<Response<pb::AddMaas360GroupDistributionResponse>, Status> {
        let request = request.into_inner();
        let group_id = required("group_id", &request.group_id)?;
        let wanted = request.distribution.unwrap_or_default();
        let distribution = Distribution {
            id: wanted.id.trim().to_owned(),
            name: wanted.name.trim().to_owned(),
            platform: wanted.platform.trim().to_owned(),
            app_type: wanted.app_type.trim().to_owned(),
        };
        let kind = pb::DistributionKind::try_from(request.kind)
            .unwrap_or(pb::DistributionKind::Unspecified);
        match kind {
            pb::DistributionKind::App => {
                required("distribution.id", &distribution.id)?;
                required("distribution.app_type", &distribution.app_type)?;
            }
            pb::DistributionKind::Policy => {
                required("distribution.name", &distribution.name)?;
                // MaaS360 sets a group's policies per policy type, which the list's platform is.
                required("distribution.platform", &distribution.platform)?;
            }
            pb::DistributionKind::Unspecified => {
                return Err(ProvisionerError::invalid(
                    "kind",
                    "kind is DISTRIBUTION_KIND_APP or DISTRIBUTION_KIND_POLICY",
                )
                .into());
            }
        }
        let writer = self.writer(&request.tenant, &request.operation_id).await?;
        let group = writer.group(&group_id).await?;
        let client = writer.runtime.client.clone();
        let added = match kind {
            pb::DistributionKind::App => {
                if group
                    .app_distributions
                    .iter()
                    .any(|app| app.id == distribution.id)
                {
                    false
                } else {
                    writer
                        .call(
                            "distribute_app",
                            &group.name,
                            client.distribute_app_to_group(&group_id, &distribution),
                        )
                        .await?;
                    true
                }
            }
            _ => {
                let mut names: Vec<String> = group
                    .policy_distributions
                    .iter()
                    .filter(|policy| policy.platform == distribution.platform)
                    .map(|policy| policy.name.clone())
                    .collect();
                if names
                    .iter()
                    .any(|name| name.eq_ignore_ascii_case(&distribution.name))
                {
                    false
                } else {
                    // changeGroupPolicy sets the type's whole list: keep what the group has.
                    names.push(distribution.name.clone());
                    writer
                        .call(
                            "change_group_policy",
                            &group.name,
                            client.set_group_policies(&group_id, &distribution.platform, &names),
                        )
                        .await?;
                    true
                }
            }
        };
        if !added {
            writer
                .audit(
                    if kind == pb::DistributionKind::App {
                        "distribute_app"
                    } else {
                        "change_group_policy"
                    },
                    &group.name,
                    "already_exists",
                    Some(format!(
                        "{} {:?} is already on the group",
                        kind.as_str_name(),
                        distribution.name
                    )),
                )
                .await;
        }
        Ok(Response::new(pb::AddMaas360GroupDistributionResponse {
            added,
        }))
    }

    async fn remove_maas360_group_users(
        &self,
        request: Request<pb::RemoveMaas360GroupUsersRequest>,
    ) -> Result<Response<pb::RemoveMaas360GroupUsersResponse>, Status> {
        let request = request.into_inner();
        let group_id = required("group_id", &request.group_id)?;
        if request.user_ids.len() > MAX_USERS_PER_REQUEST {
            return Err(ProvisionerError::invalid(
                "user_ids",
                format!(
                    "at most {MAX_USERS_PER_REQUEST} users a request ({} given)",
                    request.user_ids.len()
                ),
            )
            .into());
        }
        let wanted: BTreeSet<String> = request
            .user_ids
            .iter()
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .collect();
        let writer = self.writer(&request.tenant, &request.operation_id).await?;
        let client = writer.runtime.client.clone();
        // Who is in the group now: only they are removed, so a repeated request removes nobody.
        let mut members = BTreeSet::new();
        for page_number in 1..=MAX_MEMBER_PAGES {
            let page = writer
                .call(
                    "users_in_group",
                    &group_id,
                    client.users_in_group(&group_id, page_number, MEMBER_PAGE),
                )
                .await?;
            let more = page.has_more() && !page.items.is_empty();
            members.extend(page.items.into_iter().map(|user| user.user_identifier));
            if !more {
                break;
            }
        }
        let mut removed = 0u32;
        for user_id in wanted.intersection(&members) {
            match writer
                .call(
                    "remove_groups_from_user",
                    user_id,
                    client.remove_user_from_groups(user_id, std::slice::from_ref(&group_id)),
                )
                .await
            {
                Ok(()) => removed += 1,
                // Gone meanwhile: nothing to remove.
                Err(ProvisionerError::Refused(error))
                    if error.reason() == ErrorReason::Maas360NotFound => {}
                Err(error) => return Err(error.into()),
            }
        }
        tracing::info!(tenant = %writer.tenant_id, operation = %writer.operation_id, group = %group_id, removed, "members removed from a MaaS360 group for a migration");
        Ok(Response::new(pb::RemoveMaas360GroupUsersResponse {
            removed,
        }))
    }
}
