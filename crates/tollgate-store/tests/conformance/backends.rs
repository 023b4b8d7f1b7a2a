//! Promises of one backend only: SQLite durability across reopening the file, PostgreSQL
//! row-level security.

use crate::postgres_store;
use crate::support::*;
use IngestOutcome::{Accepted, Duplicate};
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::billing::BillingStore;
use tollgate_store::*;

const DATABASE_URL_VAR: &str = crate::DATABASE_URL_VAR;

/// What `ingest` acknowledged is in the file: after a clean close, and after the store is
/// dropped without closing (connections abandoned as a crash would leave them; the WAL holds
/// the commits).
#[tokio::test]
async fn sqlite_data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable.db");
    let ws = fresh("ws");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        create_workspace(&store, &ws).await;
        store
            .create_customer(&customer(&ws, "cus_a"))
            .await
            .unwrap();
        store
            .ingest(
                &WorkspaceId::from(&ws),
                &[item(&ws, "e1", "cus_a", vec![add("calls", "2")])],
            )
            .await
            .unwrap();
        store.close().await;
    }
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .ingest(
                &WorkspaceId::from(&ws),
                &[item(&ws, "e2", "cus_a", vec![add("calls", "3")])],
            )
            .await
            .unwrap();
        // Not closed: the pools are leaked with their connections open.
        std::mem::forget(store);
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let rows = store
        .aggregates(
            &WorkspaceId::from(&ws),
            &CustomerId::from("cus_a"),
            ts(PERIOD),
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].value, dec("5"));
    let outcomes = store
        .ingest(
            &WorkspaceId::from(&ws),
            &[item(&ws, "e1", "cus_a", vec![add("calls", "2")])],
        )
        .await
        .unwrap();
    assert_eq!(outcomes, vec![Duplicate]);
    assert!(
        store
            .get_customer(&WorkspaceId::from(&ws), "cus_a")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn sqlite_in_memory_store_works() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let ws = fresh("ws");
    create_workspace(&store, &ws).await;
    store
        .create_customer(&customer(&ws, "cus_a"))
        .await
        .unwrap();
    let outcomes = store
        .ingest(
            &WorkspaceId::from(&ws),
            &[item(&ws, "e1", "cus_a", vec![add("calls", "1")])],
        )
        .await
        .unwrap();
    assert_eq!(outcomes, vec![Accepted]);
    assert_eq!(
        store
            .list_customers(&WorkspaceId::from(&ws))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.backend(), "sqlite");
}

/// Row-level security holds even for a query with no workspace filter at all: as
/// `tollgate_app` with the workspace set to A, a bare `SELECT` sees A's rows and none of B's;
/// with no workspace set it sees nothing; and it cannot write a row into B.
#[tokio::test]
#[cfg_attr(
    not(tollgate_pg),
    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_row_level_security_hides_other_workspaces() {
    let store = postgres_store().await;
    let (a, b) = (fresh("ws"), fresh("ws"));
    for ws in [&a, &b] {
        create_workspace(&store, ws).await;
        store.create_customer(&customer(ws, "cus_a")).await.unwrap();
        let ops = vec![
            add("calls", "1"),
            update("users", AggregateOp::Unique("u".into())),
        ];
        store
            .ingest(&WorkspaceId::from(ws), &[item(ws, "e1", "cus_a", ops)])
            .await
            .unwrap();
    }
    let url = std::env::var(DATABASE_URL_VAR).unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE tollgate_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("SELECT set_config('tollgate.workspace', $1, true)")
        .bind(&a)
        .execute(&mut *tx)
        .await
        .unwrap();
    for table in [
        "workspaces",
        "customers",
        "events",
        "aggregates",
        "aggregate_uniques",
    ] {
        let sql = format!("SELECT workspace FROM {table}");
        let seen: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert!(!seen.is_empty(), "{table}: A's own rows are visible");
        assert!(seen.iter().all(|w| *w == a), "{table}: saw {seen:?}");
    }
    let write = sqlx::query(
        "INSERT INTO customers (workspace, id, suspended, has_payment_method, metadata, created_at) \
         VALUES ($1, 'intruder', false, false, '{}', 0)",
    )
    .bind(&b)
    .execute(&mut *tx)
    .await;
    assert!(
        write.is_err(),
        "a row for B must be rejected while scoped to A"
    );
    drop(tx);

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE tollgate_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    let unscoped: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(unscoped, 0, "no workspace set, no rows");
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(keys, 0, "key rows only show to a lookup naming their hash");
}

/// The listing of workspaces runs as `tollgate_app` too: naming itself shows it every
/// workspace row and nothing of any other table.
#[tokio::test]
#[cfg_attr(
    not(tollgate_pg),
    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_workspace_listing_sees_workspaces_only() {
    let store = postgres_store().await;
    let (a, b) = (fresh("ws"), fresh("ws"));
    for ws in [&a, &b] {
        create_workspace(&store, ws).await;
        store.create_customer(&customer(ws, "cus_a")).await.unwrap();
    }
    let listed: Vec<String> = store
        .list_workspaces()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert!(listed.contains(&a) && listed.contains(&b));

    let url = std::env::var(DATABASE_URL_VAR).unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('role', 'tollgate_app', true), \
         set_config('tollgate.listing', 'workspaces', true)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let workspaces: i64 = sqlx::query_scalar("SELECT count(*) FROM workspaces")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(workspaces >= 2);
    let customers: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(customers, 0, "the listing sees no rows inside a workspace");
    let write = sqlx::query("UPDATE workspaces SET name = 'renamed' WHERE workspace = $1")
        .bind(&a)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(write.rows_affected(), 0, "and changes none");
}
