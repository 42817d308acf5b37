//! Opens the database a service stores its tables in (`sqlite://` for the
//! embedded default, `postgres://` for clusters) and runs that service's
//! migrations. Each service owns its tables and its migration history; in the
//! all-in-one process they share one database, never each other's rows. It holds no entity:
//! each service keeps its own.
//!
//! Modules:
//! - the crate root: [`connect`], [`migrate`] (under an advisory lock on PostgreSQL),
//!   [`single_writer`], [`redact`];
//! - [`checkpoint`]: a SQLite writer connection whose commits leave WAL checkpoints to a
//!   background task;
//! - [`testing`] (feature `test-util`): a database of its own per test, a SQLite file or a
//!   PostgreSQL schema, dropped at the end.

pub mod checkpoint;
#[cfg(feature = "test-util")]
pub mod testing;

use std::path::Path;
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

pub use sea_orm;
pub use sea_orm_migration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot create the data folder {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to the database at {url}: {source}")]
    Connect { url: String, source: sea_orm::DbErr },
    #[error("migrations of the {service} service failed: {source}")]
    Migrate {
        service: &'static str,
        source: sea_orm::DbErr,
    },
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    /// PostgreSQL schema to work in (created if missing); empty for the default.
    pub schema: String,
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

/// How long a pooled PostgreSQL connection may sit idle before it is pinged on its next use.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

/// Connects, creating the SQLite file and its folder on first run.
pub async fn connect(options: &StoreOptions) -> Result<DatabaseConnection, StoreError> {
    connect_with(options, SqliteTuning::default()).await
}

/// How a SQLite connection is set up beyond what every connection shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SqliteTuning {
    /// A commit that takes the WAL past this many pages checkpoints it.
    pub(crate) checkpoint_pages: u32,
    /// Page cache per connection, in KiB.
    pub(crate) cache_kib: u32,
}

impl Default for SqliteTuning {
    fn default() -> Self {
        Self {
            // SQLite's own threshold.
            checkpoint_pages: 1000,
            // 8 MiB (SQLite's default is 2 MiB): the indexes a lookup walks in a store of 100k
            // users stay in memory.
            cache_kib: 8192,
        }
    }
}

/// [`connect`], with SQLite connections set up as `tuning` says.
async fn connect_with(
    options: &StoreOptions,
    tuning: SqliteTuning,
) -> Result<DatabaseConnection, StoreError> {
    let url = options.url.as_str();
    let mut connect = if let Some(path) = sqlite_path(url) {
        ensure_parent_dir(path)?;
        let url = if path == ":memory:" || url.contains('?') {
            url.to_owned()
        } else {
            format!("{url}?mode=rwc")
        };
        let mut connect = ConnectOptions::new(url);
        connect.map_sqlx_sqlite_opts(move |opts| {
            // WAL lets readers run beside the one writer; NORMAL sync is safe
            // with WAL (a power cut may lose the last commits, never corrupt).
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // A negative size is in KiB.
                .pragma("cache_size", format!("-{}", tuning.cache_kib))
                .pragma("wal_autocheckpoint", tuning.checkpoint_pages.to_string())
        });
        connect
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        if !options.schema.is_empty() {
            create_schema(options).await?;
        }
        let mut connect = ConnectOptions::new(url.to_owned());
        if !options.schema.is_empty() {
            connect.set_schema_search_path(options.schema.clone());
        }
        connect
    } else {
        return Err(StoreError::UnsupportedUrl(redact(url)));
    };
    if sqlite_path(url).is_some() {
        // A ping of a SQLite connection is a round trip to its worker thread that proves
        // nothing a query would not: the file is local and the connection cannot drop.
        connect.test_before_acquire(false);
    } else {
        // A PostgreSQL connection that was busy a moment ago is alive; one idle for a while may
        // have been dropped by the server or a proxy, and is pinged before it is handed out.
        // (A ping on every acquire doubled the round trips of every read.)
        connect.test_before_acquire_if_idle_for(IDLE_BEFORE_PING);
    }
    connect
        .max_connections(options.max_connections)
        .connect_timeout(options.connect_timeout)
        .acquire_timeout(options.connect_timeout)
        .sqlx_logging(false);
    let db = Database::connect(connect)
        .await
        .map_err(|source| StoreError::Connect {
            url: redact(url),
            source,
        })?;
    tracing::debug!(url = %redact(url), "database connected");
    Ok(db)
}

