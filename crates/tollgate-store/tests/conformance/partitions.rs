//! The monthly partitions of `events` (PostgreSQL only; SQLite's refusal is the last case).
//! Partitions belong to a schema, not a workspace, so each PostgreSQL case migrates a schema of
//! its own (dropped after) instead of sharing the suite's database: detaching a month there
//! would take the other cases' events with it.

use crate::support::*;
use IngestOutcome::{Accepted, Duplicate};
use sqlx::AssertSqlSafe;
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::partitions::{EventMonth, PartitionStore};
use tollgate_store::*;

/// A PostgreSQL store migrated into a fresh schema, and an owner's pool on that schema to look
/// at the tables behind the store's back.
struct Schema {
    store: PostgresStore,
    owner: sqlx::PgPool,
    admin: sqlx::PgPool,
    name: String,
}

impl Schema {
    async fn new() -> Schema {
        let url = std::env::var(crate::DATABASE_URL_VAR).unwrap();
        let name = fresh("partitions");
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let scoped = format!("{url}{sep}options[search_path]={name}");
        let store = PostgresStore::connect_with(&scoped, 4).await.unwrap();
        let owner = sqlx::PgPool::connect(&scoped).await.unwrap();
        Schema {
            store,
            owner,
            admin,
            name,
        }
    }

    /// The table each stored event's row is in (`tableoid::regclass`), by id.
    async fn homes(&self) -> Vec<(String, String)> {
        sqlx::query_as("SELECT id, tableoid::regclass::text FROM events ORDER BY id")
            .fetch_all(&self.owner)
            .await
            .unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.owner)
            .await
            .unwrap()
    }

    async fn drop(self) {
        self.store.close().await;
        self.owner.close().await;
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name)))
            .execute(&self.admin)
            .await
            .unwrap();
    }
}

fn month(s: &str) -> EventMonth {
    s.parse().unwrap()
}

/// An event of `cus_a` adding 1 to `calls`, received at `at`.
fn received(ws: &str, id: &str, at: &str) -> IngestItem {
    let mut i = item(ws, id, "cus_a", vec![add("calls", "1")]);
    i.event.received_at = ts(at);
    i
}

async fn workspace(s: &Schema) -> String {
    let ws = fresh("ws");
    create_workspace(&s.store, &ws).await;
    s.store
        .create_customer(&customer(&ws, "cus_a"))
        .await
        .unwrap();
    ws
}

async fn ingest(s: &Schema, ws: &str, items: &[IngestItem]) -> Vec<IngestOutcome> {
    s.store.ingest(&WorkspaceId::from(ws), items).await.unwrap()
}

#[tokio::test]
#[cfg_attr(
    not(tollgate_pg),
    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_events_land_in_their_month_partitions() {
    let s = Schema::new().await;
    let ws = workspace(&s).await;
    for m in ["2031-03", "2031-04"] {
        assert!(s.store.create_event_partition(month(m)).await.unwrap());
        assert!(
            !s.store.create_event_partition(month(m)).await.unwrap(),
            "a second creation of {m} is nothing"
        );
    }
    let batch = [
        received(&ws, "e1", "2031-03-31T23:59:59.999999Z"),
        received(&ws, "e2", "2031-04-01T00:00:00Z"),
        received(&ws, "e1", "2031-04-02T00:00:00Z"),
    ];
    assert_eq!(
        ingest(&s, &ws, &batch).await,
        vec![Accepted, Accepted, Duplicate]
    );
    assert_eq!(
        s.homes().await,
        vec![
            ("e1".into(), "events_2031_03".into()),
            ("e2".into(), "events_2031_04".into())
        ]
    );
    assert_eq!(s.count("events_default").await, 0);
    assert_eq!(s.count("event_ids").await, 2);

    let listed = s.store.event_partitions().await.unwrap();
    for (table, m) in [("events_2031_03", "2031-03"), ("events_2031_04", "2031-04")] {
        let p = listed.iter().find(|p| p.table == table).unwrap();
        assert!(p.attached && p.month == Some(month(m)), "{p:?}");
    }
    let default = listed.iter().find(|p| p.table == "events_default").unwrap();
    assert!(default.attached && default.month.is_none());
    s.drop().await;
}

