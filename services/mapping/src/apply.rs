//! Carrying out a reviewed plan: the steps it takes, in order, and the runner that takes them.
//!
//! An operation is a row holding the plan it carries out and how many of its steps are done.
//! Whoever holds its lease takes the next step; every step is idempotent (the provisioner's
//! group writes find what an earlier attempt did), so a step interrupted by a crash is simply
//! taken again. A runner in every process picks up running operations nobody holds: the one
//! ApplyMigration just created, and those whose holder stopped (its lease given back) or died
//! (its lease ran out). A transient failure (a service away, MaaS360 throttling) is retried
//! with capped backoff for as long as it takes; a permanent one fails the operation and its
//! mappings, and a new plan and apply retry them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dirsync_proto::mapping::v1 as pb;
use dirsync_proto::provisioner::v1 as provisioner;

use crate::Service;
use crate::entity::operation;
use crate::error::{MappingError, Result};
use crate::model::decode_plan;
use crate::store::now_ms;

/// A lease lasts this long without renewal: longer than any one call's deadline.
const LEASE: Duration = Duration::from_secs(90);
/// How often a runner looks for operations nobody holds, besides being woken.
const POLL: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn lease_until() -> i64 {
    now_ms() + i64::try_from(LEASE.as_millis()).unwrap_or(90_000)
}

