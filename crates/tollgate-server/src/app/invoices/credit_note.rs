//! Refund all or part of a paid invoice with a credit note, or credit all or part of any
//! finalized invoice: on an unpaid one the credit lowers its amount due first (paid at zero),
//! the rest goes to the customer's balance (docs/INVOICES.md).

use rust_decimal::Decimal;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_core::lifecycle::invoice::{
    CreditNoteError, amount_due_after_credit, balance_credit_allowed, balance_credit_remaining,
    credit_note_allowed, credit_note_remaining, within_refund_window,
};
use tollgate_core::money::{Currency, Money};
use tollgate_store::billing::{AmountDueChange, CreditNoteMethod, CreditNoteRecord, InvoiceRecord};

use super::credited;
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;

#[derive(Debug, Clone)]
pub struct IssueCreditNote {
    pub workspace: String,
    pub invoice: String,
    /// In major units; `None`: everything not yet refunded.
    pub amount: Option<Decimal>,
    pub reason: Option<String>,
    /// Refund after the catalog's refund window closed (an operator's exception).
    pub outside_refund_window: bool,
    /// `refund` (money back, paid invoices only) or `credit` (to the customer's balance, any
    /// finalized invoice).
    pub method: CreditNoteMethod,
}

/// The stored credit note (numbered gaplessly by the store) and the invoice's currency.
pub async fn issue_credit_note(
    engine: &Engine,
    input: IssueCreditNote,
) -> AppResult<(CreditNoteRecord, Currency)> {
    let IssueCreditNote {
        workspace,
        invoice: id,
        amount,
        reason,
        outside_refund_window,
        method,
    } = input;
    let store = engine.store();
    let invoice = store
        .get_invoice(&WorkspaceId::from(&workspace), &id)
        .await?
        .ok_or_else(|| Error::not_found("invoice", &id))?;
    let currency: Currency = invoice.currency.parse().map_err(Error::internal)?;
    let already = credited(engine, &invoice).await?;
    let refused = |e: CreditNoteError| match e {
        CreditNoteError::NotPaid { .. } => Error::conflict(
            e.code(),
            "only a paid invoice can be refunded; void an open one instead",
        ),
        CreditNoteError::NotFinalized { .. } => Error::conflict(
            e.code(),
            "only a finalized invoice (open, paid or uncollectible) can be credited",
        ),
        CreditNoteError::InvalidAmount { .. } => {
            Error::invalid(e.code(), "`amount` must be positive")
        }
        CreditNoteError::ExceedsInvoice { .. } => {
            Error::conflict(e.code(), "the credit notes would exceed the invoice total")
        }
    };
    let credit = method == CreditNoteMethod::Credit;
    let amount_minor = match amount {
        None if credit => balance_credit_remaining(invoice.status, invoice.total_minor, already)
            .map_err(refused)?,
        None => {
            credit_note_remaining(invoice.status, invoice.total_minor, already).map_err(refused)?
        }
        Some(a) if a.is_sign_negative() || a.is_zero() => {
            return Err(Error::invalid(
                Code::InvalidAmount,
                "`amount` must be positive",
            ));
        }
        Some(a) => Money::exact(a, currency)
            .map_err(|e| Error::invalid(e.code(), format!("`amount`: {e}")))?
            .minor(),
    };
    if credit {
        balance_credit_allowed(invoice.status, invoice.total_minor, already, amount_minor)
    } else {
        credit_note_allowed(invoice.status, invoice.total_minor, already, amount_minor)
    }
    .map_err(refused)?;
    let now =
        crate::app::subscriptions::customer_now(engine, &workspace, &invoice.customer).await?;
    let window = engine
        .latest_catalog(&workspace)
        .await?
        .and_then(|c| c.catalog.policies.refund_window_days);
    // The refund window bounds money going back; a credit to the balance stays with us.
    if !credit && !outside_refund_window && !within_refund_window(invoice.paid_at, now, window) {
        return Err(Error::conflict(
            Code::RefundWindowClosed,
            format!(
                "the invoice was paid more than {} days ago (policies.refund_window_days); send `outside_refund_window: true` to refund anyway",
                window.unwrap_or_default()
            ),
        ));
    }
    let note = CreditNoteRecord {
        workspace: workspace.clone(),
        id: new_id("cn"),
        number: 0,
        invoice: invoice.id.clone(),
        customer: invoice.customer.clone(),
        amount_minor,
        currency: invoice.currency.clone(),
        reason,
        created_at: now,
        method,
    };
    let created = crate::app::outbox::event(
        engine,
        &workspace,
        Some(&invoice.customer),
        crate::app::outbox::types::CREDIT_NOTE_CREATED,
        note.created_at,
        serde_json::json!({
            "credit_note": note.id,
            "invoice": invoice.id,
            "amount_minor": note.amount_minor,
            "currency": note.currency,
            "reason": note.reason,
            "method": note.method.as_str(),
        }),
    );
    // A credit on an unpaid invoice lowers what it still owes first (Stripe's rule); at zero the
    // invoice is paid, announced as any payment is.
    let lower = credit
        .then(|| amount_due_after_credit(invoice.status, invoice.amount_due_minor, amount_minor))
        .flatten()
        .map(|to_minor| AmountDueChange {
            status: invoice.status,
            from_minor: invoice.amount_due_minor,
            to_minor,
            at: now,
        });
    let settled = lower.filter(|c| c.to_minor == 0).map(|c| InvoiceRecord {
        status: tollgate_store::billing::InvoiceStatus::Paid,
        amount_due_minor: 0,
        paid_at: Some(c.at),
        ..invoice.clone()
    });
    let mut events = vec![created];
    if let Some(paid) = &settled {
        events.push(crate::app::outbox::event(
            engine,
            &workspace,
            Some(&invoice.customer),
            crate::app::outbox::types::INVOICE_PAID,
            now,
            super::event_data(paid),
        ));
    }
    let stored = store
        .insert_credit_note_lowering_due(&note, invoice.total_minor, lower, &events)
        .await?;
    // Settled by credit, not by a payment: its licenses follow it as a paid invoice's do, and no
    // referral is rewarded (nothing was paid).
    if let Some(paid) = &settled {
        crate::app::licenses::on_paid(engine, paid, now).await?;
    }
    // The money goes back through the provider that took it (docs/PAYMENTS.md); a refund that
    // fails is recorded as failed, and the credit note stands. A credit stays on the balance.
    if !credit && let Err(e) = crate::app::payments::refund_credit_note(engine, &stored).await {
        tracing::warn!(credit_note = %stored.id, error = %e.describe(), "refund not sent");
    }
    Ok((stored, currency))
}
