//! The monthly partitions of `events` end to end, on a real bound server: on PostgreSQL the job
//! worker creates the month's partition ahead, so events received this month land in it and the
//! default partition stays empty; an ended month is detached (its events leave the API's reads,
//! a retry of one is still a duplicate), the current one is refused. On SQLite, preparing is
//! nothing and listing and detaching are refused by code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::{Backend, TestServer, Workspace};
use jiff::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::AssertSqlSafe;
use tollgate_server::app::partitions::{self, EventMonth};
use tollgate_server::clock::Clock;
use tollgate_server::error::Code;
use tollgate_server::jobs::JobsConfig;

const CATALOG: &str = r#"
currency: USD
meters:
  calls: { name: Calls, event: api.call, aggregation: count }
plans:
  metered:
    prices:
      - { meter: calls, model: per_unit, unit_amount: "1.00" }
"#;

/// The server's clock; the test moves it across a month's end.
struct MovableClock(AtomicI64);

impl Clock for MovableClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_microsecond(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

impl MovableClock {
    fn set(&self, time: &str) {
        let t: Timestamp = time.parse().unwrap();
        self.0.store(t.as_microsecond(), Ordering::SeqCst);
    }
}

fn month(s: &str) -> EventMonth {
    s.parse().unwrap()
}

async fn send(ws: &Workspace<'_>, id: &str, at: &str) -> String {
    let (status, report) = ws
        .events(json!([{ "id": id, "customer": "acme", "type": "api.call", "timestamp": at }]))
        .await;
    assert!(status.is_success(), "{status} {report}");
    report["results"][0]["status"].as_str().unwrap().to_owned()
}

/// The status of the event's lookup by id (its history of amendments).
async fn event_status(ws: &Workspace<'_>, id: &str) -> StatusCode {
    ws.call(
        Method::GET,
        &format!("/v1/events/amendments?event={id}"),
        None,
    )
    .await
    .0
}

/// A schema of this test's own: partitions belong to a schema, and the worker claims jobs of
/// every workspace in its database.
struct Schema {
    admin: sqlx::PgPool,
    name: String,
    url: String,
}

impl Schema {
    async fn new() -> Schema {
        let url = common::database_url();
        let name = format!("partitions_{}", uuid::Uuid::now_v7().simple());
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}options[search_path]={name}");
        Schema { admin, name, url }
    }

    async fn count(&self, table: &str) -> i64 {
        let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
        let n = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }

    async fn drop(self) {
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name)))
            .execute(&self.admin)
            .await
            .unwrap();
    }
}

#[tokio::test]
#[cfg_attr(
    not(tollgate_pg),
    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_the_worker_prepares_months_and_an_ended_one_detaches() {
    let schema = Schema::new().await;
    let clock = Arc::new(MovableClock(AtomicI64::new(0)));
    clock.set("2031-08-20T12:00:00Z");
    let url = schema.url.clone();
    let mut server = TestServer::start_with_clock(
        Backend::Postgres,
        |c| {
            c.database_url = Some(url);
            c.jobs = Some(JobsConfig {
                poll_interval: Duration::from_millis(50),
                ..JobsConfig::default()
            });
        },
        clock.clone(),
    )
    .await;
    let engine = server.server.as_ref().unwrap().state.engine.clone();
    // The worker's first step creates August and September 2031 (on the server's clock).
    let wanted = ["events_2031_08", "events_2031_09"];
    let mut listed = Vec::new();
    for _ in 0..200 {
        listed = partitions::list(&engine).await.unwrap();
        if wanted.iter().all(|t| listed.iter().any(|p| p.table == *t)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in wanted {
        assert!(
            listed.iter().any(|p| p.table == t && p.attached),
            "{t}: {listed:?}"
        );
    }

    let ws = server.workspace_with("partitions", CATALOG).await;
    ws.customer("acme", "metered", None, false).await;
    assert_eq!(send(&ws, "aug", "2031-08-20T11:00:00Z").await, "accepted");
    clock.set("2031-09-02T00:00:00Z");
    assert_eq!(send(&ws, "sep", "2031-09-01T23:00:00Z").await, "accepted");
    assert_eq!(schema.count("events_2031_08").await, 1);
    assert_eq!(schema.count("events_2031_09").await, 1);
    assert_eq!(
        schema.count("events_default").await,
        0,
        "nothing waits outside a month"
    );

    // September is still open; August has ended.
    let refused = partitions::detach(&engine, month("2031-09"))
        .await
        .unwrap_err();
    assert_eq!(refused.code, Code::PartitionMonthOpen, "{refused:?}");
    let later = partitions::detach(&engine, month("2031-10"))
        .await
        .unwrap_err();
    assert_eq!(later.code, Code::PartitionMonthOpen);
    assert_eq!(
        partitions::detach(&engine, month("2031-08")).await.unwrap(),
        month("2031-08")
    );
    let again = partitions::detach(&engine, month("2031-08"))
        .await
        .unwrap_err();
    assert_eq!(again.code, Code::NotFound, "{again:?}");

    assert_eq!(event_status(&ws, "aug").await, StatusCode::NOT_FOUND);
    assert_eq!(event_status(&ws, "sep").await, StatusCode::OK);
    let (_, page) = ws.call(Method::GET, "/v1/events?customer=acme", None).await;
    let ids: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sep"], "{page}");
    // A retry of the detached event is refused as a duplicate.
    assert_eq!(send(&ws, "aug", "2031-08-20T11:00:00Z").await, "duplicate");
    assert_eq!(schema.count("events_default").await, 0);

    server.server.take().unwrap().stop().await.unwrap();
    schema.drop().await;
}

#[tokio::test]
async fn sqlite_refuses_listing_and_detaching() {
    let server = TestServer::start(Backend::Sqlite).await;
    let engine = server.server.as_ref().unwrap().state.engine.clone();
    assert_eq!(partitions::prepare(&engine).await.unwrap(), vec![]);
    let listed = partitions::list(&engine).await.unwrap_err();
    assert_eq!(listed.code, Code::EventsNotPartitioned);
    let detached = partitions::detach(&engine, month("2020-01"))
        .await
        .unwrap_err();
    assert_eq!(detached.code, Code::EventsNotPartitioned);
    assert!(detached.detail.contains("SQLite"), "{}", detached.detail);
}
