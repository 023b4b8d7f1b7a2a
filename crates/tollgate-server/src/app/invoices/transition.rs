//! An invoice's status moves, by core's state machine (`lifecycle::invoice`): open -> paid |
//! void | uncollectible, uncollectible -> paid | void.

use tollgate_core::ids::WorkspaceId;
use tollgate_core::lifecycle::InvoiceUpdate;
use tollgate_store::billing::{InvoiceRecord, InvoiceStatus};

use crate::app::outbox::{self, types};

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
    let event_type = match to {
        InvoiceStatus::Paid => Some(types::INVOICE_PAID),
        InvoiceStatus::Void => Some(types::INVOICE_VOIDED),
        InvoiceStatus::Uncollectible => Some(types::INVOICE_UNCOLLECTIBLE),
        _ => None,
    };
    let moved = InvoiceRecord {
        status: to,
        ..invoice.clone()
    };
    let events: Vec<_> = event_type
        .map(|t| {
            outbox::event(
                engine,
                workspace,
                Some(&invoice.customer),
                t,
                now,
                super::event_data(&moved),
            )
        })
        .into_iter()
        .collect();
    Ok(store
        .set_invoice_status_with_events(
            &WorkspaceId::from(workspace),
            id,
            (invoice.status, to),
            now,
            &events,
        )
        .await?)
}

/// Records a payment received outside Tollgate (bank transfer, manual).
/// A paid invoice can make its customer paying: its referrer is rewarded then (`referrals`).
pub async fn pay(engine: &Engine, workspace: &str, id: &str) -> AppResult<InvoiceRecord> {
    let paid = transition(engine, workspace, id, InvoiceUpdate::Pay).await?;
    crate::app::referrals::reward_if_paying(engine, workspace, &paid).await?;
    let now = crate::app::subscriptions::customer_now(engine, workspace, &paid.customer).await?;
    crate::app::licenses::on_paid(engine, &paid, now).await?;
    Ok(paid)
}

pub async fn void(engine: &Engine, workspace: &str, id: &str) -> AppResult<InvoiceRecord> {
    transition(engine, workspace, id, InvoiceUpdate::Void).await
}

pub async fn mark_uncollectible(
    engine: &Engine,
    workspace: &str,
    id: &str,
) -> AppResult<InvoiceRecord> {
    let marked = transition(engine, workspace, id, InvoiceUpdate::MarkUncollectible).await?;
    // Non-payment: the subscription's licenses are revoked (`docs/TRUST.md`).
    let now = crate::app::subscriptions::customer_now(engine, workspace, &marked.customer).await?;
    crate::app::licenses::on_unpaid(engine, &marked, now).await?;
    Ok(marked)
}
