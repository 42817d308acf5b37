//! Reconciling one resource: read what Entra wants and what MaaS360 last
//! confirmed, make the fewest calls that close the gap, record the outcome.
//!
//! Group membership lives on the user: MaaS360 adds and removes groups per
//! user, several groups in one call, so a user's reconcile carries its
//! memberships and a group's reconcile only creates or deletes the group.
//!
//! A user's attempt is a few named steps (remove, create or adopt, identity,
//! active flag, memberships); each returns early with `?` when MaaS360 refuses
//! or fails, and the attempt records what happened once, at its end.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::TenantRuntime;
use super::backend::{BackendError, RemoteGroup};
use super::identity::{self, Identity};
use super::mapping::{MappingResolver, Resolution, name_key};
use super::queue::{self, AuditEntry, Lease, QueueWriter};
use crate::entity::{ResourceKind, group, group_member, sync_state, user};
use crate::error::{ProvisionerError, Result};
use crate::store::{Store, now_ms};

/// What MaaS360 last confirmed for a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedUser {
    pub(crate) identity: Identity,
    pub(crate) active: bool,
    /// dirsync group ids the user belongs to in MaaS360.
    pub(crate) groups: BTreeSet<String>,
    /// Groups a membership call was sent for without an answer that it was applied (MaaS360
    /// failed, or the attempt ended, after sending it): MaaS360 may or may not hold the user in
    /// them. Each is added again if Entra still wants it, else removed (adding a member twice
    /// and removing a non-member are harmless); trusting either guess would leave a member
    /// MaaS360 holds and Entra no longer wants, or the reverse, once the queue settles.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub(crate) uncertain: BTreeSet<String>,
}

/// What MaaS360 last confirmed for a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedGroup {
    /// The MaaS360 group's name.
    pub(crate) name: String,
    /// The Option 1 mapping the group was bound through: its MaaS360 name may differ from
    /// Entra's, and Entra's renames are not followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mapping_id: Option<String>,
    /// The MaaS360 group was there before dirsync linked it (adopted by name, or through a
    /// mapping): it is never deleted because Entra deleted its group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) adopted: bool,
}

impl AppliedGroup {
    /// A group dirsync created under `name`.
    fn created(name: String) -> Self {
        Self {
            name,
            mapping_id: None,
            adopted: false,
        }
    }
}

/// What the store knows of a user's MaaS360 side between attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum UserRecord {
    Applied(AppliedUser),
    /// An add went out and its answer was never recorded (a lost response, a crash): MaaS360
    /// may hold the user under this identity, so nothing may be assumed absent.
    PendingAdd {
        pending_add: Identity,
    },
}

/// What the store knows of a group's MaaS360 side between attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum GroupRecord {
    Applied(AppliedGroup),
    /// A create went out under this name and its answer was never recorded.
    PendingCreate {
        pending_create: String,
    },
}

/// How an attempt that ran to its end left the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    /// Waiting for something else to reach MaaS360 first (a group the user joins).
    Deferred,
}

/// Why an attempt stopped early.
#[derive(Debug)]
enum Stop {
    /// MaaS360 failed or refused a call: recorded as the attempt's outcome.
    Backend(BackendError),
    /// The store failed: nothing can be recorded. The lease runs out and the
    /// resource is taken again; what MaaS360 already confirmed was saved.
    Store(ProvisionerError),
}

impl From<BackendError> for Stop {
    fn from(error: BackendError) -> Self {
        Self::Backend(error)
    }
}

impl From<ProvisionerError> for Stop {
    fn from(error: ProvisionerError) -> Self {
        Self::Store(error)
    }
}

impl From<sea_orm::DbErr> for Stop {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Store(error.into())
    }
}

type Step<T> = std::result::Result<T, Stop>;

/// Settings of the reconcile loop that shape one attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttemptSettings {
    pub(crate) lease: Duration,
    pub(crate) dependency_delay: Duration,
}

/// One attempt on one leased resource: every MaaS360 call goes through it (breaker, rate
/// limit, audit). What MaaS360 confirmed is written before each call that is not idempotent
/// (a create), so a crash or a lost answer never repeats it; the rest is written once, with
/// the attempt's outcome.
struct Attempt<'a> {
    store: &'a Store,
    writer: &'a QueueWriter,
    lease: &'a Lease,
    runtime: &'a TenantRuntime,
    resolver: &'a MappingResolver,
    settings: AttemptSettings,
    maas360_id: Option<String>,
    /// What MaaS360 confirmed, as stored.
    applied_json: Option<String>,
    audit: Vec<AuditEntry>,
    /// Whether any call of this attempt succeeded: a failure after progress restarts the
    /// attempt count, so a resource that keeps advancing never backs off to the cap.
    advanced: bool,
    /// When the lease was last taken or renewed.
    lease_renewed_at: tokio::time::Instant,
}

