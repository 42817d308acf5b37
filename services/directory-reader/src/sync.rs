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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

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
use crate::reads;
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
    /// For a delta round: the users and the groups (properties or members) it changed.
    touched: Option<(HashSet<String>, HashSet<String>)>,
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
        let started = Instant::now();
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
        let generation = state.as_ref().map_or(0, |s| s.generation);
        let clean = state.as_ref().is_some_and(|s| s.clean);

        let mut resynced = false;
        let mut read = None;
        if let Some((users_link, groups_link)) = cursors {
            match delta_rounds(&client, users_link, groups_link).await {
                Ok((users, groups)) => {
                    if users.changes.is_empty()
                        && groups.changes.is_empty()
                        && clean
                        && request.group_scope.is_empty()
                    {
                        let links = (users.delta_link, groups.delta_link);
                        return self
                            .nothing_changed(tenant, request, &client, state.as_ref(), links)
                            .await;
                    }
                    let mut snapshot = self.snapshot(&tenant.id, generation).await?;
                    let now = now_ms();
                    for change in &users.changes {
                        snapshot.apply_user(change, now);
                    }
                    for change in &groups.changes {
                        snapshot.apply_group(change);
                    }
                    let mut touched_groups = snapshot.dirty.groups.clone();
                    touched_groups.extend(
                        snapshot
                            .dirty
                            .members_added
                            .iter()
                            .chain(&snapshot.dirty.members_removed)
                            .map(|(group, _)| group.clone()),
                    );
                    read = Some(Read {
                        touched: Some((snapshot.dirty.users.clone(), touched_groups)),
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
                let old = self.snapshot(&tenant.id, generation).await?;
                let mut read = full_read(&client, old)
                    .await
                    .map_err(|e| DirectoryError::graph(&e))?;
                read.resynced = resynced;
                read
            }
        };
        let read_time = started.elapsed();

        let desired = desired::compute(&read.snapshot, &rules)
            .map_err(|unknown| reads::entra_group_not_found(&unknown.entry))?;
        let totals = (desired.users.len() as u64, desired.groups.len() as u64);
        // A delta run after a run that left the provisioner in step plans only what the round
        // touched, reading those objects back one by one; otherwise everything is compared.
        let (desired, users, groups, users_before) = match &read.touched {
            Some(touched) if clean && request.group_scope.is_empty() => {
                self.touched_state(&tenant.id, &read.snapshot, desired, touched)
                    .await?
            }
            _ => {
                let (users, groups) = tokio::try_join!(
                    self.provisioner.current_users(&tenant.id),
                    self.provisioner.current_groups(&tenant.id)
                )?;
                let before = users.len() as u64;
                (desired, users, groups, before)
            }
        };
        let removal = if read.full {
            Removal::Unmatched
        } else {
            Removal::Known
        };
        let mut plan = plan::plan(&desired, &users, &groups, removal);
        plan.summary.users_before = users_before;
        plan.summary.full = read.full;
        plan.summary.resynced = read.resynced;
        plan.summary.graph_calls = graph_calls(&client);
        let plan_time = started.elapsed();

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
        let apply_time = started.elapsed();
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
            counts: Some(totals),
        };
        let next = generation + 1;
        self.store
            .save(&tenant.id, &mut read.snapshot, &read.links, &outcome, next)
            .await?;
        self.keep_snapshot(&tenant.id, next, read.snapshot);
        tracing::info!(
            tenant = %tenant.id,
            full = read.full,
            read_ms = read_time.as_millis(),
            plan_ms = (plan_time - read_time).as_millis(),
            apply_ms = (apply_time - plan_time).as_millis(),
            save_ms = (started.elapsed() - apply_time).as_millis(),
            "pull sync phases"
        );
        Ok(response(plan, true))
    }

    /// The tenant's snapshot: the one this process kept from its last run when it is still
    /// the stored one (same generation), else read from the store.
    async fn snapshot(&self, tenant_id: &str, generation: i64) -> Result<Snapshot> {
        let kept = self
            .snapshots
            .lock()
            .ok()
            .and_then(|mut kept| kept.remove(tenant_id))
            .filter(|(kept_generation, _)| *kept_generation == generation);
        match kept {
            Some((_, snapshot)) => Ok(snapshot),
            None => self.store.load_snapshot(tenant_id).await,
        }
    }

    fn keep_snapshot(&self, tenant_id: &str, generation: i64, snapshot: Snapshot) {
        if let Ok(mut kept) = self.snapshots.lock() {
            kept.insert(tenant_id.to_owned(), (generation, snapshot));
        }
    }

    /// The part of the desired state a delta round touched, and the provisioner's objects for
    /// it, each read back by the id the snapshot keeps (or, for a new one, by name): users that
    /// changed or that the provisioner holds but Entra no longer wants; groups that changed,
    /// that hold (through nesting) a changed group or a user that joined or left the desired
    /// state, or that the provisioner holds but Entra no longer wants. Proportional to the
    /// changes, not to the directory.
    async fn touched_state(
        &self,
        tenant_id: &str,
        snapshot: &Snapshot,
        desired: DesiredState,
        (touched_users, touched_groups): &(HashSet<String>, HashSet<String>),
    ) -> Result<(DesiredState, Vec<CurrentUser>, Vec<CurrentGroup>, u64)> {
        let eligible: HashSet<&str> = desired
            .users
            .iter()
            .filter(|u| u.create)
            .map(|u| u.entra_id.as_str())
            .collect();
        let wanted_users: HashSet<&str> =
            desired.users.iter().map(|u| u.entra_id.as_str()).collect();
        let mut user_ids: HashSet<String> = touched_users.clone();
        for (id, user) in &snapshot.users {
            if user.applied_id.is_some() && !wanted_users.contains(id.as_str()) {
                user_ids.insert(id.clone());
            }
        }
        let flipped: Vec<&String> = touched_users
            .iter()
            .filter(|id| {
                eligible.contains(id.as_str())
                    != snapshot
                        .users
                        .get(*id)
                        .is_some_and(|u| u.applied_id.is_some())
            })
            .collect();
        let mut group_ids: HashSet<String> = touched_groups.clone();
        group_ids.extend(snapshot.ancestors(flipped));
        let above = snapshot.ancestors(group_ids.iter());
        group_ids.extend(above);
        let wanted_groups: HashSet<&str> =
            desired.groups.iter().map(|g| g.entra_id.as_str()).collect();
        for (id, group) in &snapshot.groups {
            if group.applied_id.is_some() && !wanted_groups.contains(id.as_str()) {
                group_ids.insert(id.clone());
            }
        }
        let desired = desired.restricted(&user_ids, &group_ids);

        let limit = usize::try_from(self.config.apply_concurrency).unwrap_or(16);
        let mut lookups: Vec<Lookup> = Vec::new();
        for id in &user_ids {
            let held = snapshot.users.get(id).and_then(|u| u.applied_id.clone());
            let want = desired.users.iter().find(|u| &u.entra_id == id);
            lookups.push(Lookup::User {
                held,
                user_name: want.map(|u| u.attrs.user_name.clone()),
                external_id: want
                    .map(|u| u.attrs.external_id.clone())
                    .filter(|e| !e.is_empty()),
            });
        }
        for id in &group_ids {
            let held = snapshot.groups.get(id).and_then(|g| g.applied_id.clone());
            let name = desired
                .groups
                .iter()
                .find(|g| &g.entra_id == id)
                .map(|g| g.display_name.clone());
            lookups.push(Lookup::Group {
                held,
                entra_id: id.clone(),
                display_name: name,
            });
        }
        let mut users: HashMap<String, CurrentUser> = HashMap::new();
        let mut groups: HashMap<String, CurrentGroup> = HashMap::new();
        let mut running = JoinSet::new();
        let mut pending = lookups.into_iter();
        loop {
            while running.len() < limit.max(1) {
                let Some(lookup) = pending.next() else {
                    break;
                };
                let provisioner = self.provisioner.clone();
                let tenant = tenant_id.to_owned();
                running.spawn(async move { lookup.run(&provisioner, &tenant).await });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (found_users, found_groups) = joined
                .map_err(|e| DirectoryError::Internal(format!("a lookup task failed: {e}")))??;
            for user in found_users {
                users.insert(user.id.clone(), user);
            }
            for group in found_groups {
                groups.insert(group.id.clone(), group);
            }
        }
        let before = self.provisioner.count_users(tenant_id).await?;
        Ok((
            desired,
            users.into_values().collect(),
            groups.into_values().collect(),
            before,
        ))
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
            let generation = state.map_or(0, |s| s.generation);
            self.store
                .save(&tenant.id, &mut unchanged, &links, &outcome, generation)
                .await?;
            return Ok(response(plan, true));
        }
        Ok(response(plan, false))
    }
}

