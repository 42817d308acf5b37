//! Every service's migrations run on an empty database (SQLite, or a fresh
//! PostgreSQL schema), are idempotent on a second start, and keep separate
//! histories so the services can share one database.

use dirsync_store::sea_orm::ConnectionTrait;
use dirsync_store::testing::TestDatabase;
use sea_orm::sea_query::{Alias, Query};

async fn count_rows(db: &sea_orm::DatabaseConnection, table: &str) -> i64 {
    let query = Query::select()
        .expr(sea_orm::sea_query::Expr::cust("COUNT(*)"))
        .from(Alias::new(table))
        .to_owned();
    let row = db
        .query_one(&query)
        .await
        .unwrap_or_else(|error| panic!("counting {table}: {error}"))
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

#[tokio::test]
async fn every_service_migrates_and_restarts_cleanly() {
    let db = TestDatabase::new();
    let options = db.options().clone();
    for _start in 0..2 {
        let conn = dirsync_store::connect(&options).await.unwrap();
        dirsync_store::migrate::<dirsync_provisioner::Migrator>(&conn, "provisioner")
            .await
            .unwrap();
        dirsync_store::migrate::<dirsync_directory_reader::Migrator>(&conn, "directory-reader")
            .await
            .unwrap();
        dirsync_store::migrate::<dirsync_mapping::Migrator>(&conn, "mapping")
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let conn = dirsync_store::connect(&options).await.unwrap();
    // Each applied exactly once, however often the services start.
    use sea_orm_migration::MigratorTrait as _;
    let applied = |migrations: usize| i64::try_from(migrations).unwrap();
    assert_eq!(
        count_rows(&conn, "provisioner_migrations").await,
        applied(dirsync_provisioner::Migrator::migrations().len())
    );
    assert_eq!(
        count_rows(&conn, "directory_reader_migrations").await,
        applied(dirsync_directory_reader::Migrator::migrations().len())
    );
    assert_eq!(
        count_rows(&conn, "mapping_migrations").await,
        applied(dirsync_mapping::Migrator::migrations().len())
    );
    for table in [
        "tenants",
        "scim_tokens",
        "users",
        "groups",
        "group_members",
        "sync_state",
        "maas360_audit",
        "maas360_health",
        "directory_cursors",
        "group_mappings",
    ] {
        assert_eq!(
            count_rows(&conn, table).await,
            0,
            "{table} exists and is empty"
        );
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let options = dirsync_store::StoreOptions {
        url: "postgres://nobody:secret@127.0.0.1:1/none".to_owned(),
        schema: String::new(),
        max_connections: 1,
        connect_timeout: std::time::Duration::from_secs(2),
    };
    let error = dirsync_store::connect(&options)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot connect to the database"), "{error}");
    assert!(
        !error.contains("secret"),
        "the password is not shown: {error}"
    );
}
