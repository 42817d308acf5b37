//! The pull sync of one tenant: read Entra (the delta since the stored cursor, or everything),
//! bring the snapshot up to date, compute the desired state (`desired`), plan it against the
//! provisioner's (`plan`), stop at the deletion guard unless forced, apply (`apply`), and keep
//! the snapshot, the cursors and the outcome.
//!
//! A run reads in full when asked, on the first run, and when Graph expired the delta token;
//! a full read takes fresh deltaLinks first ("sync from now", docs/graph.md §3.1), then lists
//! users and groups with `$top=999` and every group's direct members through `$batch`, so
//! changes made while it reads come again in the next delta round (applying is idempotent).
//! A delta run with no change in Entra, after a run that left the provisioner holding the
//! desired state, ends there: it costs two Graph calls.
//!
//! A dry run writes nothing at all, not even the cursor or the outcome. A failed run keeps its
//! outcome and nothing else: its cursor stays, so the next run reads the same changes again.

use std::collections::HashMap;
use std::sync::Arc;

use dirsync_graph::{
    DeltaRound, DeltaStart, GraphClient, GraphError, GroupChange, Membership, UserChange,
};
use dirsync_proto::directory::v1 as pb;
use dirsync_proto::errors::ErrorReason;
use dirsync_proto::provisioner::v1::TenantMode;

use crate::Service;
use crate::apply::Applied;
use crate::connection::{self, Use};
use crate::desired::{self, DesiredState};
use crate::entity;
use crate::error::{DirectoryError, Result};
use crate::lease::Lease;
use crate::plan::{self, CurrentGroup, CurrentUser, Plan, Removal};
use crate::provisioner::TenantInfo;
use crate::settings::{self, PullSettings};
use crate::snapshot::{GROUP_SELECT, Snapshot, USER_SELECT};
use crate::store::Outcome;
use crate::time::now_ms;

/// A run as asked for (by `SyncTenant` or the scheduler).
#[derive(Clone, Debug, Default)]
pub(crate) struct SyncRequest {
    pub(crate) tenant: String,
    pub(crate) full: bool,
    pub(crate) dry_run: bool,
    pub(crate) group_scope: Vec<String>,
    pub(crate) force: bool,
}

impl SyncRequest {
    pub(crate) fn from_pb(request: pb::SyncTenantRequest) -> Result<Self> {
        Ok(Self {
            group_scope: settings::scope(&request.group_scope, "group_scope")?,
            tenant: request.tenant,
            full: request.full,
            dry_run: request.dry_run,
            force: request.force,
        })
    }
}

/// Whether a caller waits for a run of the same tenant to end, or gives up at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    Yes,
    No,
}

/// What a run read from Entra.
struct Read {
    snapshot: Snapshot,
    links: (String, String),
    full: bool,
    resynced: bool,
}

impl Service {
    /// Runs a sync of the request's tenant; `None` when `wait` is `No` and another run of the
    /// tenant is under way. With `Wait::Yes` the run goes on in its own task even when the
    /// caller stops waiting (an RPC past its deadline), and records its outcome.
    pub(crate) async fn sync(
        self: &Arc<Self>,
        request: SyncRequest,
        wait: Wait,
    ) -> Result<Option<pb::SyncTenantResponse>> {
        let tenant = self.provisioner.tenant(&request.tenant).await?;
        if tenant.mode != TenantMode::Pull && !request.dry_run {
            return Err(DirectoryError::refused(
                ErrorReason::WrongMode,
                "the tenant is in push mode: Entra's SCIM provisioning writes its desired state; \
                 switch it to pull mode (SetTenantMode) to sync through Graph, or ask for a dry run",
            ));
        }
        let connection = self
            .store
            .connection(&tenant.id)
            .await?
            .ok_or_else(DirectoryError::no_connection)?;
        let lease = match wait {
            Wait::Yes => Lease::acquire(&self.store, &tenant.id).await?,
            Wait::No => match Lease::try_acquire(&self.store, &tenant.id).await? {
                Some(lease) => lease,
                None => return Ok(None),
            },
        };
        let service = self.clone();
        let run = async move {
            let result = service.run(&tenant, &connection, &request).await;
            lease.release().await;
            result
        };
        match wait {
            Wait::Yes => tokio::spawn(run)
                .await
                .map_err(|e| DirectoryError::Internal(format!("the sync task failed: {e}")))?
                .map(Some),
            Wait::No => run.await.map(Some),
        }
    }

