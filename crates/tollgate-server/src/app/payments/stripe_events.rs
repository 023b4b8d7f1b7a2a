//! Stripe's webhooks (`POST /v1/stripe/webhooks/{workspace}`): the signature checked against
//! the workspace's webhook secret (HMAC-SHA256 over `t.payload`, several `v1` during a secret
//! rotation, a timestamp within the tolerance), then each event id handled once:
//!
//! | event | effect |
//! |---|---|
//! | `checkout.session.completed` (setup mode), `setup_intent.succeeded` | the card becomes the Stripe customer's default; `has_payment_method` |
//! | `payment_intent.succeeded` | the payment recorded and the invoice paid (if the charge's own answer did not already) |
//! | `payment_intent.payment_failed` | a decline for dunning (once per PaymentIntent); `authentication_required` is `payment.action_required` instead |
//! | `charge.refunded` | `payment.refunded` for money refunded outside Tollgate |
//! | `charge.dispute.created` | `payment.disputed` |
//!
//! Other types are acknowledged and ignored. A failure while handling releases the event id,
//! so Stripe's retry is handled.

use serde::Serialize;
use serde_json::json;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::payments::RefundStatus;

use super::record::payment_arrived;
use super::{WEBHOOK_SECRET, not_configured, open_secret, stripe_client};
use crate::app::outbox::{self, types};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::providers::stripe::{self, SignatureError, verify_signature, wire};

/// A webhook request as received.
#[derive(Debug, Clone)]
pub struct StripeWebhook {
    pub workspace: String,
    /// The body, exactly as sent (the signature covers its bytes).
    pub payload: Vec<u8>,
    /// The `Stripe-Signature` header.
    pub signature: Option<String>,
}

/// What Tollgate did with an event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookOutcome {
    pub event: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `handled`, `duplicate` (this event id was handled before) or `ignored`.
    pub result: String,
}

fn unreadable(detail: impl std::fmt::Display) -> Error {
    Error::invalid(
        Code::InvalidBody,
        format!("not a Stripe event Tollgate can read: {detail}"),
    )
}

pub async fn handle_stripe_webhook(
    engine: &Engine,
    input: StripeWebhook,
) -> AppResult<WebhookOutcome> {
    let workspace = input.workspace.as_str();
    let ws = WorkspaceId::from(workspace);
    let sealed = engine
        .store()
        .payment_settings(&ws)
        .await?
        .and_then(|s| s.stripe_webhook_secret)
        .ok_or_else(|| not_configured("`stripe_webhook_secret`"))?;
    let secret = open_secret(engine, workspace, WEBHOOK_SECRET, &sealed)?;
    let header = input.signature.as_deref().unwrap_or_default();
    let now = engine.now().as_second();
    verify_signature(
        &input.payload,
        header,
        &[secret.expose()],
        now,
        engine.payments().webhook_tolerance,
    )
    .map_err(|e: SignatureError| Error::invalid(Code::InvalidWebhookSignature, e.to_string()))?;
    let event: wire::Event = serde_json::from_slice(&input.payload).map_err(unreadable)?;
    let store = engine.store();
    let claimed = store
        .claim_provider_event(&ws, stripe::NAME, &event.id, &event.kind, engine.now())
        .await?;
    let answer = |result: &str| WebhookOutcome {
        event: event.id.clone(),
        kind: event.kind.clone(),
        result: result.to_owned(),
    };
    if !claimed {
        return Ok(answer("duplicate"));
    }
    match dispatch(engine, workspace, &event).await {
        Ok(true) => Ok(answer("handled")),
        Ok(false) => Ok(answer("ignored")),
        Err(e) => {
            store
                .release_provider_event(&ws, stripe::NAME, &event.id)
                .await?;
            Err(e)
        }
    }
}

fn object<T: serde::de::DeserializeOwned>(event: &wire::Event) -> AppResult<T> {
    serde_json::from_value(event.data.object.clone()).map_err(unreadable)
}

