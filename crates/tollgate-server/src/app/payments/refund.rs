//! Refunds follow credit notes: when a credit note refunds a paid invoice, the money goes back
//! through the provider that took it. The note's amount is taken from the invoice's card
//! payments, newest first, each refunded at most what it brought in. A payment recorded by hand
//! is repaid by the operator (a bank transfer back): nothing is sent for it. A refund the
//! provider refuses or cannot take now is recorded `failed` with the reason (the credit note
//! stands; docs/PAYMENTS.md says how to proceed).

use serde_json::json;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::StoreError;
use tollgate_store::billing::CreditNoteRecord;
use tollgate_store::payments::{PaymentStatus, RefundRecord, RefundStatus};

use super::stripe_client;
use crate::app::outbox::{self, types};
use crate::engine::Engine;
use crate::error::AppResult;
use crate::ids::new_id;
use crate::providers::{PaymentProvider, RefundOutcome, RefundRequest, stripe};

/// Refunds `note` through the providers of its invoice's payments; the refunds recorded.
pub async fn refund_credit_note(
    engine: &Engine,
    note: &CreditNoteRecord,
) -> AppResult<Vec<RefundRecord>> {
    let store = engine.store();
    let ws = WorkspaceId::from(&note.workspace);
    let payments = store.list_payments(&ws, &note.invoice).await?;
    let mut card_payments: Vec<_> = payments
        .into_iter()
        .filter(|p| p.status == PaymentStatus::Succeeded && p.provider == stripe::NAME)
        .collect();
    if card_payments.is_empty() {
        return Ok(Vec::new());
    }
    card_payments.reverse();
    let earlier = store.list_refunds(&ws, &note.invoice).await?;
    let client = stripe_client(engine, &note.workspace).await?;
    let now =
        crate::app::subscriptions::customer_now(engine, &note.workspace, &note.customer).await?;
    let mut left = note.amount_minor;
    let mut made = Vec::new();
    for payment in card_payments {
        if left <= 0 {
            break;
        }
        let refunded: i64 = earlier
            .iter()
            .filter(|r| r.payment == payment.id && r.status != RefundStatus::Failed)
            .map(|r| r.amount_minor)
            .sum();
        let amount = left.min(payment.amount_minor.saturating_sub(refunded));
        if amount <= 0 {
            continue;
        }
        let request = RefundRequest {
            idempotency_key: format!(
                "tollgate:{}:{}:{}:refund",
                note.workspace, note.id, payment.id
            ),
            reference: payment.reference.clone(),
            amount_minor: amount,
            currency: note.currency.clone(),
            credit_note: note.id.clone(),
        };
        let (status, provider_refund, failure) = match client.refund(&request).await {
            Ok(RefundOutcome::Refunded { reference, pending }) => {
                let status = if pending {
                    RefundStatus::Pending
                } else {
                    RefundStatus::Succeeded
                };
                (status, Some(reference), None)
            }
            Ok(RefundOutcome::Manual) => continue,
            Err(e) => {
                tracing::warn!(credit_note = %note.id, error = %e, "refund failed");
                (RefundStatus::Failed, None, Some(e.to_string()))
            }
        };
        let refund = RefundRecord {
            workspace: note.workspace.clone(),
            id: new_id("rf"),
            credit_note: note.id.clone(),
            invoice: note.invoice.clone(),
            payment: payment.id.clone(),
            provider: payment.provider.clone(),
            status,
            amount_minor: amount,
            currency: note.currency.clone(),
            provider_refund,
            failure_message: failure,
            created_at: now,
        };
        let events = if status == RefundStatus::Failed {
            Vec::new()
        } else {
            left -= amount;
            vec![outbox::event(
                engine,
                &note.workspace,
                Some(&note.customer),
                types::PAYMENT_REFUNDED,
                now,
                json!({
                    "refund": refund.id,
                    "credit_note": note.id,
                    "invoice": note.invoice,
                    "payment": payment.id,
                    "provider": refund.provider,
                    "provider_refund": refund.provider_refund,
                    "amount_minor": amount,
                    "currency": note.currency,
                    "status": status.as_str(),
                }),
            )]
        };
        match store.insert_refund(&refund, &events).await {
            Ok(()) => made.push(refund),
            // Refunded already for this note (a retried call): the provider's key made it once.
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(made)
}
