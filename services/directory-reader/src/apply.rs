//! Carrying out a plan through the provisioner's contract, the apply path SCIM uses: typed
//! user fields, groups by CreateGroup (externalId = the Entra object id), UpdateGroup adds and
//! removes, DeleteGroup, every write marked `WRITE_SOURCE_PULL`.
//!
//! Writes run with bounded concurrency (user and group creates are group-committed by the
//! provisioner, so many go at once; other group writes are long transactions there, so few do;
//! a write answered DATABASE_UNAVAILABLE wrote nothing and is tried again),
//! in an order that lets each find what it needs: users first (groups name their ids), group
//! deletions before creations (a freed name can be taken), user deletions last. A write the
//! provisioner refuses for its own resource (a taken name, a version conflict) is counted and
//! the run goes on: the next run plans it again. A failure that would fail every write (the
//! provisioner unreachable, the tenant switched to push mode) stops the run.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use dirsync_proto::errors::ErrorReason;
use dirsync_proto::provisioner::v1 as pb;
use tokio::task::JoinSet;

use crate::desired::DesiredState;
use crate::error::{DirectoryError, Result};
use crate::plan::{MemberRef, Plan};
use crate::provisioner::Provisioner;

/// Member ids per CreateGroup or UpdateGroup call, so no message grows with a group's size.
const MEMBER_CHUNK: usize = 5_000;
/// Group creates and updates in flight at most. The provisioner commits the creates waiting
/// together, so as many are in flight as it puts in one transaction; updates are a transaction
/// each there and only queue, but each carries at most one member chunk, so the memory held
/// stays bounded.
const GROUP_WRITES: usize = 32;
/// Group deletions in flight at most: a transaction each in the provisioner, with its members.
const GROUP_DELETES: usize = 4;
/// Replaces and deletions in flight at most: one short transaction each.
const SHORT_WRITES: usize = 32;
/// Tries of a write the provisioner answered DATABASE_UNAVAILABLE (it wrote nothing).
const TRIES: u32 = 3;
/// Failure messages kept for the outcome.
const KEPT_FAILURES: usize = 5;

/// What the writes did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Desired user index → the id the provisioner gave it.
    pub(crate) created_users: HashMap<usize, String>,
    /// Desired user indexes whose replace failed.
    pub(crate) failed_replaces: HashSet<usize>,
    /// userNames (as held) of the users deleted.
    pub(crate) deleted_users: Vec<String>,
    /// Desired group indexes whose writes failed.
    pub(crate) failed_groups: HashSet<usize>,
    /// Desired group index → the id the provisioner gave it.
    pub(crate) created_groups: HashMap<usize, String>,
    /// External ids of the groups deleted.
    pub(crate) deleted_groups: Vec<String>,
    pub(crate) failures: usize,
    pub(crate) messages: Vec<String>,
}

impl Applied {
    fn failed(&mut self, what: &str, error: &DirectoryError) {
        self.failures += 1;
        if self.messages.len() < KEPT_FAILURES {
            self.messages.push(format!("{what}: {error}"));
        }
        tracing::warn!(%error, what, "pull sync write refused");
    }
}

/// A failure no other write would escape.
fn is_fatal(error: &DirectoryError) -> bool {
    match error {
        DirectoryError::Provisioner(status) => match dirsync_proto::errors::read(status).reason {
            Some(ErrorReason::WrongMode | ErrorReason::TenantNotFound) => true,
            Some(_) => false,
            // No dirsync reason: the provisioner was not reached, or failed as a whole.
            None => true,
        },
        DirectoryError::Refused(_) => false,
        _ => true,
    }
}