/// Handles one event: whether it meant something to Tollgate.
async fn dispatch(engine: &Engine, workspace: &str, event: &wire::Event) -> AppResult<bool> {
    match event.kind.as_str() {
        "checkout.session.completed" => {
            let session: wire::CheckoutSession = object(event)?;
            if session.mode == "payment" {
                return paid_through_checkout(engine, workspace, &session).await;
            }
            if session.mode != "setup" {
                return Ok(false);
            }
            let (Some(customer), Some(intent)) = (
                wire::id_of(&session.customer),
                wire::id_of(&session.setup_intent),
            ) else {
                return Ok(false);
            };
            let client = stripe_client(engine, workspace).await?;
            let intent = client.setup_intent(&intent).await?;
            match wire::id_of(&intent.payment_method) {
                Some(method) => save_card(engine, workspace, &customer, &method).await,
                None => Ok(false),
            }
        }
        "setup_intent.succeeded" => {
            let intent: wire::SetupIntent = object(event)?;
            match (
                wire::id_of(&intent.customer),
                wire::id_of(&intent.payment_method),
            ) {
                (Some(customer), Some(method)) => {
                    save_card(engine, workspace, &customer, &method).await
                }
                _ => Ok(false),
            }
        }
        "payment_intent.succeeded" => {
            let intent: wire::PaymentIntent = object(event)?;
            let Some(invoice) = known_invoice(engine, workspace, &intent).await? else {
                return Ok(false);
            };
            match invoice.status {
                tollgate_store::billing::InvoiceStatus::Open
                | tollgate_store::billing::InvoiceStatus::Uncollectible => {
                    payment_arrived(
                        engine,
                        &invoice,
                        stripe::NAME,
                        &intent.id,
                        intent.amount_minor(),
                        Some("card"),
                    )
                    .await?;
                    Ok(true)
                }
                // Paid already (by the charge's answer, or by hand): nothing to record twice.
                _ => Ok(false),
            }
        }
        "payment_intent.payment_failed" => {
            let intent: wire::PaymentIntent = object(event)?;
            let Some(invoice) = known_invoice(engine, workspace, &intent).await? else {
                return Ok(false);
            };
            if invoice.status != tollgate_store::billing::InvoiceStatus::Open {
                return Ok(false);
            }
            let error = intent.last_payment_error.clone();
            // The bank wants the customer to authenticate: not a decline (3-D Secure).
            if error
                .as_ref()
                .is_some_and(|e| e.code.as_deref() == Some("authentication_required"))
            {
                super::payment_link::action_required(
                    engine,
                    &invoice,
                    &intent.id,
                    intent.action_url(),
                    intent.amount_minor(),
                )
                .await?;
                return Ok(true);
            }
            let failure = super::dunning::Failure {
                provider: stripe::NAME,
                reference: intent.id.clone(),
                amount_minor: intent.amount_minor(),
                code: error
                    .as_ref()
                    .and_then(|e| e.decline_code.clone().or(e.code.clone()))
                    .unwrap_or_else(|| "payment_failed".into()),
                message: error
                    .and_then(|e| e.message)
                    .unwrap_or_else(|| "the payment failed".into()),
            };
            super::dunning::failed(engine, &invoice, failure).await?;
            Ok(true)
        }
        "charge.refunded" => {
            let charge: wire::Charge = object(event)?;
            refunded_outside(engine, workspace, &charge).await
        }
        "charge.dispute.created" => {
            let dispute: wire::Dispute = object(event)?;
            disputed(engine, workspace, &dispute).await
        }
        _ => Ok(false),
    }
}

/// `checkout.session.completed` in payment mode (an invoice's payment link): the payment
/// recorded by its PaymentIntent (so `payment_intent.succeeded` about it counts once) and the
/// invoice paid, if the session was made for an invoice of this workspace and is paid.
async fn paid_through_checkout(
    engine: &Engine,
    workspace: &str,
    session: &wire::CheckoutSession,
) -> AppResult<bool> {
    let ours = session
        .metadata
        .get("tollgate_workspace")
        .map(String::as_str)
        == Some(workspace);
    let (true, Some(invoice), Some(intent), Some("paid"), Some(amount), Some(currency)) = (
        ours,
        session.metadata.get("tollgate_invoice"),
        wire::id_of(&session.payment_intent),
        session.payment_status.as_deref(),
        session.amount_total,
        session.currency.as_deref(),
    ) else {
        return Ok(false);
    };
    let Some(invoice) = engine
        .store()
        .get_invoice(&WorkspaceId::from(workspace), invoice)
        .await?
    else {
        return Ok(false);
    };
    if !matches!(
        invoice.status,
        tollgate_store::billing::InvoiceStatus::Open
            | tollgate_store::billing::InvoiceStatus::Uncollectible
    ) {
        return Ok(false);
    }
    let (_, before) = payment_arrived(
        engine,
        &invoice,
        stripe::NAME,
        &intent,
        stripe::from_stripe_amount(currency, amount),
        Some("card"),
    )
    .await?;
    Ok(!before)
}

/// The invoice a PaymentIntent was made for, if Tollgate made it for this workspace and the
/// invoice exists (an event about anything else is acknowledged and ignored, not retried).
async fn known_invoice(
    engine: &Engine,
    workspace: &str,
    intent: &wire::PaymentIntent,
) -> AppResult<Option<tollgate_store::billing::InvoiceRecord>> {
    let Some(id) = our_invoice(workspace, intent) else {
        return Ok(None);
    };
    Ok(engine
        .store()
        .get_invoice(&WorkspaceId::from(workspace), id)
        .await?)
}

