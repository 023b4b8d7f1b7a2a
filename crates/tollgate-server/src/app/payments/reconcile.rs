//! Reconciliation: what Tollgate recorded of Stripe's payments (succeeded and failed) and
//! refunds, compared with Stripe's own PaymentIntents made for this workspace (metadata
//! `tollgate_workspace`) and the Refunds of those PaymentIntents. Read-only: it lists the
//! differences for the operator (`GET /v1/payments/reconciliation`, `tollgate payments
//! reconcile`) and changes nothing.

use std::collections::BTreeMap;

use serde::Serialize;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::payments::{PaymentStatus, RefundStatus};

use super::stripe_client;
use crate::engine::Engine;
use crate::error::AppResult;
use crate::providers::stripe::{self, wire};

/// At most this many pages of 100 PaymentIntents are read from Stripe.
pub const MAX_PAGES: usize = 100;

/// One difference between Tollgate and Stripe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Difference {
    /// `missing_in_tollgate` (Stripe took money Tollgate did not record), `missing_at_provider`
    /// (Tollgate recorded a card payment Stripe does not show as succeeded), `amount_mismatch`,
    /// `failed_but_succeeded_at_provider` (Tollgate recorded a declined attempt whose
    /// PaymentIntent Stripe shows as succeeded), `refund_missing_in_tollgate` (Stripe refunded
    /// a Tollgate payment and Tollgate recorded no such refund, or recorded it failed),
    /// `refund_missing_at_provider` (a refund Tollgate recorded that Stripe does not have, or
    /// shows failed or canceled), `refund_amount_mismatch`.
    pub kind: String,
    pub payment_intent: String,
    /// The Stripe refund (`re_...`) of a refund difference.
    pub refund: Option<String>,
    pub invoice: Option<String>,
    /// Minor units, as each side has it.
    pub tollgate_amount_minor: Option<i64>,
    pub provider_amount_minor: Option<i64>,
    /// Stripe's status of the PaymentIntent, when it has one.
    pub provider_status: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reconciliation {
    /// Tollgate's succeeded card payments compared.
    pub tollgate_payments: usize,
    /// Stripe's PaymentIntents of this workspace compared.
    pub provider_payments: usize,
    /// Tollgate's Stripe refunds compared (failed ones included).
    pub tollgate_refunds: usize,
    /// Stripe's Refunds of this workspace's PaymentIntents compared.
    pub provider_refunds: usize,
    pub differences: Vec<Difference>,
}

