//! Reconciling one resource: read what Entra wants and what MaaS360 last
//! confirmed, make the fewest calls that close the gap, record the outcome.
//!
//! Group membership lives on the user: MaaS360 adds and removes groups per
//! user, several groups in one call, so a user's reconcile carries its
//! memberships and a group's reconcile only creates or deletes the group.

use std::collections::BTreeSet;
use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::{Deserialize, Serialize};

use super::TenantRuntime;
use super::backend::BackendError;
use super::identity::{self, Identity};
use super::queue::{self, AuditEntry, Lease};
use crate::entity::{group, group_member, sync_state, user};
use crate::error::Result;
use crate::store::{Kind, Store, now_ms};

/// What MaaS360 last confirmed for a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedUser {
    pub(crate) identity: Identity,
    pub(crate) active: bool,
    /// dirsync group ids the user belongs to in MaaS360.
    pub(crate) groups: BTreeSet<String>,
}

/// What MaaS360 last confirmed for a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedGroup {
    pub(crate) name: String,
}

/// How one reconcile ended, for the caller to record.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done,
    /// Waiting for something else to reach MaaS360 first.
    Deferred,
    Failed(BackendError),
}

/// Settings of the reconcile loop that shape one attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttemptSettings {
    pub(crate) lease: Duration,
    pub(crate) dependency_delay: Duration,
}

/// Tracks one resource's state through its calls, saving after each write.
struct Progress<'a> {
    store: &'a Store,
    lease: &'a Lease,
    settings: AttemptSettings,
    maas360_id: Option<String>,
    applied: Option<String>,
    audit: Vec<AuditEntry>,
}

impl Progress<'_> {
    fn record(&mut self, action: &'static str, target: &str, result: &Result<(), BackendError>) {
        let (outcome, detail) = match result {
            Ok(()) => ("ok", None),
            Err(BackendError::Retryable { detail, .. }) => ("retryable", Some(detail.clone())),
            Err(BackendError::AlreadyExists(detail)) => ("already_exists", Some(detail.clone())),
            Err(BackendError::NotFound(detail)) => ("not_found", Some(detail.clone())),
            Err(BackendError::Permanent(detail)) => ("permanent", Some(detail.clone())),
        };
        self.audit.push(AuditEntry {
            action,
            target: target.to_owned(),
            outcome,
            detail,
            at: now_ms(),
        });
    }

    async fn save(&mut self) -> Result<()> {
        let audit = std::mem::take(&mut self.audit);
        queue::save_progress(
            self.store,
            self.lease,
            self.maas360_id.as_deref(),
            self.applied.as_deref(),
            &audit,
            self.settings.lease,
        )
        .await?;
        Ok(())
    }

    async fn finish(
        mut self,
        outcome: Outcome,
        runtime: &TenantRuntime,
        max_attempts: u32,
    ) -> Result<()> {
        let audit = std::mem::take(&mut self.audit);
        let applied = queue::Applied {
            maas360_id: self.maas360_id.as_deref(),
            json: self.applied.as_deref(),
        };
        match outcome {
            Outcome::Done => queue::succeed(self.store, self.lease, applied, &audit).await,
            Outcome::Deferred => {
                queue::defer(
                    self.store,
                    self.lease,
                    applied,
                    self.settings.dependency_delay,
                    &audit,
                )
                .await
            }
            Outcome::Failed(error) => {
                let attempts = u32::try_from(self.lease.row.attempts).unwrap_or(0) + 1;
                let (park, retry_at, reason) = match &error {
                    BackendError::Retryable {
                        detail,
                        retry_after,
                    } => {
                        if let Some(wait) = retry_after {
                            runtime.limiter.pause(*wait).await;
                        }
                        let backoff = runtime
                            .backoff(attempts)
                            .max(retry_after.unwrap_or_default());
                        let at =
                            now_ms() + i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX / 2);
                        (
                            attempts >= max_attempts,
                            at,
                            format!("{detail} (attempt {attempts} of {max_attempts})"),
                        )
                    }
                    other => (true, now_ms(), other.to_string()),
                };
                if park {
                    tracing::warn!(
                        tenant = %self.lease.row.tenant_id, kind = %self.lease.row.kind,
                        resource = %self.lease.row.resource_id, %reason, "resource parked"
                    );
                }
                let failure = queue::Failure {
                    reason: &reason,
                    park,
                    retry_at,
                };
                queue::fail(self.store, self.lease, applied, failure, &audit).await
            }
        }
    }
}