/// Runs `work` for each item, at most `limit` at once; collects each result with its key.
/// Stops starting new work after a fatal failure and returns it.
async fn bounded<K, T, F, Fut>(
    items: Vec<(K, T)>,
    limit: usize,
    work: F,
) -> Result<Vec<(K, Result<String>)>>
where
    K: Send + 'static,
    T: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<String>> + Send + 'static,
{
    let mut results = Vec::with_capacity(items.len());
    let mut running = JoinSet::new();
    let mut items = items.into_iter();
    let mut fatal = None;
    loop {
        while fatal.is_none() && running.len() < limit.max(1) {
            let Some((key, item)) = items.next() else {
                break;
            };
            let future = work(item);
            running.spawn(async move { (key, future.await) });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (key, result) =
            joined.map_err(|e| DirectoryError::Internal(format!("a write task failed: {e}")))?;
        if let Err(error) = &result
            && is_fatal(error)
            && fatal.is_none()
        {
            fatal = Some(result);
            continue;
        }
        results.push((key, result));
    }
    match fatal {
        Some(Err(error)) => Err(error),
        _ => Ok(results),
    }
}

/// `write`, tried again (after a short wait) while the provisioner answers that its database
/// is unavailable: that answer means nothing was written, so a create is safe to repeat.
async fn retrying<T, F, Fut>(write: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match write().await {
            Err(error)
                if tries < TRIES && error.reason() == Some(ErrorReason::DatabaseUnavailable) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(tries))).await;
            }
            other => return other,
        }
    }
}

/// Applies `plan` (made from `desired`) to the tenant's desired state.
pub(crate) async fn apply(
    provisioner: &Provisioner,
    tenant_id: &str,
    desired: &DesiredState,
    plan: &Plan,
    limit: usize,
) -> Result<Applied> {
    let mut applied = Applied::default();

    // Users: creates and replaces.
    let creates: Vec<(usize, crate::desired::UserAttributes)> = plan
        .user_creates
        .iter()
        .filter_map(|d| desired.users.get(*d).map(|u| (*d, u.attrs.clone())))
        .collect();
    let results = bounded(creates, limit, |attrs| {
        let provisioner = provisioner.clone();
        let tenant = tenant_id.to_owned();
        async move { retrying(|| provisioner.create_user(&tenant, &attrs)).await }
    })
    .await?;
    for (d, result) in results {
        match result {
            Ok(id) => {
                applied.created_users.insert(d, id);
            }
            Err(error) => applied.failed(&user_name(desired, d), &error),
        }
    }
    let replaces: Vec<(usize, (String, i64, crate::desired::UserAttributes))> = plan
        .user_replaces
        .iter()
        .filter_map(|r| {
            desired
                .users
                .get(r.desired)
                .map(|u| (r.desired, (r.id.clone(), r.version, u.attrs.clone())))
        })
        .collect();
    let results = bounded(replaces, limit.min(SHORT_WRITES), |(id, version, attrs)| {
        let provisioner = provisioner.clone();
        let tenant = tenant_id.to_owned();
        async move {
            retrying(|| provisioner.replace_user(&tenant, &id, version, &attrs))
                .await
                .map(|()| id)
        }
    })
    .await?;
    for (d, result) in results {
        if let Err(error) = result {
            applied.failed_replaces.insert(d);
            applied.failed(&user_name(desired, d), &error);
        }
    }

    // Groups: deletions, then creations and updates.
    let deletes: Vec<(String, (String, String))> = plan
        .group_deletes
        .iter()
        .map(|g| {
            (
                g.external_id.clone(),
                (g.id.clone(), g.display_name.clone()),
            )
        })
        .collect();
    let results = bounded(deletes, limit.min(GROUP_DELETES), |(id, name)| {
        let provisioner = provisioner.clone();
        let tenant = tenant_id.to_owned();
        async move {
            match retrying(|| provisioner.delete_group(&tenant, &id)).await {
                Err(error) if error.reason() == Some(ErrorReason::GroupNotFound) => Ok(name),
                other => other.map(|()| name),
            }
        }
    })
    .await?;
    for (external_id, result) in results {
        match result {
            Ok(_) => applied.deleted_groups.push(external_id),
            Err(error) => applied.failed(&format!("group {external_id}"), &error),
        }
    }
    let resolve = |members: &[MemberRef]| -> Vec<String> {
        members
            .iter()
            .filter_map(|m| match m {
                MemberRef::Existing(id) => Some(id.clone()),
                MemberRef::Created(d) => applied.created_users.get(d).cloned(),
            })
            .collect()
    };
    let mut group_writes: Vec<(usize, GroupWrite)> = Vec::new();
    for create in &plan.group_creates {
        let Some(group) = desired.groups.get(create.desired) else {
            continue;
        };
        group_writes.push((
            create.desired,
            GroupWrite::Create {
                display_name: group.display_name.clone(),
                external_id: group.entra_id.clone(),
                members: resolve(&create.members),
            },
        ));
    }
    for update in &plan.group_updates {
        group_writes.push((
            update.desired,
            GroupWrite::Update(pb::UpdateGroupRequest {
                tenant: tenant_id.to_owned(),
                id: update.id.clone(),
                display_name: update.display_name.clone(),
                external_id: update.external_id.clone(),
                remove_member_user_ids: update.remove.clone(),
                add_member_user_ids: resolve(&update.add),
                ..Default::default()
            }),
        ));
    }
    let results = bounded(group_writes, limit.min(GROUP_WRITES), |write| {
        let provisioner = provisioner.clone();
        let tenant = tenant_id.to_owned();
        async move { write.run(&provisioner, &tenant).await }
    })
    .await?;
    let created: HashSet<usize> = plan.group_creates.iter().map(|c| c.desired).collect();
    for (d, result) in results {
        match result {
            Ok(id) if created.contains(&d) => {
                applied.created_groups.insert(d, id);
            }
            Ok(_) => {}
            Err(error) => {
                applied.failed_groups.insert(d);
                let name = desired
                    .groups
                    .get(d)
                    .map(|g| g.display_name.clone())
                    .unwrap_or_default();
                applied.failed(&format!("group {name}"), &error);
            }
        }
    }

    // Users: deletions last.
    let deletes: Vec<(String, String)> = plan
        .user_deletes
        .iter()
        .map(|u| (u.user_name.clone(), u.id.clone()))
        .collect();
    let results = bounded(deletes, limit.min(SHORT_WRITES), |id| {
        let provisioner = provisioner.clone();
        let tenant = tenant_id.to_owned();
        async move {
            match retrying(|| provisioner.delete_user(&tenant, &id)).await {
                Err(error) if error.reason() == Some(ErrorReason::UserNotFound) => Ok(id),
                other => other.map(|()| id),
            }
        }
    })
    .await?;
    for (name, result) in results {
        match result {
            Ok(_) => applied.deleted_users.push(name),
            Err(error) => applied.failed(&name, &error),
        }
    }
    Ok(applied)
}