/// One read-back of a provisioner object for a delta run.
enum Lookup {
    User {
        held: Option<String>,
        user_name: Option<String>,
        external_id: Option<String>,
    },
    Group {
        held: Option<String>,
        entra_id: String,
        display_name: Option<String>,
    },
}

impl Lookup {
    /// By the id the snapshot keeps; else (new, or gone from the provisioner) by what the plan
    /// matches on: userName then externalId, externalId then display name.
    async fn run(
        self,
        provisioner: &crate::provisioner::Provisioner,
        tenant_id: &str,
    ) -> Result<(Vec<CurrentUser>, Vec<CurrentGroup>)> {
        match self {
            Lookup::User {
                held,
                user_name,
                external_id,
            } => {
                let mut found = Vec::new();
                if let Some(id) = held
                    && let Some(user) = provisioner.get_user(tenant_id, &id).await?
                {
                    found.push(user);
                }
                if let Some(name) = user_name {
                    found.extend(provisioner.find_users(tenant_id, "userName", &name).await?);
                }
                if found.is_empty()
                    && let Some(external_id) = external_id
                {
                    found.extend(
                        provisioner
                            .find_users(tenant_id, "externalId", &external_id)
                            .await?,
                    );
                }
                Ok((found, Vec::new()))
            }
            Lookup::Group {
                held,
                entra_id,
                display_name,
            } => {
                if let Some(id) = held
                    && let Some(group) = provisioner.get_group(tenant_id, &id).await?
                {
                    return Ok((Vec::new(), vec![group]));
                }
                let mut found = provisioner
                    .find_groups(tenant_id, "externalId", &entra_id)
                    .await?;
                if found.is_empty()
                    && let Some(name) = display_name
                {
                    found = provisioner
                        .find_groups(tenant_id, "displayName", &name)
                        .await?;
                }
                Ok((Vec::new(), found))
            }
        }
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
        touched: None,
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

/// Records in the snapshot what the provisioner holds after the writes: each user's id and
/// userName, each group's id.
fn bookkeeping(
    snapshot: &mut Snapshot,
    desired: &DesiredState,
    plan: &Plan,
    applied: &Applied,
    users: &[CurrentUser],
    groups: &[CurrentGroup],
) {
    for (d, user) in desired.users.iter().enumerate() {
        let id = match plan.user_matches.get(&d) {
            Some(id) if !applied.failed_replaces.contains(&d) => Some(id),
            Some(_) => None,
            None => applied.created_users.get(&d),
        };
        if let Some(id) = id {
            snapshot.set_applied(
                &user.entra_id,
                Some((id.clone(), user.attrs.user_name.clone())),
            );
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
    let held: HashSet<String> = users
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
            snapshot.set_applied(&id, None);
        }
    }
    for (d, group) in desired.groups.iter().enumerate() {
        let id = match plan.group_matches.get(&d) {
            Some(id) if !applied.failed_groups.contains(&d) => Some(id),
            Some(_) => None,
            None => applied.created_groups.get(&d),
        };
        if let Some(id) = id {
            snapshot.set_group_applied(&group.entra_id, Some(id.clone()));
        }
    }
    let held: HashSet<&str> = groups.iter().map(|g| g.external_id.as_str()).collect();
    for id in &applied.deleted_groups {
        snapshot.set_group_applied(id, None);
    }
    for id in &desired.removed_groups {
        if !held.contains(id.as_str()) {
            snapshot.set_group_applied(id, None);
        }
    }
}