/// After a delete: MaaS360 no longer holds the resource (a 404 means it was
/// already gone), so nothing is applied any more.
fn forget_if_gone(progress: &mut Progress<'_>, deleted: Result<(), BackendError>) -> Outcome {
    match deleted {
        Ok(()) | Err(BackendError::NotFound(_)) => {
            progress.maas360_id = None;
            progress.applied = None;
            Outcome::Done
        }
        Err(error) => Outcome::Failed(error),
    }
}

/// Runs one call through the tenant's rate limiter and records it.
async fn call<T>(
    runtime: &TenantRuntime,
    progress: &mut Progress<'_>,
    action: &'static str,
    target: &str,
    future: impl std::future::Future<Output = Result<T, BackendError>>,
) -> Result<T, BackendError> {
    runtime.limiter.acquire().await;
    let result = future.await;
    progress.record(
        action,
        target,
        &result.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    result
}

pub(crate) async fn reconcile(
    store: &Store,
    lease: &Lease,
    runtime: &TenantRuntime,
    settings: AttemptSettings,
    max_attempts: u32,
) -> Result<()> {
    let mut progress = Progress {
        store,
        lease,
        settings,
        maas360_id: lease.row.maas360_id.clone(),
        applied: lease.row.applied_json.clone(),
        audit: Vec::new(),
    };
    let outcome = if lease.row.kind == Kind::User.as_str() {
        reconcile_user(store, lease, runtime, &mut progress).await?
    } else {
        reconcile_group(store, lease, runtime, &mut progress).await?
    };
    progress.finish(outcome, runtime, max_attempts).await
}

async fn reconcile_user(
    store: &Store,
    lease: &Lease,
    runtime: &TenantRuntime,
    progress: &mut Progress<'_>,
) -> Result<Outcome> {
    let backend = runtime.backend.as_ref();
    let tenant_id = &lease.row.tenant_id;
    let user_id = &lease.row.resource_id;
    let desired = user::Entity::find_by_id((tenant_id.clone(), user_id.clone()))
        .one(store.db())
        .await?;
    let mut applied: Option<AppliedUser> = progress
        .applied
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok());

    let Some(desired) = desired else {
        // Deleted in Entra: delete (or only deactivate) per tenant policy.
        let Some(id) = progress.maas360_id.clone() else {
            return Ok(Outcome::Done);
        };
        let target = applied.as_ref().map_or_else(
            || id.clone(),
            |a| format!("{}@{}", a.identity.user_name, a.identity.domain),
        );
        if runtime.policy.delete_on_delete {
            let deleted = call(
                runtime,
                progress,
                "delete_user",
                &target,
                backend.delete_user(&id),
            )
            .await;
            return Ok(forget_if_gone(progress, deleted));
        }
        if applied.as_ref().is_some_and(|a| a.active)
            && let Err(error) = call(
                runtime,
                progress,
                "deactivate_user",
                &target,
                backend.deactivate_user(&id),
            )
            .await
        {
            return Ok(Outcome::Failed(error));
        }
        progress.maas360_id = None;
        progress.applied = None;
        return Ok(Outcome::Done);
    };

    let identity = match identity::derive(
        &desired.user_name,
        desired.email.as_deref(),
        desired.display_name.as_deref(),
        desired.given_name.as_deref(),
        desired.family_name.as_deref(),
        runtime.policy.username_mapping,
    ) {
        Ok(identity) => identity,
        Err(error) => return Ok(Outcome::Failed(BackendError::Permanent(error.0))),
    };
    let target = format!("{}@{}", identity.user_name, identity.domain);

    // Create or adopt: a user MaaS360 already has under this username and
    // domain is linked, never duplicated (also after a lost response).
    let id = match progress.maas360_id.clone() {
        Some(id) => id,
        None => {
            // Add first: the common case costs one call. A user MaaS360
            // already has (made by hand, or by us before a lost response)
            // answers "already exists" and is adopted instead.
            let added = call(
                runtime,
                progress,
                "add_user",
                &target,
                backend.add_user(&identity),
            )
            .await;
            let (id, state) = match added {
                Ok(id) => (
                    id,
                    AppliedUser {
                        identity: identity.clone(),
                        active: true,
                        groups: BTreeSet::new(),
                    },
                ),
                Err(BackendError::AlreadyExists(_)) => {
                    let found = call(
                        runtime,
                        progress,
                        "find_user",
                        &target,
                        backend.find_user(&identity.user_name, &identity.domain),
                    )
                    .await;
                    match found {
                        Ok(Some(remote)) => (
                            remote.id.clone(),
                            AppliedUser {
                                identity: remote.identity,
                                active: remote.active,
                                groups: BTreeSet::new(),
                            },
                        ),
                        Ok(None) => {
                            return Ok(Outcome::Failed(BackendError::Retryable {
                                detail: format!(
                                    "MaaS360 says {target} exists but does not find it"
                                ),
                                retry_after: None,
                            }));
                        }
                        Err(error) => return Ok(Outcome::Failed(error)),
                    }
                }
                Err(error) => return Ok(Outcome::Failed(error)),
            };
            progress.maas360_id = Some(id.clone());
            applied = Some(state);
            progress.applied = applied.as_ref().and_then(|a| serde_json::to_string(a).ok());
            progress.save().await?;
            id
        }
    };
    let mut state = applied.unwrap_or(AppliedUser {
        identity: identity.clone(),
        active: true,
        groups: BTreeSet::new(),
    });

    if state.identity != identity {
        let result = call(
            runtime,
            progress,
            "edit_user",
            &target,
            backend.edit_user(&id, &state.identity, &identity),
        )
        .await;
        match result {
            Ok(()) => {
                state.identity = identity.clone();
                save_user(progress, &state).await?;
            }
            Err(error) => return Ok(Outcome::Failed(error)),
        }
    }

    // With deactivation off, an inactive Entra user stays active in MaaS360.
    let want_active = desired.active || !runtime.policy.deactivate_on_disable;
    if want_active != state.active {
        let result = if want_active {
            call(
                runtime,
                progress,
                "reactivate_user",
                &target,
                backend.reactivate_user(&id),
            )
            .await
        } else {
            call(
                runtime,
                progress,
                "deactivate_user",
                &target,
                backend.deactivate_user(&id),
            )
            .await
        };
        match result {
            Ok(()) => {
                state.active = want_active;
                save_user(progress, &state).await?;
            }
            Err(error) => return Ok(Outcome::Failed(error)),
        }
    }

    // Memberships.
    let desired_groups: BTreeSet<String> = group_member::Entity::find()
        .select_only()
        .column(group_member::Column::GroupId)
        .filter(group_member::Column::TenantId.eq(tenant_id.clone()))
        .filter(group_member::Column::UserId.eq(user_id.clone()))
        .into_tuple::<String>()
        .all(store.db())
        .await?
        .into_iter()
        .collect();
    let involved: Vec<String> = desired_groups.union(&state.groups).cloned().collect();
    let group_ids = group_maas360_ids(store, tenant_id, &involved).await?;

    let mut waiting = false;
    let mut to_add = Vec::new();
    let mut added = Vec::new();
    for group in desired_groups.difference(&state.groups) {
        match group_ids.get(group) {
            Some(maas360_id) => {
                to_add.push(maas360_id.clone());
                added.push(group.clone());
            }
            None => waiting = true,
        }
    }
    if !to_add.is_empty() {
        match call(
            runtime,
            progress,
            "add_user_to_groups",
            &target,
            backend.add_user_to_groups(&id, &to_add),
        )
        .await
        {
            Ok(()) => {
                state.groups.extend(added);
                save_user(progress, &state).await?;
            }
            Err(error) => return Ok(Outcome::Failed(error)),
        }
    }
    let leaving: Vec<String> = state.groups.difference(&desired_groups).cloned().collect();
    let to_remove: Vec<String> = leaving
        .iter()
        .filter_map(|group| group_ids.get(group).cloned())
        .collect();
    if !to_remove.is_empty() {
        match call(
            runtime,
            progress,
            "remove_user_from_groups",
            &target,
            backend.remove_user_from_groups(&id, &to_remove),
        )
        .await
        {
            Ok(()) | Err(BackendError::NotFound(_)) => {}
            Err(error) => return Ok(Outcome::Failed(error)),
        }
    }
    if !leaving.is_empty() {
        // Groups already gone from MaaS360 took their memberships with them.
        for group in &leaving {
            state.groups.remove(group);
        }
        save_user(progress, &state).await?;
    }
    Ok(if waiting {
        Outcome::Deferred
    } else {
        Outcome::Done
    })
}

