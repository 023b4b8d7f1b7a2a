//! [`Store`] for every backend, written once: each method opens the session its backend gives
//! for that kind of access and runs the shared statements of `sql` in it.

use async_trait::async_trait;
use jiff::Timestamp;

use crate::backend::{Backend, Conn, args};
use crate::codec::{self, insert_error};
use crate::sql as q;
use crate::{
    AdminKeyRecord, AggregateRow, ApiKeyRecord, CatalogVersionRecord, CustomerRecord, EventRecord,
    IngestItem, IngestOutcome, LevelPoint, Store, StoreError, StoreResult, SubscriptionRecord,
    TestClockRecord, WindowEntryRow, WorkspaceRecord,
};

/// `NotFound` when an update touched no row.
pub(crate) fn require_row(rows: u64, kind: &'static str, id: &str) -> StoreResult<()> {
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
impl<B: Backend> Store for B {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    async fn create_workspace(&self, w: &WorkspaceRecord) -> StoreResult<()> {
        let mut tx = self.write(&w.id).await?;
        tx.execute(q::INSERT_WORKSPACE, args![&w.id, &w.name, w.created_at])
            .await
            .map_err(|e| insert_error(e, "workspace", &w.id, "workspace", &w.id))?;
        Ok(tx.commit().await?)
    }

    async fn get_workspace(&self, id: &str) -> StoreResult<Option<WorkspaceRecord>> {
        let mut tx = self.read(id).await?;
        let row = tx.fetch_optional(q::GET_WORKSPACE, args![id]).await?;
        tx.commit().await?;
        row.as_ref().map(codec::workspace).transpose()
    }

    async fn put_admin_key(&self, key: &AdminKeyRecord) -> StoreResult<()> {
        let mut tx = self.write(&key.workspace).await?;
        let values = args![&key.workspace, &key.id, &key.secret_hash, key.created_at];
        tx.execute(q::INSERT_ADMIN_KEY, values)
            .await
            .map_err(|e| insert_error(e, "admin_key", &key.id, "workspace", &key.workspace))?;
        Ok(tx.commit().await?)
    }

    async fn find_admin_key(&self, secret_hash: &str) -> StoreResult<Option<AdminKeyRecord>> {
        let mut tx = self.key_lookup(secret_hash).await?;
        let row = tx
            .fetch_optional(q::FIND_ADMIN_KEY, args![secret_hash])
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
        let mut tx = self.write(workspace).await?;
        let row = tx
            .fetch_optional(q::BUMP_CATALOG_SEQ, args![workspace])
            .await?;
        let row = row.ok_or_else(|| StoreError::NotFound {
            kind: "workspace",
            id: workspace.to_owned(),
        })?;
        let version = codec::Columns::int(&row, "catalog_seq")?;
        let values = args![workspace, version, catalog, at];
        tx.execute(q::INSERT_CATALOG_VERSION, values).await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn latest_catalog(&self, workspace: &str) -> StoreResult<Option<CatalogVersionRecord>> {
        let mut tx = self.read(workspace).await?;
        let row = tx
            .fetch_optional(q::LATEST_CATALOG, args![workspace])
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::catalog_version).transpose()
    }

    async fn catalog_version(
        &self,
        workspace: &str,
        version: i64,
    ) -> StoreResult<Option<CatalogVersionRecord>> {
        let mut tx = self.read(workspace).await?;
        let row = tx
            .fetch_optional(q::GET_CATALOG_VERSION, args![workspace, version])
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::catalog_version).transpose()
    }

    async fn create_customer(&self, c: &CustomerRecord) -> StoreResult<()> {
        let mut tx = self.write(&c.workspace).await?;
        let values = args![
            &c.workspace,
            &c.id,
            &c.name,
            &c.email,
            c.suspended,
            c.has_payment_method,
            &c.test_clock,
            &c.metadata,
            c.created_at,
        ];
        tx.execute(q::INSERT_CUSTOMER, values)
            .await
            .map_err(|e| insert_error(e, "customer", &c.id, "workspace", &c.workspace))?;
        Ok(tx.commit().await?)
    }

    async fn get_customer(&self, workspace: &str, id: &str) -> StoreResult<Option<CustomerRecord>> {
        let mut tx = self.read(workspace).await?;
        let row = tx
            .fetch_optional(q::GET_CUSTOMER, args![workspace, id])
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::customer).transpose()
    }

    async fn list_customers(&self, workspace: &str) -> StoreResult<Vec<CustomerRecord>> {
        let mut tx = self.read(workspace).await?;
        let rows = tx.fetch_all(q::LIST_CUSTOMERS, args![workspace]).await?;
        tx.commit().await?;
        rows.iter().map(codec::customer).collect()
    }

    async fn update_customer(&self, c: &CustomerRecord) -> StoreResult<()> {
        let mut tx = self.write(&c.workspace).await?;
        let values = args![
            &c.workspace,
            &c.id,
            &c.name,
            &c.email,
            c.suspended,
            c.has_payment_method,
            &c.metadata,
        ];
        let rows = tx.execute(q::UPDATE_CUSTOMER, values).await?;
        require_row(rows, "customer", &c.id)?;
        Ok(tx.commit().await?)
    }

    async fn create_subscription(&self, s: &SubscriptionRecord) -> StoreResult<()> {
        let mut tx = self.write(&s.workspace).await?;
        let values = args![
            &s.workspace,
            &s.id,
            &s.customer,
            &s.plan,
            s.catalog_version,
            s.status.as_str(),
            &s.addons,
            s.started_at,
            s.billing_anchor,
            s.trial_end,
            s.canceled_at,
            s.ends_at,
        ];
        tx.execute(q::INSERT_SUBSCRIPTION, values)
            .await
            .map_err(|e| insert_error(e, "subscription", &s.id, "customer", &s.customer))?;
        Ok(tx.commit().await?)
    }

    async fn update_subscription(&self, s: &SubscriptionRecord) -> StoreResult<()> {
        let mut tx = self.write(&s.workspace).await?;
        let values = args![
            &s.workspace,
            &s.id,
            &s.plan,
            s.catalog_version,
            s.status.as_str(),
            &s.addons,
            s.started_at,
            s.billing_anchor,
            s.trial_end,
            s.canceled_at,
            s.ends_at,
        ];
        let rows = tx.execute(q::UPDATE_SUBSCRIPTION, values).await?;
        require_row(rows, "subscription", &s.id)?;
        Ok(tx.commit().await?)
    }

    async fn get_subscription(
        &self,
        workspace: &str,
        id: &str,
    ) -> StoreResult<Option<SubscriptionRecord>> {
        let mut tx = self.read(workspace).await?;
        let row = tx
            .fetch_optional(q::GET_SUBSCRIPTION, args![workspace, id])
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::subscription).transpose()
    }

    async fn list_subscriptions(
        &self,
        workspace: &str,
        customer: &str,
    ) -> StoreResult<Vec<SubscriptionRecord>> {
        let mut tx = self.read(workspace).await?;
        let rows = tx
            .fetch_all(q::LIST_SUBSCRIPTIONS, args![workspace, customer])
            .await?;
        tx.commit().await?;
        rows.iter().map(codec::subscription).collect()
    }

    async fn create_api_key(&self, k: &ApiKeyRecord) -> StoreResult<()> {
        let mut tx = self.write(&k.workspace).await?;
        let values = args![
            &k.workspace,
            &k.id,
            &k.customer,
            &k.name,
            &k.secret_hash,
            &k.prefix,
            k.created_at,
            k.revoked_at,
        ];
        tx.execute(q::INSERT_API_KEY, values)
            .await
            .map_err(|e| insert_error(e, "api_key", &k.id, "customer", &k.customer))?;
        Ok(tx.commit().await?)
    }

    async fn find_api_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let mut tx = self.key_lookup(secret_hash).await?;
        let row = tx
            .fetch_optional(q::FIND_API_KEY, args![secret_hash])
            .await?;
        tx.commit().await?;
        row.as_ref().map(codec::api_key).transpose()
    }

    async fn list_api_keys(
        &self,
        workspace: &str,
        customer: &str,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        let mut tx = self.read(workspace).await?;
        let rows = tx
            .fetch_all(q::LIST_API_KEYS, args![workspace, customer])
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
        let mut tx = self.write(workspace).await?;
        let values = args![workspace, customer, key_id, at];
        let row = tx.fetch_optional(q::REVOKE_API_KEY, values).await?;
        let row = row.ok_or_else(|| StoreError::NotFound {
            kind: "api_key",
            id: key_id.to_owned(),
        })?;
        let key = codec::api_key(&row)?;
        tx.commit().await?;
        Ok(key)
    }

    async fn create_test_clock(&self, c: &TestClockRecord) -> StoreResult<()> {
        let mut tx = self.write(&c.workspace).await?;
        let values = args![&c.workspace, &c.id, &c.name, c.frozen_time, c.created_at];
        tx.execute(q::INSERT_TEST_CLOCK, values)
            .await
            .map_err(|e| insert_error(e, "test_clock", &c.id, "workspace", &c.workspace))?;
        Ok(tx.commit().await?)
    }

    async fn get_test_clock(
        &self,
        workspace: &str,
        id: &str,
    ) -> StoreResult<Option<TestClockRecord>> {
        let mut tx = self.read(workspace).await?;
        let row = tx
            .fetch_optional(q::GET_TEST_CLOCK, args![workspace, id])
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
        let mut tx = self.write(workspace).await?;
        let rows = tx
            .execute(q::SET_TEST_CLOCK_TIME, args![workspace, id, time])
            .await?;
        require_row(rows, "test_clock", id)?;
        Ok(tx.commit().await?)
    }

    async fn ingest(
        &self,
        workspace: &str,
        items: &[IngestItem],
    ) -> StoreResult<Vec<IngestOutcome>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.ingest_batch(workspace, items).await
    }

    async fn aggregates(
        &self,
        workspace: &str,
        customer: &str,
        period_start: Timestamp,
    ) -> StoreResult<Vec<AggregateRow>> {
        let mut tx = self.read(workspace).await?;
        let rows = tx
            .fetch_all(q::AGGREGATES, args![workspace, customer, period_start])
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
        let mut tx = self.read(workspace).await?;
        let rows = tx
            .fetch_all(q::WINDOW_ENTRIES, args![workspace, customer, since])
            .await?;
        tx.commit().await?;
        rows.iter().map(codec::window_entry).collect()
    }

    async fn prune_window_entries(&self, workspace: &str, before: Timestamp) -> StoreResult<u64> {
        let mut tx = self.write(workspace).await?;
        let rows = tx
            .execute(q::PRUNE_WINDOW_ENTRIES, args![workspace, before])
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn level_points(
        &self,
        workspace: &str,
        customer: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<LevelPoint>> {
        let mut tx = self.read(workspace).await?;
        let rows = tx
            .fetch_all(q::LEVEL_POINTS, args![workspace, customer, from, to])
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
        let mut tx = self.read(workspace).await?;
        let values = args![workspace, customer, from, to, limit.max(0)];
        let rows = tx.fetch_all(q::EVENTS, values).await?;
        tx.commit().await?;
        rows.iter().map(codec::event).collect()
    }
}
