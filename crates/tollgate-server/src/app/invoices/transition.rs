//! An invoice's status moves: open -> paid | void | uncollectible, uncollectible -> paid | void.

use tollgate_store::billing::{InvoiceRecord, InvoiceStatus};

use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// Moves an invoice to `to` if its state machine allows it (compare-and-set in the store, so a
/// concurrent move wins once).
pub async fn transition(
    engine: &Engine,
    workspace: &str,
    id: &str,
    to: InvoiceStatus,
) -> AppResult<InvoiceRecord> {
    let store = engine.store();
    let invoice = store
        .get_invoice(workspace, id)
        .await?
        .ok_or_else(|| Error::not_found("invoice", id))?;
    let allowed = matches!(
        (invoice.status, to),
        (
            InvoiceStatus::Open,
            InvoiceStatus::Paid | InvoiceStatus::Void | InvoiceStatus::Uncollectible
        ) | (
            InvoiceStatus::Uncollectible,
            InvoiceStatus::Paid | InvoiceStatus::Void
        )
    );
    if !allowed {
        return Err(Error::conflict(
            "invalid_invoice_transition",
            format!(
                "an invoice that is {} cannot become {}",
                invoice.status.as_str(),
                to.as_str()
            ),
        ));
    }
    let now = engine.now();
    Ok(store
        .set_invoice_status(workspace, id, invoice.status, to, now)
        .await?)
}

/// Records a payment received outside Tollgate (bank transfer, manual).
pub async fn pay(engine: &Engine, workspace: &str, id: &str) -> AppResult<InvoiceRecord> {
    transition(engine, workspace, id, InvoiceStatus::Paid).await
}

pub async fn void(engine: &Engine, workspace: &str, id: &str) -> AppResult<InvoiceRecord> {
    transition(engine, workspace, id, InvoiceStatus::Void).await
}

pub async fn mark_uncollectible(
    engine: &Engine,
    workspace: &str,
    id: &str,
) -> AppResult<InvoiceRecord> {
    transition(engine, workspace, id, InvoiceStatus::Uncollectible).await
}
