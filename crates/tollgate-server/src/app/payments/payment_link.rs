//! Where the customer pays an open invoice (docs/PAYMENTS.md, "Payment links" and "3-D
//! Secure"):
//! - `POST /v1/invoices/{id}/payment_link` makes a Stripe Checkout Session in payment mode for
//!   what the invoice still owes (or, without Stripe, answers the workspace's manual payment
//!   instructions); Stripe's `checkout.session.completed` (payment mode) and
//!   `payment_intent.succeeded` then record the payment once, by its PaymentIntent;
//! - a charge the bank wants authenticated (`requires_action`) leaves the invoice open with the
//!   PaymentIntent's authentication page as its link and writes `payment.action_required`
//!   once per PaymentIntent; the `payment_intent.succeeded` that follows marks it paid.
//!
//! The link is stored with the invoice (one per invoice, the newest), and the invoice's JSON
//! shows it as `payment_url` while it is open. A new link closes the previous one's page at
//! Stripe first (the Checkout Session expired, the PaymentIntent waiting for authentication
//! canceled), so the customer cannot pay the same invoice twice through two links.

use serde::Serialize;
use serde_json::json;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::billing::{InvoiceRecord, InvoiceStatus};
use tollgate_store::payments::{PaymentLinkKind, PaymentLinkRecord};

use super::record::{invoice_of, paid_so_far};
use super::{biller_refusal, stripe_client, stripe_configured, stripe_is_biller};
use crate::app::outbox::{self, types};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;
use crate::providers::stripe::{self, CheckoutPayment};

/// Make a payment link for an open invoice.
#[derive(Debug, Clone)]
pub struct PaymentLinkRequest {
    pub workspace: String,
    pub invoice: String,
    /// Where Stripe sends the customer after paying, and after giving up (Stripe only).
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
}

/// Where the customer pays.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentLink {
    /// `stripe` (a Checkout Session) or `manual` (pay by transfer, as `instructions` say).
    pub provider: String,
    pub invoice: String,
    /// The page where the customer pays (Stripe).
    pub url: Option<String>,
    /// The Checkout Session (`cs_...`).
    pub reference: Option<String>,
    /// The workspace's manual payment instructions (without Stripe).
    pub instructions: Option<String>,
    /// What the invoice still owes, in minor units.
    pub amount_minor: i64,
    pub currency: String,
}

/// The link a document shows for `invoice`: its stored link while it is open.
pub async fn payment_url(engine: &Engine, invoice: &InvoiceRecord) -> AppResult<Option<String>> {
    if !matches!(
        invoice.status,
        InvoiceStatus::Open | InvoiceStatus::Uncollectible
    ) {
        return Ok(None);
    }
    Ok(engine
        .store()
        .payment_link(&WorkspaceId::from(&invoice.workspace), &invoice.id)
        .await?
        .map(|l| l.url))
}

