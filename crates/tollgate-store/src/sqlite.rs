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
//! commits on power loss). Concurrent ingest batches share one commit (`group`), and each
//! returns only after the commit that holds it.

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, Session};
use crate::{IngestItem, IngestOutcome, StoreResult};

mod group;
mod ingest;
mod values;

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
    /// Ingest batches share write transactions (one fsync for many batches): see `group`.
    group: Arc<group::GroupCommit>,
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
        Ok(SqliteStore {
            write,
            read,
            group: Arc::new(group::GroupCommit::new()),
        })
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
            group: Arc::new(group::GroupCommit::new()),
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

#[async_trait]
impl Backend for SqliteStore {
    type Conn = Session<Sqlite>;
    const NAME: &'static str = "sqlite";
    const ANONYMOUS_PARAMETERS: bool = true;
    const PARTITIONED_EVENTS: bool = false;

    /// SQLite has no row-level security: a workspace is kept apart by each statement's filter.
    async fn write(&self, _workspace: &str) -> StoreResult<Session<Sqlite>> {
        Ok(Session::Tx(self.begin_write().await?))
    }

    /// A reader outside any transaction: each read is one statement, consistent on its own.
    async fn read(&self, _workspace: &str) -> StoreResult<Session<Sqlite>> {
        Ok(Session::Pooled(self.read.acquire().await?))
    }

    async fn key_lookup(&self, _secret_hash: &str) -> StoreResult<Session<Sqlite>> {
        Ok(Session::Pooled(self.read.acquire().await?))
    }

    async fn workspace_listing(&self) -> StoreResult<Session<Sqlite>> {
        Ok(Session::Pooled(self.read.acquire().await?))
    }

    async fn job_claiming(&self) -> StoreResult<Session<Sqlite>> {
        Ok(Session::Tx(self.begin_write().await?))
    }

    /// Nothing to maintain (one `events` table); a reader, never used for a change.
    async fn maintenance(&self) -> StoreResult<Session<Sqlite>> {
        Ok(Session::Pooled(self.read.acquire().await?))
    }

    async fn ingest_batch(
        &self,
        workspace: &str,
        items: &[IngestItem],
    ) -> StoreResult<Vec<IngestOutcome>> {
        self.group.ingest(&self.write, workspace, items).await
    }

    async fn amend_batch(
        &self,
        amendment: &crate::amendments::EventAmendment,
        change: &IngestItem,
        events: &[crate::outbox::OutboxEvent],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let updates = crate::batch::Updates::collect(std::slice::from_ref(change), &[0])?;
        ingest::apply(&mut tx, &amendment.workspace, &updates).await?;
        let mut session = Session::Tx(tx);
        crate::amendments::record(&mut session, amendment, events).await?;
        crate::backend::Conn::commit(session).await?;
        Ok(())
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