async fn save_user(progress: &mut Progress<'_>, state: &AppliedUser) -> Result<()> {
    progress.applied = serde_json::to_string(state).ok();
    progress.save().await
}

/// MaaS360 ids of the given dirsync groups, for those MaaS360 has.
async fn group_maas360_ids(
    store: &Store,
    tenant_id: &str,
    groups: &[String],
) -> Result<std::collections::HashMap<String, String>> {
    let mut ids = std::collections::HashMap::new();
    for chunk in groups.chunks(500) {
        let rows: Vec<(String, Option<String>)> = sync_state::Entity::find()
            .select_only()
            .column(sync_state::Column::ResourceId)
            .column(sync_state::Column::Maas360Id)
            .filter(sync_state::Column::TenantId.eq(tenant_id))
            .filter(sync_state::Column::Kind.eq(Kind::Group.as_str()))
            .filter(sync_state::Column::ResourceId.is_in(chunk.to_vec()))
            .into_tuple()
            .all(store.db())
            .await?;
        ids.extend(
            rows.into_iter()
                .filter_map(|(group, id)| id.map(|id| (group, id))),
        );
    }
    Ok(ids)
}

async fn reconcile_group(
    store: &Store,
    lease: &Lease,
    runtime: &TenantRuntime,
    progress: &mut Progress<'_>,
) -> Result<Outcome> {
    let backend = runtime.backend.as_ref();
    let desired =
        group::Entity::find_by_id((lease.row.tenant_id.clone(), lease.row.resource_id.clone()))
            .one(store.db())
            .await?;
    let applied: Option<AppliedGroup> = progress
        .applied
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok());

    let Some(desired) = desired else {
        let Some(id) = progress.maas360_id.clone() else {
            return Ok(Outcome::Done);
        };
        let name = applied.map_or_else(|| id.clone(), |a| a.name);
        let deleted = call(
            runtime,
            progress,
            "delete_group",
            &name,
            backend.delete_group(&id),
        )
        .await;
        return Ok(forget_if_gone(progress, deleted));
    };

    let name = desired.display_name;
    if progress.maas360_id.is_none() {
        // Create or adopt by name (Option 2: an Entra group becomes a
        // MaaS360 user group of the same name).
        let id = match call(
            runtime,
            progress,
            "create_group",
            &name,
            backend.create_group(&name),
        )
        .await
        {
            Ok(id) => id,
            Err(BackendError::AlreadyExists(_)) => match call(
                runtime,
                progress,
                "find_group",
                &name,
                backend.find_group(&name),
            )
            .await
            {
                Ok(Some(id)) => id,
                Ok(None) => {
                    return Ok(Outcome::Failed(BackendError::Retryable {
                        detail: format!("MaaS360 says group {name:?} exists but does not list it"),
                        retry_after: None,
                    }));
                }
                Err(error) => return Ok(Outcome::Failed(error)),
            },
            Err(error) => return Ok(Outcome::Failed(error)),
        };
        progress.maas360_id = Some(id);
        progress.applied = serde_json::to_string(&AppliedGroup { name: name.clone() }).ok();
        return Ok(Outcome::Done);
    }
    if applied.as_ref().is_some_and(|a| a.name != name) {
        let old = applied.map(|a| a.name).unwrap_or_default();
        // Renamed in the portal since (the operator's fix, then a retry)?
        match call(
            runtime,
            progress,
            "find_group",
            &name,
            backend.find_group(&name),
        )
        .await
        {
            Ok(Some(found)) if Some(&found) == progress.maas360_id.as_ref() => {
                progress.applied = serde_json::to_string(&AppliedGroup { name }).ok();
                return Ok(Outcome::Done);
            }
            Ok(_) => {}
            Err(error) => return Ok(Outcome::Failed(error)),
        }
        // MaaS360's web services cannot rename a user group, and deleting
        // and recreating it would drop the app and policy distributions
        // attached to it: an operator renames it in the portal.
        return Ok(Outcome::Failed(BackendError::Permanent(format!(
            "Entra renamed the group {old:?} to {name:?}; MaaS360's API cannot rename user groups. \
             Rename it in the MaaS360 portal, then retry this resource"
        ))));
    }
    Ok(Outcome::Done)
}