/// One MaaS360 write or binding of an operation.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// Create the copy (or find the one an earlier attempt created).
    CreateCopy(&'a pb::GroupPlan),
    /// Put one of the old group's distributions on the copy, before any member joins it.
    Distribute(&'a pb::GroupPlan, &'a pb::Distribution),
    /// Take the leaving members out of the adopted group.
    Prune(&'a pb::GroupPlan),
    /// From now on the Entra group writes to its target.
    Bind(&'a pb::GroupPlan),
    /// Ask the provisioner to retry the groups it parked or held for these mappings.
    RetryParked(Vec<String>),
}

/// The plan's steps, in the order they are taken.
pub(crate) fn steps(plan: &pb::MigrationPlan) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    for group in &plan.groups {
        if group.mode == pb::MappingMode::Copy as i32 {
            steps.push(Step::CreateCopy(group));
            steps.extend(
                group
                    .distributions
                    .iter()
                    .map(|distribution| Step::Distribute(group, distribution)),
            );
        } else if group
            .leaving
            .iter()
            .any(|member| !member.maas360_user_id.is_empty())
        {
            steps.push(Step::Prune(group));
        }
        steps.push(Step::Bind(group));
    }
    if !plan.groups.is_empty() {
        steps.push(Step::RetryParked(
            plan.groups
                .iter()
                .map(|group| group.entra_group_id.clone())
                .collect(),
        ));
    }
    steps
}

/// Runs operations until `shutdown`.
pub(crate) async fn run(service: Arc<Service>, shutdown: impl Future<Output = ()> + Send) {
    let owner = format!("mapping-{}", uuid::Uuid::new_v4().simple());
    tokio::pin!(shutdown);
    loop {
        match service.store.orphaned_operations(now_ms()).await {
            Ok(operations) => {
                for operation_id in operations {
                    match service
                        .store
                        .claim(&operation_id, &owner, now_ms(), lease_until())
                        .await
                    {
                        Ok(true) => {
                            let stopped = Runner {
                                service: &service,
                                owner: &owner,
                            }
                            .carry_out(&operation_id, shutdown.as_mut())
                            .await;
                            if stopped {
                                if let Err(error) =
                                    service.store.release(&operation_id, &owner).await
                                {
                                    tracing::warn!(%error, operation_id, "could not give the operation's lease back");
                                }
                                return;
                            }
                        }
                        Ok(false) => {}
                        Err(error) => {
                            tracing::warn!(%error, operation_id, "could not claim a migration operation");
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "could not look for migration operations"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = service.wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

struct Runner<'a> {
    service: &'a Service,
    owner: &'a str,
}

impl Runner<'_> {
    /// Takes the operation's remaining steps; true when `shutdown` stopped it halfway.
    async fn carry_out(
        &self,
        operation_id: &str,
        mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        let row = match self.service.store.operation_row(operation_id).await {
            Ok(Some(row)) => row,
            Ok(None) => return false,
            Err(error) => {
                tracing::warn!(%error, operation_id, "could not read the migration operation");
                return false;
            }
        };
        let plan = match decode_plan(&row) {
            Ok(plan) => plan,
            Err(error) => {
                self.finish(&row, Some(&error.to_string())).await;
                return false;
            }
        };
        let steps = steps(&plan);
        let first = usize::try_from(row.steps_done).unwrap_or(0);
        tracing::info!(operation_id, tenant_id = %row.tenant_id, plan_id = %row.plan_id, done = first, total = steps.len(), "carrying out a migration");
        for (index, step) in steps.iter().enumerate().skip(first) {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let outcome = tokio::select! {
                    () = &mut shutdown => return true,
                    outcome = self.take(&row, step) => outcome,
                };
                match outcome {
                    Ok(()) => break,
                    Err(error) if error.is_transient() => {
                        let message = dirsync_proto::errors::bounded(&error.to_string());
                        tracing::warn!(operation_id, step = index, error = %message, wait = ?backoff, "migration step failed; retrying");
                        if let Err(error) = self
                            .service
                            .store
                            .note_retry(operation_id, self.owner, &message, lease_until())
                            .await
                        {
                            tracing::warn!(%error, operation_id, "could not note the retry");
                        }
                        tokio::select! {
                            () = &mut shutdown => return true,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    Err(error) => {
                        let message = format!(
                            "step {} of {}: {}",
                            index + 1,
                            steps.len(),
                            dirsync_proto::errors::bounded(&error.to_string())
                        );
                        tracing::warn!(operation_id, error = %message, "migration failed");
                        self.finish(&row, Some(&message)).await;
                        return false;
                    }
                }
            }
            let done = i32::try_from(index + 1).unwrap_or(i32::MAX);
            match self
                .service
                .store
                .progress(operation_id, self.owner, done, lease_until())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        operation_id,
                        "lost the migration operation's lease; another process carries it on"
                    );
                    return false;
                }
                Err(error) => {
                    // The step is idempotent: whoever resumes takes it again.
                    tracing::warn!(%error, operation_id, "could not record migration progress");
                    return false;
                }
            }
        }
        self.finish(&row, None).await;
        tracing::info!(operation_id, "migration applied");
        false
    }

    async fn finish(&self, row: &operation::Model, failure: Option<&str>) {
        if let Err(error) = self.service.store.finish(row, self.owner, failure).await {
            tracing::warn!(%error, operation_id = %row.operation_id, "could not record the end of a migration");
        }
    }

    async fn take(&self, row: &operation::Model, step: &Step<'_>) -> Result<()> {
        let tenant_id = row.tenant_id.as_str();
        let operation_id = row.operation_id.as_str();
        let upstream = &self.service.upstream;
        match step {
            Step::CreateCopy(group) => {
                self.create_copy(tenant_id, operation_id, group).await?;
            }
            Step::Distribute(group, distribution) => {
                let (target_id, _) = self.copy_target(tenant_id, operation_id, group).await?;
                upstream
                    .add_distribution(provisioner::AddMaas360GroupDistributionRequest {
                        tenant: tenant_id.to_owned(),
                        group_id: target_id,
                        kind: if distribution.kind == pb::DistributionKind::Policy as i32 {
                            provisioner::DistributionKind::Policy
                        } else {
                            provisioner::DistributionKind::App
                        } as i32,
                        distribution: Some(provisioner::Distribution {
                            id: distribution.id.clone(),
                            name: distribution.name.clone(),
                            platform: distribution.platform.clone(),
                            app_type: distribution.app_type.clone(),
                        }),
                        operation_id: operation_id.to_owned(),
                    })
                    .await?;
            }
            Step::Prune(group) => {
                let user_ids = group
                    .leaving
                    .iter()
                    .filter(|member| !member.maas360_user_id.is_empty())
                    .map(|member| member.maas360_user_id.clone())
                    .collect();
                upstream
                    .remove_group_users(tenant_id, &group.maas360_group_id, user_ids, operation_id)
                    .await?;
            }
            Step::Bind(group) => {
                let (target_id, target_name) = if group.mode == pb::MappingMode::Copy as i32 {
                    self.copy_target(tenant_id, operation_id, group).await?
                } else {
                    (
                        group.maas360_group_id.clone(),
                        group.maas360_group_name.clone(),
                    )
                };
                self.service
                    .store
                    .bind(tenant_id, &group.mapping_id, &target_id, &target_name)
                    .await?;
            }
            Step::RetryParked(entra_ids) => {
                let requeued = upstream.retry_parked(tenant_id, entra_ids.clone()).await?;
                tracing::info!(
                    operation_id,
                    requeued,
                    "parked groups of the applied mappings requeued"
                );
            }
        }
        Ok(())
    }

    async fn create_copy(
        &self,
        tenant_id: &str,
        operation_id: &str,
        group: &pb::GroupPlan,
    ) -> Result<(String, String)> {
        let created = self
            .service
            .upstream
            .create_group(tenant_id, &group.target_group_name, operation_id)
            .await?;
        if created.group_id.is_empty() {
            return Err(MappingError::internal(format!(
                "MaaS360 gave no groupID for the copy {}",
                crate::error::quoted(&group.target_group_name)
            )));
        }
        self.service
            .store
            .set_target(
                tenant_id,
                &group.mapping_id,
                &created.group_id,
                &created.name,
            )
            .await?;
        Ok((created.group_id, created.name))
    }

    /// The copy's group, as the create step recorded it (created again, idempotently, if the
    /// record is missing).
    async fn copy_target(
        &self,
        tenant_id: &str,
        operation_id: &str,
        group: &pb::GroupPlan,
    ) -> Result<(String, String)> {
        if let Some(mapping) = self
            .service
            .store
            .mapping(tenant_id, &group.mapping_id)
            .await?
            && !mapping.target_group_id.is_empty()
        {
            return Ok((mapping.target_group_id, mapping.target_group_name));
        }
        self.create_copy(tenant_id, operation_id, group).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> pb::PlannedMember {
        pb::PlannedMember {
            user: format!("{id}@contoso.example"),
            maas360_user_id: id.to_owned(),
            entra_user_id: String::new(),
        }
    }

    #[test]
    fn a_copy_gets_its_distributions_before_it_is_bound_and_parked_groups_come_last() {
        let plan = pb::MigrationPlan {
            groups: vec![
                pb::GroupPlan {
                    mapping_id: "copy".to_owned(),
                    mode: pb::MappingMode::Copy as i32,
                    distributions: vec![pb::Distribution::default(), pb::Distribution::default()],
                    ..Default::default()
                },
                pb::GroupPlan {
                    mapping_id: "adopt".to_owned(),
                    mode: pb::MappingMode::Adopt as i32,
                    prune: true,
                    leaving: vec![member("u1")],
                    ..Default::default()
                },
                pb::GroupPlan {
                    mapping_id: "quiet".to_owned(),
                    mode: pb::MappingMode::Adopt as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let names: Vec<String> = steps(&plan)
            .iter()
            .map(|step| match step {
                Step::CreateCopy(g) => format!("create {}", g.mapping_id),
                Step::Distribute(g, _) => format!("distribute {}", g.mapping_id),
                Step::Prune(g) => format!("prune {}", g.mapping_id),
                Step::Bind(g) => format!("bind {}", g.mapping_id),
                Step::RetryParked(ids) => format!("retry {}", ids.len()),
            })
            .collect();
        assert_eq!(
            names,
            [
                "create copy",
                "distribute copy",
                "distribute copy",
                "bind copy",
                "prune adopt",
                "bind adopt",
                "bind quiet",
                "retry 3"
            ]
        );
        assert!(steps(&pb::MigrationPlan::default()).is_empty());
    }
}
