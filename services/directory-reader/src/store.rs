//! The directory-reader's tables (see `schema`): connections, pull settings, sync state and
//! its lease, delta cursors, and the snapshot, written back in bounded transactions.
//!
//! SQLite takes one writer at a time and, in the all-in-one process, shares its file with the
//! provisioner: so no transaction here holds the write lock for long. A large snapshot write
//! first clears the delta cursors, then writes in chunks, and sets the cursors last; a crash in
//! between leaves no cursor, and the next run reads Entra in full.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, ExprTrait, QueryFilter,
    QuerySelect, Set,
};

use crate::entity::{
    connection, cursor, pull_settings, snapshot_group, snapshot_member, snapshot_user, sync_state,
};
use crate::error::{DirectoryError, Result};
use crate::snapshot::{
    EntraGroup, EntraUser, MemberKind, SnapGroup, SnapUser, Snapshot, UserState,
};

/// Rows per INSERT (well inside every backend's parameter limit).
const ROWS_PER_STATEMENT: usize = 200;
/// Rows per transaction when a snapshot is written in chunks.
const ROWS_PER_TRANSACTION: usize = 2_000;
/// Snapshot changes written in one transaction with the cursors; more go in chunks.
const SMALL_WRITE: usize = 2_000;

pub(crate) const USERS: &str = "users";
pub(crate) const GROUPS: &str = "groups";

/// How a run ended, as `GetSyncState` reports it.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    pub(crate) at: i64,
    /// The run read Entra in full and applied it (its snapshot and cursors are kept).
    pub(crate) full: bool,
    pub(crate) ok: bool,
    pub(crate) text: String,
    /// The provisioner holds the snapshot's desired state under the stored settings.
    pub(crate) clean: bool,
    /// Users and groups in the desired state, when the run computed it.
    pub(crate) counts: Option<(u64, u64)>,
}

#[derive(Clone, Debug)]
pub(crate) struct Store {
    db: DatabaseConnection,
    /// On SQLite, the one connection writes go through, tuned for them (see
    /// [`dirsync_store::checkpoint`]): a snapshot of 100k users is half a million rows.
    writer: Option<(
        DatabaseConnection,
        std::sync::Arc<dirsync_store::checkpoint::Checkpointer>,
    )>,
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    pub(crate) fn new(db: DatabaseConnection) -> Self {
        Self { db, writer: None }
    }

    /// Writes through `writer`, whose commits leave checkpoints to `checkpointer`.
    #[must_use]
    pub(crate) fn with_writer(
        mut self,
        writer: DatabaseConnection,
        checkpointer: dirsync_store::checkpoint::Checkpointer,
    ) -> Self {
        self.writer = Some((writer, std::sync::Arc::new(checkpointer)));
        self
    }

    async fn write(&self) -> Result<DatabaseTransaction> {
        let db = self.writer.as_ref().map_or(&self.db, |(writer, _)| writer);
        Ok(dirsync_store::begin_write(db).await?)
    }

    // ----- connections and settings -----

    pub(crate) async fn connection(&self, tenant_id: &str) -> Result<Option<connection::Model>> {
        Ok(connection::Entity::find_by_id(tenant_id.to_owned())
            .one(&self.db)
            .await?)
    }

