//! SQLite in WAL mode copies the log back into the database file (a checkpoint, with its
//! fsyncs) inside whichever commit takes the log past a thousand pages. For a store with one
//! busy writer that is the writer itself, holding the write lock while it copies, every few
//! commits: timed on a pull sync of 100k users, the commits of 10,000 group creates took 47 s
//! with checkpoints inline and 17 s without.
//!
//! [`connect_writer`] opens the connection writes go through with its own checkpoint threshold
//! raised, and a [`Checkpointer`] task checkpoints passively on a connection of its own, beside
//! the writer, every [`CHECKPOINT_EVERY`]: it takes no lock the writer needs, and copies most
//! of the log while the writer goes on. The writer still checkpoints when the log passes
//! [`WRITER_CHECKPOINT_PAGES`], finding most of it copied already: the log only starts over
//! from its beginning when a checkpoint finishes between two write transactions, which under
//! a steady stream of writes only the writer itself can make happen. Without it the log would
//! grow for as long as the writes go on (gigabytes in a minute of a pull sync).
//!
//! Durability stays what `synchronous = NORMAL` in WAL mode gives: a commit survives a crash of
//! the process at once, and a power cut once the log is synced, which a checkpoint does.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::{SqliteTuning, StoreError, StoreOptions, connect_with, single_writer};

/// How often the background task checkpoints.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Log pages past which the writer checkpoints itself (128 MiB of 4 KiB pages): the larger the
/// log, the more often a page written many times is copied once.
pub const WRITER_CHECKPOINT_PAGES: u32 = 32_768;

/// The writer's page cache, in KiB: every index a write changes has its pages written by
/// this one connection, and at 100k users those indexes are tens of megabytes.
const WRITER_CACHE_KIB: u32 = 32_768;

fn writer_tuning() -> SqliteTuning {
    SqliteTuning {
        checkpoint_pages: WRITER_CHECKPOINT_PAGES,
        cache_kib: WRITER_CACHE_KIB,
    }
}

/// The background checkpoints of one SQLite database; they stop when this is dropped.
#[derive(Debug)]
pub struct Checkpointer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// On SQLite, one connection for writes, whose commits checkpoint only past
/// [`WRITER_CHECKPOINT_PAGES`], and the task that checkpoints beside it; on PostgreSQL, `None`
/// (it has no such log to keep in check).
pub async fn connect_writer(
    options: &StoreOptions,
) -> Result<Option<(DatabaseConnection, Checkpointer)>, StoreError> {
    let single = StoreOptions {
        max_connections: 1,
        ..options.clone()
    };
    let writer = connect_with(&single, writer_tuning()).await?;
    if !single_writer(&writer) {
        writer.close().await.ok();
        return Ok(None);
    }
    let checkpointer = Checkpointer::spawn(connect_with(&single, SqliteTuning::default()).await?);
    Ok(Some((writer, checkpointer)))
}

impl Checkpointer {
    /// Checkpoints the database `db` is connected to every [`CHECKPOINT_EVERY`].
    fn spawn(db: DatabaseConnection) -> Self {
        Self {
            task: tokio::spawn(checkpoint_forever(db)),
        }
    }
}

async fn checkpoint_forever(db: DatabaseConnection) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // PASSIVE copies what no reader still needs and waits for nobody; what it leaves, the
        // next checkpoint takes. A log already copied costs a look at its header.
        if let Err(error) = db
            .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
            .await
        {
            tracing::warn!(%error, "WAL checkpoint failed; trying again shortly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SQLite file of its own, removed at the end.
    struct TempDb(std::path::PathBuf);

    impl TempDb {
        fn new() -> Self {
            let unique = uuid::Uuid::new_v4().simple().to_string();
            Self(std::env::temp_dir().join(format!("dirsync-checkpoint-{unique}.db")))
        }

        fn options(&self) -> StoreOptions {
            StoreOptions {
                url: format!("sqlite://{}", self.0.display()),
                schema: String::new(),
                max_connections: 1,
                connect_timeout: Duration::from_secs(10),
            }
        }

        fn wal_pages(&self) -> u64 {
            let mut wal = self.0.clone().into_os_string();
            wal.push("-wal");
            std::fs::metadata(wal).map_or(0, |meta| meta.len() / 4096)
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = self.0.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }

    /// Commits `rows` rows of about one page each, one transaction each.
    async fn write_pages(db: &DatabaseConnection, rows: std::ops::Range<u32>) {
        let body = "x".repeat(3000);
        for id in rows {
            db.execute_unprepared(&format!("INSERT INTO t (id, body) VALUES ({id}, '{body}')"))
                .await
                .expect("row written");
        }
    }

    async fn count_rows(db: &DatabaseConnection) -> i64 {
        db.query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM t",
        ))
        .await
        .expect("count read")
        .expect("a count")
        .try_get::<i64>("", "n")
        .expect("a number")
    }

    #[tokio::test]
    async fn the_writer_leaves_small_checkpoints_to_the_checkpointer() {
        let file = TempDb::new();
        let writer = connect_with(&file.options(), writer_tuning())
            .await
            .expect("writer");
        writer
            .execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .await
            .expect("table");
        // SQLite's own threshold would have checkpointed at 1,000 pages and started the log
        // over; the writer's log holds every page it wrote.
        write_pages(&writer, 0..2500).await;
        let grown = file.wal_pages();
        assert!(grown > 2500, "a log of {grown} pages after 2,500 written");

        // Once the checkpointer has run, the log starts again from its beginning: more
        // writes reuse the file instead of growing it.
        let checkpointer = Checkpointer::spawn(
            connect_with(&file.options(), SqliteTuning::default())
                .await
                .expect("checkpoint connection"),
        );
        tokio::time::sleep(CHECKPOINT_EVERY * 3).await;
        write_pages(&writer, 2500..3000).await;
        assert_eq!(file.wal_pages(), grown, "the log kept growing");
        assert_eq!(count_rows(&writer).await, 3000, "a row went missing");
        drop(checkpointer);
    }

    #[tokio::test]
    async fn under_writes_that_never_pause_the_log_stays_bounded() {
        let file = TempDb::new();
        let Some((writer, checkpointer)) = connect_writer(&file.options()).await.expect("writer")
        else {
            panic!("SQLite gets a checkpointer");
        };
        writer
            .execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .await
            .expect("table");
        // With only the background task checkpointing, the log would never start over: some
        // frames are always newer than its last checkpoint.
        let pages = WRITER_CHECKPOINT_PAGES * 5 / 2;
        write_pages(&writer, 0..pages).await;
        let log = file.wal_pages();
        assert!(
            log < u64::from(WRITER_CHECKPOINT_PAGES) * 2,
            "a log of {log} pages after {pages} written without a pause"
        );
        assert_eq!(count_rows(&writer).await, i64::from(pages));
        drop(checkpointer);
    }

    #[tokio::test]
    async fn postgres_gets_no_checkpointer() {
        let Ok(url) = std::env::var("DIRSYNC_TEST_DATABASE_URL") else {
            return;
        };
        let options = StoreOptions {
            url,
            schema: String::new(),
            max_connections: 1,
            connect_timeout: Duration::from_secs(10),
        };
        assert!(connect_writer(&options).await.expect("connected").is_none());
    }
}