    /// One run under the tenant's lease; a failure is recorded as the outcome (except for a
    /// dry run, which records nothing).
    async fn run(
        &self,
        tenant: &TenantInfo,
        connection: &entity::connection::Model,
        request: &SyncRequest,
    ) -> Result<pb::SyncTenantResponse> {
        let started = std::time::Instant::now();
        let result = self.execute(tenant, connection, request).await;
        match &result {
            Ok(response) => {
                let plan = response.plan.clone().unwrap_or_default();
                tracing::info!(
                    tenant = %tenant.id,
                    full = plan.full,
                    applied = response.applied,
                    dry_run = request.dry_run,
                    creates = plan.user_creates,
                    updates = plan.user_updates,
                    disables = plan.user_disables,
                    deletes = plan.user_deletes,
                    graph_calls = plan.graph_calls,
                    elapsed_ms = started.elapsed().as_millis(),
                    "pull sync"
                );
            }
            Err(error) if !request.dry_run => {
                tracing::warn!(tenant = %tenant.id, %error, "pull sync failed");
                let outcome = Outcome {
                    at: now_ms(),
                    full: false,
                    ok: false,
                    text: format!("failed: {error}"),
                    clean: false,
                    counts: None,
                };
                if let Err(store_error) = self.store.record_outcome(&tenant.id, &outcome).await {
                    tracing::warn!(%store_error, "cannot record the failed run");
                }
            }
            Err(_) => {}
        }
        result
    }

