//! Event amendments: "latest copy replaces" (docs/INVOICES.md, "Repeated event ids").
//!
//! The event row is never edited (the ledger seals it as first written, docs/TRUST.md). A later
//! copy of its id that replaces its properties is stored here as a row of its own, together with
//! the aggregate difference it makes and its `event.amended` domain event, in one transaction:
//! the ledger seals the domain event, so the evidence shows both the first value and the new one.
//! Nothing here is on the ingest path: the caller asks only for an id `ingest` reported as a
//! duplicate.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::ids::{CustomerId, WorkspaceId};

use crate::backend::{Backend, Conn, args, run_all};
use crate::codec::{Columns, insert_error};
use crate::outbox::{self, OutboxEvent};
use crate::{EventRecord, IngestItem, StoreResult, codec, sql};

/// One replacement of an event's properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventAmendment {
    pub workspace: String,
    pub event_id: String,
    /// 1 for the first replacement of the event, then 2, ...: the row's place in its history.
    pub seq: i64,
    pub customer: String,
    pub event_type: String,
    /// The properties rated before this amendment (the event's, or the previous amendment's).
    pub old_properties: serde_json::Value,
    pub new_properties: serde_json::Value,
    /// Who sent the replacing copy: `admin`, or the customer key's id.
    pub amended_by: String,
    pub amended_at: Timestamp,
}

/// An event as first written, with the newest amendment of it (if any): what is rated now.
#[derive(Debug, Clone, PartialEq)]
pub struct AmendableEvent {
    pub event: EventRecord,
    pub latest: Option<EventAmendment>,
}

impl AmendableEvent {
    /// The properties usage is rated with: the newest amendment's, else the event's own.
    pub fn current_properties(&self) -> &serde_json::Value {
        self.latest
            .as_ref()
            .map_or(&self.event.properties, |a| &a.new_properties)
    }

    /// The `seq` the next amendment takes.
    pub fn next_seq(&self) -> i64 {
        self.latest.as_ref().map_or(1, |a| a.seq + 1)
    }
}

#[async_trait]
pub trait AmendmentStore: Send + Sync {
    /// The event with this id and its newest amendment (`None`: no such event).
    async fn amendable_event(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<AmendableEvent>>;
    /// Records `amendment`, applies `change.updates` (the difference between the new and the
    /// old value, as aggregate updates of `change.event`, the event as first written) and
    /// appends `events`, in one transaction. An amendment with the same `seq` already stored
    /// (a concurrent replacement computed from the same value) is `AlreadyExists` and changes
    /// nothing.
    async fn amend_event(
        &self,
        amendment: &EventAmendment,
        change: &IngestItem,
        events: &[OutboxEvent],
    ) -> StoreResult<()>;
    /// Every amendment of one event, oldest first.
    async fn event_amendments(
        &self,
        workspace: &WorkspaceId,
        event_id: &str,
    ) -> StoreResult<Vec<EventAmendment>>;
    /// A customer's amendments made in `[from, to)`, oldest first (audit and evidence).
    async fn customer_amendments(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<EventAmendment>>;
}

fn decode(r: &impl Columns) -> StoreResult<EventAmendment> {
    Ok(EventAmendment {
        workspace: r.text("workspace")?,
        event_id: r.text("event_id")?,
        seq: r.int("seq")?,
        customer: r.text("customer")?,
        event_type: r.text("event_type")?,
        old_properties: r.json("old_properties")?,
        new_properties: r.json("new_properties")?,
        amended_by: r.text("amended_by")?,
        amended_at: r.time("amended_at")?,
    })
}

/// Inserts the amendment row and its domain events inside `tx` (the backend's transaction that
/// also applies the aggregate difference).
pub(crate) async fn record<C: Conn>(
    tx: &mut C,
    a: &EventAmendment,
    events: &[OutboxEvent],
) -> StoreResult<()> {
    let values = args![
        &a.workspace,
        &a.event_id,
        a.seq,
        &a.customer,
        &a.event_type,
        &a.old_properties,
        &a.new_properties,
        &a.amended_by,
        a.amended_at,
    ];
    tx.execute(sql::INSERT_EVENT_AMENDMENT, values)
        .await
        .map_err(|err| {
            insert_error(
                err,
                "event amendment",
                &format!("{}#{}", a.event_id, a.seq),
                "event",
                &a.event_id,
            )
        })?;
    outbox::append(tx, events).await
}

#[async_trait]
impl<B: Backend> AmendmentStore for B {
    async fn amendable_event(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<AmendableEvent>> {
        let mut tx = self.read(workspace).await?;
        let event = tx
            .fetch_optional(
                if B::PARTITIONED_EVENTS {
                    sql::EVENT_BY_ID_ROUTED
                } else {
                    sql::EVENT_BY_ID
                },
                args![workspace, id],
            )
            .await?;
        let Some(event) = event.as_ref().map(codec::event).transpose()? else {
            tx.commit().await?;
            return Ok(None);
        };
        let latest = tx
            .fetch_optional(sql::LATEST_EVENT_AMENDMENT, args![workspace, id])
            .await?;
        tx.commit().await?;
        Ok(Some(AmendableEvent {
            event,
            latest: latest.as_ref().map(decode).transpose()?,
        }))
    }

    async fn amend_event(
        &self,
        amendment: &EventAmendment,
        change: &IngestItem,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        self.amend_batch(amendment, change, events).await
    }

    async fn event_amendments(
        &self,
        workspace: &WorkspaceId,
        event_id: &str,
    ) -> StoreResult<Vec<EventAmendment>> {
        run_all(
            self.read(workspace),
            sql::EVENT_AMENDMENTS,
            args![workspace, event_id],
            decode,
        )
        .await
    }

    async fn customer_amendments(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<EventAmendment>> {
        run_all(
            self.read(workspace),
            sql::CUSTOMER_EVENT_AMENDMENTS,
            args![workspace, customer, from, to],
            decode,
        )
        .await
    }
}
