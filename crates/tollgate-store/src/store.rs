//! [`Store`] for every backend, written once: each method opens the session its backend gives
//! for that kind of access and runs the shared statements of `sql` in it.

use async_trait::async_trait;
use jiff::Timestamp;
use tollgate_core::ids::{CustomerId, KeyId, WorkspaceId};

use crate::backend::{Arg, Backend, Conn, args, run_all, run_execute, run_optional};
use crate::codec::{self, Columns as _, insert_error};
use crate::sql as q;
use crate::{
    AdminKeyRecord, After, AggregateRow, ApiKeyRecord, CatalogVersionRecord, CustomerRecord,
    EventFilter, EventRecord, IdempotencyRecord, IngestItem, IngestOutcome, LevelPoint, Store,
    StoreError, StoreResult, SubscriptionRecord, TestClockRecord, WindowEntryRow, WorkspaceRecord,
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

/// The arguments of `UPDATE_CUSTOMER`.
pub(crate) fn customer_update_args(c: &CustomerRecord) -> [Arg<'_>; 9] {
    [
        Arg::from(&c.workspace),
        Arg::from(&c.id),
        Arg::from(&c.name),
        Arg::from(&c.email),
        Arg::from(c.suspended),
        Arg::from(c.has_payment_method),
        Arg::from(&c.metadata),
        Arg::from(&c.address),
        Arg::from(&c.tax_ids),
    ]
}

/// The arguments of `INSERT_API_KEY`.
pub(crate) fn api_key_args(k: &ApiKeyRecord) -> [Arg<'_>; 8] {
    [
        Arg::from(&k.workspace),
        Arg::from(&k.id),
        Arg::from(&k.customer),
        Arg::from(&k.name),
        Arg::from(&k.secret_hash),
        Arg::from(&k.prefix),
        Arg::from(k.created_at),
        Arg::from(k.revoked_at),
    ]
}

/// The values of `INSERT_SUBSCRIPTION` and `UPDATE_SUBSCRIPTION`.
pub(crate) fn subscription_args(s: &SubscriptionRecord) -> [Arg<'_>; 12] {
    [
        Arg::from(&s.workspace),
        Arg::from(&s.id),
        Arg::from(&s.customer),
        Arg::from(&s.plan),
        Arg::from(s.catalog_version),
        Arg::from(s.status.as_str()),
        Arg::from(&s.addons),
        Arg::from(s.started_at),
        Arg::from(s.billing_anchor),
        Arg::from(s.trial_end),
        Arg::from(s.canceled_at),
        Arg::from(s.ends_at),
    ]
}

#[async_trait]
impl<B: Backend> Store for B {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    async fn create_workspace(&self, w: &WorkspaceRecord) -> StoreResult<()> {
        let values = args![&w.id, &w.name, w.created_at];
        run_execute(self.write(&w.id), q::INSERT_WORKSPACE, values)
            .await
            .map_err(|e| insert_error(e, "workspace", &w.id, "workspace", &w.id))?;
        Ok(())
    }

    async fn get_workspace(&self, id: &str) -> StoreResult<Option<WorkspaceRecord>> {
        run_optional(self.read(id), q::GET_WORKSPACE, args![id], codec::workspace).await
    }

    async fn put_admin_key(&self, key: &AdminKeyRecord) -> StoreResult<()> {
        let failed = |e| insert_error(e, "admin_key", &key.id, "workspace", &key.workspace);
        let values = args![&key.workspace, &key.id, &key.secret_hash, key.created_at];
        let mut tx = self.write(&key.workspace).await?;
        // A key id given a new secret (the bootstrap key after TOLLGATE_ADMIN_KEY changed) takes
        // it: the old secret stops opening the workspace. A secret stored already is left as it is.
        tx.execute(q::ROTATE_ADMIN_KEY, values)
            .await
            .map_err(failed)?;
        tx.execute(q::INSERT_ADMIN_KEY, values)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(())
    }

    async fn find_admin_key(&self, secret_hash: &str) -> StoreResult<Option<AdminKeyRecord>> {
        let session = self.key_lookup(secret_hash);
        run_optional(
            session,
            q::FIND_ADMIN_KEY,
            args![secret_hash],
            codec::admin_key,
        )
        .await
    }

    async fn add_catalog_version(
        &self,
        workspace: &WorkspaceId,
        catalog: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<i64> {
        let mut tx = self.write(workspace).await?;
        let row = tx
            .fetch_optional(q::BUMP_CATALOG_SEQ, args![workspace])
            .await?;
        let row = row.ok_or_else(|| StoreError::NotFound {
            kind: "workspace",
            id: (workspace.to_owned()).to_string(),
        })?;
        let version = codec::Columns::int(&row, "catalog_seq")?;
        let values = args![workspace, version, catalog, at];
        tx.execute(q::INSERT_CATALOG_VERSION, values).await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn latest_catalog(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<CatalogVersionRecord>> {
        let session = self.read(workspace);
        run_optional(
            session,
            q::LATEST_CATALOG,
            args![workspace],
            codec::catalog_version,
        )
        .await
    }

    async fn catalog_version(
        &self,
        workspace: &WorkspaceId,
        version: i64,
    ) -> StoreResult<Option<CatalogVersionRecord>> {
        let values = args![workspace, version];
        let session = self.read(workspace);
        run_optional(
            session,
            q::GET_CATALOG_VERSION,
            values,
            codec::catalog_version,
        )
        .await
    }

    async fn create_customer(&self, c: &CustomerRecord) -> StoreResult<()> {
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
            &c.address,
            &c.tax_ids,
            c.archived_at,
        ];
        run_execute(self.write(&c.workspace), q::INSERT_CUSTOMER, values)
            .await
            .map_err(|e| insert_error(e, "customer", &c.id, "workspace", &c.workspace))?;
        Ok(())
    }

    async fn get_customer(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<CustomerRecord>> {
        let values = args![workspace, id];
        run_optional(
            self.read(workspace),
            q::GET_CUSTOMER,
            values,
            codec::customer,
        )
        .await
    }

    async fn list_customers(&self, workspace: &WorkspaceId) -> StoreResult<Vec<CustomerRecord>> {
        let values = args![workspace];
        run_all(
            self.read(workspace),
            q::LIST_CUSTOMERS,
            values,
            codec::customer,
        )
        .await
    }

    async fn update_customer(&self, c: &CustomerRecord) -> StoreResult<()> {
        let rows = run_execute(
            self.write(&c.workspace),
            q::UPDATE_CUSTOMER,
            &customer_update_args(c),
        )
        .await?;
        require_row(rows, "customer", &c.id)
    }

    async fn create_subscription(&self, s: &SubscriptionRecord) -> StoreResult<()> {
        let values = &subscription_args(s);
        run_execute(self.write(&s.workspace), q::INSERT_SUBSCRIPTION, values)
            .await
            .map_err(|e| insert_error(e, "subscription", &s.id, "customer", &s.customer))?;
        Ok(())
    }

    async fn update_subscription(&self, s: &SubscriptionRecord) -> StoreResult<()> {
        let values = &subscription_args(s);
        let rows = run_execute(self.write(&s.workspace), q::UPDATE_SUBSCRIPTION, values).await?;
        require_row(rows, "subscription", &s.id)
    }

    async fn get_subscription(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<SubscriptionRecord>> {
        let values = args![workspace, id];
        run_optional(
            self.read(workspace),
            q::GET_SUBSCRIPTION,
            values,
            codec::subscription,
        )
        .await
    }

    async fn list_subscriptions(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<SubscriptionRecord>> {
        let values = args![workspace, customer];
        run_all(
            self.read(workspace),
            q::LIST_SUBSCRIPTIONS,
            values,
            codec::subscription,
        )
        .await
    }

    async fn create_api_key(&self, k: &ApiKeyRecord) -> StoreResult<()> {
        run_execute(
            self.write(&k.workspace),
            q::INSERT_API_KEY,
            &api_key_args(k),
        )
        .await
        .map_err(|e| insert_error(e, "api_key", &k.id, "customer", &k.customer))?;
        Ok(())
    }

    async fn find_api_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let session = self.key_lookup(secret_hash);
        run_optional(session, q::FIND_API_KEY, args![secret_hash], codec::api_key).await
    }

    async fn list_api_keys(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        let values = args![workspace, customer];
        run_all(
            self.read(workspace),
            q::LIST_API_KEYS,
            values,
            codec::api_key,
        )
        .await
    }

    async fn revoke_api_key(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        key_id: &KeyId,
        at: Timestamp,
    ) -> StoreResult<ApiKeyRecord> {
        let values = args![workspace, customer, key_id, at];
        let key = run_optional(
            self.write(workspace),
            q::REVOKE_API_KEY,
            values,
            codec::api_key,
        );
        key.await?.ok_or_else(|| StoreError::NotFound {
            kind: "api_key",
            id: (key_id.to_owned()).to_string(),
        })
    }

    async fn create_test_clock(&self, c: &TestClockRecord) -> StoreResult<()> {
        let values = args![&c.workspace, &c.id, &c.name, c.frozen_time, c.created_at];
        run_execute(self.write(&c.workspace), q::INSERT_TEST_CLOCK, values)
            .await
            .map_err(|e| insert_error(e, "test_clock", &c.id, "workspace", &c.workspace))?;
        Ok(())
    }

    async fn get_test_clock(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<TestClockRecord>> {
        let values = args![workspace, id];
        run_optional(
            self.read(workspace),
            q::GET_TEST_CLOCK,
            values,
            codec::test_clock,
        )
        .await
    }

    async fn set_test_clock_time(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        time: Timestamp,
    ) -> StoreResult<()> {
        let values = args![workspace, id, time];
        let rows = run_execute(self.write(workspace), q::SET_TEST_CLOCK_TIME, values).await?;
        require_row(rows, "test_clock", id)
    }

    async fn ingest(
        &self,
        workspace: &WorkspaceId,
        items: &[IngestItem],
    ) -> StoreResult<Vec<IngestOutcome>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.ingest_batch(workspace, items).await
    }

    async fn aggregates(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        period_start: Timestamp,
    ) -> StoreResult<Vec<AggregateRow>> {
        let values = args![workspace, customer, period_start];
        run_all(
            self.read(workspace),
            q::AGGREGATES,
            values,
            codec::aggregate,
        )
        .await
    }

    async fn window_entries(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        since: Timestamp,
    ) -> StoreResult<Vec<WindowEntryRow>> {
        let values = args![workspace, customer, since];
        run_all(
            self.read(workspace),
            q::WINDOW_ENTRIES,
            values,
            codec::window_entry,
        )
        .await
    }

    async fn prune_window_entries(
        &self,
        workspace: &WorkspaceId,
        before: Timestamp,
    ) -> StoreResult<u64> {
        let values = args![workspace, before];
        run_execute(self.write(workspace), q::PRUNE_WINDOW_ENTRIES, values).await
    }

    async fn level_points(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<LevelPoint>> {
        let values = args![workspace, customer, from, to];
        run_all(
            self.read(workspace),
            q::LEVEL_POINTS,
            values,
            codec::level_point,
        )
        .await
    }

    async fn events(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        from: Timestamp,
        to: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        let values = args![workspace, customer, from, to, limit.max(0)];
        run_all(self.read(workspace), q::EVENTS, values, codec::event).await
    }

    async fn get_event(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<EventRecord>> {
        run_optional(
            self.read(workspace),
            if B::PARTITIONED_EVENTS {
                q::EVENT_BY_ID_ROUTED
            } else {
                q::EVENT_BY_ID
            },
            args![workspace, id],
            codec::event,
        )
        .await
    }

    async fn claim_idempotency_key(
        &self,
        workspace: &WorkspaceId,
        key: &str,
        request_hash: &str,
        at: Timestamp,
        expired_before: Timestamp,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let mut tx = self.write(workspace).await?;
        tx.execute(
            q::EXPIRE_IDEMPOTENCY_KEY,
            args![workspace, key, expired_before],
        )
        .await?;
        let claimed = tx
            .execute(
                q::CLAIM_IDEMPOTENCY_KEY,
                args![workspace, key, request_hash, at],
            )
            .await?;
        let found = if claimed == 1 {
            None
        } else {
            let row = tx
                .fetch_optional(q::IDEMPOTENCY_KEY, args![workspace, key])
                .await?
                .ok_or_else(|| StoreError::Corrupt("an idempotency key vanished".into()))?;
            Some(IdempotencyRecord {
                request_hash: row.text("request_hash")?,
                status: row
                    .opt_int("status")?
                    .map(|s| u16::try_from(s).unwrap_or(u16::MAX)),
                body: row.opt_text("body")?,
            })
        };
        tx.commit().await?;
        Ok(found)
    }

    async fn complete_idempotency_key(
        &self,
        workspace: &WorkspaceId,
        key: &str,
        status: u16,
        body: &str,
    ) -> StoreResult<()> {
        let values = args![workspace, key, i64::from(status), body];
        run_execute(self.write(workspace), q::COMPLETE_IDEMPOTENCY_KEY, values).await?;
        Ok(())
    }

    async fn release_idempotency_key(&self, workspace: &WorkspaceId, key: &str) -> StoreResult<()> {
        run_execute(
            self.write(workspace),
            q::RELEASE_IDEMPOTENCY_KEY,
            args![workspace, key],
        )
        .await?;
        Ok(())
    }

    async fn customers_page(
        &self,
        workspace: &WorkspaceId,
        after: Option<After<'_>>,
        limit: i64,
    ) -> StoreResult<Vec<CustomerRecord>> {
        let values = args![
            workspace,
            after.map(|a| a.at),
            after.map(|a| a.id),
            limit.max(0)
        ];
        run_all(
            self.read(workspace),
            q::CUSTOMERS_PAGE,
            values,
            codec::customer,
        )
        .await
    }

    async fn query_events(
        &self,
        workspace: &WorkspaceId,
        filter: &EventFilter,
        after: Option<After<'_>>,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        let values = args![
            workspace,
            &filter.customer,
            &filter.event_type,
            &filter.subject,
            filter.from,
            filter.to,
            after.map(|a| a.at),
            after.map(|a| a.id),
            limit.max(0)
        ];
        run_all(self.read(workspace), q::QUERY_EVENTS, values, codec::event).await
    }
}
