//! Reconciliation: what Tollgate recorded as paid by Stripe, compared with Stripe's own
//! PaymentIntents made for this workspace (metadata `tollgate_workspace`). Read-only: it lists
//! the differences for the operator (`GET /v1/payments/reconciliation`, `tollgate payments
//! reconcile`) and changes nothing.

use std::collections::BTreeMap;

use serde::Serialize;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::payments::PaymentStatus;

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
    /// (Tollgate recorded a card payment Stripe does not show as succeeded), `amount_mismatch`.
    pub kind: String,
    pub payment_intent: String,
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
    let ours: Vec<_> = engine
        .store()
        .provider_payments(&WorkspaceId::from(workspace), stripe::NAME)
        .await?
        .into_iter()
        .filter(|p| p.status == PaymentStatus::Succeeded)
        .collect();
    let mut differences = Vec::new();
    for payment in &ours {
        let difference = |kind: &str, intent: Option<&wire::PaymentIntent>| Difference {
            kind: kind.to_owned(),
            payment_intent: payment.reference.clone(),
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
        if !ours.iter().any(|p| p.reference == intent.id) {
            differences.push(Difference {
                kind: "missing_in_tollgate".into(),
                payment_intent: intent.id.clone(),
                invoice: intent.metadata.get("tollgate_invoice").cloned(),
                tollgate_amount_minor: None,
                provider_amount_minor: Some(intent.amount_minor()),
                provider_status: Some(intent.status.clone()),
            });
        }
    }
    Ok(Reconciliation {
        tollgate_payments: ours.len(),
        provider_payments: theirs.len(),
        differences,
    })
}
