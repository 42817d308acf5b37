//! The handle every provisioner API shares: the connection pool and, on
//! SQLite, the gate that lets one write transaction run at a time.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DatabaseTransaction, DbBackend};
use tokio::sync::{Mutex, MutexGuard, Notify};

use crate::entity::ResourceKind;
use crate::error::Result;
use crate::held_connections::HeldConnections;

#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// On SQLite, the one connection every write transaction uses. In WAL mode each commit
    /// empties the page cache of every other connection; writes taken from the pool would each
    /// start cold, while one writer connection keeps the pages it writes in memory.
    writer: Option<DatabaseConnection>,
    /// Checkpoints the SQLite log beside the writer, whose commits leave it alone.
    _checkpointer: Option<Arc<dirsync_store::checkpoint::Checkpointer>>,
    write_gate: Option<Arc<Mutex<()>>>,
    /// Woken after every committed write, so idle workers look for work
    /// at once instead of at their next poll.
    work_signal: Arc<Notify>,
    /// Tenants whose SCIM tokens were just rotated or revoked, for the
    /// gateways watching this provisioner.
    token_revocations: tokio::sync::broadcast::Sender<String>,
    /// Tenant ids by id and by name: tenants are never renamed nor deleted, so a tenant
    /// found once stays valid, and every request need not read it again.
    tenant_ids: Arc<std::sync::RwLock<std::collections::HashMap<String, String>>>,
    /// Tenant modes (`push`/`pull`) and when they were read.
    tenant_modes:
        Arc<std::sync::RwLock<std::collections::HashMap<String, (String, std::time::Instant)>>>,
    /// On PostgreSQL, the connections the batched lookups and creates run on.
    held: Option<Arc<HeldConnections>>,
}

/// Held connections kept: the batches of lookups and of creates that run at once.
const HELD_CONNECTIONS: usize = 8;

/// Tenant names and ids remembered before the cache starts over.
const TENANT_CACHE: usize = 10_000;

/// How long a tenant's mode is trusted before it is read again: a mode set through another
/// replica takes effect here within this.
const MODE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// A write transaction; holds the SQLite write gate until it is dropped.
pub(crate) struct WriteTxn<'a> {
    pub(crate) txn: DatabaseTransaction,
    _gate: Option<MutexGuard<'a, ()>>,
    work_signal: &'a Notify,
}

