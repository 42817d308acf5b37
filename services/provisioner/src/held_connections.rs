//! PostgreSQL connections held apart from the pool for the hottest statements: the batches of
//! Entra's matching queries and of user creates, each one statement. sqlx tests every
//! connection it takes back into its pool with a round trip to the server (a `Sync`), which no
//! option turns off, through a task of its own: for a statement that is itself one round trip,
//! that doubles the conversation and the server's work. A held connection is taken for one
//! statement and put back untested. A statement that fails or outlasts [`STATEMENT_TIMEOUT`]
//! drops its connection; the next use takes a new one from the pool and detaches it, so it
//! carries the pool's settings (search path, connect timeout) and the pool may open another in
//! its place. At most as many are held as statements run at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use sea_orm::sqlx::{self, PgConnection, PgPool};
use sea_orm::{DbErr, RuntimeErr};

use crate::error::{ProvisionerError, Result};

/// A held statement taking longer than this is abandoned with its connection: a batch that
/// hangs must not hold its callers (who have deadlines of their own) nor its connection.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a statement on a held connection is: a future borrowing the connection.
pub(crate) type Statement<'c, T> =
    Pin<Box<dyn Future<Output = std::result::Result<T, sqlx::Error>> + Send + 'c>>;

pub(crate) struct HeldConnections {
    pool: PgPool,
    idle: Mutex<Vec<PgConnection>>,
    max_idle: usize,
}

impl std::fmt::Debug for HeldConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldConnections")
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

impl HeldConnections {
    /// Connections taken from `pool`; `max_idle` are kept between statements (the statements
    /// run at once), any more are closed as they finish.
    pub(crate) fn new(pool: PgPool, max_idle: usize) -> Self {
        Self {
            pool,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// Runs `statement` on a held connection.
    pub(crate) async fn run<T>(
        &self,
        statement: impl for<'c> FnOnce(&'c mut PgConnection) -> Statement<'c, T>,
    ) -> Result<T> {
        let mut connection = match self.take_idle() {
            Some(connection) => connection,
            None => self
                .pool
                .acquire()
                .await
                .map_err(|error| {
                    ProvisionerError::Unavailable(format!("no database connection: {error}"))
                })?
                .detach(),
        };
        let outcome = tokio::time::timeout(STATEMENT_TIMEOUT, statement(&mut connection)).await;
        match outcome {
            Ok(Ok(value)) => {
                self.put_back(connection);
                Ok(value)
            }
            // The connection may be broken or mid-conversation: it goes.
            Ok(Err(error)) => Err(ProvisionerError::from(DbErr::Query(RuntimeErr::SqlxError(
                error.into(),
            )))),
            Err(_) => Err(ProvisionerError::Unavailable(format!(
                "a statement took over {} s",
                STATEMENT_TIMEOUT.as_secs()
            ))),
        }
    }

    fn take_idle(&self) -> Option<PgConnection> {
        self.idle.lock().ok()?.pop()
    }

    fn put_back(&self, connection: PgConnection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push(connection);
        }
        // Otherwise dropped: sqlx closes a dropped connection's socket.
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::ConnectionTrait;

    async fn backend_pid(held: &super::HeldConnections) -> crate::error::Result<i32> {
        held.run(|connection| {
            Box::pin(async move {
                sea_orm::sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(connection)
                    .await
            })
        })
        .await
    }

    /// A held connection the server dropped fails one statement, never the next: it is not
    /// put back, and the next statement runs on a new one. (PostgreSQL only: on SQLite there
    /// are none, and the test has nothing to check.)
    #[tokio::test]
    async fn a_broken_connection_fails_one_statement_and_is_replaced() {
        let (_database, store) = crate::store::test_store().await;
        let Some(held) = store.held_connections() else {
            return;
        };
        let first = backend_pid(held).await.expect("first statement");
        assert_eq!(
            backend_pid(held).await.expect("second statement"),
            first,
            "a connection is held between statements"
        );
        store
            .db()
            .execute_unprepared(&format!("SELECT pg_terminate_backend({first})"))
            .await
            .expect("terminate");
        // The server ends the backend after it answered; wait until it is gone.
        for _ in 0..100 {
            let alive = store
                .db()
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    format!("SELECT 1 FROM pg_stat_activity WHERE pid = {first}"),
                ))
                .await
                .expect("pg_stat_activity");
            if alive.is_none() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            backend_pid(held).await.is_err(),
            "the statement on the dropped connection fails"
        );
        let replaced = backend_pid(held).await.expect("the next statement runs");
        assert_ne!(replaced, first);
    }
}