impl<'a> Attempt<'a> {
    fn new(
        store: &'a Store,
        writer: &'a QueueWriter,
        lease: &'a Lease,
        runtime: &'a TenantRuntime,
        resolver: &'a MappingResolver,
        settings: AttemptSettings,
    ) -> Self {
        Self {
            store,
            writer,
            lease,
            runtime,
            resolver,
            settings,
            maas360_id: lease.row.maas360_id.clone(),
            applied_json: lease.row.applied_json.clone(),
            audit: Vec::new(),
            advanced: false,
            lease_renewed_at: tokio::time::Instant::now(),
        }
    }

    /// What MaaS360 last confirmed, typed. Unreadable state (written by another version, or
    /// damaged) is reported and treated as unknown: the steps then read MaaS360 again rather
    /// than trust a guess.
    fn applied<T: DeserializeOwned>(&self) -> Option<T> {
        let json = self.applied_json.as_deref()?;
        match serde_json::from_str(json) {
            Ok(state) => Some(state),
            Err(error) => {
                tracing::warn!(
                    tenant = %self.lease.row.tenant_id, resource = %self.lease.row.resource_id,
                    %error, "stored MaaS360 state is unreadable; reading MaaS360 again"
                );
                None
            }
        }
    }

    /// Makes one MaaS360 call: refused at once while the tenant's breaker is open, paced by
    /// the tenant's rate limiter, fed to the breaker, and audited.
    async fn call<T>(
        &mut self,
        route: &'static str,
        target: &str,
        call: impl std::future::Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        if let super::breaker::Gate::Open { next_probe } = self.runtime.breaker.gate() {
            return Err(BackendError::CircuitOpen { next_probe });
        }
        self.runtime.limiter.acquire().await;
        let result = call.await;
        self.runtime.honour_rate_limit().await;
        let tenant_id = &self.lease.row.tenant_id;
        match &result {
            Err(BackendError::Unavailable(detail)) => {
                self.runtime
                    .report_failure(self.store, tenant_id, detail)
                    .await;
            }
            Err(BackendError::Throttled {
                retry_after: Some(wait),
                ..
            }) => {
                self.runtime
                    .report_throttled(self.store, tenant_id, *wait)
                    .await;
                self.runtime.report_success(self.store, tenant_id).await;
            }
            _ => self.runtime.report_success(self.store, tenant_id).await,
        }
        let (outcome, detail) = match &result {
            Ok(_) => {
                self.advanced = true;
                ("ok", None)
            }
            Err(error) => (error.outcome(), Some(error.to_string())),
        };
        self.audit.push(AuditEntry {
            action: route,
            target: target.to_owned(),
            outcome,
            detail,
            at: now_ms(),
        });
        result
    }

    /// Audits a decision that made no MaaS360 call (a group kept rather than deleted, a group
    /// bound through its mapping), so that the audit tells the whole story.
    fn note(&mut self, action: &'static str, target: &str, outcome: &'static str, detail: String) {
        self.audit.push(AuditEntry {
            action,
            target: target.to_owned(),
            outcome,
            detail: Some(detail),
            at: now_ms(),
        });
    }

    /// Records `state` as what MaaS360 now holds, durably, before a call that is not
    /// idempotent goes out: a lost answer or a crash then leaves a trace the next attempt
    /// follows instead of repeating the call.
    async fn save<T: Serialize>(&mut self, state: &T) -> Result<()> {
        self.applied_json = Some(encode(state)?);
        let audit = std::mem::take(&mut self.audit);
        let applied = queue::Applied {
            maas360_id: self.maas360_id.as_deref(),
            json: self.applied_json.as_deref(),
        };
        queue::save_progress(self.writer, self.lease, applied, audit, self.settings.lease).await?;
        self.lease_renewed_at = tokio::time::Instant::now();
        Ok(())
    }

    /// Records `state` as what MaaS360 now holds after an idempotent step. The attempt's end
    /// writes it, in one transaction with the outcome and the audit: a crash before then
    /// repeats only idempotent calls. An attempt that runs long (rate limited, MaaS360 slow)
    /// writes it at once, which renews the lease before another worker may take it over.
    async fn record<T: Serialize>(&mut self, state: &T) -> Result<()> {
        if self.lease_renewed_at.elapsed() >= self.settings.lease / 3 {
            return self.save(state).await;
        }
        self.applied_json = Some(encode(state)?);
        Ok(())
    }

    /// MaaS360 no longer holds the resource.
    fn forget(&mut self) {
        self.maas360_id = None;
        self.applied_json = None;
    }

