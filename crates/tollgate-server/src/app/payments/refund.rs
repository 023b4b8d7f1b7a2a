//! Refunds follow credit notes: when a credit note refunds a paid invoice, the money goes back
//! through the provider that took it. The note's amount is taken from the invoice's card
//! payments, newest first, each refunded at most what it brought in. A payment recorded by hand
//! is repaid by the operator (a bank transfer back): nothing is sent for it. A refund the
//! provider refuses or cannot take now is recorded `failed` with the reason (the credit note
//! stands) and retried by `refund.retry` jobs on the customer's clock, 1, 4, 12 and 24 hours
//! later. A retry first asks Stripe for a refund of the payment made for the same credit note
//! (a first attempt whose answer was lost may have refunded already) and adopts it; otherwise
//! it refunds under a new idempotency key (Stripe keeps the first key's failure). The refund
//! succeeds once (`payment.refunded`); after the last retry it stays `failed` for the operator.

use jiff::SignedDuration;
use serde_json::{Value, json};
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::StoreError;
use tollgate_store::billing::CreditNoteRecord;
use tollgate_store::jobs::{JobRecord, NewJob};
use tollgate_store::outbox::OutboxEvent;
use tollgate_store::payments::{PaymentStatus, RefundRecord, RefundStatus};

use super::stripe_client;
use crate::app::outbox::{self, types};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
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
            Ok(()) => {
                if refund.status == RefundStatus::Failed {
                    enqueue_retry(engine, &refund, &note.customer, 1).await?;
                }
                made.push(refund);
            }
            // Refunded already for this note (a retried call): the provider's key made it once.
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(made)
}

/// Hours after the failure at which a failed refund is tried again.
pub const RETRY_AFTER_HOURS: [i64; 4] = [1, 4, 12, 24];

/// Enqueues retry `attempt` (from 1) of a failed refund on its customer's clock, if the
/// schedule has one.
async fn enqueue_retry(
    engine: &Engine,
    refund: &RefundRecord,
    customer: &str,
    attempt: usize,
) -> AppResult<bool> {
    let Some(hours) = attempt
        .checked_sub(1)
        .and_then(|i| RETRY_AFTER_HOURS.get(i))
    else {
        return Ok(false);
    };
    let store = engine.store();
    let record = store
        .get_customer(&WorkspaceId::from(&refund.workspace), customer)
        .await?
        .ok_or_else(|| Error::not_found("customer", customer))?;
    let now = engine
        .now_for(&refund.workspace, record.test_clock.as_deref())
        .await?;
    let due_at = now
        .checked_add(SignedDuration::from_hours(*hours))
        .unwrap_or(now);
    let kind = super::kinds::REFUND_RETRY;
    let job = NewJob {
        workspace: refund.workspace.clone(),
        id: new_id("job"),
        kind: kind.to_owned(),
        key: format!("{}:{kind}:{attempt}", refund.id),
        customer: Some(customer.to_owned()),
        test_clock: record.test_clock.clone(),
        due_at,
        payload: json!({"refund": refund.id, "invoice": refund.invoice, "attempt": attempt}),
        max_attempts: crate::app::jobs::MAX_ATTEMPTS,
        created_at: engine.now(),
    };
    store.enqueue_job(&job).await?;
    Ok(true)
}

/// The `refund.retry` job: one more try of a failed refund (see the module's comment).
pub(crate) async fn retry_job(
    engine: &Engine,
    job: &JobRecord,
) -> AppResult<(Value, Vec<OutboxEvent>)> {
    let (Some(id), Some(attempt)) = (
        job.payload.get("refund").and_then(Value::as_str),
        job.payload
            .get("attempt")
            .and_then(Value::as_u64)
            .and_then(|a| usize::try_from(a).ok()),
    ) else {
        return Err(Error::invalid(
            Code::ValidationFailed,
            format!(
                "job {} has no `refund` and `attempt` in its payload",
                job.id
            ),
        ));
    };
    let store = engine.store();
    let ws = WorkspaceId::from(&job.workspace);
    let Some(refund) = store.get_refund(&ws, id).await? else {
        return Ok((json!({"skipped": "the refund does not exist"}), Vec::new()));
    };
    if refund.status != RefundStatus::Failed {
        return Ok((json!({"skipped": "the refund is not failed"}), Vec::new()));
    }
    let payment = store
        .list_payments(&ws, &refund.invoice)
        .await?
        .into_iter()
        .find(|p| p.id == refund.payment)
        .ok_or_else(|| Error::not_found("payment", &refund.payment))?;
    let client = stripe_client(engine, &job.workspace).await?;
    // A refund Stripe made for this credit note (an answer lost) is adopted, not made twice.
    let earlier = client
        .refunds(Some(&payment.reference), 1)
        .await?
        .into_iter()
        .find(|r| {
            r.counts() && r.metadata.get("tollgate_credit_note") == Some(&refund.credit_note)
        });
    let outcome = match earlier {
        Some(r) => Ok(RefundOutcome::Refunded {
            pending: r.status.as_deref() != Some("succeeded"),
            reference: r.id,
        }),
        None => {
            let request = RefundRequest {
                idempotency_key: format!(
                    "tollgate:{}:{}:{}:refund:retry:{attempt}",
                    refund.workspace, refund.credit_note, refund.payment
                ),
                reference: payment.reference.clone(),
                amount_minor: refund.amount_minor,
                currency: refund.currency.clone(),
                credit_note: refund.credit_note.clone(),
            };
            client.refund(&request).await
        }
    };
    let now = crate::app::subscriptions::customer_now(engine, &refund.workspace, &payment.customer)
        .await?;
    let mut retried = refund.clone();
    let mut events = Vec::new();
    match outcome {
        Ok(RefundOutcome::Refunded { reference, pending }) => {
            retried.status = if pending {
                RefundStatus::Pending
            } else {
                RefundStatus::Succeeded
            };
            retried.provider_refund = Some(reference);
            retried.failure_message = None;
            events.push(outbox::event(
                engine,
                &refund.workspace,
                Some(&payment.customer),
                types::PAYMENT_REFUNDED,
                now,
                json!({
                    "refund": refund.id,
                    "credit_note": refund.credit_note,
                    "invoice": refund.invoice,
                    "payment": payment.id,
                    "provider": refund.provider,
                    "provider_refund": retried.provider_refund,
                    "amount_minor": refund.amount_minor,
                    "currency": refund.currency,
                    "status": retried.status.as_str(),
                    "attempt": attempt,
                }),
            ));
        }
        Ok(RefundOutcome::Manual) => {
            return Ok((json!({"skipped": "refunded by the operator"}), Vec::new()));
        }
        Err(e) => {
            tracing::warn!(refund = %refund.id, attempt, error = %e, "refund retry failed");
            retried.failure_message = Some(e.to_string());
        }
    }
    match store.retry_refund(&retried, &events).await {
        Ok(()) => {}
        // Another retry got there first.
        Err(StoreError::Conflict(_)) => {
            return Ok((json!({"skipped": "the refund is not failed"}), Vec::new()));
        }
        Err(e) => return Err(e.into()),
    }
    let next = if retried.status == RefundStatus::Failed {
        enqueue_retry(engine, &retried, &payment.customer, attempt + 1).await?
    } else {
        false
    };
    Ok((
        json!({
            "refund": refund.id,
            "attempt": attempt,
            "status": retried.status.as_str(),
            "provider_refund": retried.provider_refund,
            "retry_scheduled": next,
        }),
        Vec::new(),
    ))
}