/// Brings one service's tables up to date.
///
/// On PostgreSQL several replicas may start at once: the migrations run in one transaction
/// holding an advisory lock on the schema, so one replica migrates and the others wait and
/// then find the work done (PostgreSQL's DDL is transactional).
pub async fn migrate<M: MigratorTrait>(
    db: &DatabaseConnection,
    service: &'static str,
) -> Result<(), StoreError> {
    let failed = |source| StoreError::Migrate { service, source };
    if db.get_database_backend() == DbBackend::Postgres {
        let txn = db.begin().await.map_err(failed)?;
        txn.execute_unprepared(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':dirsync-migrations'))",
        )
        .await
        .map_err(failed)?;
        M::up(&txn, None).await.map_err(failed)?;
        txn.commit().await.map_err(failed)?;
    } else {
        M::up(db, None).await.map_err(failed)?;
    }
    tracing::debug!(service, "migrations applied");
    Ok(())
}

/// Whether writes must be serialised by the caller: SQLite allows one writer,
/// and a deferred transaction that reads before it writes can fail to upgrade
/// its lock instead of waiting.
pub fn single_writer(db: &DatabaseConnection) -> bool {
    db.get_database_backend() == DbBackend::Sqlite
}

/// Begins a transaction that will write. On SQLite it takes the write lock as it begins
/// (waiting for it up to the busy timeout), so it can never fail to upgrade a read lock
/// halfway ("database is locked" after it has read).
pub async fn begin_write(
    db: &DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    use sea_orm::TransactionTrait as _;
    if single_writer(db) {
        db.begin_with_options(sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..sea_orm::TransactionOptions::default()
        })
        .await
    } else {
        db.begin().await
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split('?').next().unwrap_or(rest))
}

fn ensure_parent_dir(path: &str) -> Result<(), StoreError> {
    if path == ":memory:" || path.is_empty() {
        return Ok(());
    }
    match Path::new(path).parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::DataDir {
                path: parent.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

async fn create_schema(options: &StoreOptions) -> Result<(), StoreError> {
    use sea_orm::ConnectionTrait;
    let mut connect = ConnectOptions::new(options.url.clone());
    connect
        .max_connections(1)
        .connect_timeout(options.connect_timeout)
        .sqlx_logging(false);
    let admin = Database::connect(connect)
        .await
        .map_err(|source| StoreError::Connect {
            url: redact(&options.url),
            source,
        })?;
    // The schema name was validated as [A-Za-z0-9_] by the config.
    admin
        .execute_unprepared(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{}\"",
            options.schema
        ))
        .await
        .map_err(|source| StoreError::Connect {
            url: redact(&options.url),
            source,
        })?;
    let _ = admin.close().await;
    Ok(())
}

/// The URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/dirsync"),
            "postgres://app:***@db:5432/dirsync"
        );
        assert_eq!(redact("postgres://db/test"), "postgres://db/test");
        assert_eq!(redact("sqlite://./x.db"), "sqlite://./x.db");
    }

    /// See `.cargo/config.toml`: without the guarantee every cached statement with a bound
    /// `LIMIT` is parsed and planned again on each execution.
    #[tokio::test]
    async fn sqlite_plans_do_not_depend_on_bound_values() {
        use sea_orm::{ConnectionTrait as _, Statement};
        let db = connect(&StoreOptions {
            url: "sqlite::memory:".to_owned(),
            schema: String::new(),
            max_connections: 1,
            connect_timeout: Duration::from_secs(10),
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
        let options = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA compile_options",
            ))
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let options: Vec<String> = options
            .iter()
            .filter_map(|row| row.try_get_by_index::<String>(0).ok())
            .collect();
        assert!(
            options.iter().any(|option| option == "ENABLE_QPSG"),
            "SQLite was built without SQLITE_ENABLE_QPSG: {options:?}"
        );
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite://./a/b.db"), Some("./a/b.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), Some(":memory:"));
        assert_eq!(sqlite_path("sqlite://x.db?mode=rwc"), Some("x.db"));
        assert_eq!(sqlite_path("postgres://x"), None);
    }
}
