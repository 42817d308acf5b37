//! User creates, the hot path of Entra's initial cycle, written by [`Batcher`]: tenants and
//! userName uniqueness are checked for a whole batch with one query each, and the batch is
//! inserted together.

use std::collections::{BTreeSet, HashMap, HashSet};

use sea_orm::{ActiveEnum, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set, sqlx};

use crate::batching::{Batched, Batcher};
use crate::entity::ResourceKind;
use crate::entity::{sync_state, tenant, user};
use crate::error::{ProvisionerError, Result, quoted};
use crate::held_connections::HeldConnections;
use crate::store::{Store, mark_pending, now_ms, one_of};

/// Creates written in one transaction at most.
const MAX_BATCH: usize = 256;
/// Creates waiting for the writer at most; callers beyond wait to enqueue.
const QUEUE_BOUND: usize = 4096;

/// Inserts users and queues them for MaaS360, many creates to a transaction.
#[derive(Debug, Clone)]
pub(crate) struct UserCreates {
    commit: Batcher<UserCreateWriter>,
}

impl UserCreates {
    pub(crate) fn spawn(store: Store) -> Self {
        let in_flight = store.write_batches_in_flight();
        let writer = UserCreateWriter { store };
        Self {
            commit: Batcher::spawn(
                writer,
                "user create writer",
                MAX_BATCH,
                QUEUE_BOUND,
                in_flight,
            ),
        }
    }

    /// Inserts `row` and queues it for MaaS360, durably, before returning.
    pub(crate) async fn create(&self, row: user::Model) -> Result<()> {
        self.commit.submit(row).await
    }
}

struct UserCreateWriter {
    store: Store,
}

impl Batched for UserCreateWriter {
    type Item = user::Model;
    type Output = ();

    async fn together(&self, rows: &[user::Model]) -> Result<Vec<Result<()>>> {
        match self.store.held_connections() {
            Some(held) => write_batch_postgres(&self.store, held, rows).await,
            None => write_batch(&self.store, rows).await,
        }
    }

    async fn alone(&self, row: &user::Model) -> Result<()> {
        write_one(&self.store, row).await
    }
}

fn taken(row: &user::Model) -> ProvisionerError {
    ProvisionerError::already_exists(
        "userName",
        format!("userName {} is already taken", quoted(&row.user_name)),
    )
}

fn unknown_tenant(row: &user::Model) -> ProvisionerError {
    ProvisionerError::not_found(
        dirsync_proto::errors::ErrorReason::TenantNotFound,
        "tenant",
        &row.tenant_id,
    )
}