    /// Records how the attempt ended, in one transaction with its audit.
    async fn finish(mut self, result: Step<Outcome>) -> Result<()> {
        let audit = std::mem::take(&mut self.audit);
        let applied = queue::Applied {
            maas360_id: self.maas360_id.as_deref(),
            json: self.applied_json.as_deref(),
        };
        let error = match result {
            Ok(Outcome::Done) => {
                return queue::succeed(self.writer, self.lease, applied, audit).await;
            }
            Ok(Outcome::Deferred) => {
                return queue::defer(
                    self.writer,
                    self.lease,
                    applied,
                    self.settings.dependency_delay,
                    audit,
                )
                .await;
            }
            Err(Stop::Store(error)) => return Err(error),
            Err(Stop::Backend(error)) => error,
        };
        let attempts = if self.advanced {
            1
        } else {
            self.lease.row.attempts.saturating_add(1)
        };
        let row = &self.lease.row;
        let failure = if error.is_transient() {
            let wait = match &error {
                BackendError::CircuitOpen { next_probe } => next_probe
                    .duration_since(SystemTime::now())
                    .unwrap_or_default(),
                BackendError::Throttled { retry_after, .. } => self
                    .runtime
                    .backoff
                    .delay(attempts.unsigned_abs())
                    .max(retry_after.unwrap_or_default()),
                _ => self.runtime.backoff.delay(attempts.unsigned_abs()),
            };
            let reason = format!("{error} (failed attempt {attempts}; retrying)");
            tracing::debug!(tenant = %row.tenant_id, resource = %row.resource_id, %reason, ?wait, "retrying later");
            (reason, false, now_ms() + duration_ms(wait))
        } else {
            let reason = error.to_string();
            tracing::warn!(
                tenant = %row.tenant_id, kind = ?row.kind, resource = %row.resource_id, %reason,
                "resource parked"
            );
            (reason, true, now_ms())
        };
        let failure = queue::Failure {
            reason: &failure.0,
            park: failure.1,
            retry_at: failure.2,
            attempts,
        };
        queue::fail(self.writer, self.lease, applied, failure, audit).await
    }
}

fn encode<T: Serialize>(state: &T) -> Result<String> {
    serde_json::to_string(state).map_err(|error| {
        ProvisionerError::Database(format!("cannot encode MaaS360 state: {error}"))
    })
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2)
}