/// The invoice a PaymentIntent was made for, if Tollgate made it for this workspace.
fn our_invoice<'a>(workspace: &str, intent: &'a wire::PaymentIntent) -> Option<&'a str> {
    let from = intent.metadata.get("tollgate_workspace")?;
    (from == workspace)
        .then(|| intent.metadata.get("tollgate_invoice").map(String::as_str))
        .flatten()
}

/// A card saved by the Stripe customer `stripe_customer`: the default for its invoices, and the
/// Tollgate customer has a payment method.
async fn save_card(
    engine: &Engine,
    workspace: &str,
    stripe_customer: &str,
    method: &str,
) -> AppResult<bool> {
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let Some(link) = store
        .provider_customer_by_ref(&ws, stripe::NAME, stripe_customer)
        .await?
    else {
        return Ok(false);
    };
    if link.default_payment_method.as_deref() == Some(method) {
        return Ok(true);
    }
    let client = stripe_client(engine, workspace).await?;
    client
        .set_default_payment_method(stripe_customer, method)
        .await?;
    let customer = tollgate_core::ids::CustomerId::from(&link.customer);
    store
        .set_default_payment_method(&ws, &customer, stripe::NAME, method, engine.now())
        .await?;
    engine.refresh_customer(workspace, &link.customer).await?;
    Ok(true)
}

async fn payment_of_intent(
    engine: &Engine,
    workspace: &str,
    intent: Option<String>,
) -> AppResult<Option<tollgate_store::payments::PaymentRecord>> {
    let Some(intent) = intent else {
        return Ok(None);
    };
    Ok(engine
        .store()
        .payment_by_reference(&WorkspaceId::from(workspace), stripe::NAME, &intent)
        .await?)
}

/// `charge.refunded`: Tollgate's own refunds were announced when made; money Stripe refunded
/// beyond them (from its dashboard) is announced here, for the operator to issue the credit
/// note.
async fn refunded_outside(
    engine: &Engine,
    workspace: &str,
    charge: &wire::Charge,
) -> AppResult<bool> {
    let Some(payment) =
        payment_of_intent(engine, workspace, wire::id_of(&charge.payment_intent)).await?
    else {
        return Ok(false);
    };
    let ours: i64 = engine
        .store()
        .list_refunds(&WorkspaceId::from(workspace), &payment.invoice)
        .await?
        .iter()
        .filter(|r| r.payment == payment.id && r.status != RefundStatus::Failed)
        .map(|r| r.amount_minor)
        .sum();
    let outside = stripe::from_stripe_amount(&charge.currency, charge.amount_refunded) - ours;
    if outside <= 0 {
        return Ok(false);
    }
    let now = crate::app::subscriptions::customer_now(engine, workspace, &payment.customer).await?;
    let event = outbox::event(
        engine,
        workspace,
        Some(&payment.customer),
        types::PAYMENT_REFUNDED,
        now,
        json!({
            "payment": payment.id,
            "invoice": payment.invoice,
            "provider": stripe::NAME,
            "charge": charge.id,
            "amount_minor": outside,
            "currency": payment.currency,
            "status": "succeeded",
            "outside_tollgate": true,
        }),
    );
    engine
        .store()
        .append_events(&WorkspaceId::from(workspace), &[event])
        .await?;
    Ok(true)
}

/// `charge.dispute.created`: `payment.disputed`, with the payment when Tollgate knows it.
async fn disputed(engine: &Engine, workspace: &str, dispute: &wire::Dispute) -> AppResult<bool> {
    let payment =
        payment_of_intent(engine, workspace, wire::id_of(&dispute.payment_intent)).await?;
    let customer = payment.as_ref().map(|p| p.customer.clone());
    let now = match &customer {
        Some(c) => crate::app::subscriptions::customer_now(engine, workspace, c).await?,
        None => engine.now(),
    };
    let event = outbox::event(
        engine,
        workspace,
        customer.as_deref(),
        types::PAYMENT_DISPUTED,
        now,
        json!({
            "dispute": dispute.id,
            "charge": wire::id_of(&dispute.charge),
            "payment": payment.as_ref().map(|p| p.id.clone()),
            "invoice": payment.as_ref().map(|p| p.invoice.clone()),
            "amount_minor": stripe::from_stripe_amount(&dispute.currency, dispute.amount),
            "currency": dispute.currency.to_ascii_uppercase(),
            "reason": dispute.reason,
            "status": dispute.status,
        }),
    );
    engine
        .store()
        .append_events(&WorkspaceId::from(workspace), &[event])
        .await?;
    Ok(true)
}