pub async fn create_payment_link(
    engine: &Engine,
    input: PaymentLinkRequest,
) -> AppResult<PaymentLink> {
    let workspace = input.workspace.as_str();
    let invoice = invoice_of(engine, workspace, &input.invoice).await?;
    if !matches!(
        invoice.status,
        InvoiceStatus::Open | InvoiceStatus::Uncollectible
    ) {
        return Err(Error::conflict(
            Code::InvoiceNotOpen,
            format!(
                "invoice {:?} is {}: only an open invoice is paid through a link",
                invoice.id,
                invoice.status.as_str()
            ),
        ));
    }
    if stripe_is_biller(engine, workspace).await? {
        return Err(biller_refusal(workspace));
    }
    let remaining = invoice
        .amount_due_minor
        .checked_sub(paid_so_far(engine, &invoice).await?)
        .ok_or_else(|| Error::internal("an invoice's payments overflow"))?;
    if remaining <= 0 {
        return Err(Error::conflict(
            Code::InvoiceNotOpen,
            format!("invoice {:?} owes nothing more", invoice.id),
        ));
    }
    let mut link = PaymentLink {
        provider: crate::providers::manual::NAME.into(),
        invoice: invoice.id.clone(),
        url: None,
        reference: None,
        instructions: None,
        amount_minor: remaining,
        currency: invoice.currency.clone(),
    };
    if !stripe_configured(engine, workspace).await? {
        let instructions = engine
            .store()
            .payment_settings(&WorkspaceId::from(workspace))
            .await?
            .and_then(|s| s.manual_instructions);
        return match instructions {
            Some(text) => {
                link.instructions = Some(text);
                Ok(link)
            }
            None => Err(Error::conflict(
                Code::PaymentProviderMissing,
                "neither Stripe nor manual payment instructions are set up: PUT \
                 /v1/payment_settings with `stripe_secret_key` or `manual_instructions`",
            )),
        };
    }
    let (Some(success_url), Some(cancel_url)) = (&input.success_url, &input.cancel_url) else {
        return Err(Error::invalid(
            Code::InvalidRedirectUrl,
            "a Stripe payment link needs `success_url` and `cancel_url`",
        ));
    };
    super::card::check_url("success_url", success_url)?;
    super::card::check_url("cancel_url", cancel_url)?;
    let client = stripe_client(engine, workspace).await?;
    // The previous link's page is closed first: one way to pay an invoice at a time.
    if let Some(previous) = engine
        .store()
        .payment_link(&WorkspaceId::from(workspace), &invoice.id)
        .await?
        .filter(|l| l.provider == stripe::NAME)
    {
        client.close_payment_page(&previous.reference).await?;
    }
    let customer =
        super::card::ensure_stripe_customer(engine, &client, workspace, &invoice.customer).await?;
    let key = format!("tollgate:{workspace}:{}:{}", invoice.id, new_id("paylink"));
    let description = format!(
        "Invoice {}",
        crate::billing::documents::invoice_number(&invoice)
    );
    let session = client
        .checkout_payment(&CheckoutPayment {
            idempotency_key: &key,
            workspace,
            invoice: &invoice.id,
            customer: &invoice.customer,
            stripe_customer: &customer.provider_customer,
            amount_minor: remaining,
            currency: &invoice.currency,
            description: &description,
            success_url,
            cancel_url,
        })
        .await?;
    let url = session.url.clone().ok_or_else(|| {
        Error::from(crate::providers::ProviderError::Unreadable {
            provider: stripe::NAME,
            detail: format!("checkout session {} has no url", session.id),
        })
    })?;
    engine
        .store()
        .put_payment_link(&PaymentLinkRecord {
            workspace: workspace.to_owned(),
            invoice: invoice.id.clone(),
            provider: stripe::NAME.to_owned(),
            kind: PaymentLinkKind::Checkout,
            reference: session.id.clone(),
            url: url.clone(),
            created_at: engine.now(),
        })
        .await?;
    link.provider = stripe::NAME.into();
    link.url = Some(url);
    link.reference = Some(session.id);
    Ok(link)
}

/// A charge of `invoice` that waits for the customer's authentication (PaymentIntent
/// `reference`): the authentication page becomes the invoice's link and
/// `payment.action_required` is written, once per PaymentIntent. The invoice stays open; it is
/// not a decline (no dunning step).
pub(crate) async fn action_required(
    engine: &Engine,
    invoice: &InvoiceRecord,
    reference: &str,
    url: Option<String>,
    amount_minor: i64,
) -> AppResult<()> {
    let store = engine.store();
    let ws = WorkspaceId::from(&invoice.workspace);
    let now =
        crate::app::subscriptions::customer_now(engine, &invoice.workspace, &invoice.customer)
            .await?;
    // Once per PaymentIntent, with or without a page: a charge asked again replays the same
    // PaymentIntent (its idempotency key).
    let first = store
        .claim_provider_event(
            &ws,
            stripe::NAME,
            &format!("action_required:{reference}"),
            types::PAYMENT_ACTION_REQUIRED,
            engine.now(),
        )
        .await?;
    if !first {
        return Ok(());
    }
    if let Some(url) = &url {
        store
            .put_payment_link(&PaymentLinkRecord {
                workspace: invoice.workspace.clone(),
                invoice: invoice.id.clone(),
                provider: stripe::NAME.to_owned(),
                kind: PaymentLinkKind::Authenticate,
                reference: reference.to_owned(),
                url: url.clone(),
                created_at: now,
            })
            .await?;
    }
    let event = outbox::event(
        engine,
        &invoice.workspace,
        Some(&invoice.customer),
        types::PAYMENT_ACTION_REQUIRED,
        now,
        json!({
            "invoice": invoice.id,
            "provider": stripe::NAME,
            "reference": reference,
            "url": url,
            "amount_minor": amount_minor,
            "currency": invoice.currency,
        }),
    );
    store.append_events(&ws, &[event]).await?;
    Ok(())
}
