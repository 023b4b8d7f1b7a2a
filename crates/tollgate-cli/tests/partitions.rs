//! `tollgate events partitions` and `tollgate events detach-partition`, the binary against a
//! store: on PostgreSQL (a schema of the test's own) an ended month is detached and listed as
//! such, the current month is refused; on SQLite both commands say the store is not partitioned.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::run;
use tollgate_store::partitions::{EventMonth, PartitionStore as _};
use tollgate_store::{PostgresStore, SqliteStore};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
#[cfg_attr(
    not(tollgate_pg),
    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn an_ended_month_detaches_and_the_current_one_is_refused() {
    use sqlx::AssertSqlSafe;
    let url = std::env::var("TOLLGATE_TEST_DATABASE_URL").expect("the PostgreSQL URL is set");
    let schema = format!("cli_partitions_{}", uuid::Uuid::now_v7().simple());
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options[search_path]={schema}");
    let store = PostgresStore::connect_with(&scoped, 1).await.unwrap();
    let old: EventMonth = "2020-01".parse().unwrap();
    assert!(store.create_event_partition(old).await.unwrap());
    store.close().await;

    let current = EventMonth::of(jiff::Timestamp::now()).unwrap().to_string();
    let refused = run(&[
        "events",
        "detach-partition",
        "--database-url",
        &scoped,
        "--month",
        &current,
    ]);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(err.contains("partition_month_open"), "{err}");

    let detached = run(&[
        "events",
        "detach-partition",
        "--database-url",
        &scoped,
        "--month",
        "2020-01",
    ]);
    assert!(detached.status.success(), "{}", text(&detached.stderr));
    assert!(
        text(&detached.stdout).contains("events_2020_01 detached"),
        "{}",
        text(&detached.stdout)
    );

    let listed = run(&["events", "partitions", "--database-url", &scoped, "--json"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let rows: Vec<serde_json::Value> = text(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let state = |table: &str| {
        rows.iter()
            .find(|r| r["table"] == table)
            .map(|r| r["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        state("events_2020_01").as_deref(),
        Some("detached"),
        "{rows:?}"
    );
    assert_eq!(state("events_default").as_deref(), Some("attached"));
    let current_table = format!("events_{}", current.replace('-', "_"));
    assert_eq!(
        state(&current_table).as_deref(),
        Some("attached"),
        "{rows:?}"
    );
    let jan = rows
        .iter()
        .find(|r| r["table"] == "events_2020_01")
        .unwrap();
    assert_eq!(jan["from"], "2020-01-01T00:00:00Z");
    assert_eq!(jan["to"], "2020-02-01T00:00:00Z");

    let bad = run(&[
        "events",
        "detach-partition",
        "--database-url",
        &scoped,
        "--month",
        "2020-13",
    ]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("YYYY-MM"),
        "{}",
        text(&bad.stderr)
    );

    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_stores_are_not_partitioned() {
    let dir = tempfile::tempdir().unwrap();
    SqliteStore::open(&dir.path().join("tollgate.db"))
        .await
        .unwrap()
        .close()
        .await;
    let data_dir = dir.path().to_str().unwrap();
    for args in [
        vec!["events", "partitions", "--data-dir", data_dir],
        vec![
            "events",
            "detach-partition",
            "--data-dir",
            data_dir,
            "--month",
            "2020-01",
        ],
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("events_not_partitioned") && err.contains("SQLite"),
            "{args:?}: {err}"
        );
    }
}