    pub(crate) async fn put_connection(&self, model: connection::Model) -> Result<()> {
        let txn = self.write().await?;
        connection::Entity::insert(connection::ActiveModel::from(model))
            .on_conflict(
                OnConflict::column(connection::Column::TenantId)
                    .update_columns([
                        connection::Column::EntraTenantId,
                        connection::Column::ClientId,
                        connection::Column::CredentialKind,
                        connection::Column::CredentialRef,
                        connection::Column::Cloud,
                        connection::Column::LoginUrl,
                        connection::Column::GraphUrl,
                        connection::Column::Organization,
                        connection::Column::CheckedAt,
                        connection::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    pub(crate) async fn touch_connection(
        &self,
        tenant_id: &str,
        organization: &str,
        at: i64,
    ) -> Result<()> {
        connection::Entity::update_many()
            .col_expr(connection::Column::Organization, Expr::value(organization))
            .col_expr(connection::Column::CheckedAt, Expr::value(at))
            .filter(connection::Column::TenantId.eq(tenant_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Tenants with an Entra connection.
    pub(crate) async fn connected_tenants(&self) -> Result<Vec<String>> {
        Ok(connection::Entity::find()
            .select_only()
            .column(connection::Column::TenantId)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    pub(crate) async fn settings(&self, tenant_id: &str) -> Result<Option<pull_settings::Model>> {
        Ok(pull_settings::Entity::find_by_id(tenant_id.to_owned())
            .one(&self.db)
            .await?)
    }

    /// Stores the settings; the next run compares everything again (`clean` off).
    pub(crate) async fn put_settings(&self, model: pull_settings::Model) -> Result<()> {
        let txn = self.write().await?;
        let tenant_id = model.tenant_id.clone();
        pull_settings::Entity::insert(pull_settings::ActiveModel::from(model))
            .on_conflict(
                OnConflict::column(pull_settings::Column::TenantId)
                    .update_columns([
                        pull_settings::Column::GroupScope,
                        pull_settings::Column::UsernameAttribute,
                        pull_settings::Column::DeletionGuardPercent,
                        pull_settings::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        sync_state::Entity::update_many()
            .col_expr(sync_state::Column::Clean, Expr::value(false))
            .filter(sync_state::Column::TenantId.eq(tenant_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    // ----- sync state and its lease -----

    pub(crate) async fn sync_state(&self, tenant_id: &str) -> Result<Option<sync_state::Model>> {
        Ok(sync_state::Entity::find_by_id(tenant_id.to_owned())
            .one(&self.db)
            .await?)
    }

    async fn ensure_state_row(&self, txn: &DatabaseTransaction, tenant_id: &str) -> Result<()> {
        sync_state::Entity::insert(sync_state::ActiveModel {
            tenant_id: Set(tenant_id.to_owned()),
            last_full_sync_at: Set(None),
            last_sync_at: Set(None),
            last_outcome: Set(String::new()),
            last_ok: Set(false),
            clean: Set(false),
            users: Set(0),
            groups: Set(0),
            generation: Set(0),
            lease_owner: Set(None),
            lease_until: Set(0),
        })
        .on_conflict(
            OnConflict::column(sync_state::Column::TenantId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }

    /// Takes the tenant's run lease until `until` unless another holder's lease still runs.
    pub(crate) async fn try_lease(
        &self,
        tenant_id: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<bool> {
        let txn = self.write().await?;
        self.ensure_state_row(&txn, tenant_id).await?;
        let taken = sync_state::Entity::update_many()
            .col_expr(sync_state::Column::LeaseOwner, Expr::value(owner))
            .col_expr(sync_state::Column::LeaseUntil, Expr::value(until))
            .filter(sync_state::Column::TenantId.eq(tenant_id))
            .filter(
                sync_state::Column::LeaseOwner
                    .is_null()
                    .or(sync_state::Column::LeaseUntil.lt(now)),
            )
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(taken.rows_affected == 1)
    }

    pub(crate) async fn renew_lease(&self, tenant_id: &str, owner: &str, until: i64) -> Result<()> {
        sync_state::Entity::update_many()
            .col_expr(sync_state::Column::LeaseUntil, Expr::value(until))
            .filter(sync_state::Column::TenantId.eq(tenant_id))
            .filter(sync_state::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub(crate) async fn release_lease(&self, tenant_id: &str, owner: &str) -> Result<()> {
        sync_state::Entity::update_many()
            .col_expr(
                sync_state::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(sync_state::Column::LeaseUntil, Expr::value(0i64))
            .filter(sync_state::Column::TenantId.eq(tenant_id))
            .filter(sync_state::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn write_outcome(
        &self,
        txn: &DatabaseTransaction,
        tenant_id: &str,
        outcome: &Outcome,
    ) -> Result<()> {
        self.ensure_state_row(txn, tenant_id).await?;
        let mut update = sync_state::Entity::update_many()
            .col_expr(sync_state::Column::LastSyncAt, Expr::value(outcome.at))
            .col_expr(
                sync_state::Column::LastOutcome,
                Expr::value(outcome.text.clone()),
            )
            .col_expr(sync_state::Column::LastOk, Expr::value(outcome.ok))
            .col_expr(sync_state::Column::Clean, Expr::value(outcome.clean))
            .filter(sync_state::Column::TenantId.eq(tenant_id));
        // A full read that was applied, even with some writes refused: the next runs read
        // deltas from it (the refused writes are planned again), not everything again.
        if outcome.full {
            update = update.col_expr(sync_state::Column::LastFullSyncAt, Expr::value(outcome.at));
        }
        if let Some((users, groups)) = outcome.counts {
            update = update
                .col_expr(sync_state::Column::Users, Expr::value(count(users)))
                .col_expr(sync_state::Column::Groups, Expr::value(count(groups)));
        }
        update.exec(txn).await?;
        Ok(())
    }

    /// Records the outcome of a run that changed nothing else (failed, or stopped).
    pub(crate) async fn record_outcome(&self, tenant_id: &str, outcome: &Outcome) -> Result<()> {
        let txn = self.write().await?;
        self.write_outcome(&txn, tenant_id, outcome).await?;
        txn.commit().await?;
        Ok(())
    }

    // ----- cursors -----

    /// The users and groups deltaLinks, when both are kept.
    pub(crate) async fn cursors(&self, tenant_id: &str) -> Result<Option<(String, String)>> {
        let rows = cursor::Entity::find()
            .filter(cursor::Column::TenantId.eq(tenant_id))
            .all(&self.db)
            .await?;
        let link = |resource: &str| {
            rows.iter()
                .find(|row| row.resource == resource)
                .and_then(|row| row.delta_link.clone())
        };
        Ok(link(USERS).zip(link(GROUPS)))
    }

    async fn clear_cursors(&self, tenant_id: &str) -> Result<()> {
        cursor::Entity::update_many()
            .col_expr(
                cursor::Column::DeltaLink,
                Expr::value(Option::<String>::None),
            )
            .filter(cursor::Column::TenantId.eq(tenant_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn set_cursors(
        &self,
        txn: &DatabaseTransaction,
        tenant_id: &str,
        links: &(String, String),
        full: bool,
        at: i64,
    ) -> Result<()> {
        for (resource, link) in [(USERS, &links.0), (GROUPS, &links.1)] {
            let row = cursor::ActiveModel {
                tenant_id: Set(tenant_id.to_owned()),
                resource: Set(resource.to_owned()),
                delta_link: Set(Some(link.clone())),
                last_full_sync_at: Set(full.then_some(at)),
                last_delta_sync_at: Set((!full).then_some(at)),
            };
            let mut columns = vec![cursor::Column::DeltaLink];
            columns.push(if full {
                cursor::Column::LastFullSyncAt
            } else {
                cursor::Column::LastDeltaSyncAt
            });
            cursor::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([cursor::Column::TenantId, cursor::Column::Resource])
                        .update_columns(columns)
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await?;
        }
        Ok(())
    }

    // ----- the snapshot -----

    pub(crate) async fn load_snapshot(&self, tenant_id: &str) -> Result<Snapshot> {
        let corrupt = |what: &str, error: serde_json::Error| {
            DirectoryError::Internal(format!("a stored snapshot {what} does not parse: {error}"))
        };
        let mut users = HashMap::new();
        for row in snapshot_user::Entity::find()
            .filter(snapshot_user::Column::TenantId.eq(tenant_id))
            .all(&self.db)
            .await?
        {
            let user: EntraUser =
                serde_json::from_str(&row.data).map_err(|e| corrupt("user", e))?;
            users.insert(
                row.entra_id,
                SnapUser {
                    user,
                    applied_id: row.applied_id,
                    applied_name: row.applied_name,
                    state: UserState::parse(&row.state),
                    state_since: row.state_since,
                },
            );
        }
        let mut groups = HashMap::new();
        for row in snapshot_group::Entity::find()
            .filter(snapshot_group::Column::TenantId.eq(tenant_id))
            .all(&self.db)
            .await?
        {
            let group: EntraGroup =
                serde_json::from_str(&row.data).map_err(|e| corrupt("group", e))?;
            groups.insert(
                row.entra_id,
                SnapGroup {
                    group,
                    applied_id: row.applied_id,
                    gone: row.gone,
                },
            );
        }
        let members = snapshot_member::Entity::find()
            .filter(snapshot_member::Column::TenantId.eq(tenant_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                (
                    row.group_id,
                    row.member_id,
                    MemberKind::parse(&row.member_kind),
                )
            })
            .collect();
        Ok(Snapshot::loaded(users, groups, members))
    }

    /// Writes back what changed in `snapshot`, then the new cursors, the outcome and the
    /// snapshot's `generation`; the dirty marks are cleared.
    pub(crate) async fn save(
        &self,
        tenant_id: &str,
        snapshot: &mut Snapshot,
        links: &(String, String),
        outcome: &Outcome,
        generation: i64,
    ) -> Result<()> {
        let dirty = std::mem::take(&mut snapshot.dirty);
        let chunked = dirty.rewrite || dirty.len() > SMALL_WRITE;
        if chunked {
            self.clear_cursors(tenant_id).await?;
        }
        let mut batch = Batch::new(self, chunked).await?;
        if dirty.rewrite {
            snapshot_user::Entity::delete_many()
                .filter(snapshot_user::Column::TenantId.eq(tenant_id))
                .exec(batch.txn()?)
                .await?;
            snapshot_group::Entity::delete_many()
                .filter(snapshot_group::Column::TenantId.eq(tenant_id))
                .exec(batch.txn()?)
                .await?;
            snapshot_member::Entity::delete_many()
                .filter(snapshot_member::Column::TenantId.eq(tenant_id))
                .exec(batch.txn()?)
                .await?;
            batch.rotate().await?;
            let ids: Vec<&String> = snapshot.users.keys().collect();
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                insert_users(batch.txn()?, tenant_id, snapshot, chunk, false).await?;
                batch.wrote(chunk.len()).await?;
            }
            let ids: Vec<&String> = snapshot.groups.keys().collect();
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                insert_groups(batch.txn()?, tenant_id, snapshot, chunk, false).await?;
                batch.wrote(chunk.len()).await?;
            }
            let pairs: Vec<(&String, &String, MemberKind)> = snapshot
                .members
                .iter()
                .flat_map(|(group, members)| {
                    members
                        .iter()
                        .map(move |(member, kind)| (group, member, *kind))
                })
                .collect();
            for chunk in pairs.chunks(ROWS_PER_STATEMENT) {
                insert_members(batch.txn()?, tenant_id, chunk).await?;
                batch.wrote(chunk.len()).await?;
            }
        } else {
            let (present, absent): (Vec<&String>, Vec<&String>) = dirty
                .users
                .iter()
                .partition(|id| snapshot.users.contains_key(*id));
            for chunk in present.chunks(ROWS_PER_STATEMENT) {
                insert_users(batch.txn()?, tenant_id, snapshot, chunk, true).await?;
                batch.wrote(chunk.len()).await?;
            }
            for chunk in absent.chunks(ROWS_PER_STATEMENT) {
                snapshot_user::Entity::delete_many()
                    .filter(snapshot_user::Column::TenantId.eq(tenant_id))
                    .filter(
                        snapshot_user::Column::EntraId.is_in(chunk.iter().map(|id| id.as_str())),
                    )
                    .exec(batch.txn()?)
                    .await?;
                batch.wrote(chunk.len()).await?;
            }
            let (present, absent): (Vec<&String>, Vec<&String>) = dirty
                .groups
                .iter()
                .partition(|id| snapshot.groups.contains_key(*id));
            for chunk in present.chunks(ROWS_PER_STATEMENT) {
                insert_groups(batch.txn()?, tenant_id, snapshot, chunk, true).await?;
                batch.wrote(chunk.len()).await?;
            }
            for chunk in absent.chunks(ROWS_PER_STATEMENT) {
                snapshot_group::Entity::delete_many()
                    .filter(snapshot_group::Column::TenantId.eq(tenant_id))
                    .filter(
                        snapshot_group::Column::EntraId.is_in(chunk.iter().map(|id| id.as_str())),
                    )
                    .exec(batch.txn()?)
                    .await?;
                batch.wrote(chunk.len()).await?;
            }
            let mut removed: HashMap<&str, Vec<&str>> = HashMap::new();
            for (group, member) in &dirty.members_removed {
                removed.entry(group).or_default().push(member);
            }
            for (group, members) in removed {
                for chunk in members.chunks(ROWS_PER_STATEMENT) {
                    snapshot_member::Entity::delete_many()
                        .filter(snapshot_member::Column::TenantId.eq(tenant_id))
                        .filter(snapshot_member::Column::GroupId.eq(group))
                        .filter(snapshot_member::Column::MemberId.is_in(chunk.iter().copied()))
                        .exec(batch.txn()?)
                        .await?;
                    batch.wrote(chunk.len()).await?;
                }
            }
            let added: Vec<(&String, &String, MemberKind)> = dirty
                .members_added
                .iter()
                .filter_map(|(group, member)| {
                    let kind = snapshot.members.get(group)?.get(member)?;
                    Some((group, member, *kind))
                })
                .collect();
            for chunk in added.chunks(ROWS_PER_STATEMENT) {
                insert_members(batch.txn()?, tenant_id, chunk).await?;
                batch.wrote(chunk.len()).await?;
            }
        }
        batch.rotate().await?;
        let txn = batch.txn()?;
        self.set_cursors(txn, tenant_id, links, outcome.full, outcome.at)
            .await?;
        self.write_outcome(txn, tenant_id, outcome).await?;
        sync_state::Entity::update_many()
            .col_expr(sync_state::Column::Generation, Expr::value(generation))
            .filter(sync_state::Column::TenantId.eq(tenant_id))
            .exec(txn)
            .await?;
        batch.finish().await
    }
}

/// Writes split across transactions of bounded size (or, for a small write, one).
struct Batch<'a> {
    store: &'a Store,
    txn: Option<DatabaseTransaction>,
    chunked: bool,
    rows: usize,
}

impl<'a> Batch<'a> {
    async fn new(store: &'a Store, chunked: bool) -> Result<Self> {
        Ok(Self {
            store,
            txn: Some(store.write().await?),
            chunked,
            rows: 0,
        })
    }

    fn txn(&self) -> Result<&DatabaseTransaction> {
        self.txn.as_ref().ok_or_else(|| {
            DirectoryError::Internal("snapshot write without a transaction".to_owned())
        })
    }

    async fn wrote(&mut self, rows: usize) -> Result<()> {
        self.rows += rows;
        if self.chunked && self.rows >= ROWS_PER_TRANSACTION {
            self.rotate().await?;
        }
        Ok(())
    }

    /// Commits what was written so far and begins anew (only when writing in chunks).
    async fn rotate(&mut self) -> Result<()> {
        if !self.chunked {
            return Ok(());
        }
        if let Some(txn) = self.txn.take() {
            txn.commit().await?;
        }
        self.txn = Some(self.store.write().await?);
        self.rows = 0;
        Ok(())
    }

    async fn finish(mut self) -> Result<()> {
        if let Some(txn) = self.txn.take() {
            txn.commit().await?;
        }
        Ok(())
    }
}

async fn insert_users(
    txn: &DatabaseTransaction,
    tenant_id: &str,
    snapshot: &Snapshot,
    ids: &[&String],
    upsert: bool,
) -> Result<()> {
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(user) = snapshot.users.get(*id) else {
            continue;
        };
        let data = serde_json::to_string(&user.user)
            .map_err(|e| DirectoryError::Internal(format!("snapshot user: {e}")))?;
        rows.push(snapshot_user::ActiveModel {
            tenant_id: Set(tenant_id.to_owned()),
            entra_id: Set((*id).clone()),
            data: Set(data),
            applied_id: Set(user.applied_id.clone()),
            applied_name: Set(user.applied_name.clone()),
            state: Set(user.state.as_str().to_owned()),
            state_since: Set(user.state_since),
        });
    }
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = snapshot_user::Entity::insert_many(rows);
    if upsert {
        insert = insert.on_conflict(
            OnConflict::columns([
                snapshot_user::Column::TenantId,
                snapshot_user::Column::EntraId,
            ])
            .update_columns([
                snapshot_user::Column::Data,
                snapshot_user::Column::AppliedName,
                snapshot_user::Column::State,
                snapshot_user::Column::StateSince,
            ])
            .to_owned(),
        );
    }
    insert.exec_without_returning(txn).await?;
    Ok(())
}

async fn insert_groups(
    txn: &DatabaseTransaction,
    tenant_id: &str,
    snapshot: &Snapshot,
    ids: &[&String],
    upsert: bool,
) -> Result<()> {
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(group) = snapshot.groups.get(*id) else {
            continue;
        };
        let data = serde_json::to_string(&group.group)
            .map_err(|e| DirectoryError::Internal(format!("snapshot group: {e}")))?;
        rows.push(snapshot_group::ActiveModel {
            tenant_id: Set(tenant_id.to_owned()),
            entra_id: Set((*id).clone()),
            data: Set(data),
            applied_id: Set(group.applied_id.clone()),
            gone: Set(group.gone),
        });
    }
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = snapshot_group::Entity::insert_many(rows);
    if upsert {
        insert = insert.on_conflict(
            OnConflict::columns([
                snapshot_group::Column::TenantId,
                snapshot_group::Column::EntraId,
            ])
            .update_columns([
                snapshot_group::Column::Data,
                snapshot_group::Column::AppliedId,
                snapshot_group::Column::Gone,
            ])
            .to_owned(),
        );
    }
    insert.exec_without_returning(txn).await?;
    Ok(())
}

async fn insert_members(
    txn: &DatabaseTransaction,
    tenant_id: &str,
    pairs: &[(&String, &String, MemberKind)],
) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let rows = pairs
        .iter()
        .map(|(group, member, kind)| snapshot_member::ActiveModel {
            tenant_id: Set(tenant_id.to_owned()),
            group_id: Set((*group).clone()),
            member_id: Set((*member).clone()),
            member_kind: Set(kind.as_str().to_owned()),
        });
    snapshot_member::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                snapshot_member::Column::TenantId,
                snapshot_member::Column::GroupId,
                snapshot_member::Column::MemberId,
            ])
            .update_column(snapshot_member::Column::MemberKind)
            .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}