#[tokio::test]
#[cfg_attr(
    not(tollgate_pg),
    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_a_detached_month_leaves_reads_and_keeps_its_ids() {
    let s = Schema::new().await;
    let ws = workspace(&s).await;
    let w = WorkspaceId::from(&ws);
    for m in ["2031-03", "2031-04"] {
        s.store.create_event_partition(month(m)).await.unwrap();
    }
    let batch = [
        received(&ws, "old", "2031-03-15T00:00:00Z"),
        received(&ws, "new", "2031-04-15T00:00:00Z"),
    ];
    assert_eq!(ingest(&s, &ws, &batch).await, vec![Accepted, Accepted]);
    assert_eq!(value_of_in(&s, &ws).await, dec("2"));

    assert!(
        s.store
            .detach_event_partition(month("2031-03"))
            .await
            .unwrap()
    );
    assert!(
        !s.store
            .detach_event_partition(month("2031-03"))
            .await
            .unwrap(),
        "detached already"
    );
    assert!(
        !s.store
            .detach_event_partition(month("2031-07"))
            .await
            .unwrap(),
        "no such partition"
    );
    assert_eq!(s.store.get_event(&w, "old").await.unwrap(), None);
    assert!(s.store.get_event(&w, "new").await.unwrap().is_some());
    let all = s
        .store
        .events(
            &w,
            &CustomerId::from("cus_a"),
            ts("2000-01-01T00:00:00Z"),
            ts("2040-01-01T00:00:00Z"),
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["new"]
    );

    // A retry of the detached event is still a duplicate, now and in a later month, and
    // counts nothing.
    let retry = [
        received(&ws, "old", "2031-03-15T00:00:00Z"),
        received(&ws, "old", "2031-04-20T00:00:00Z"),
    ];
    assert_eq!(ingest(&s, &ws, &retry).await, vec![Duplicate, Duplicate]);
    assert_eq!(value_of_in(&s, &ws).await, dec("2"));

    // The rows are in the detached table, to archive; the listing says so.
    assert_eq!(s.count("events_2031_03").await, 1);
    let listed = s.store.event_partitions().await.unwrap();
    let p = listed.iter().find(|p| p.table == "events_2031_03").unwrap();
    assert!(!p.attached, "{p:?}");
    // The application role cannot reach it around `events`' policy.
    let mut tx = s.owner.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE tollgate_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    let direct = sqlx::query("SELECT count(*) FROM events_2031_03")
        .fetch_one(&mut *tx)
        .await;
    assert!(direct.is_err(), "no grant on a partition");
    drop(tx);
    s.drop().await;
}

/// Events that arrived before their month's partition existed (the scheduler was not running)
/// wait in the default partition; creating the partition moves them into it.
#[tokio::test]
#[cfg_attr(
    not(tollgate_pg),
    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_a_late_partition_takes_its_month_out_of_the_default() {
    let s = Schema::new().await;
    let ws = workspace(&s).await;
    let batch = [
        received(&ws, "e1", "2031-05-03T00:00:00Z"),
        received(&ws, "e2", "2031-06-03T00:00:00Z"),
    ];
    assert_eq!(ingest(&s, &ws, &batch).await, vec![Accepted, Accepted]);
    assert_eq!(s.count("events_default").await, 2);

    assert!(
        s.store
            .create_event_partition(month("2031-05"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.homes().await,
        vec![
            ("e1".into(), "events_2031_05".into()),
            ("e2".into(), "events_default".into())
        ]
    );
    let w = WorkspaceId::from(&ws);
    assert!(s.store.get_event(&w, "e1").await.unwrap().is_some());
    assert_eq!(
        ingest(&s, &ws, &[received(&ws, "e1", "2031-05-04T00:00:00Z")]).await,
        vec![Duplicate]
    );
    s.drop().await;
}

async fn value_of_in(s: &Schema, ws: &str) -> rust_decimal::Decimal {
    s.store
        .aggregates(
            &WorkspaceId::from(ws),
            &CustomerId::from("cus_a"),
            ts(PERIOD),
        )
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.meter == "calls")
        .map(|r| r.value)
        .unwrap()
}

/// SQLite keeps one table: creating is nothing, listing and detaching are refused by code.
#[tokio::test]
async fn sqlite_events_are_not_partitioned() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    assert!(!store.events_partitioned());
    assert!(
        !store
            .create_event_partition(month("2031-03"))
            .await
            .unwrap()
    );
    for refused in [
        store.event_partitions().await.map(|_| ()),
        store
            .detach_event_partition(month("2031-03"))
            .await
            .map(|_| ()),
    ] {
        match refused {
            Err(StoreError::Invalid { code, .. }) => {
                assert_eq!(code, Code::EventsNotPartitioned)
            }
            other => panic!("expected events_not_partitioned, got {other:?}"),
        }
    }
}
