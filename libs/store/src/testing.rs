//! A database of its own for each test, so tests run in parallel without
//! touching each other: a fresh SQLite file by default, or a fresh schema in
//! the PostgreSQL database named by `DIRSYNC_TEST_DATABASE_URL`. Either is
//! removed when the value is dropped, even if the test panicked.

use std::time::Duration;

use crate::StoreOptions;

/// The variable that points the tests at PostgreSQL.
pub const TEST_DATABASE_URL_VAR: &str = "DIRSYNC_TEST_DATABASE_URL";

#[derive(Debug)]
pub struct TestDatabase {
    options: StoreOptions,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    SqliteFile(std::path::PathBuf),
    PostgresSchema { url: String, schema: String },
}

impl TestDatabase {
    pub fn new() -> Self {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        match std::env::var(TEST_DATABASE_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => {
                let schema = format!("t_{}", &unique[..20]);
                Self {
                    options: StoreOptions {
                        url: url.clone(),
                        schema: schema.clone(),
                        max_connections: 8,
                        connect_timeout: Duration::from_secs(10),
                    },
                    cleanup: Cleanup::PostgresSchema { url, schema },
                }
            }
            _ => {
                let path = std::env::temp_dir().join(format!("dirsync-test-{unique}.db"));
                Self {
                    options: StoreOptions {
                        url: format!("sqlite://{}", path.display()),
                        schema: String::new(),
                        max_connections: 8,
                        connect_timeout: Duration::from_secs(10),
                    },
                    cleanup: Cleanup::SqliteFile(path),
                }
            }
        }
    }

    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.cleanup, Cleanup::PostgresSchema { .. })
    }
}

impl Default for TestDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::PostgresSchema { url, schema } => {
                let (url, schema) = (url.clone(), schema.clone());
                // Drop runs inside the test's runtime, which cannot block on
                // async work; a short-lived thread with its own runtime can.
                let dropper = std::thread::spawn(move || {
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    runtime.block_on(async move {
                        use sea_orm::ConnectionTrait;
                        let mut connect = sea_orm::ConnectOptions::new(url);
                        connect.max_connections(1).sqlx_logging(false);
                        if let Ok(db) = sea_orm::Database::connect(connect).await {
                            let _ = db
                                .execute_unprepared(&format!(
                                    "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                                ))
                                .await;
                            let _ = db.close().await;
                        }
                    });
                });
                let _ = dropper.join();
            }
        }
    }
}