pub async fn reconcile(engine: &Engine, workspace: &str) -> AppResult<Reconciliation> {
    let client = stripe_client(engine, workspace).await?;
    let theirs: BTreeMap<String, wire::PaymentIntent> = client
        .payment_intents(MAX_PAGES)
        .await?
        .into_iter()
        .filter(|p| p.metadata.get("tollgate_workspace").map(String::as_str) == Some(workspace))
        .map(|p| (p.id.clone(), p))
        .collect();
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let all_ours = store.provider_payments(&ws, stripe::NAME).await?;
    let (ours, declined): (Vec<_>, Vec<_>) = all_ours
        .iter()
        .cloned()
        .partition(|p| p.status == PaymentStatus::Succeeded);
    let mut differences = Vec::new();
    for payment in &ours {
        let difference = |kind: &str, intent: Option<&wire::PaymentIntent>| Difference {
            kind: kind.to_owned(),
            payment_intent: payment.reference.clone(),
            refund: None,
            invoice: Some(payment.invoice.clone()),
            tollgate_amount_minor: Some(payment.amount_minor),
            provider_amount_minor: intent.map(|i| i.amount_minor()),
            provider_status: intent.map(|i| i.status.clone()),
        };
        match theirs.get(&payment.reference) {
            Some(intent) if intent.status != "succeeded" => {
                differences.push(difference("missing_at_provider", Some(intent)));
            }
            Some(intent) if intent.amount_minor() != payment.amount_minor => {
                differences.push(difference("amount_mismatch", Some(intent)));
            }
            Some(_) => {}
            None => differences.push(difference("missing_at_provider", None)),
        }
    }
    for intent in theirs.values().filter(|i| i.status == "succeeded") {
        let known = ours.iter().any(|p| p.reference == intent.id)
            || declined.iter().any(|p| p.reference == intent.id);
        if !known {
            differences.push(Difference {
                kind: "missing_in_tollgate".into(),
                payment_intent: intent.id.clone(),
                refund: None,
                invoice: intent.metadata.get("tollgate_invoice").cloned(),
                tollgate_amount_minor: None,
                provider_amount_minor: Some(intent.amount_minor()),
                provider_status: Some(intent.status.clone()),
            });
        }
    }
    // A declined attempt whose PaymentIntent went on to succeed (not recorded as paid).
    for payment in &declined {
        if let Some(intent) = theirs.get(&payment.reference)
            && intent.status == "succeeded"
            && !ours.iter().any(|p| p.reference == payment.reference)
        {
            differences.push(Difference {
                kind: "failed_but_succeeded_at_provider".into(),
                payment_intent: payment.reference.clone(),
                refund: None,
                invoice: Some(payment.invoice.clone()),
                tollgate_amount_minor: Some(payment.amount_minor),
                provider_amount_minor: Some(intent.amount_minor()),
                provider_status: Some(intent.status.clone()),
            });
        }
    }

    // Refunds: Tollgate's, and Stripe's of the PaymentIntents Tollgate took money with.
    let our_refunds = store.provider_refunds(&ws, stripe::NAME).await?;
    let their_refunds: BTreeMap<String, wire::Refund> = client
        .refunds(None, MAX_PAGES)
        .await?
        .into_iter()
        .filter(|r| {
            wire::id_of(&r.payment_intent).is_some_and(|pi| ours.iter().any(|p| p.reference == pi))
        })
        .map(|r| (r.id.clone(), r))
        .collect();
    let refund_difference = |kind: &str,
                             ours: Option<&tollgate_store::payments::RefundRecord>,
                             theirs: Option<&wire::Refund>| {
        let payment = ours.and_then(|r| all_ours.iter().find(|p| p.id == r.payment));
        Difference {
            kind: kind.to_owned(),
            payment_intent: payment
                .map(|p| p.reference.clone())
                .or_else(|| theirs.and_then(|r| wire::id_of(&r.payment_intent)))
                .unwrap_or_default(),
            refund: ours
                .and_then(|r| r.provider_refund.clone())
                .or_else(|| theirs.map(|r| r.id.clone())),
            invoice: ours.map(|r| r.invoice.clone()).or_else(|| {
                theirs
                    .and_then(|r| wire::id_of(&r.payment_intent))
                    .and_then(|pi| all_ours.iter().find(|p| p.reference == pi))
                    .map(|p| p.invoice.clone())
            }),
            tollgate_amount_minor: ours.map(|r| r.amount_minor),
            provider_amount_minor: theirs
                .map(|r| stripe::from_stripe_amount(&r.currency, r.amount)),
            provider_status: theirs.and_then(|r| r.status.clone()),
        }
    };
    for refund in our_refunds
        .iter()
        .filter(|r| r.status != RefundStatus::Failed)
    {
        let found = refund
            .provider_refund
            .as_ref()
            .and_then(|id| their_refunds.get(id));
        match found {
            Some(r) if !r.counts() => differences.push(refund_difference(
                "refund_missing_at_provider",
                Some(refund),
                Some(r),
            )),
            Some(r) if stripe::from_stripe_amount(&r.currency, r.amount) != refund.amount_minor => {
                differences.push(refund_difference(
                    "refund_amount_mismatch",
                    Some(refund),
                    Some(r),
                ));
            }
            Some(_) => {}
            None => differences.push(refund_difference(
                "refund_missing_at_provider",
                Some(refund),
                None,
            )),
        }
    }
    for r in their_refunds.values().filter(|r| r.counts()) {
        let recorded = our_refunds.iter().any(|o| {
            o.status != RefundStatus::Failed && o.provider_refund.as_deref() == Some(&r.id)
        });
        if !recorded {
            differences.push(refund_difference(
                "refund_missing_in_tollgate",
                None,
                Some(r),
            ));
        }
    }
    Ok(Reconciliation {
        tollgate_payments: ours.len(),
        provider_payments: theirs.len(),
        tollgate_refunds: our_refunds.len(),
        provider_refunds: their_refunds.len(),
        differences,
    })
}