/// The whole batch in one transaction; per-row answers for rows refused.
async fn write_batch(store: &Store, rows: &[user::Model]) -> Result<Vec<Result<()>>> {
    let write = store.write().await?;
    let tenant_ids: Vec<String> = rows
        .iter()
        .map(|row| row.tenant_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let known: BTreeSet<String> = tenant::Entity::find()
        .select_only()
        .column(tenant::Column::TenantId)
        .filter(tenant::Column::TenantId.is_in(tenant_ids))
        .into_tuple::<String>()
        .all(&write.txn)
        .await?
        .into_iter()
        .collect();
    let mut wanted: HashMap<&str, Vec<&str>> = HashMap::new();
    for row in rows {
        wanted
            .entry(row.tenant_id.as_str())
            .or_default()
            .push(row.user_name_key.as_str());
    }
    let backend = store.db().get_database_backend();
    let mut existing: BTreeSet<(String, String)> = BTreeSet::new();
    for (tenant_id, keys) in wanted {
        for chunk in keys.chunks(500) {
            let found: Vec<String> = user::Entity::find()
                .select_only()
                .column(user::Column::UserNameKey)
                .filter(user::Column::TenantId.eq(tenant_id))
                .filter(one_of(backend, user::Column::UserNameKey, chunk))
                .into_tuple()
                .all(&write.txn)
                .await?;
            existing.extend(found.into_iter().map(|key| (tenant_id.to_owned(), key)));
        }
    }
    let mut results = Vec::with_capacity(rows.len());
    let mut accepted = Vec::new();
    for row in rows {
        if !known.contains(&row.tenant_id) {
            results.push(Err(unknown_tenant(row)));
        } else if !existing.insert((row.tenant_id.clone(), row.user_name_key.clone())) {
            // Taken before, or earlier in this very batch.
            results.push(Err(taken(row)));
        } else {
            results.push(Ok(()));
            accepted.push(row.clone());
        }
    }
    if !accepted.is_empty() {
        let now = now_ms();
        for chunk in accepted.chunks(64) {
            user::Entity::insert_many(chunk.iter().cloned().map(user::ActiveModel::from))
                .exec_without_returning(&write.txn)
                .await?;
            sync_state::Entity::insert_many(chunk.iter().map(|row| sync_state::ActiveModel {
                tenant_id: Set(row.tenant_id.clone()),
                kind: Set(ResourceKind::User),
                resource_id: Set(row.id.clone()),
                desired_seq: Set(1),
                applied_seq: Set(0),
                pending: Set(true),
                deleted: Set(false),
                updated_at: Set(now),
                attempts: Set(0),
                next_attempt_at: Set(0),
                parked: Set(false),
                ..Default::default()
            }))
            .exec_without_returning(&write.txn)
            .await?;
        }
    }
    write.commit().await?;
    Ok(results)
}

/// The whole batch in one statement, so one round trip and one commit: PostgreSQL runs a
/// statement in a transaction of its own. The rows go as one JSON parameter, so that the
/// statement is the same text for every batch size, prepared once per connection. Per batch
/// this replaces six round trips (begin, tenants, names taken, users, queue, commit), which
/// on this machine cost the gateway more CPU than the creates themselves.
///
/// A userName already taken, before or earlier in this very batch, is skipped by
/// `ON CONFLICT DO NOTHING` (first in the batch wins, as on SQLite); one being inserted by an
/// overlapping batch is waited for, then skipped or inserted as that batch ends. The answer
/// says which tenants exist and which users went in; every other row was taken.
async fn write_batch_postgres(
    store: &Store,
    held: &HeldConnections,
    rows: &[user::Model],
) -> Result<Vec<Result<()>>> {
    const SQL: &str = r#"
WITH batch AS (
    SELECT * FROM json_to_recordset($1::json) AS row (
        position int, tenant_id text, id text, user_name text, user_name_key text,
        external_id text, display_name text, display_name_key text, email text, email_key text,
        given_name text, family_name text, active boolean, scim_json text, version int8,
        created_at int8, updated_at int8)
),
known AS (
    SELECT tenant_id FROM tenants WHERE tenant_id IN (SELECT tenant_id FROM batch)
),
inserted AS (
    INSERT INTO users (tenant_id, id, user_name, user_name_key, external_id, display_name,
        display_name_key, email, email_key, given_name, family_name, active, scim_json, version,
        created_at, updated_at)
    SELECT tenant_id, id, user_name, user_name_key, external_id, display_name,
        display_name_key, email, email_key, given_name, family_name, active, scim_json, version,
        created_at, updated_at
    FROM batch
    WHERE tenant_id IN (SELECT tenant_id FROM known)
    ORDER BY position
    ON CONFLICT (tenant_id, user_name_key) DO NOTHING
    RETURNING tenant_id, id
),
queued AS (
    INSERT INTO sync_state (tenant_id, kind, resource_id, desired_seq, applied_seq, pending,
        deleted, updated_at, attempts, next_attempt_at, parked)
    SELECT tenant_id, $2, id, 1, 0, true, false, $3, 0, 0, false FROM inserted
)
SELECT 'tenant' AS found, tenant_id AS value FROM known
UNION ALL
SELECT 'user', id FROM inserted
"#;
    let batch: Vec<BatchRow<'_>> = rows
        .iter()
        .enumerate()
        .map(|(position, row)| BatchRow { position, row })
        .collect();
    let batch = serde_json::to_string(&batch)
        .map_err(|error| ProvisionerError::Database(format!("encoding a create batch: {error}")))?;
    let kind = ResourceKind::User.to_value();
    let now = now_ms();
    let answer: Vec<(String, String)> = held
        .run(move |connection| {
            Box::pin(async move {
                sqlx::query_as(SQL)
                    .bind(batch)
                    .bind(kind)
                    .bind(now)
                    .fetch_all(connection)
                    .await
            })
        })
        .await?;
    let mut known_tenants: HashSet<String> = HashSet::new();
    let mut inserted: HashSet<String> = HashSet::new();
    for (found, value) in answer {
        if found == "tenant" {
            known_tenants.insert(value);
        } else {
            inserted.insert(value);
        }
    }
    if !inserted.is_empty() {
        store.announce_work();
    }
    Ok(rows
        .iter()
        .map(|row| {
            if !known_tenants.contains(&row.tenant_id) {
                Err(unknown_tenant(row))
            } else if inserted.contains(&row.id) {
                Ok(())
            } else {
                Err(taken(row))
            }
        })
        .collect())
}

/// A row of a create batch as [`write_batch_postgres`] sends it.
struct BatchRow<'a> {
    position: usize,
    row: &'a user::Model,
}

impl serde::Serialize for BatchRow<'_> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let row = self.row;
        let mut map = serializer.serialize_map(Some(17))?;
        map.serialize_entry("position", &self.position)?;
        map.serialize_entry("tenant_id", &row.tenant_id)?;
        map.serialize_entry("id", &row.id)?;
        map.serialize_entry("user_name", &row.user_name)?;
        map.serialize_entry("user_name_key", &row.user_name_key)?;
        map.serialize_entry("external_id", &row.external_id)?;
        map.serialize_entry("display_name", &row.display_name)?;
        map.serialize_entry("display_name_key", &row.display_name_key)?;
        map.serialize_entry("email", &row.email)?;
        map.serialize_entry("email_key", &row.email_key)?;
        map.serialize_entry("given_name", &row.given_name)?;
        map.serialize_entry("family_name", &row.family_name)?;
        map.serialize_entry("active", &row.active)?;
        map.serialize_entry("scim_json", &row.scim_json)?;
        map.serialize_entry("version", &row.version)?;
        map.serialize_entry("created_at", &row.created_at)?;
        map.serialize_entry("updated_at", &row.updated_at)?;
        map.end()
    }
}

