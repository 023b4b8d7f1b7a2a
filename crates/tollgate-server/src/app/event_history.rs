//! An event's history: the event as first written and every amendment that replaced its value
//! ("latest copy replaces", docs/INVOICES.md), for audit. A customer key sees its own events
//! only; another customer's event is 404, as everywhere.

use tollgate_core::ids::WorkspaceId;
use tollgate_store::EventRecord;
use tollgate_store::amendments::EventAmendment;

use crate::auth::Principal;
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The event and its amendments, oldest first; `current` is what usage is rated with.
#[derive(Debug, Clone)]
pub struct EventHistory {
    pub event: EventRecord,
    pub amendments: Vec<EventAmendment>,
}

impl EventHistory {
    /// The properties rated now: the newest amendment's, else the event's own.
    pub fn current(&self) -> &serde_json::Value {
        self.amendments
            .last()
            .map_or(&self.event.properties, |a| &a.new_properties)
    }
}

pub async fn history(engine: &Engine, caller: &Principal, id: &str) -> AppResult<EventHistory> {
    let workspace = WorkspaceId::from(caller.workspace());
    let store = engine.store();
    let event = store
        .get_event(&workspace, id)
        .await?
        .filter(|e| match caller {
            Principal::Admin { .. } => true,
            Principal::Customer { customer, .. } => *customer == e.customer,
        })
        .ok_or_else(|| Error::not_found("event", id))?;
    let amendments = store.event_amendments(&workspace, id).await?;
    Ok(EventHistory { event, amendments })
}