    async fn execute(
        &self,
        tenant: &TenantInfo,
        connection: &entity::connection::Model,
        request: &SyncRequest,
    ) -> Result<pb::SyncTenantResponse> {
        let settings = PullSettings::from_stored(
            self.store.settings(&tenant.id).await?.as_ref(),
            self.config.deletion_guard_percent,
        );
        let rules = settings.rules(&request.group_scope);
        let client = connection::client(connection, &self.config, Use::Sync)
            .map_err(connection::BuildError::stored)?;
        let cursors = if request.full {
            None
        } else {
            self.store.cursors(&tenant.id).await?
        };
        let state = self.store.sync_state(&tenant.id).await?;

        let mut resynced = false;
        let mut read = None;
        if let Some((users_link, groups_link)) = cursors {
            match delta_rounds(&client, users_link, groups_link).await {
                Ok((users, groups)) => {
                    let clean = state.as_ref().is_some_and(|s| s.clean);
                    if users.changes.is_empty()
                        && groups.changes.is_empty()
                        && clean
                        && request.group_scope.is_empty()
                    {
                        return self
                            .nothing_changed(
                                tenant,
                                request,
                                &client,
                                state.as_ref(),
                                (users.delta_link, groups.delta_link),
                            )
                            .await;
                    }
                    let mut snapshot = self.store.load_snapshot(&tenant.id).await?;
                    let now = now_ms();
                    for change in &users.changes {
                        snapshot.apply_user(change, now);
                    }
                    for change in &groups.changes {
                        snapshot.apply_group(change);
                    }
                    read = Some(Read {
                        snapshot,
                        links: (users.delta_link, groups.delta_link),
                        full: false,
                        resynced: false,
                    });
                }
                Err(error) if error.needs_resync() => {
                    tracing::info!(tenant = %tenant.id, %error, "Graph expired the delta cursor; reading in full");
                    resynced = true;
                }
                Err(error) => return Err(DirectoryError::graph(&error)),
            }
        }
        let mut read = match read {
            Some(read) => read,
            None => {
                let old = self.store.load_snapshot(&tenant.id).await?;
                let mut read = full_read(&client, old)
                    .await
                    .map_err(|e| DirectoryError::graph(&e))?;
                read.resynced = resynced;
                read
            }
        };

        let desired = desired::compute(&read.snapshot, &rules).map_err(|unknown| {
            DirectoryError::Refused(Box::new(
                dirsync_proto::errors::ApiError::new(
                    ErrorReason::EntraNotFound,
                    unknown.to_string(),
                )
                .resource("group", &unknown.entry),
            ))
        })?;
        let (users, groups) = tokio::try_join!(
            self.provisioner.current_users(&tenant.id),
            self.provisioner.current_groups(&tenant.id)
        )?;
        let removal = if read.full {
            Removal::Unmatched
        } else {
            Removal::Known
        };
        let mut plan = plan::plan(&desired, &users, &groups, removal);
        plan.summary.full = read.full;
        plan.summary.resynced = read.resynced;
        plan.summary.graph_calls = graph_calls(&client);

        if let Some(why) = plan::guard(&plan, settings.deletion_guard_percent)
            && !request.force
        {
            plan.summary.guard = why.clone();
            if !request.dry_run {
                self.store
                    .record_outcome(
                        &tenant.id,
                        &Outcome {
                            at: now_ms(),
                            full: false,
                            ok: false,
                            text: format!("stopped by the deletion guard: {why}"),
                            clean: false,
                            counts: None,
                        },
                    )
                    .await?;
            }
            return Ok(response(plan, false));
        }
        if request.dry_run {
            return Ok(response(plan, false));
        }

        let limit = usize::try_from(self.config.apply_concurrency).unwrap_or(16);
        let applied =
            crate::apply::apply(&self.provisioner, &tenant.id, &desired, &plan, limit).await?;
        bookkeeping(
            &mut read.snapshot,
            &desired,
            &plan,
            &applied,
            &users,
            &groups,
        );
        let text = if applied.failures > 0 {
            format!(
                "failed: {} write(s) refused; {}",
                applied.failures,
                applied.messages.join("; ")
            )
        } else if desired.skipped.is_empty() {
            "ok".to_owned()
        } else {
            format!(
                "ok; {} user(s) skipped: {}",
                desired.skipped.len(),
                desired
                    .skipped
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        let outcome = Outcome {
            at: now_ms(),
            full: read.full,
            ok: applied.failures == 0,
            text,
            clean: applied.failures == 0 && request.group_scope.is_empty(),
            counts: Some((desired.users.len() as u64, desired.groups.len() as u64)),
        };
        self.store
            .save(&tenant.id, &mut read.snapshot, &read.links, &outcome)
            .await?;
        Ok(response(plan, true))
    }

    /// Entra reported no change and the provisioner held the desired state: only the cursors
    /// move on.
    async fn nothing_changed(
        &self,
        tenant: &TenantInfo,
        request: &SyncRequest,
        client: &GraphClient,
        state: Option<&entity::sync_state::Model>,
        links: (String, String),
    ) -> Result<pb::SyncTenantResponse> {
        let mut plan = Plan::default();
        plan.summary.users_before = state.map_or(0, |s| u64::try_from(s.users).unwrap_or(0));
        plan.summary.graph_calls = graph_calls(client);
        if !request.dry_run {
            let outcome = Outcome {
                at: now_ms(),
                full: false,
                ok: true,
                text: "ok".to_owned(),
                clean: true,
                counts: None,
            };
            let mut unchanged = Snapshot::default();
            self.store
                .save(&tenant.id, &mut unchanged, &links, &outcome)
                .await?;
            return Ok(response(plan, true));
        }
        Ok(response(plan, false))
    }
}

fn response(plan: Plan, applied: bool) -> pb::SyncTenantResponse {
    pb::SyncTenantResponse {
        plan: Some(plan.summary),
        applied,
    }
}

/// HTTP exchanges the client made (tokens included).
pub(crate) fn graph_calls(client: &GraphClient) -> u64 {
    client.call_counts().values().sum()
}

/// One delta round over users and one over groups, side by side.
async fn delta_rounds(
    client: &GraphClient,
    users_link: String,
    groups_link: String,
) -> Result<(DeltaRound<UserChange>, DeltaRound<GroupChange>), GraphError> {
    tokio::try_join!(
        client.users_delta(DeltaStart::Resume(users_link), USER_SELECT),
        client.groups_delta(DeltaStart::Resume(groups_link), GROUP_SELECT)
    )
}

/// Everything, with deltaLinks taken before the reads.
async fn full_read(client: &GraphClient, old: Snapshot) -> Result<Read, GraphError> {
    let (users_from_now, groups_from_now) = tokio::try_join!(
        client.users_delta(DeltaStart::FromNow, USER_SELECT),
        client.groups_delta(DeltaStart::FromNow, GROUP_SELECT)
    )?;
    let snapshot = read_into(client, old).await?;
    Ok(Read {
        snapshot,
        links: (users_from_now.delta_link, groups_from_now.delta_link),
        full: true,
        resynced: false,
    })
}

/// Entra as it is now, in a snapshot of its own: users and groups with `$top=999`, every
/// group's direct members through `$batch` (no call per user, one per 20 groups and page).
pub(crate) async fn read_entra(client: &GraphClient) -> Result<Snapshot, GraphError> {
    read_into(client, Snapshot::default()).await
}

async fn read_into(client: &GraphClient, old: Snapshot) -> Result<Snapshot, GraphError> {
    let (users, groups) = tokio::try_join!(client.users(USER_SELECT), client.groups(GROUP_SELECT))?;
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let members = client
        .members_of_groups(&ids, Membership::Direct, &["id"])
        .await?;
    Ok(old.rebuilt(&users, &groups, &members.members, now_ms()))
}

/// Records in the snapshot what the provisioner holds after the writes.
fn bookkeeping(
    snapshot: &mut Snapshot,
    desired: &DesiredState,
    plan: &Plan,
    applied: &Applied,
    users: &[CurrentUser],
    groups: &[CurrentGroup],
) {
    for (d, user) in desired.users.iter().enumerate() {
        let held = (plan.user_matches.contains_key(&d) && !applied.failed_replaces.contains(&d))
            || applied.created_users.contains_key(&d);
        if held {
            snapshot.set_applied_name(&user.entra_id, Some(user.attrs.user_name.clone()));
        }
    }
    // Users the provisioner no longer holds: deleted now, or already gone.
    let mut by_applied: HashMap<String, Vec<String>> = HashMap::new();
    for (id, user) in &snapshot.users {
        if let Some(name) = &user.applied_name {
            by_applied
                .entry(name.to_lowercase())
                .or_default()
                .push(id.clone());
        }
    }
    let held: std::collections::HashSet<String> = users
        .iter()
        .map(|u| u.attrs.user_name.to_lowercase())
        .collect();
    let mut released: Vec<String> = applied
        .deleted_users
        .iter()
        .map(|n| n.to_lowercase())
        .collect();
    released.extend(
        desired
            .removed_users
            .keys()
            .filter(|name| !held.contains(*name))
            .cloned(),
    );
    for name in released {
        for id in by_applied.remove(&name).unwrap_or_default() {
            snapshot.set_applied_name(&id, None);
        }
    }
    for (d, group) in desired.groups.iter().enumerate() {
        let held = (plan.group_matches.contains_key(&d) && !applied.failed_groups.contains(&d))
            || applied.created_groups.contains(&d);
        if held {
            snapshot.set_group_applied(&group.entra_id, true);
        }
    }
    let held: std::collections::HashSet<&str> =
        groups.iter().map(|g| g.external_id.as_str()).collect();
    for id in &applied.deleted_groups {
        snapshot.set_group_applied(id, false);
    }
    for id in &desired.removed_groups {
        if !held.contains(id.as_str()) {
            snapshot.set_group_applied(id, false);
        }
    }
}
