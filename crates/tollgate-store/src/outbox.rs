//! The outbox: domain events written in the same transaction as the state change they announce
//! (the transactional-outbox pattern), so an event exists exactly when its change committed.
//!
//! Every write that announces something takes its events along ([`OutboxStore`]'s
//! `*_with_events` methods, and [`crate::billing::InvoiceEffects::events`] for invoices); they
//! all end in one function, [`append`], which runs inside the caller's transaction. Webhooks
//! read it (`crate::webhooks`): their fan-out sets `delivered_at` on the events it has turned into
//! deliveries, which keep their own attempts.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::ids::{CustomerId, KeyId, WorkspaceId};

use crate::backend::{Backend, Conn, args, run_all};
use crate::billing::PendingChargeRecord;
use crate::codec::{Columns, insert_error};
use crate::{ApiKeyRecord, CustomerRecord, StoreError, StoreResult, SubscriptionRecord, sql};

/// One domain event: `subscription.created`, `invoice.finalized`, ... `occurred_at` is on the
/// customer's clock (its test clock, if it has one); `created_at` is when it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub workspace: String,
    /// `evt_...`, time-ordered: the listing's order and cursor.
    pub id: String,
    pub customer: Option<String>,
    pub event_type: String,
    pub occurred_at: Timestamp,
    pub data: serde_json::Value,
    pub created_at: Timestamp,
    /// When the webhook fan-out turned it into deliveries (`None` until then).
    pub delivered_at: Option<Timestamp>,
    pub delivery_attempts: i64,
}

/// Which events to list: oldest first, after `starting_after` (an event id), at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxFilter {
    pub event_type: Option<String>,
    pub customer: Option<String>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

/// Appends `events` inside `tx`: the one way events are written, so they commit or roll back
/// with the change they announce.
pub(crate) async fn append<C: Conn>(tx: &mut C, events: &[OutboxEvent]) -> StoreResult<()> {
    for e in events {
        let values = args![
            &e.workspace,
            &e.id,
            &e.customer,
            &e.event_type,
            e.occurred_at,
            &e.data,
            e.created_at,
        ];
        tx.execute(sql::INSERT_OUTBOX_EVENT, values)
            .await
            .map_err(|err| insert_error(err, "domain event", &e.id, "workspace", &e.workspace))?;
    }
    Ok(())
}

/// Decodes one outbox row (the webhooks' fan-out reads them in its own transaction).
pub(crate) fn decode_row(r: &impl Columns) -> StoreResult<OutboxEvent> {
    decode(r)
}