impl WriteTxn<'_> {
    pub(crate) async fn commit(self) -> Result<()> {
        self.txn.commit().await?;
        self.work_signal.notify_waiters();
        Ok(())
    }
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        let write_gate = dirsync_store::single_writer(&db).then(|| Arc::new(Mutex::new(())));
        let held = (db.get_database_backend() == DbBackend::Postgres).then(|| {
            Arc::new(HeldConnections::new(
                db.get_postgres_connection_pool().clone(),
                HELD_CONNECTIONS,
            ))
        });
        Self {
            db,
            writer: None,
            _checkpointer: None,
            write_gate,
            work_signal: Arc::new(Notify::new()),
            // A gateway that falls this far behind is told it lagged and drops its whole cache.
            token_revocations: tokio::sync::broadcast::channel(1024).0,
            tenant_ids: Arc::default(),
            tenant_modes: Arc::default(),
            held,
        }
    }

    /// Writes through `writer`, a connection of its own, so its page cache stays warm; its
    /// commits never checkpoint the log, which `checkpointer` does instead (see
    /// [`dirsync_store::checkpoint`]).
    #[must_use]
    pub fn with_writer(
        mut self,
        writer: DatabaseConnection,
        checkpointer: dirsync_store::checkpoint::Checkpointer,
    ) -> Self {
        self.writer = Some(writer);
        self._checkpointer = Some(Arc::new(checkpointer));
        self
    }

    /// Refuses a write its source may not make in the tenant's mode: one writer at a time.
    pub(crate) async fn check_writer(&self, tenant_id: &str, source: i32) -> Result<()> {
        use dirsync_proto::provisioner::v1::WriteSource;
        let source = WriteSource::try_from(source).unwrap_or(WriteSource::Unspecified);
        if source == WriteSource::Unspecified {
            return Ok(());
        }
        let cached = self.tenant_modes.read().ok().and_then(|modes| {
            modes
                .get(tenant_id)
                .filter(|(_, at)| at.elapsed() < MODE_TTL)
                .map(|(mode, _)| mode.clone())
        });
        let mode = match cached {
            Some(mode) => mode,
            None => {
                let mode = crate::tenants::find(&self.db, tenant_id).await?.mode;
                if let Ok(mut modes) = self.tenant_modes.write() {
                    if modes.len() >= TENANT_CACHE {
                        modes.clear();
                    }
                    modes.insert(
                        tenant_id.to_owned(),
                        (mode.clone(), std::time::Instant::now()),
                    );
                }
                mode
            }
        };
        let refused = match (source, mode.as_str()) {
            (WriteSource::Scim, "pull") => Some(
                "the tenant is in pull mode: dirsync reads Entra through Microsoft Graph and \
                 takes no SCIM writes (reads still work); switch with `dirsync tenant set-mode <tenant> push`",
            ),
            (WriteSource::Pull, "push") => Some(
                "the tenant is in push mode: Entra writes through SCIM; switch with \
                 `dirsync tenant set-mode <tenant> pull` to sync from Graph",
            ),
            _ => None,
        };
        match refused {
            Some(message) => Err(crate::error::ProvisionerError::refused(
                dirsync_proto::errors::ErrorReason::WrongMode,
                message,
            )),
            None => Ok(()),
        }
    }

    /// Forgets a tenant's cached mode after it changed here.
    pub(crate) fn forget_tenant_mode(&self, tenant_id: &str) {
        if let Ok(mut modes) = self.tenant_modes.write() {
            modes.remove(tenant_id);
        }
    }

    /// The id of the tenant a request names by id or by name.
    pub(crate) async fn tenant_id(&self, tenant: &str) -> Result<String> {
        let tenant = tenant.trim();
        if let Ok(known) = self.tenant_ids.read()
            && let Some(id) = known.get(tenant)
        {
            return Ok(id.clone());
        }
        let found = crate::tenants::find(&self.db, tenant).await?;
        if let Ok(mut known) = self.tenant_ids.write() {
            if known.len() >= TENANT_CACHE {
                known.clear();
            }
            known.insert(tenant.to_owned(), found.tenant_id.clone());
        }
        Ok(found.tenant_id)
    }

    /// Tells every watching gateway that `tenant_id`'s earlier tokens are no longer valid.
    pub(crate) fn announce_token_revocation(&self, tenant_id: &str) {
        // No receiver (no gateway watching) is not an error.
        let _ = self.token_revocations.send(tenant_id.to_owned());
    }

    pub(crate) fn watch_token_revocations(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.token_revocations.subscribe()
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Connections held apart from the pool for one-statement batches; PostgreSQL only.
    pub(crate) fn held_connections(&self) -> Option<&HeldConnections> {
        self.held.as_deref()
    }

    pub(crate) fn work_signal(&self) -> Arc<Notify> {
        self.work_signal.clone()
    }

    /// Wakes idle workers after a write committed outside [`WriteTxn`] (a statement that is
    /// its own transaction).
    pub(crate) fn announce_work(&self) {
        self.work_signal.notify_waiters();
    }

    /// Group-commit batches of one kind written at once: one where the store has a single
    /// writer (SQLite); on PostgreSQL a few, so that a batch is written while another's commit
    /// waits for the disk (`dirsync bench scim`, creates on PostgreSQL at 1k users: 3.6k/s one
    /// batch at a time, with a quarter of the CPU idle; with creates written in one statement a
    /// batch, two and four at a time measured alike, eight and sixteen 20–30% slower, their
    /// batches smaller).
    pub(crate) fn write_batches_in_flight(&self) -> usize {
        if dirsync_store::single_writer(&self.db) {
            1
        } else {
            4
        }
    }

    pub(crate) async fn write(&self) -> Result<WriteTxn<'_>> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        // On SQLite the transaction takes the write lock as it begins. A transaction dropped
        // without a commit (a refused insert, a cancelled request) is rolled back only after
        // the gate is released, so the next writer may still find the lock held: at BEGIN it
        // waits for it (busy timeout), while a deferred transaction that has already read is
        // refused at once ("database is locked").
        let txn = dirsync_store::begin_write(self.writer.as_ref().unwrap_or(&self.db)).await?;
        Ok(WriteTxn {
            txn,
            _gate: gate,
            work_signal: &self.work_signal,
        })
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A new resource id: a UUIDv7, time-ordered, so that the rows and index entries of resources
/// created together land on the same few pages instead of one random page each (random ids
/// made every batch of creates write a page per index per row).
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// `column IN (values)`, written so that a connection prepares one statement, or a handful,
/// whatever the number of values. A statement per list length meant a parse and a plan (on
/// PostgreSQL a round trip more) for most batches, and pushed the hot statements out of the
/// connection's cache. PostgreSQL takes the list as one array parameter (`= ANY($1)`), planned as
/// the `IN` list is; SQLite has no arrays, so there the list is padded to a power of two (a value
/// repeated changes nothing).
pub(crate) fn one_of<C: ColumnTrait>(
    backend: DbBackend,
    column: C,
    values: &[impl AsRef<str>],
) -> Expr {
    if backend == DbBackend::Postgres {
        return column.eq_any(values.iter().map(|value| value.as_ref().to_owned()));
    }
    let mut padded: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
    if let Some(&last) = padded.last() {
        padded.resize(padded.len().next_power_of_two(), last);
    }
    column.is_in(padded)
}

/// Marks a resource as needing to be written to MaaS360, in the caller's
/// transaction, so a committed change can never miss the queue.
pub(crate) async fn mark_pending(
    txn: &impl sea_orm::ConnectionTrait,
    tenant_id: &str,
    kind: ResourceKind,
    resource_id: &str,
    deleted: bool,
) -> Result<()> {
    mark_pending_many(txn, tenant_id, kind, &[resource_id.to_owned()], deleted).await
}

/// Resources marked per statement: 11 values a row stays far inside every backend's limit on
/// bound parameters.
const MARK_CHUNK: usize = 500;

/// [`mark_pending`] for many resources of one kind, one statement per chunk: a group change
/// touching thousands of members costs a few statements, not thousands.
pub(crate) async fn mark_pending_many(
    txn: &impl sea_orm::ConnectionTrait,
    tenant_id: &str,
    kind: ResourceKind,
    resource_ids: &[String],
    deleted: bool,
) -> Result<()> {
    use crate::entity::sync_state;
    use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
    use sea_orm::{EntityTrait, Set};

    let now = now_ms();
    for chunk in resource_ids.chunks(MARK_CHUNK) {
        let rows = chunk.iter().map(|resource_id| sync_state::ActiveModel {
            tenant_id: Set(tenant_id.to_owned()),
            kind: Set(kind),
            resource_id: Set(resource_id.clone()),
            desired_seq: Set(1),
            applied_seq: Set(0),
            pending: Set(true),
            deleted: Set(deleted),
            updated_at: Set(now),
            attempts: Set(0),
            next_attempt_at: Set(0),
            parked: Set(false),
            ..Default::default()
        });
        sync_state::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    sync_state::Column::TenantId,
                    sync_state::Column::Kind,
                    sync_state::Column::ResourceId,
                ])
                .value(
                    sync_state::Column::DesiredSeq,
                    Expr::col((sync_state::Entity, sync_state::Column::DesiredSeq)).add(1),
                )
                // A new desired state deserves fresh attempts, parked or not:
                // the change may be what fixes the reason it was parked.
                .update_columns([
                    sync_state::Column::Pending,
                    sync_state::Column::Deleted,
                    sync_state::Column::UpdatedAt,
                    sync_state::Column::Attempts,
                    sync_state::Column::NextAttemptAt,
                    sync_state::Column::Parked,
                ])
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// A store of its own for a unit test, migrated; dropped with the [`TestDatabase`].
#[cfg(test)]
pub(crate) async fn test_store() -> (dirsync_store::testing::TestDatabase, Store) {
    let database = dirsync_store::testing::TestDatabase::new();
    let db = dirsync_store::connect(database.options())
        .await
        .expect("test database");
    dirsync_store::migrate::<crate::Migrator>(&db, crate::SERVICE)
        .await
        .expect("migrations");
    (database, Store::new(db))
}
