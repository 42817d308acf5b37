//! Entra's matching query, `userName eq "…"`, answered by the batch. Entra sends one before
//! every create and for every user of every cycle, so it is the gateway's most frequent
//! request, and each on its own costs more in getting to the database than in the lookup: a
//! pooled connection is acquired, a statement built, sent to SQLite's thread or over the
//! network to PostgreSQL, and the connection tested as it goes back. A [`Batcher`] takes every
//! lookup waiting (up to [`MAX_BATCH`]) and answers them with one query per tenant
//! (`user_name_key IN (…)`), one batch at a time on SQLite, a few on PostgreSQL. A lookup that
//! finds nothing waiting is sent at once, so a quiet gateway answers as fast as before; a busy
//! one shares the cost.
//!
//! A lookup is queued after its caller's earlier writes returned and read after it was
//! queued, so a caller always sees its own writes.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use sea_orm::sqlx;
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryResult, QueryTrait,
};

use crate::batching::{Batched, Batcher};
use crate::entity::user;
use crate::error::Result;
use crate::store::{Store, one_of};

/// Lookups answered by one query at most.
const MAX_BATCH: usize = 64;
/// Lookups waiting at most; callers beyond wait to enqueue.
const QUEUE_BOUND: usize = 4096;
/// Batches read at once from PostgreSQL: a batch mostly waits on the network, so a few overlap.
/// SQLite reads one at a time: its batches are CPU on this machine's cores, and while one runs
/// the next gathers (measured with `dirsync bench scim`: 4 at a time made batches of about one
/// lookup, 9–11k lookups/s on SQLite against 13–16k one at a time; on PostgreSQL one at a
/// time was the slowest, 7–7.5k against 8–9.8k).
const POSTGRES_BATCHES_IN_FLIGHT: usize = 4;

/// One user looked up by its userName, case-insensitively, in one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lookup {
    tenant_id: String,
    /// The lower-cased userName (`users.user_name_key`).
    key: String,
}

/// The handle lookups go through; the lookup task stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct UserNameLookups {
    batcher: Batcher<UserNameReader>,
    counts: Arc<LookupCounts>,
}

/// What the lookups cost, for `/metrics`: how many lookups, in how many queries.
#[derive(Debug, Default)]
pub(crate) struct LookupCounts {
    pub(crate) lookups: AtomicU64,
    pub(crate) batches: AtomicU64,
}

impl UserNameLookups {
    pub(crate) fn spawn(store: Store) -> Self {
        let counts = Arc::new(LookupCounts::default());
        let in_flight = if store.db().get_database_backend() == DbBackend::Sqlite {
            1
        } else {
            POSTGRES_BATCHES_IN_FLIGHT
        };
        let reader = UserNameReader {
            store,
            counts: counts.clone(),
        };
        Self {
            batcher: Batcher::spawn(
                reader,
                "userName lookup task",
                MAX_BATCH,
                QUEUE_BOUND,
                in_flight,
            ),
            counts,
        }
    }

    pub(crate) fn counts(&self) -> Arc<LookupCounts> {
        self.counts.clone()
    }

    /// The user of `tenant_id` whose userName is `user_name`, compared as SCIM compares
    /// userName (case-insensitively).
    pub(crate) async fn find(
        &self,
        tenant_id: &str,
        user_name: &str,
    ) -> Result<Option<user::Model>> {
        self.batcher
            .submit(Lookup {
                tenant_id: tenant_id.to_owned(),
                key: user_name.to_lowercase(),
            })
            .await
    }
}

struct UserNameReader {
    store: Store,
    counts: Arc<LookupCounts>,
}

impl UserNameReader {
    fn count(&self, lookups: usize) {
        self.counts.batches.fetch_add(1, Ordering::Relaxed);
        self.counts
            .lookups
            .fetch_add(lookups as u64, Ordering::Relaxed);
    }
}

impl Batched for UserNameReader {
    type Item = Lookup;
    type Output = Option<user::Model>;

    /// One query per tenant; should one fail, every lookup of the batch is looked up alone, so
    /// that each caller gets the error of its own lookup.
    async fn together(&self, lookups: &[Lookup]) -> Result<Vec<Result<Option<user::Model>>>> {
        self.count(lookups.len());
        let mut by_tenant: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for lookup in lookups {
            by_tenant
                .entry(&lookup.tenant_id)
                .or_default()
                .insert(&lookup.key);
        }
        let mut found: HashMap<(&str, &str), user::Model> = HashMap::new();
        for (tenant_id, keys) in by_tenant {
            for user in find_many(&self.store, tenant_id, &keys).await? {
                // The key the lookup asked with, borrowed from the batch.
                if let Some(&key) = keys.get(user.user_name_key.as_str()) {
                    found.insert((tenant_id, key), user);
                }
            }
        }
        Ok(lookups
            .iter()
            .map(|lookup| {
                Ok(found
                    .get(&(lookup.tenant_id.as_str(), lookup.key.as_str()))
                    .cloned())
            })
            .collect())
    }

    async fn alone(&self, lookup: &Lookup) -> Result<Option<user::Model>> {
        self.count(1);
        find_one(&self.store, lookup).await
    }
}

