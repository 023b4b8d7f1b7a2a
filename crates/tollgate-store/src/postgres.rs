//! The multi-node backend: PostgreSQL with row-level security per workspace.
//!
//! Every operation runs in a transaction that first switches to the `tollgate_app` role and
//! names its workspace (`SCOPE`); the policies created by the migrations then hide every other
//! workspace's rows even from a query that forgot its `workspace = $1` filter. The two key
//! lookups, which must find the workspace from a hash, name the hash instead, and a policy lets
//! them see that one row; the listing of workspaces names itself, and a policy lets it see the
//! `workspaces` table alone. Nothing runs with the connecting (usually superuser) role's rights
//! but the migrations.

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use std::time::Duration;

use crate::backend::{Backend, Session};
use crate::{IngestItem, IngestOutcome, StoreError, StoreResult};

mod ingest;

/// How often an ingest that lost a deadlock (or serialization) race is retried. Batches touch
/// rows in key order, so this is a safety net rather than a normal path.
const INGEST_ATTEMPTS: u32 = 3;

/// The PostgreSQL store. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Pool size when the caller does not choose one: enough for a node's API and jobs, small
    /// enough that a few nodes stay under PostgreSQL's default `max_connections` of 100.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

    /// Connects with a pool of [`Self::DEFAULT_MAX_CONNECTIONS`] and brings the schema up to
    /// date.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, Self::DEFAULT_MAX_CONNECTIONS).await
    }

    /// Connects with a pool of at most `max_connections` and brings the schema up to date.
    pub async fn connect_with(url: &str, max_connections: u32) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        crate::migrations::postgres().run(&pool).await?;
        Ok(PostgresStore { pool })
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction switched to the `tollgate_app` role with `setting` set to `value`: the
    /// row-level-security policies then decide what it sees. Both settings are
    /// transaction-local, so a pooled connection carries nothing over.
    async fn scoped(
        &self,
        setting: &'static str,
        value: &str,
    ) -> StoreResult<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(SCOPE)
            .bind(setting)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// Switches the transaction to the RLS-bound role and sets one `tollgate.*` setting (`$1`) to
/// `$2`: the workspace, the key hash of a lookup, or the listing of workspaces.
const SCOPE: &str = "SELECT set_config('role', 'tollgate_app', true), set_config($1, $2, true)";

/// Deadlocks and serialization failures leave nothing behind and may be retried as a whole.
fn retryable(err: &StoreError) -> bool {
    match err {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

#[async_trait]
impl Backend for PostgresStore {
    type Conn = Session<Postgres>;
    const NAME: &'static str = "postgres";
    const ANONYMOUS_PARAMETERS: bool = false;
    const PARTITIONED_EVENTS: bool = true;

    async fn write(&self, workspace: &str) -> StoreResult<Session<Postgres>> {
        Ok(Session::Tx(
            self.scoped("tollgate.workspace", workspace).await?,
        ))
    }

    /// Reads run as writes do: one transaction per call, under the same policies.
    async fn read(&self, workspace: &str) -> StoreResult<Session<Postgres>> {
        self.write(workspace).await
    }

    /// The `key_lookup` policies let it see exactly the key rows with this hash.
    async fn key_lookup(&self, secret_hash: &str) -> StoreResult<Session<Postgres>> {
        Ok(Session::Tx(
            self.scoped("tollgate.key_hash", secret_hash).await?,
        ))
    }

    /// The admin and boot listing (the bill run walks every workspace) must see every
    /// workspace before it is in one; the `workspace_listing` policy (migration 0004) shows it
    /// the rows of `workspaces` and nothing of any other table, still as `tollgate_app`.
    async fn workspace_listing(&self) -> StoreResult<Session<Postgres>> {
        Ok(Session::Tx(
            self.scoped("tollgate.listing", "workspaces").await?,
        ))
    }

    async fn job_claiming(&self) -> StoreResult<Session<Postgres>> {
        Ok(Session::Tx(self.scoped("tollgate.listing", "jobs").await?))
    }

    /// Names no workspace: the policies show it no row, and the partition functions run as
    /// their owner.
    async fn maintenance(&self) -> StoreResult<Session<Postgres>> {
        Ok(Session::Tx(
            self.scoped("tollgate.listing", "maintenance").await?,
        ))
    }

    async fn ingest_batch(
        &self,
        workspace: &str,
        items: &[IngestItem],
    ) -> StoreResult<Vec<IngestOutcome>> {
        let mut attempt = 1;
        loop {
            let mut tx = self.scoped("tollgate.workspace", workspace).await?;
            match ingest::ingest(&mut tx, workspace, items).await {
                Ok(outcomes) => {
                    tx.commit().await?;
                    return Ok(outcomes);
                }
                Err(e) if attempt < INGEST_ATTEMPTS && retryable(&e) => {
                    tracing::warn!(workspace, attempt, error = %e, "ingest batch retried");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn amend_batch(
        &self,
        amendment: &crate::amendments::EventAmendment,
        change: &IngestItem,
        events: &[crate::outbox::OutboxEvent],
    ) -> StoreResult<()> {
        let mut tx = self
            .scoped("tollgate.workspace", &amendment.workspace)
            .await?;
        let updates = crate::batch::Updates::collect(std::slice::from_ref(change), &[0])?;
        ingest::apply(&mut tx, &amendment.workspace, &updates).await?;
        let mut session = Session::Tx(tx);
        crate::amendments::record(&mut session, amendment, events).await?;
        crate::backend::Conn::commit(session).await?;
        Ok(())
    }
}