pub(crate) async fn reconcile(
    store: &Store,
    writer: &QueueWriter,
    lease: &Lease,
    runtime: &TenantRuntime,
    resolver: &MappingResolver,
    settings: AttemptSettings,
) -> Result<()> {
    let mut attempt = Attempt::new(store, writer, lease, runtime, resolver, settings);
    let result = match lease.row.kind {
        ResourceKind::User => reconcile_user(&mut attempt).await,
        ResourceKind::Group => reconcile_group(&mut attempt).await,
    };
    attempt.finish(result).await
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

async fn reconcile_user(attempt: &mut Attempt<'_>) -> Step<Outcome> {
    let row = &attempt.lease.row;
    let desired = user::Entity::find_by_id((row.tenant_id.clone(), row.resource_id.clone()))
        .one(attempt.store.db())
        .await?;
    let Some(desired) = desired else {
        remove_user(attempt).await?;
        return Ok(Outcome::Done);
    };
    let identity = identity::derive(
        &desired.user_name,
        desired.email.as_deref(),
        desired.display_name.as_deref(),
        desired.given_name.as_deref(),
        desired.family_name.as_deref(),
        attempt.runtime.policy.username_mapping,
    )
    .map_err(|error| BackendError::Permanent(error.0))?;
    let target = format!("{}@{}", identity.user_name, identity.domain);
    let (id, mut state) = create_or_adopt_user(attempt, &identity, &target).await?;
    sync_identity(attempt, &id, &mut state, &identity, &target).await?;
    // With deactivation off, an inactive Entra user stays active in MaaS360.
    let want_active = desired.active || !attempt.runtime.policy.deactivate_on_disable;
    sync_active(attempt, &id, &mut state, want_active, &target).await?;
    sync_memberships(attempt, &id, &mut state, &target).await
}

/// Entra deleted the user: delete it in MaaS360, or only deactivate it, per tenant policy.
async fn remove_user(attempt: &mut Attempt<'_>) -> Step<()> {
    let record: Option<UserRecord> = attempt.applied();
    if attempt.maas360_id.is_none()
        && let Some(UserRecord::PendingAdd { pending_add }) = &record
    {
        // An add whose answer was lost may have created the user: find it to remove it.
        let target = format!("{}@{}", pending_add.user_name, pending_add.domain);
        if find_and_adopt(attempt, pending_add, &target)
            .await?
            .is_none()
        {
            attempt.forget();
            return Ok(());
        }
    }
    let Some(id) = attempt.maas360_id.clone() else {
        return Ok(());
    };
    let applied = match attempt.applied::<UserRecord>() {
        Some(UserRecord::Applied(state)) => Some(state),
        _ => None,
    };
    let target = applied.as_ref().map_or_else(
        || id.clone(),
        |state| format!("{}@{}", state.identity.user_name, state.identity.domain),
    );
    let backend = attempt.runtime.backend.clone();
    let mut deactivate = !attempt.runtime.policy.delete_on_delete;
    let mut kept_for_device = false;
    if attempt.runtime.policy.delete_on_delete {
        match attempt
            .call("delete_user", &target, backend.delete_user(&id))
            .await
        {
            // A 404 means it was already gone; a queued deletion is done as far as we go.
            Ok(()) | Err(BackendError::NotFound(_)) => {}
            Err(BackendError::ActiveDevice(detail))
                if !attempt.runtime.policy.park_on_active_device =>
            {
                tracing::warn!(
                    tenant = %attempt.lease.row.tenant_id, user = %target, %detail,
                    "MaaS360 refused to delete a user with an active device; deactivating it instead"
                );
                deactivate = true;
                kept_for_device = true;
            }
            Err(BackendError::ActiveDevice(detail)) => {
                return Err(BackendError::Permanent(format!(
                    "MaaS360 refuses to delete {target} while it has an active device ({detail}); \
                     retire or wipe the device in the MaaS360 portal, then retry this resource"
                ))
                .into());
            }
            Err(error) => return Err(error.into()),
        }
    }
    if deactivate && applied.as_ref().is_none_or(|state| state.active) {
        attempt
            .call("deactivate_user", &target, backend.deactivate_user(&id))
            .await?;
    }
    if kept_for_device && let Some(state) = &applied {
        // Entra deleted the user, so it is in none of Entra's groups any more: a user MaaS360
        // keeps for its device must not stay a member (a deletion would have taken its
        // memberships with it).
        let groups: Vec<String> = state.groups.union(&state.uncertain).cloned().collect();
        let maas360_ids: Vec<String> =
            group_maas360_ids(attempt.store, &attempt.lease.row.tenant_id, &groups)
                .await?
                .into_values()
                .collect();
        if !maas360_ids.is_empty() {
            match attempt
                .call(
                    "remove_user_from_groups",
                    &target,
                    backend.remove_user_from_groups(&id, &maas360_ids),
                )
                .await
            {
                Ok(()) | Err(BackendError::NotFound(_)) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
    attempt.forget();
    Ok(())
}

/// The user's MaaS360 id and what MaaS360 holds of it, creating the user when MaaS360 has no
/// such user: a user MaaS360 already has under this username and domain (made by hand, or by
/// us before a lost response) is adopted, never duplicated.
async fn create_or_adopt_user(
    attempt: &mut Attempt<'_>,
    identity: &Identity,
    target: &str,
) -> Step<(String, AppliedUser)> {
    let record: Option<UserRecord> = attempt.applied();
    match (attempt.maas360_id.clone(), record) {
        (Some(id), Some(UserRecord::Applied(state))) => return Ok((id, state)),
        (Some(_), _) => {
            // Linked before, but what MaaS360 holds is unknown: read it.
            if let Some(adopted) = find_and_adopt(attempt, identity, target).await? {
                return Ok(adopted);
            }
            attempt.forget();
        }
        (None, Some(UserRecord::PendingAdd { pending_add })) if pending_add != *identity => {
            // An earlier add, under the identity Entra had then, may have created the user:
            // adopt it, and the identity step brings it up to date.
            let earlier = format!("{}@{}", pending_add.user_name, pending_add.domain);
            if let Some(adopted) = find_and_adopt(attempt, &pending_add, &earlier).await? {
                return Ok(adopted);
            }
        }
        (None, _) => {}
    }
    // The add is not idempotent: record it before it goes out, so that a lost answer or a
    // crash leaves a trace the next attempt (or a delete) follows.
    attempt
        .save(&UserRecord::PendingAdd {
            pending_add: identity.clone(),
        })
        .await?;
    // Add first: the common case costs one call.
    let backend = attempt.runtime.backend.clone();
    match attempt
        .call("add_user", target, backend.add_user(identity))
        .await
    {
        Ok(id) => {
            let state = AppliedUser {
                identity: identity.clone(),
                active: true,
                groups: BTreeSet::new(),
                uncertain: BTreeSet::new(),
            };
            attempt.maas360_id = Some(id.clone());
            attempt.record(&state).await?;
            Ok((id, state))
        }
        Err(BackendError::AlreadyExists(_)) => find_and_adopt(attempt, identity, target)
            .await?
            .ok_or_else(|| {
                BackendError::Unavailable(format!(
                    "MaaS360 says {target} exists but does not find it"
                ))
                .into()
            }),
        Err(error) => Err(error.into()),
    }
}

/// Links the user MaaS360 holds under this username and domain, if any.
async fn find_and_adopt(
    attempt: &mut Attempt<'_>,
    identity: &Identity,
    target: &str,
) -> Step<Option<(String, AppliedUser)>> {
    let backend = attempt.runtime.backend.clone();
    let found = attempt
        .call(
            "find_user",
            target,
            backend.find_user(&identity.user_name, &identity.domain),
        )
        .await?;
    let Some(remote) = found else {
        return Ok(None);
    };
    if remote.pending_deletion {
        // MaaS360 will delete it with its daily job and refuses a new user of the name until
        // then: adopting it would lose the user tomorrow.
        return Err(BackendError::Unavailable(format!(
            "MaaS360 has {target} queued for deletion; it can be created again after MaaS360's daily deletion job"
        ))
        .into());
    }
    let state = AppliedUser {
        identity: remote.identity,
        active: remote.active,
        groups: BTreeSet::new(),
        uncertain: BTreeSet::new(),
    };
    attempt.maas360_id = Some(remote.id.clone());
    attempt.record(&state).await?;
    Ok(Some((remote.id, state)))
}

/// Username, domain, email and full name.
async fn sync_identity(
    attempt: &mut Attempt<'_>,
    id: &str,
    state: &mut AppliedUser,
    identity: &Identity,
    target: &str,
) -> Step<()> {
    if state.identity == *identity {
        return Ok(());
    }
    let backend = attempt.runtime.backend.clone();
    attempt
        .call(
            "edit_user",
            target,
            backend.edit_user(id, &state.identity, identity),
        )
        .await?;
    state.identity = identity.clone();
    attempt.record(state).await?;
    Ok(())
}

async fn sync_active(
    attempt: &mut Attempt<'_>,
    id: &str,
    state: &mut AppliedUser,
    want_active: bool,
    target: &str,
) -> Step<()> {
    if state.active == want_active {
        return Ok(());
    }
    let backend = attempt.runtime.backend.clone();
    if want_active {
        attempt
            .call("reactivate_user", target, backend.reactivate_user(id))
            .await?;
    } else {
        attempt
            .call("deactivate_user", target, backend.deactivate_user(id))
            .await?;
    }
    state.active = want_active;
    attempt.record(state).await?;
    Ok(())
}

/// Adds the user to the groups it joined and removes it from those it left, one call each
/// way. A group MaaS360 does not have yet defers the user rather than failing it.
async fn sync_memberships(
    attempt: &mut Attempt<'_>,
    id: &str,
    state: &mut AppliedUser,
    target: &str,
) -> Step<Outcome> {
    let row = &attempt.lease.row;
    let desired: BTreeSet<String> = group_member::Entity::find()
        .select_only()
        .column(group_member::Column::GroupId)
        .filter(group_member::Column::TenantId.eq(row.tenant_id.clone()))
        .filter(group_member::Column::UserId.eq(row.resource_id.clone()))
        .into_tuple::<String>()
        .all(attempt.store.db())
        .await?
        .into_iter()
        .collect();
    let involved: Vec<String> = desired
        .iter()
        .chain(&state.groups)
        .chain(&state.uncertain)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let maas360_ids = group_maas360_ids(attempt.store, &row.tenant_id, &involved).await?;
    let backend = attempt.runtime.backend.clone();

    let joining: Vec<&String> = desired.difference(&state.groups).collect();
    let waiting = joining
        .iter()
        .any(|group| !maas360_ids.contains_key(*group));
    let (joinable, to_add): (Vec<String>, Vec<String>) = joining
        .iter()
        .filter_map(|group| {
            maas360_ids
                .get(*group)
                .map(|maas360_id| ((*group).clone(), maas360_id.clone()))
        })
        .unzip();
    if !to_add.is_empty() {
        state.uncertain.extend(joinable.iter().cloned());
        attempt.record(state).await?;
        attempt
            .call(
                "add_user_to_groups",
                target,
                backend.add_user_to_groups(id, &to_add),
            )
            .await?;
        for group in joinable {
            state.uncertain.remove(&group);
            state.groups.insert(group);
        }
        attempt.record(state).await?;
    }

    let leaving: Vec<String> = state
        .groups
        .union(&state.uncertain)
        .filter(|group| !desired.contains(*group))
        .cloned()
        .collect();
    // A group whose Option 1 mapping is not applied yet keeps its members until it is.
    let held = held_by_migration(attempt, &leaving).await?;
    let leaving: Vec<String> = leaving
        .into_iter()
        .filter(|group| !held.contains(group))
        .collect();
    let to_remove: Vec<String> = leaving
        .iter()
        .filter_map(|group| maas360_ids.get(group).cloned())
        .collect();
    if !to_remove.is_empty() {
        for group in &leaving {
            if state.groups.remove(group) {
                state.uncertain.insert(group.clone());
            }
        }
        attempt.record(state).await?;
        match attempt
            .call(
                "remove_user_from_groups",
                target,
                backend.remove_user_from_groups(id, &to_remove),
            )
            .await
        {
            Ok(()) | Err(BackendError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    if !leaving.is_empty() {
        // Groups already gone from MaaS360 took their memberships with them.
        for group in &leaving {
            state.groups.remove(group);
            state.uncertain.remove(group);
        }
        attempt.record(state).await?;
    }
    Ok(if waiting || !held.is_empty() {
        Outcome::Deferred
    } else {
        Outcome::Done
    })
}

/// Of the groups a user leaves, those whose Option 1 mapping is confirmed but not applied:
/// the migration's plan counted their members, so none is removed before the apply.
async fn held_by_migration(
    attempt: &mut Attempt<'_>,
    leaving: &[String],
) -> Step<BTreeSet<String>> {
    let mut held = BTreeSet::new();
    if leaving.is_empty() || !attempt.resolver.is_configured() {
        return Ok(held);
    }
    let tenant_id = attempt.lease.row.tenant_id.clone();
    let groups = group::Entity::find()
        .filter(group::Column::TenantId.eq(tenant_id.clone()))
        .filter(group::Column::Id.is_in(leaving.to_vec()))
        .all(attempt.store.db())
        .await?;
    for group in groups {
        let resolution = attempt
            .resolver
            .resolve(
                &tenant_id,
                group.external_id.as_deref(),
                &group.display_name,
            )
            .await?;
        if matches!(resolution, Resolution::Pending { .. }) {
            held.insert(group.id);
        }
    }
    Ok(held)
}

/// MaaS360 ids of the given dirsync groups, for those MaaS360 has.
async fn group_maas360_ids(
    store: &Store,
    tenant_id: &str,
    groups: &[String],
) -> Result<HashMap<String, String>> {
    let mut ids = HashMap::new();
    for chunk in groups.chunks(500) {
        let rows: Vec<(String, Option<String>)> = sync_state::Entity::find()
            .select_only()
            .column(sync_state::Column::ResourceId)
            .column(sync_state::Column::Maas360Id)
            .filter(sync_state::Column::TenantId.eq(tenant_id))
            .filter(sync_state::Column::Kind.eq(ResourceKind::Group))
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

// ---------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------

async fn reconcile_group(attempt: &mut Attempt<'_>) -> Step<Outcome> {
    let row = &attempt.lease.row;
    let desired = group::Entity::find_by_id((row.tenant_id.clone(), row.resource_id.clone()))
        .one(attempt.store.db())
        .await?;
    let record: Option<GroupRecord> = attempt.applied();
    let Some(desired) = desired else {
        remove_group(attempt, record).await?;
        return Ok(Outcome::Done);
    };
    let name = desired.display_name.clone();
    match (attempt.maas360_id.clone(), record) {
        (None, Some(GroupRecord::PendingCreate { pending_create })) => {
            // An earlier create may have made the group: adopt it (under the name it got).
            let groups = user_groups(attempt, &pending_create).await?;
            match named(&groups, &pending_create) {
                Some(made) => {
                    link_group(attempt, made, None, false).await?;
                    if pending_create != name {
                        let id = made.id.clone();
                        follow_rename(attempt, &id, &pending_create, &name).await?;
                    }
                }
                None => return provision_group(attempt, &desired).await,
            }
        }
        (None, _) => return provision_group(attempt, &desired).await,
        // A group bound through a mapping keeps its MaaS360 name: Entra's may differ.
        (Some(id), Some(GroupRecord::Applied(applied)))
            if applied.mapping_id.is_none() && applied.name != name =>
        {
            follow_rename(attempt, &id, &applied.name, &name).await?;
        }
        (Some(_), Some(GroupRecord::Applied(_))) => {}
        // Linked, but the name MaaS360 holds was unreadable: it was created under the name
        // Entra gave, and a rename since would have been recorded.
        (Some(_), _) => {
            attempt
                .record(&GroupRecord::Applied(AppliedGroup::created(name)))
                .await?
        }
    }
    Ok(Outcome::Done)
}

/// Every MaaS360 user group, read for a decision about the group `name`.
async fn user_groups(attempt: &mut Attempt<'_>, name: &str) -> Step<Vec<RemoteGroup>> {
    let backend = attempt.runtime.backend.clone();
    Ok(attempt
        .call("list_groups", name, backend.user_groups())
        .await?)
}

/// The user groups as read within the last few seconds, for the first provisioning of `name`
/// (see [`super::group_list`]): when that list shows a group of the same name or a look-alike,
/// it is read again, so that adopting and parking are decided on what MaaS360 holds now.
async fn user_groups_for_first_provisioning(
    attempt: &mut Attempt<'_>,
    name: &str,
) -> Step<Arc<Vec<RemoteGroup>>> {
    // The runtime outlives the attempt: the list may be held across the attempt's call.
    let runtime = attempt.runtime;
    let groups = match runtime.group_list.recent().await {
        Ok(groups) => groups,
        Err(reading) => reading.keep(user_groups(attempt, name).await?),
    };
    let key = name_key(name);
    let resembles = groups
        .iter()
        .any(|group| group.name.eq_ignore_ascii_case(name) || name_key(&group.name) == key);
    if !resembles {
        return Ok(groups);
    }
    let fresh = user_groups(attempt, name).await?;
    Ok(runtime.group_list.keep(fresh).await)
}

/// The user group MaaS360 holds under exactly this name (ignoring case).
fn named<'g>(groups: &'g [RemoteGroup], name: &str) -> Option<&'g RemoteGroup> {
    groups
        .iter()
        .find(|group| group.name.eq_ignore_ascii_case(name))
}

/// Records the link to a MaaS360 group: one dirsync made, one that was there before
/// (`adopted`), or one a mapping names.
async fn link_group(
    attempt: &mut Attempt<'_>,
    group: &RemoteGroup,
    mapping_id: Option<String>,
    adopted: bool,
) -> Step<()> {
    attempt.maas360_id = Some(group.id.clone());
    attempt
        .record(&GroupRecord::Applied(AppliedGroup {
            name: group.name.clone(),
            mapping_id,
            adopted,
        }))
        .await?;
    Ok(())
}

/// A group's first provisioning, by SCIM push or by pull: its Option 1 mapping decides first;
/// without one, Option 2 (a new MaaS360 group, or an existing one of its exact name that
/// carries nothing) unless a MaaS360 group that looks like it carries distributions, which is
/// parked for an operator rather than adopted or duplicated (docs/maas360.md §8).
async fn provision_group(attempt: &mut Attempt<'_>, desired: &group::Model) -> Step<Outcome> {
    let tenant_id = attempt.lease.row.tenant_id.clone();
    let name = desired.display_name.clone();
    let entra_ref = desired
        .external_id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| name.clone());
    let resolution = attempt
        .resolver
        .resolve(&tenant_id, desired.external_id.as_deref(), &name)
        .await?;
    match resolution {
        Resolution::Mapped {
            mapping_id,
            group_id,
            group_name,
        } => {
            tracing::info!(
                tenant = %tenant_id, group = %name, maas360_group = %group_name, %mapping_id,
                "group bound to its mapped MaaS360 group"
            );
            attempt.note(
                "bind_group",
                &group_name,
                "ok",
                format!("Entra group {name:?} writes into it through mapping {mapping_id}"),
            );
            let group = RemoteGroup {
                id: group_id,
                name: group_name,
                apps: 0,
                policies: 0,
            };
            link_group(attempt, &group, Some(mapping_id), true).await?;
            return Ok(Outcome::Done);
        }
        Resolution::Pending { mapping_id, state } => {
            return Err(BackendError::Permanent(format!(
                "Entra group {name:?} has mapping {mapping_id} ({state}), not applied yet: \
                 nothing is created or adopted for it until `dirsync migrate apply {tenant_id}` \
                 applies the mapping, which retries this group"
            ))
            .into());
        }
        Resolution::Unmapped => {}
    }

    let groups = user_groups_for_first_provisioning(attempt, &name).await?;
    let exact = named(&groups, &name);
    let key = name_key(&name);
    let lookalike = exact
        .filter(|group| group.carries_distributions())
        .or_else(|| {
            groups
                .iter()
                .find(|group| group.carries_distributions() && name_key(&group.name) == key)
        });
    if let Some(existing) = lookalike
        && !imports_lookalikes(attempt, &tenant_id).await?
    {
        return Err(BackendError::Permanent(format!(
            "MaaS360 user group {:?} (groupID {}) carries {} app and {} policy distribution(s) and \
             looks like Entra group {name:?}: adopting or duplicating it could take apps and \
             policies off devices. Map it with `dirsync mapping set {tenant_id} --entra-group \
             {entra_ref} --maas360-group {} --mode adopt` (or --mode copy) and apply the \
             migration (Option 1), or allow Option 2 import with `dirsync tenant set-policy \
             {tenant_id} --import-lookalike-groups`",
            existing.name, existing.id, existing.apps, existing.policies, existing.id
        ))
        .into());
    }
    if let Some(existing) = exact {
        let existing = existing.clone();
        link_group(attempt, &existing, None, true).await?;
        return Ok(Outcome::Done);
    }
    create_group(attempt, &name).await?;
    Ok(Outcome::Done)
}

/// Whether the tenant lets look-alikes in (Option 2). Read from the store, not the cached
/// runtime: an operator who just allowed it retries the parked groups at once, on any replica.
async fn imports_lookalikes(attempt: &Attempt<'_>, tenant_id: &str) -> Step<bool> {
    if attempt.runtime.policy.import_lookalike_groups {
        return Ok(true);
    }
    let tenant = crate::entity::tenant::Entity::find_by_id(tenant_id.to_owned())
        .one(attempt.store.db())
        .await?;
    Ok(tenant.is_some_and(|tenant| tenant.lookalike_group_policy == "import"))
}

/// Option 2: an Entra group becomes a new MaaS360 user group of the same name.
async fn create_group(attempt: &mut Attempt<'_>, name: &str) -> Step<()> {
    // The create is not idempotent: record it before it goes out.
    attempt
        .save(&GroupRecord::PendingCreate {
            pending_create: name.to_owned(),
        })
        .await?;
    let backend = attempt.runtime.backend.clone();
    let id = match attempt
        .call("create_group", name, backend.create_group(name))
        .await
    {
        Ok(id) => id,
        // Made by an earlier attempt whose answer was lost.
        Err(BackendError::AlreadyExists(_)) => {
            let groups = user_groups(attempt, name).await?;
            named(&groups, name).map(|g| g.id.clone()).ok_or_else(|| {
                BackendError::Unavailable(format!(
                    "MaaS360 says group {name:?} exists but does not list it"
                ))
            })?
        }
        Err(error) => return Err(error.into()),
    };
    attempt.maas360_id = Some(id.clone());
    attempt
        .runtime
        .group_list
        .add(RemoteGroup {
            id,
            name: name.to_owned(),
            apps: 0,
            policies: 0,
        })
        .await;
    attempt
        .record(&GroupRecord::Applied(AppliedGroup::created(
            name.to_owned(),
        )))
        .await?;
    Ok(())
}

/// Entra deleted its group (or took it out of scope). A MaaS360 group that was there before
/// dirsync (adopted, or bound through a mapping) or that carries distributions now is never
/// deleted for it: devices would lose what it distributes. It is unbound instead, and the
/// audit says so.
async fn remove_group(attempt: &mut Attempt<'_>, record: Option<GroupRecord>) -> Step<()> {
    if attempt.maas360_id.is_none()
        && let Some(GroupRecord::PendingCreate { pending_create }) = &record
    {
        let groups = user_groups(attempt, pending_create).await?;
        match named(&groups, pending_create) {
            Some(made) => attempt.maas360_id = Some(made.id.clone()),
            None => {
                attempt.forget();
                return Ok(());
            }
        }
    }
    let Some(id) = attempt.maas360_id.clone() else {
        return Ok(());
    };
    let (name, kept_because) = match record {
        Some(GroupRecord::Applied(applied)) => {
            let why = match (&applied.mapping_id, applied.adopted) {
                (Some(mapping_id), _) => Some(format!("it is the target of mapping {mapping_id}")),
                (None, true) => Some("it was in MaaS360 before dirsync adopted it".to_owned()),
                (None, false) => None,
            };
            (applied.name, why)
        }
        Some(GroupRecord::PendingCreate { pending_create }) => (pending_create, None),
        None => (id.clone(), None),
    };
    let kept_because = match kept_because {
        Some(why) => Some(why),
        // One dirsync made may have been given distributions in the portal since.
        None => {
            let groups = user_groups(attempt, &name).await?;
            match groups.iter().find(|group| group.id == id) {
                None => {
                    attempt.forget();
                    return Ok(());
                }
                Some(group) if group.carries_distributions() => Some(format!(
                    "it carries {} app and {} policy distribution(s)",
                    group.apps, group.policies
                )),
                Some(_) => None,
            }
        }
    };
    if let Some(why) = kept_because {
        let detail = format!(
            "Entra deleted its group; MaaS360 group {name:?} is kept and unbound because {why}"
        );
        tracing::info!(tenant = %attempt.lease.row.tenant_id, group = %name, "{detail}");
        attempt.note("unbind_group", &name, "kept", detail);
        attempt.forget();
        return Ok(());
    }
    let backend = attempt.runtime.backend.clone();
    match attempt
        .call("delete_group", &name, backend.delete_group(&id))
        .await
    {
        // A 404 means it was already gone.
        Ok(()) | Err(BackendError::NotFound(_)) => {}
        Err(error) => return Err(error.into()),
    }
    attempt.forget();
    Ok(())
}

/// MaaS360's web services cannot rename a user group, and deleting and recreating it would
/// drop the app and policy distributions attached to it: an operator renames it in the portal,
/// and a retry afterwards finds it under its new name.
async fn follow_rename(attempt: &mut Attempt<'_>, id: &str, old: &str, name: &str) -> Step<()> {
    let groups = user_groups(attempt, name).await?;
    if named(&groups, name).is_some_and(|group| group.id == id) {
        let adopted = matches!(
            attempt.applied::<GroupRecord>(),
            Some(GroupRecord::Applied(AppliedGroup { adopted: true, .. }))
        );
        attempt
            .record(&GroupRecord::Applied(AppliedGroup {
                name: name.to_owned(),
                mapping_id: None,
                adopted,
            }))
            .await?;
        return Ok(());
    }
    Err(BackendError::Permanent(format!(
        "Entra renamed the group {old:?} to {name:?}; MaaS360's API cannot rename user groups. \
         Rename it in the MaaS360 portal, then retry this resource"
    ))
    .into())
}

/// The probe of an open breaker: one cheap read.
pub(crate) async fn probe(store: &Store, tenant_id: &str, runtime: &TenantRuntime) {
    runtime.limiter.acquire().await;
    let probed = runtime.backend.probe().await;
    runtime.honour_rate_limit().await;
    match probed {
        Err(BackendError::Unavailable(detail)) => {
            tracing::info!(tenant = %tenant_id, %detail, "MaaS360 still unreachable");
            runtime.report_failure(store, tenant_id, &detail).await;
        }
        _ => runtime.report_success(store, tenant_id).await,
    }
}
