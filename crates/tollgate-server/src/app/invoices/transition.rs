//! An invoice's status moves, by core's state machine (`lifecycle::invoice`): open -> paid |
//! void | uncollectible, uncollectible -> paid | void.

use tollgate_core::ids::WorkspaceId;
use tollgate_core::lifecycle::InvoiceUpdate;
use tollgate_store::billing::InvoiceRecord;

use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// Applies `update` to an invoice if its state machine allows it (compare-and-set in the store,
/// so of two concurrent moves one wins).
pub async fn transition(
    engine: &Engine,
    workspace: &str,
    id: &str,
    update: InvoiceUpdate,
) -> AppResult<InvoiceRecord> {
    let store = engine.store();
    let invoice = store
        .get_invoice(&WorkspaceId::from(workspace), id)
        .await?
        .ok_or_else(|| Error::not_found("invoice", id))?;
    let to = invoice
        .status
        .apply(update)
        .map_err(|e| Error::conflict(e.code(), e.to_string()))?;
    // The customer's clock: an invoice of a customer on a test clock is paid at its time.
    let now = crate::app::subscriptions::customer_now(engine, workspace, &invoice.customer).await?;
    Ok(store
        .set_invoice_status(&WorkspaceId::from(workspace), id, invoice.status, to, now)
        .await?)
}

/// Records a payment received outside Tollgate (bank transfer, manual).
pub async fn pay(engine: &Engine, workspace: &str, id: &str) -> AppResult<InvoiceRecord> {
    transition(engine, workspace, id, InvoiceUpdate::Pay).await
}

pub async fn void(engine: &Engine, workspace: &str, id: &str) -> AppResult<InvoiceRecord> {
    transition(engine, workspace, id, InvoiceUpdate::Void).await
}

pub async fn mark_uncollectible(
    engine: &Engine,
    workspace: &str,
    id: &str,
) -> AppResult<InvoiceRecord> {
    transition(engine, workspace, id, InvoiceUpdate::MarkUncollectible).await
}
