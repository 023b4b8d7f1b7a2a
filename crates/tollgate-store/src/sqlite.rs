//! The embedded backend: one SQLite file in WAL mode.
//!
//! SQLite allows one writer at a time, so the store keeps a single-connection write pool (writes
//! queue in the pool instead of spinning on `SQLITE_BUSY`) and a small read pool whose
//! connections read concurrently with the writer thanks to WAL. Write transactions start with
//! `BEGIN IMMEDIATE`, which takes the write lock up front: a deferred transaction that read first
//! could fail to upgrade if another process (the CLI, say) holds the lock.
//!
//! Durability: `synchronous = FULL` makes every commit fsync the WAL, so an `ingest` that
//! returned `Ok` survives `kill -9` and power loss (`NORMAL` in WAL mode may lose the last
//! commits on power loss).

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::codec::{self, insert_error, json_text, micros, opt_micros};
use crate::{
    AdminKeyRecord, AggregateRow, ApiKeyRecord, CatalogVersionRecord, CustomerRecord, EventRecord,
    IngestItem, IngestOutcome, LevelPoint, Store, StoreError, StoreResult, SubscriptionRecord,
    TestClockRecord, WindowEntryRow, WorkspaceRecord,
};

mod billing;
mod ingest;
mod queries;
mod values;

use queries as q;

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The writer's page cache (negative: KiB), larger than SQLite's 2 MiB default so the index pages
/// that every ingest touches stay in memory as the event tables grow. Filled only as used.
const WRITER_CACHE: &str = "-16384";
/// Readers run concurrently with the writer under WAL; a few cover the API's reads.
const READ_CONNECTIONS: u32 = 4;

/// The SQLite store. Cloning shares the pools.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path` and brings its schema up to
    /// date.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // Multi-row statements inside a transaction keep a statement journal (to undo just
            // that statement on error); in memory it costs a copy, in a temp file a write.
            .pragma("temp_store", "MEMORY");
        // The writer is never closed for idleness: reopening it costs more than it saves, and
        // keeping it open keeps the WAL index warm for the readers.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.clone().pragma("cache_size", WRITER_CACHE))
            .await?;
        crate::migrations::sqlite().run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(base.pragma("query_only", "ON"))
            .await?;
        Ok(SqliteStore { write, read })
    }

    /// A private in-memory database, for tests. Reads and writes share its one connection (a
    /// second connection would see a different, empty database), which is never closed.
    pub async fn open_in_memory() -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        crate::migrations::sqlite().run(&pool).await?;
        Ok(SqliteStore {
            write: pool.clone(),
            read: pool,
        })
    }

    /// Closes the connections, checkpointing the WAL into the main file. Dropping the store
    /// without closing is safe too (committed data is in the WAL), just slower to reopen.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    async fn begin_write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// `NotFound` when an update touched no row.
