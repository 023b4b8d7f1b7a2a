//! Invoices after they are finalized: their status moves (pay, void, mark uncollectible) and
//! refunds by credit note. A finalized invoice never changes otherwise.

mod credit_note;
mod profile;
mod transition;

pub use credit_note::{IssueCreditNote, issue_credit_note};
pub use profile::{
    SetCustomerProfile, get_customer_profile, get_seller_profile, set_customer_profile,
    set_seller_profile,
};
pub use transition::{mark_uncollectible, pay, transition, void};

use tollgate_core::ids::WorkspaceId;
use tollgate_store::billing::InvoiceRecord;

use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// What the credit notes of an invoice add up to, in minor units.
pub async fn credited(engine: &Engine, invoice: &InvoiceRecord) -> AppResult<i64> {
    let notes = engine
        .store()
        .list_credit_notes(&WorkspaceId::from(&invoice.workspace), &invoice.id)
        .await?;
    notes
        .iter()
        .try_fold(0i64, |sum, n| sum.checked_add(n.amount_minor))
        .ok_or_else(|| Error::internal("credit notes of an invoice overflow i64"))
}

/// What an `invoice.*` domain event says about an invoice.
pub fn event_data(invoice: &InvoiceRecord) -> serde_json::Value {
    serde_json::json!({
        "invoice": invoice.id,
        "subscription": invoice.subscription,
        "key": invoice.dedupe_key,
        "status": invoice.status.as_str(),
        "currency": invoice.currency,
        "total_minor": invoice.total_minor,
        "amount_due_minor": invoice.amount_due_minor,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
    })
}
