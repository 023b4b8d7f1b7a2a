//! The multi-node backend: PostgreSQL with row-level security per workspace.
//!
//! Every operation runs in a transaction that first switches to the `tollgate_app` role and
//! names its workspace (`queries::SCOPE`); the policies created by the migration then hide every
//! other workspace's rows even from a query that forgot its `workspace = $1` filter. The two key
//! lookups, which must find the workspace from a hash, name the hash instead, and a policy lets
//! them see that one row. Nothing runs with the connecting (usually superuser) role's rights but
//! the migrations.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
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

use queries as q;

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

    /// A transaction bound to `workspace` under row-level security.
    async fn scoped(&self, workspace: &str) -> StoreResult<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(q::SCOPE)
            .bind(workspace)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A transaction that may see the key rows whose hash is `secret_hash`, and nothing else.
    async fn key_lookup(&self, secret_hash: &str) -> StoreResult<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(q::SCOPE_KEY_LOOKUP)
            .bind(secret_hash)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
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
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn create_workspace(&self, w: &WorkspaceRecord) -> StoreResult<()> {
        let mut tx = self.scoped(&w.id).await?;
        sqlx::query(q::INSERT_WORKSPACE)
            .bind(&w.id)
            .bind(&w.name)
            .bind(micros(w.created_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| insert_error(e, "workspace", &w.id, "workspace", &w.id))?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_workspace(&self, id: &str) -> StoreResult<Option<WorkspaceRecord>> {
        let mut tx = self.scoped(id).await?;
        let row = sqlx::query(q::GET_WORKSPACE)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::workspace).transpose()
    }

    async fn put_admin_key(&self, key: &AdminKeyRecord) -> StoreResult<()> {
        let mut tx = self.scoped(&key.workspace).await?;
        sqlx::query(q::INSERT_ADMIN_KEY)
            .bind(&key.workspace)
            .bind(&key.id)
            .bind(&key.secret_hash)
            .bind(micros(key.created_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| insert_error(e, "admin_key", &key.id, "workspace", &key.workspace))?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_admin_key(&self, secret_hash: &str) -> StoreResult<Option<AdminKeyRecord>> {
        let mut tx = self.key_lookup(secret_hash).await?;
        let row = sqlx::query(q::FIND_ADMIN_KEY)
            .bind(secret_hash)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::admin_key).transpose()
    }

    async fn add_catalog_version(
        &self,
        workspace: &str,
        catalog: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<i64> {
        let mut tx = self.scoped(workspace).await?;
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
        let mut tx = self.scoped(workspace).await?;
        let row = sqlx::query(q::LATEST_CATALOG)
            .bind(workspace)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::catalog_version).transpose()
    }

    async fn catalog_version(
        &self,
        workspace: &str,
        version: i64,
    ) -> StoreResult<Option<CatalogVersionRecord>> {
        let mut tx = self.scoped(workspace).await?;
        let row = sqlx::query(q::GET_CATALOG_VERSION)
            .bind(workspace)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::catalog_version).transpose()
    }

    async fn create_customer(&self, c: &CustomerRecord) -> StoreResult<()> {
        let mut tx = self.scoped(&c.workspace).await?;
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
            .execute(&mut *tx)
            .await
            .map_err(|e| insert_error(e, "customer", &c.id, "workspace", &c.workspace))?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_customer(&self, workspace: &str, id: &str) -> StoreResult<Option<CustomerRecord>> {
        let mut tx = self.scoped(workspace).await?;
        let row = sqlx::query(q::GET_CUSTOMER)
            .bind(workspace)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::customer).transpose()
    }

    async fn list_customers(&self, workspace: &str) -> StoreResult<Vec<CustomerRecord>> {
        let mut tx = self.scoped(workspace).await?;
        let rows = sqlx::query(q::LIST_CUSTOMERS)
            .bind(workspace)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(codec::customer).collect()
    }

    async fn update_customer(&self, c: &CustomerRecord) -> StoreResult<()> {
        let mut tx = self.scoped(&c.workspace).await?;
        let done = sqlx::query(q::UPDATE_CUSTOMER)
            .bind(&c.workspace)
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.email)
            .bind(c.suspended)
            .bind(c.has_payment_method)
            .bind(json_text(&c.metadata))
            .execute(&mut *tx)
            .await?;
        require_row(done.rows_affected(), "customer", &c.id)?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_subscription(&self, s: &SubscriptionRecord) -> StoreResult<()> {
        let mut tx = self.scoped(&s.workspace).await?;
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
            .execute(&mut *tx)
            .await
            .map_err(|e| insert_error(e, "subscription", &s.id, "customer", &s.customer))?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_subscription(&self, s: &SubscriptionRecord) -> StoreResult<()> {
        let mut tx = self.scoped(&s.workspace).await?;
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
            .execute(&mut *tx)
            .await?;
        require_row(done.rows_affected(), "subscription", &s.id)?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_subscription(
        &self,
        workspace: &str,
        id: &str,
    ) -> StoreResult<Option<SubscriptionRecord>> {
        let mut tx = self.scoped(workspace).await?;
        let row = sqlx::query(q::GET_SUBSCRIPTION)
            .bind(workspace)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::subscription).transpose()
    }

    async fn list_subscriptions(
        &self,
        workspace: &str,
        customer: &str,
    ) -> StoreResult<Vec<SubscriptionRecord>> {
        let mut tx = self.scoped(workspace).await?;
        let rows = sqlx::query(q::LIST_SUBSCRIPTIONS)
            .bind(workspace)
            .bind(customer)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(codec::subscription).collect()
    }

    async fn create_api_key(&self, k: &ApiKeyRecord) -> StoreResult<()> {
        let mut tx = self.scoped(&k.workspace).await?;
        sqlx::query(q::INSERT_API_KEY)
            .bind(&k.workspace)
            .bind(&k.id)
            .bind(&k.customer)
            .bind(&k.name)
            .bind(&k.secret_hash)
            .bind(&k.prefix)
            .bind(micros(k.created_at))
            .bind(opt_micros(k.revoked_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| insert_error(e, "api_key", &k.id, "customer", &k.customer))?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_api_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let mut tx = self.key_lookup(secret_hash).await?;
        let row = sqlx::query(q::FIND_API_KEY)
            .bind(secret_hash)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::api_key).transpose()
    }

    async fn list_api_keys(
        &self,
        workspace: &str,
        customer: &str,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        let mut tx = self.scoped(workspace).await?;
        let rows = sqlx::query(q::LIST_API_KEYS)
            .bind(workspace)
            .bind(customer)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(codec::api_key).collect()
    }

    async fn revoke_api_key(
        &self,
        workspace: &str,
        customer: &str,
        key_id: &str,
        at: Timestamp,
    ) -> StoreResult<ApiKeyRecord> {
        let mut tx = self.scoped(workspace).await?;
        let row = sqlx::query(q::REVOKE_API_KEY)
            .bind(workspace)
            .bind(customer)
            .bind(key_id)
            .bind(micros(at))
            .fetch_optional(&mut *tx)
            .await?;
        let row = row.ok_or_else(|| StoreError::NotFound {
            kind: "api_key",
            id: key_id.to_owned(),
        })?;
        let key = codec::api_key(&row)?;
        tx.commit().await?;
        Ok(key)
    }

    async fn create_test_clock(&self, c: &TestClockRecord) -> StoreResult<()> {
        let mut tx = self.scoped(&c.workspace).await?;
        sqlx::query(q::INSERT_TEST_CLOCK)
            .bind(&c.workspace)
            .bind(&c.id)
            .bind(&c.name)
            .bind(micros(c.frozen_time))
            .bind(micros(c.created_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| insert_error(e, "test_clock", &c.id, "workspace", &c.workspace))?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_test_clock(
        &self,
        workspace: &str,
        id: &str,
    ) -> StoreResult<Option<TestClockRecord>> {
        let mut tx = self.scoped(workspace).await?;
        let row = sqlx::query(q::GET_TEST_CLOCK)
            .bind(workspace)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::test_clock).transpose()
    }

    async fn set_test_clock_time(
        &self,
        workspace: &str,
        id: &str,
        time: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.scoped(workspace).await?;
        let done = sqlx::query(q::SET_TEST_CLOCK_TIME)
            .bind(workspace)
            .bind(id)
            .bind(micros(time))
            .execute(&mut *tx)
            .await?;
        require_row(done.rows_affected(), "test_clock", id)?;
        tx.commit().await?;
        Ok(())
    }

    async fn ingest(
        &self,
        workspace: &str,
        items: &[IngestItem],
    ) -> StoreResult<Vec<IngestOutcome>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempt = 1;
        loop {
            let mut tx = self.scoped(workspace).await?;
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

    async fn aggregates(
        &self,
        workspace: &str,
        customer: &str,
        period_start: Timestamp,
    ) -> StoreResult<Vec<AggregateRow>> {
        let mut tx = self.scoped(workspace).await?;
        let rows = sqlx::query(q::AGGREGATES)
            .bind(workspace)
            .bind(customer)
            .bind(micros(period_start))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(codec::aggregate).collect()
    }

    async fn window_entries(
        &self,
        workspace: &str,
        customer: &str,
        since: Timestamp,
    ) -> StoreResult<Vec<WindowEntryRow>> {
        let mut tx = self.scoped(workspace).await?;
        let rows = sqlx::query(q::WINDOW_ENTRIES)
            .bind(workspace)
            .bind(customer)
            .bind(micros(since))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(codec::window_entry).collect()
    }

    async fn prune_window_entries(&self, workspace: &str, before: Timestamp) -> StoreResult<u64> {
        let mut tx = self.scoped(workspace).await?;
        let done = sqlx::query(q::PRUNE_WINDOW_ENTRIES)
            .bind(workspace)
            .bind(micros(before))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn level_points(
        &self,
        workspace: &str,
        customer: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<LevelPoint>> {
        let mut tx = self.scoped(workspace).await?;
        let rows = sqlx::query(q::LEVEL_POINTS)
            .bind(workspace)
            .bind(customer)
            .bind(micros(from))
            .bind(micros(to))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
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
        let mut tx = self.scoped(workspace).await?;
        let rows = sqlx::query(q::EVENTS)
            .bind(workspace)
            .bind(customer)
            .bind(micros(from))
            .bind(micros(to))
            .bind(limit.max(0))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(codec::event).collect()
    }
}