fn require_row(rows: u64, kind: &'static str, id: &str) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::NotFound {
            kind,
            id: id.to_owned(),
        })
    } else {
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn create_workspace(&self, w: &WorkspaceRecord) -> StoreResult<()> {
        sqlx::query(q::INSERT_WORKSPACE)
            .bind(&w.id)
            .bind(&w.name)
            .bind(micros(w.created_at))
            .execute(&self.write)
            .await
            .map_err(|e| insert_error(e, "workspace", &w.id, "workspace", &w.id))?;
        Ok(())
    }

    async fn get_workspace(&self, id: &str) -> StoreResult<Option<WorkspaceRecord>> {
        let row = sqlx::query(q::GET_WORKSPACE)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(codec::workspace).transpose()
    }

    async fn put_admin_key(&self, key: &AdminKeyRecord) -> StoreResult<()> {
        sqlx::query(q::INSERT_ADMIN_KEY)
            .bind(&key.workspace)
            .bind(&key.id)
            .bind(&key.secret_hash)
            .bind(micros(key.created_at))
            .execute(&self.write)
            .await
            .map_err(|e| insert_error(e, "admin_key", &key.id, "workspace", &key.workspace))?;
        Ok(())
    }

    async fn find_admin_key(&self, secret_hash: &str) -> StoreResult<Option<AdminKeyRecord>> {
        let row = sqlx::query(q::FIND_ADMIN_KEY)
            .bind(secret_hash)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(codec::admin_key).transpose()
    }

    async fn add_catalog_version(
        &self,
        workspace: &str,
        catalog: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        let version: Option<i64> = sqlx::query_scalar(q::BUMP_CATALOG_SEQ)
            .bind(workspace)
            .fetch_optional(&mut *tx)
            .await?;
        let version = version.ok_or_else(|| StoreError::NotFound {
            kind: "workspace",
            id: workspace.to_owned(),
        })?;
        sqlx::query(q::INSERT_CATALOG_VERSION)
            .bind(workspace)
            .bind(version)
            .bind(json_text(catalog))
            .bind(micros(at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn latest_catalog(&self, workspace: &str) -> StoreResult<Option<CatalogVersionRecord>> {
        let row = sqlx::query(q::LATEST_CATALOG)
            .bind(workspace)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(codec::catalog_version).transpose()
    }

    async fn catalog_version(
        &self,
        workspace: &str,
        version: i64,
    ) -> StoreResult<Option<CatalogVersionRecord>> {
        let row = sqlx::query(q::GET_CATALOG_VERSION)
            .bind(workspace)
            .bind(version)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(codec::catalog_version).transpose()
    }

    async fn create_customer(&self, c: &CustomerRecord) -> StoreResult<()> {
        sqlx::query(q::INSERT_CUSTOMER)
            .bind(&c.workspace)
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.email)
            .bind(c.suspended)
            .bind(c.has_payment_method)
            .bind(&c.test_clock)
            .bind(json_text(&c.metadata))
            .bind(micros(c.created_at))
            .execute(&self.write)
            .await
            .map_err(|e| insert_error(e, "customer", &c.id, "workspace", &c.workspace))?;
        Ok(())
    }

    async fn get_customer(&self, workspace: &str, id: &str) -> StoreResult<Option<CustomerRecord>> {
        let row = sqlx::query(q::GET_CUSTOMER)
            .bind(workspace)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(codec::customer).transpose()
    }

    async fn list_customers(&self, workspace: &str) -> StoreResult<Vec<CustomerRecord>> {
        let rows = sqlx::query(q::LIST_CUSTOMERS)
            .bind(workspace)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(codec::customer).collect()
    }

    async fn update_customer(&self, c: &CustomerRecord) -> StoreResult<()> {
        let done = sqlx::query(q::UPDATE_CUSTOMER)
            .bind(&c.workspace)
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.email)
            .bind(c.suspended)
            .bind(c.has_payment_method)
            .bind(json_text(&c.metadata))
            .execute(&self.write)
            .await?;
        require_row(done.rows_affected(), "customer", &c.id)
    }

    async fn create_subscription(&self, s: &SubscriptionRecord) -> StoreResult<()> {
        sqlx::query(q::INSERT_SUBSCRIPTION)
            .bind(&s.workspace)
            .bind(&s.id)
            .bind(&s.customer)
            .bind(&s.plan)
            .bind(s.catalog_version)
            .bind(s.status.as_str())
            .bind(json_text(&s.addons))
            .bind(micros(s.started_at))
            .bind(micros(s.billing_anchor))
            .bind(opt_micros(s.trial_end))
            .bind(opt_micros(s.canceled_at))
            .bind(opt_micros(s.ends_at))
            .execute(&self.write)
            .await
            .map_err(|e| insert_error(e, "subscription", &s.id, "customer", &s.customer))?;
        Ok(())
    }

    async fn update_subscription(&self, s: &SubscriptionRecord) -> StoreResult<()> {
        let done = sqlx::query(q::UPDATE_SUBSCRIPTION)
            .bind(&s.workspace)
            .bind(&s.id)
            .bind(&s.plan)
            .bind(s.catalog_version)
            .bind(s.status.as_str())
            .bind(json_text(&s.addons))
            .bind(micros(s.started_at))
            .bind(micros(s.billing_anchor))
            .bind(opt_micros(s.trial_end))
            .bind(opt_micros(s.canceled_at))
            .bind(opt_micros(s.ends_at))
            .execute(&self.write)
            .await?;
        require_row(done.rows_affected(), "subscription", &s.id)
    }

    async fn get_subscription(
        &self,
        workspace: &str,
        id: &str,
    ) -> StoreResult<Option<SubscriptionRecord>> {
        let row = sqlx::query(q::GET_SUBSCRIPTION)
            .bind(workspace)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(codec::subscription).transpose()
    }

    async fn list_subscriptions(
        &self,
        workspace: &str,
        customer: &str,
    ) -> StoreResult<Vec<SubscriptionRecord>> {
        let rows = sqlx::query(q::LIST_SUBSCRIPTIONS)
            .bind(workspace)
            .bind(customer)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(codec::subscription).collect()
    }

    async fn create_api_key(&self, k: &ApiKeyRecord) -> StoreResult<()> {
        sqlx::query(q::INSERT_API_KEY)
            .bind(&k.workspace)
            .bind(&k.id)
            .bind(&k.customer)
            .bind(&k.name)
            .bind(&k.secret_hash)
            .bind(&k.prefix)
            .bind(micros(k.created_at))
            .bind(opt_micros(k.revoked_at))
            .execute(&self.write)
            .await
            .map_err(|e| insert_error(e, "api_key", &k.id, "customer", &k.customer))?;
        Ok(())
    }

    async fn find_api_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let row = sqlx::query(q::FIND_API_KEY)
            .bind(secret_hash)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(codec::api_key).transpose()
    }

    async fn list_api_keys(
        &self,
        workspace: &str,
        customer: &str,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        let rows = sqlx::query(q::LIST_API_KEYS)
            .bind(workspace)
            .bind(customer)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(codec::api_key).collect()
    }

    async fn revoke_api_key(
        &self,
        workspace: &str,
        customer: &str,
        key_id: &str,
        at: Timestamp,
    ) -> StoreResult<ApiKeyRecord> {
        let row = sqlx::query(q::REVOKE_API_KEY)
            .bind(workspace)
            .bind(customer)
            .bind(key_id)
            .bind(micros(at))
            .fetch_optional(&self.write)
            .await?;
        match row {
            Some(row) => codec::api_key(&row),
            None => Err(StoreError::NotFound {
                kind: "api_key",
                id: key_id.to_owned(),
            }),
        }
    }

    async fn create_test_clock(&self, c: &TestClockRecord) -> StoreResult<()> {
        sqlx::query(q::INSERT_TEST_CLOCK)
            .bind(&c.workspace)
            .bind(&c.id)
            .bind(&c.name)
            .bind(micros(c.frozen_time))
            .bind(micros(c.created_at))
            .execute(&self.write)
            .await
            .map_err(|e| insert_error(e, "test_clock", &c.id, "workspace", &c.workspace))?;
        Ok(())
    }

    async fn get_test_clock(
        &self,
        workspace: &str,
        id: &str,
    ) -> StoreResult<Option<TestClockRecord>> {
        let row = sqlx::query(q::GET_TEST_CLOCK)
            .bind(workspace)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(codec::test_clock).transpose()
    }

    async fn set_test_clock_time(
        &self,
        workspace: &str,
        id: &str,
        time: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(q::SET_TEST_CLOCK_TIME)
            .bind(workspace)
            .bind(id)
            .bind(micros(time))
            .execute(&self.write)
            .await?;
        require_row(done.rows_affected(), "test_clock", id)
    }

    async fn ingest(
        &self,
        workspace: &str,
        items: &[IngestItem],
    ) -> StoreResult<Vec<IngestOutcome>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let outcomes = ingest::ingest(&mut tx, workspace, items).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn aggregates(
        &self,
        workspace: &str,
        customer: &str,
        period_start: Timestamp,
    ) -> StoreResult<Vec<AggregateRow>> {
        let rows = sqlx::query(q::AGGREGATES)
            .bind(workspace)
            .bind(customer)
            .bind(micros(period_start))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(codec::aggregate).collect()
    }

    async fn window_entries(
        &self,
        workspace: &str,
        customer: &str,
        since: Timestamp,
    ) -> StoreResult<Vec<WindowEntryRow>> {
        let rows = sqlx::query(q::WINDOW_ENTRIES)
            .bind(workspace)
            .bind(customer)
            .bind(micros(since))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(codec::window_entry).collect()
    }

    async fn prune_window_entries(&self, workspace: &str, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query(q::PRUNE_WINDOW_ENTRIES)
            .bind(workspace)
            .bind(micros(before))
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    async fn level_points(
        &self,
        workspace: &str,
        customer: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<LevelPoint>> {
        let rows = sqlx::query(q::LEVEL_POINTS)
            .bind(workspace)
            .bind(customer)
            .bind(micros(from))
            .bind(micros(to))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(codec::level_point).collect()
    }

    async fn events(
        &self,
        workspace: &str,
        customer: &str,
        from: Timestamp,
        to: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        let rows = sqlx::query(q::EVENTS)
            .bind(workspace)
            .bind(customer)
            .bind(micros(from))
            .bind(micros(to))
            .bind(limit.max(0))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(codec::event).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The durability promise rests on these settings: check the writer really runs with them.
    #[tokio::test]
    async fn writer_is_wal_with_full_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        let mut conn = store.write.acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous = FULL");
        assert_eq!(fk, 1);
    }
}
