//! The conformance suite: one set of behaviours every `Store` backend must show.
//!
//! Each case is an async fn over a [`Harness`] (in the modules below); the `conformance!` macro
//! instantiates all of them once for SQLite (a temporary file, always) and once for PostgreSQL
//! (only when `TOLLGATE_TEST_DATABASE_URL` is set; a set but unreachable URL fails loudly).
//! Every case works in a fresh random workspace, so the PostgreSQL cases run in parallel on one
//! database. Promises of one backend only (SQLite durability across reopening, PostgreSQL
//! row-level security) are in `backends`. (A test crate's root resolves `mod` paths beside
//! itself, hence the `#[path]`s into `conformance/`.)

#[path = "conformance/backends.rs"]
mod backends;
#[path = "conformance/isolation.rs"]
mod isolation;
#[path = "conformance/records.rs"]
mod records;
#[path = "conformance/support.rs"]
mod support;
#[path = "conformance/usage.rs"]
mod usage;

use isolation::*;
use jiff::Timestamp;
use records::*;
use std::sync::Arc;
use support::{create_workspace, customer, fresh};
use tollgate_store::{
    AggregateRow, CustomerRecord, IngestItem, IngestOutcome, PostgresStore, SqliteStore, Store,
};
use usage::*;

pub(crate) const DATABASE_URL_VAR: &str = "TOLLGATE_TEST_DATABASE_URL";

/// A store and a fresh workspace in it.
struct Harness {
    store: Arc<dyn Store>,
    ws: String,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    async fn new(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>) -> Harness {
        let ws = fresh("ws");
        create_workspace(store.as_ref(), &ws).await;
        Harness {
            store,
            ws,
            _dir: dir,
        }
    }

    /// Another fresh workspace in the same store.
    async fn other_workspace(&self) -> String {
        let ws = fresh("ws");
        create_workspace(self.store.as_ref(), &ws).await;
        ws
    }

    async fn customer(&self, ws: &str, id: &str) -> CustomerRecord {
        let c = customer(ws, id);
        self.store.create_customer(&c).await.unwrap();
        c
    }

    async fn ingest(&self, ws: &str, items: &[IngestItem]) -> Vec<IngestOutcome> {
        self.store.ingest(ws, items).await.unwrap()
    }

    async fn aggregates(&self, ws: &str, customer: &str, period: Timestamp) -> Vec<AggregateRow> {
        self.store.aggregates(ws, customer, period).await.unwrap()
    }
}

async fn sqlite_harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("tollgate.db"))
        .await
        .unwrap();
    Harness::new(Arc::new(store), Some(dir)).await
}

/// `None` (the case is skipped) when no database is configured.
async fn postgres_harness() -> Option<Harness> {
    let store = postgres_store().await?;
    Some(Harness::new(Arc::new(store), None).await)
}

pub(crate) async fn postgres_store() -> Option<PostgresStore> {
    let Ok(url) = std::env::var(DATABASE_URL_VAR) else {
        eprintln!("{DATABASE_URL_VAR} is not set: PostgreSQL case skipped");
        return None;
    };
    match PostgresStore::connect_with(&url, 8).await {
        Ok(store) => Some(store),
        Err(e) => panic!("{DATABASE_URL_VAR} is set but PostgreSQL at {url} failed: {e}"),
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(&super::sqlite_harness().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    if let Some(h) = super::postgres_harness().await {
                        super::$case(&h).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    workspaces_and_admin_keys,
    catalog_versions,
    catalog_versions_are_gapless_under_concurrency,
    customers,
    subscriptions,
    api_keys,
    test_clocks,
    ingest_is_idempotent,
    concurrent_ingest_accepts_an_id_once,
    aggregate_add_and_max,
    aggregate_latest,
    aggregate_unique,
    aggregate_level_and_points,
    window_entries_and_prune,
    events_range_order_and_limit,
    workspace_isolation,
    timestamps_round_trip_to_the_microsecond,
    large_batches,
);