fn decode(r: &impl Columns) -> StoreResult<OutboxEvent> {
    Ok(OutboxEvent {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        customer: r.opt_text("customer")?,
        event_type: r.text("type")?,
        occurred_at: r.time("occurred_at")?,
        data: r.json("data")?,
        created_at: r.time("created_at")?,
        delivered_at: r.opt_time("delivered_at")?,
        delivery_attempts: r.int("delivery_attempts")?,
    })
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Events alone, in one transaction (a change that is itself only an announcement, e.g. a
    /// trial reminder).
    async fn append_events(
        &self,
        workspace: &WorkspaceId,
        events: &[OutboxEvent],
    ) -> StoreResult<()>;
    async fn list_domain_events(
        &self,
        workspace: &WorkspaceId,
        filter: &OutboxFilter,
    ) -> StoreResult<Vec<OutboxEvent>>;
    /// [`crate::Store::create_subscription`] and its events, in one transaction.
    async fn create_subscription_with_events(
        &self,
        subscription: &SubscriptionRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<()>;
    /// [`crate::Store::update_subscription`] and its events, in one transaction.
    async fn update_subscription_with_events(
        &self,
        subscription: &SubscriptionRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<()>;
    /// [`crate::billing::BillingStore::change_subscription`] and its events, in one transaction.
    async fn change_subscription_with_events(
        &self,
        subscription: &SubscriptionRecord,
        charges: &[PendingChargeRecord],
        events: &[OutboxEvent],
    ) -> StoreResult<()>;
    /// [`crate::Store::update_customer`] and its events (a suspension), in one transaction.
    async fn update_customer_with_events(
        &self,
        customer: &CustomerRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<()>;
    /// [`crate::Store::create_api_key`] and its events, in one transaction.
    async fn create_api_key_with_events(
        &self,
        key: &ApiKeyRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<()>;
    /// [`crate::Store::revoke_api_key`] and its events, in one transaction; the events are
    /// written only when the key exists.
    async fn revoke_api_key_with_events(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        key: &KeyId,
        at: Timestamp,
        events: &[OutboxEvent],
    ) -> StoreResult<ApiKeyRecord>;
    /// [`crate::Store::add_catalog_version`] and its events, in one transaction: each event's
    /// `data` object gets the new `version` (known only inside the transaction).
    async fn add_catalog_version_with_events(
        &self,
        workspace: &WorkspaceId,
        catalog: &serde_json::Value,
        at: Timestamp,
        events: &[OutboxEvent],
    ) -> StoreResult<i64>;
}

#[async_trait]
impl<B: Backend> OutboxStore for B {
    async fn append_events(
        &self,
        workspace: &WorkspaceId,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        let mut tx = self.write(workspace).await?;
        append(&mut tx, events).await?;
        Ok(tx.commit().await?)
    }

    async fn list_domain_events(
        &self,
        workspace: &WorkspaceId,
        f: &OutboxFilter,
    ) -> StoreResult<Vec<OutboxEvent>> {
        let values = args![
            workspace,
            &f.event_type,
            &f.customer,
            &f.starting_after,
            f.limit
        ];
        run_all(
            self.read(workspace),
            sql::LIST_OUTBOX_EVENTS,
            values,
            decode,
        )
        .await
    }

    async fn create_subscription_with_events(
        &self,
        s: &SubscriptionRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        let mut tx = self.write(&s.workspace).await?;
        tx.execute(
            sql::INSERT_SUBSCRIPTION,
            &crate::store::subscription_args(s),
        )
        .await
        .map_err(|e| insert_error(e, "subscription", &s.id, "customer", &s.customer))?;
        append(&mut tx, events).await?;
        Ok(tx.commit().await?)
    }

    async fn update_subscription_with_events(
        &self,
        s: &SubscriptionRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        self.change_subscription_with_events(s, &[], events).await
    }

    async fn change_subscription_with_events(
        &self,
        s: &SubscriptionRecord,
        charges: &[PendingChargeRecord],
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        let mut tx = self.write(&s.workspace).await?;
        crate::billing::write_subscription_change(&mut tx, s, charges).await?;
        append(&mut tx, events).await?;
        Ok(tx.commit().await?)
    }

    async fn update_customer_with_events(
        &self,
        c: &CustomerRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        let mut tx = self.write(&c.workspace).await?;
        let rows = tx
            .execute(sql::UPDATE_CUSTOMER, &crate::store::customer_update_args(c))
            .await?;
        if rows == 0 {
            return Err(StoreError::NotFound {
                kind: "customer",
                id: c.id.clone(),
            });
        }
        append(&mut tx, events).await?;
        Ok(tx.commit().await?)
    }

    async fn create_api_key_with_events(
        &self,
        k: &ApiKeyRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        let mut tx = self.write(&k.workspace).await?;
        tx.execute(sql::INSERT_API_KEY, &crate::store::api_key_args(k))
            .await
            .map_err(|e| insert_error(e, "api_key", &k.id, "customer", &k.customer))?;
        append(&mut tx, events).await?;
        Ok(tx.commit().await?)
    }

    async fn revoke_api_key_with_events(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        key: &KeyId,
        at: Timestamp,
        events: &[OutboxEvent],
    ) -> StoreResult<ApiKeyRecord> {
        let mut tx = self.write(workspace).await?;
        let row = tx
            .fetch_optional(sql::REVOKE_API_KEY, args![workspace, customer, key, at])
            .await?;
        let record = row
            .as_ref()
            .map(crate::codec::api_key)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "api_key",
                id: key.to_string(),
            })?;
        append(&mut tx, events).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn add_catalog_version_with_events(
        &self,
        workspace: &WorkspaceId,
        catalog: &serde_json::Value,
        at: Timestamp,
        events: &[OutboxEvent],
    ) -> StoreResult<i64> {
        let mut tx = self.write(workspace).await?;
        let row = tx
            .fetch_optional(sql::BUMP_CATALOG_SEQ, args![workspace])
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "workspace",
                id: workspace.to_string(),
            })?;
        let version = row.int("catalog_seq")?;
        tx.execute(
            sql::INSERT_CATALOG_VERSION,
            args![workspace, version, catalog, at],
        )
        .await?;
        let mut events = events.to_vec();
        for event in &mut events {
            if let Some(data) = event.data.as_object_mut() {
                data.insert("version".to_owned(), version.into());
            }
        }
        append(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(version)
    }
}