/// The users of `tenant_id` with these userName keys.
async fn find_many(
    store: &Store,
    tenant_id: &str,
    keys: &BTreeSet<&str>,
) -> Result<Vec<user::Model>> {
    if let Some(held) = store.held_connections() {
        let tenant_id = tenant_id.to_owned();
        let keys: Vec<String> = keys.iter().map(|&key| key.to_owned()).collect();
        let rows = held
            .run(move |connection| {
                Box::pin(async move {
                    // Written by sea-orm from the entity, every value a bound parameter.
                    sqlx::query(sqlx::AssertSqlSafe(FIND_MANY_POSTGRES.as_str()))
                        .bind(tenant_id)
                        .bind(keys)
                        .fetch_all(connection)
                        .await
                })
            })
            .await?;
        return rows
            .into_iter()
            .map(|row| Ok(user::Model::from_query_result(&QueryResult::from(row), "")?))
            .collect();
    }
    let keys: Vec<&str> = keys.iter().copied().collect();
    let backend = store.db().get_database_backend();
    Ok(user::Entity::find()
        .filter(user::Column::TenantId.eq(tenant_id))
        .filter(one_of(backend, user::Column::UserNameKey, &keys))
        .all(store.db())
        .await?)
}

/// [`find_many`]'s statement on PostgreSQL, as sea-orm writes it: `$1` the tenant, `$2` the
/// keys (one array).
static FIND_MANY_POSTGRES: LazyLock<String> = LazyLock::new(|| {
    user::Entity::find()
        .filter(user::Column::TenantId.eq(""))
        .filter(user::Column::UserNameKey.eq_any([String::new()]))
        .build(DbBackend::Postgres)
        .sql
});

async fn find_one(store: &Store, lookup: &Lookup) -> Result<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::TenantId.eq(lookup.tenant_id.as_str()))
        .filter(user::Column::UserNameKey.eq(lookup.key.as_str()))
        .one(store.db())
        .await?)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, IntoActiveModel};

    use super::*;
    use crate::error::ProvisionerError;

    fn user(tenant_id: &str, id: &str, user_name: &str) -> user::Model {
        user::Model {
            tenant_id: tenant_id.to_owned(),
            id: id.to_owned(),
            user_name: user_name.to_owned(),
            user_name_key: user_name.to_lowercase(),
            external_id: None,
            display_name: None,
            display_name_key: None,
            email: None,
            email_key: None,
            given_name: None,
            family_name: None,
            active: true,
            scim_json: format!(r#"{{"userName":"{user_name}"}}"#),
            version: 1,
            created_at: 1,
            updated_at: 1,
        }
    }

    #[tokio::test]
    async fn concurrent_lookups_each_get_their_own_user() {
        let (_database, store) = crate::store::test_store().await;
        // Two tenants hold the same userNames as different users.
        for tenant in ["t1", "t2"] {
            for index in 0..100 {
                user(
                    tenant,
                    &format!("{tenant}-{index}"),
                    &format!("User{index}@Example.com"),
                )
                .into_active_model()
                .insert(store.db())
                .await
                .expect("insert");
            }
        }
        let lookups = UserNameLookups::spawn(store.clone());
        let mut tasks = tokio::task::JoinSet::new();
        for round in 0..3 {
            for tenant in ["t1", "t2", "t3"] {
                // 100 exist, 20 do not; the case differs from the stored userName.
                for index in 0..120 {
                    let lookups = lookups.clone();
                    tasks.spawn(async move {
                        let name = format!("USER{index}@example.COM");
                        let found = lookups.find(tenant, &name).await.expect("lookup");
                        (round, tenant, index, found.map(|user| user.id))
                    });
                }
            }
        }
        let mut answered = 0;
        while let Some(joined) = tasks.join_next().await {
            let (round, tenant, index, found) = joined.expect("task");
            let expected = (tenant != "t3" && index < 100).then(|| format!("{tenant}-{index}"));
            assert_eq!(found, expected, "round {round}, {tenant}, user {index}");
            answered += 1;
        }
        assert_eq!(answered, 3 * 3 * 120);
        let counts = lookups.counts();
        let batches = counts.batches.load(Ordering::Relaxed);
        assert_eq!(counts.lookups.load(Ordering::Relaxed), answered);
        assert!(
            batches < answered / 4,
            "{answered} lookups waiting together took {batches} batches"
        );
    }

    #[tokio::test]
    async fn a_lookup_sees_a_write_that_returned_before_it() {
        let (_database, store) = crate::store::test_store().await;
        let lookups = UserNameLookups::spawn(store.clone());
        assert_eq!(
            lookups.find("t", "late@example.com").await.expect("lookup"),
            None
        );
        user("t", "u1", "Late@example.com")
            .into_active_model()
            .insert(store.db())
            .await
            .expect("insert");
        let found = lookups.find("t", "late@example.com").await.expect("lookup");
        assert_eq!(found.map(|user| user.id).as_deref(), Some("u1"));
    }

    #[tokio::test]
    async fn a_failed_batch_answers_each_lookup_with_its_own_error() {
        let (_database, store) = crate::store::test_store().await;
        let lookups = UserNameLookups::spawn(store.clone());
        store.db().close_by_ref().await.expect("close");
        let error = lookups
            .find("t", "anyone@example.com")
            .await
            .expect_err("a closed store cannot answer");
        assert!(
            !matches!(&error, ProvisionerError::Unavailable(message) if message.contains("stopped")),
            "the lookup task must survive a failed query: {error}"
        );
        // The task is still there for the next lookup.
        let again = lookups.find("t", "anyone@example.com").await;
        assert!(again.is_err());
    }
}