/// One create in its own transaction.
async fn write_one(store: &Store, row: &user::Model) -> Result<()> {
    let write = store.write().await?;
    if tenant::Entity::find_by_id(row.tenant_id.clone())
        .one(&write.txn)
        .await?
        .is_none()
    {
        return Err(unknown_tenant(row));
    }
    user::Entity::insert(user::ActiveModel::from(row.clone()))
        .exec_without_returning(&write.txn)
        .await
        .map_err(|error| {
            ProvisionerError::from(error).when_taken("userName", || taken(row).to_string())
        })?;
    mark_pending(
        &write.txn,
        &row.tenant_id,
        ResourceKind::User,
        &row.id,
        false,
    )
    .await?;
    write.commit().await
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, PaginatorTrait};

    use super::*;
    use crate::error::ProvisionerError;

    async fn add_tenant(store: &Store, tenant_id: &str) {
        tenant::ActiveModel {
            tenant_id: Set(tenant_id.to_owned()),
            name: Set(tenant_id.to_owned()),
            created_at: Set(1),
            deactivate_on_disable: Set(true),
            delete_on_delete: Set(false),
            username_mapping: Set("userName".to_owned()),
            mode: Set("push".to_owned()),
            active_device_policy: Set("deactivate".to_owned()),
            lookalike_group_policy: Set("park".to_owned()),
            ..Default::default()
        }
        .insert(store.db())
        .await
        .expect("tenant");
    }

    fn user(tenant_id: &str, id: &str, user_name: &str) -> user::Model {
        user::Model {
            tenant_id: tenant_id.to_owned(),
            id: id.to_owned(),
            user_name: user_name.to_owned(),
            user_name_key: user_name.to_lowercase(),
            external_id: (id == "u-a").then(|| "ext-a".to_owned()),
            display_name: None,
            display_name_key: None,
            email: Some(format!("{user_name}@example.com")),
            email_key: Some(format!("{}@example.com", user_name.to_lowercase())),
            given_name: Some("Ann \"Quoted\" \u{e9}".to_owned()),
            family_name: None,
            active: id != "u-d",
            scim_json: format!(r#"{{"userName":"{user_name}","x":"\"\\"}}"#),
            version: 1,
            created_at: 7,
            updated_at: 8,
        }
    }

    fn is_taken(result: &Result<()>) -> bool {
        matches!(result, Err(ProvisionerError::Refused(error)) if error.to_string().contains("already taken"))
    }

    /// Every answer a batch can give, on the store the tests run on (both kinds in CI): the
    /// PostgreSQL path is one statement, the SQLite path a transaction of several.
    #[tokio::test]
    async fn a_batch_answers_each_create_and_queues_only_those_written() {
        let (_database, store) = crate::store::test_store().await;
        add_tenant(&store, "t1").await;
        add_tenant(&store, "t2").await;
        let writer = UserCreateWriter {
            store: store.clone(),
        };
        let before = writer
            .together(&[user("t1", "u-old", "Bob")])
            .await
            .expect("first batch");
        assert!(before[0].is_ok(), "{before:?}");

        let batch = [
            user("t1", "u-a", "Ann"),
            user("t1", "u-dup", "ANN"),
            user("t1", "u-bob", "bob"),
            user("nowhere", "u-x", "Xavier"),
            user("t2", "u-b", "Bob"),
            user("t1", "u-d", "Dee"),
        ];
        let results = writer.together(&batch).await.expect("batch");
        assert_eq!(results.len(), batch.len());
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(
            is_taken(&results[1]),
            "earlier in the batch: {:?}",
            results[1]
        );
        assert!(is_taken(&results[2]), "taken before: {:?}", results[2]);
        assert!(
            matches!(&results[3], Err(error) if error.to_string().contains("nowhere")),
            "unknown tenant: {:?}",
            results[3]
        );
        assert!(results[4].is_ok(), "another tenant: {:?}", results[4]);
        assert!(results[5].is_ok(), "{:?}", results[5]);

        // What was written is what was sent, nulls and escapes included.
        for expected in [&batch[0], &batch[4], &batch[5]] {
            let stored =
                user::Entity::find_by_id((expected.tenant_id.clone(), expected.id.clone()))
                    .one(store.db())
                    .await
                    .expect("read")
                    .expect("written");
            assert_eq!(&stored, expected);
        }
        assert_eq!(
            user::Entity::find().count(store.db()).await.expect("count"),
            4
        );
        let mut queued: Vec<String> = sync_state::Entity::find()
            .filter(sync_state::Column::Pending.eq(true))
            .filter(sync_state::Column::Kind.eq(ResourceKind::User))
            .all(store.db())
            .await
            .expect("queue")
            .into_iter()
            .map(|state| state.resource_id)
            .collect();
        queued.sort();
        assert_eq!(queued, ["u-a", "u-b", "u-d", "u-old"]);
    }
}