fn user_name(desired: &DesiredState, d: usize) -> String {
    desired
        .users
        .get(d)
        .map(|u| u.attrs.user_name.clone())
        .unwrap_or_default()
}

/// One group's writes, in member chunks.
enum GroupWrite {
    Create {
        display_name: String,
        external_id: String,
        members: Vec<String>,
    },
    Update(pb::UpdateGroupRequest),
}

impl GroupWrite {
    async fn run(self, provisioner: &Provisioner, tenant_id: &str) -> Result<String> {
        match self {
            GroupWrite::Create {
                display_name,
                external_id,
                mut members,
            } => {
                let rest = members.split_off(members.len().min(MEMBER_CHUNK));
                let id = retrying(|| {
                    provisioner.create_group(
                        tenant_id,
                        &display_name,
                        &external_id,
                        members.clone(),
                    )
                })
                .await?;
                for chunk in rest.chunks(MEMBER_CHUNK) {
                    let call = pb::UpdateGroupRequest {
                        tenant: tenant_id.to_owned(),
                        id: id.clone(),
                        add_member_user_ids: chunk.to_vec(),
                        ..Default::default()
                    };
                    retrying(|| provisioner.update_group(call.clone())).await?;
                }
                Ok(id)
            }
            GroupWrite::Update(mut request) => {
                let id = request.id.clone();
                let mut remove = std::mem::take(&mut request.remove_member_user_ids);
                let mut add = std::mem::take(&mut request.add_member_user_ids);
                let mut first = true;
                while first || !remove.is_empty() || !add.is_empty() {
                    let take_remove = remove.len().min(MEMBER_CHUNK);
                    let take_add = add.len().min(MEMBER_CHUNK - take_remove);
                    let mut call = pb::UpdateGroupRequest {
                        tenant: request.tenant.clone(),
                        id: id.clone(),
                        remove_member_user_ids: remove.drain(..take_remove).collect(),
                        add_member_user_ids: add.drain(..take_add).collect(),
                        ..Default::default()
                    };
                    if first {
                        call.display_name = request.display_name.take();
                        call.external_id = request.external_id.take();
                    }
                    first = false;
                    retrying(|| provisioner.update_group(call.clone())).await?;
                }
                Ok(id)
            }
        }
    }
}
