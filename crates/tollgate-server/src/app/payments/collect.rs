//! Automatic collection: a finalized invoice of a customer with a saved Stripe card is charged
//! off-session. Finalizing enqueues an `invoice.collect` job (so a provider that cannot be
//! reached is tried again by the scheduler, and a bill run never waits on Stripe); the job, a
//! dunning retry and `POST /v1/invoices/{id}/collect` all charge through [`collect`].

use serde::Serialize;
use serde_json::json;
use tollgate_core::catalog::Collection;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::billing::{InvoiceRecord, InvoiceStatus};
use tollgate_store::jobs::NewJob;
use tollgate_store::payments::{DunningRecord, PaymentRecord};

use super::record::{invoice_of, paid_so_far, payment_arrived};
use super::{
    biller_refusal, kinds, stripe_client, stripe_configured, stripe_is_biller, stripe_link,
};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;
use crate::providers::{ChargeOutcome, ChargeRequest, PaymentProvider, stripe};

/// What a collection did.
#[derive(Debug, Clone, Serialize)]
pub struct CollectOutcome {
    /// `paid`, `declined`, `requires_action` (the customer authenticates at the invoice's
    /// `payment_url`), `already_paid` or `nothing_due`.
    pub result: String,
    pub payment: Option<PaymentRecord>,
    /// The invoice's dunning after a decline.
    pub dunning: Option<DunningRecord>,
}

fn outcome(result: &str) -> CollectOutcome {
    CollectOutcome {
        result: result.to_owned(),
        payment: None,
        dunning: None,
    }
}

/// Enqueues the charge of a just-finalized invoice when it can be charged automatically
/// (something is due, Stripe is set up, the plan is not `collection: send_invoice`, the
/// customer saved a card). Idempotent: the job's key
/// names the invoice.
pub async fn enqueue_collection(engine: &Engine, invoice: &InvoiceRecord) -> AppResult<()> {
    if !collects_automatically(engine, &invoice.workspace).await? {
        return Ok(());
    }
    enqueue_if_carded(engine, invoice).await
}

/// Whether invoices of `workspace` can be charged automatically at all (Stripe set up): a bill
/// run asks once, then [`enqueue_if_carded`] for each invoice it writes.
/// Never while Stripe is the biller (Stripe Billing charges then).
pub async fn collects_automatically(engine: &Engine, workspace: &str) -> AppResult<bool> {
    Ok(stripe_configured(engine, workspace).await? && !stripe_is_biller(engine, workspace).await?)
}

/// [`enqueue_collection`] once Stripe is known to be set up.
pub async fn enqueue_if_carded(engine: &Engine, invoice: &InvoiceRecord) -> AppResult<()> {
    if invoice.status != InvoiceStatus::Open || invoice.amount_due_minor <= 0 {
        return Ok(());
    }
    // A plan billed `collection: send_invoice` is paid by hand (Lexecon's annual plans).
    if let Some(sub) = &invoice.subscription
        && let Some(sub) = engine
            .store()
            .get_subscription(&WorkspaceId::from(&invoice.workspace), sub)
            .await?
    {
        let catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
        let by_invoice = catalog
            .catalog
            .plans
            .get(&sub.plan)
            .is_some_and(|p| p.collection == Collection::SendInvoice);
        if by_invoice {
            return Ok(());
        }
    }
    let has_card = stripe_link(engine, &invoice.workspace, &invoice.customer)
        .await?
        .is_some_and(|l| l.default_payment_method.is_some());
    if !has_card {
        return Ok(());
    }
    enqueue(engine, invoice, kinds::COLLECT, None).await
}

/// Enqueues a payment job of `kind` for `invoice` on its customer's clock, due at `at` (now
/// when `None`).
pub(crate) async fn enqueue(
    engine: &Engine,
    invoice: &InvoiceRecord,
    kind: &str,
    at: Option<(jiff::Timestamp, i64)>,
) -> AppResult<()> {
    let store = engine.store();
    let customer = store
        .get_customer(&WorkspaceId::from(&invoice.workspace), &invoice.customer)
        .await?
        .ok_or_else(|| Error::not_found("customer", &invoice.customer))?;
    let now = engine
        .now_for(&invoice.workspace, customer.test_clock.as_deref())
        .await?;
    let (due_at, attempt) = at.unwrap_or((now, 0));
    let job = NewJob {
        workspace: invoice.workspace.clone(),
        id: new_id("job"),
        kind: kind.to_owned(),
        key: format!("{}:{kind}:{attempt}", invoice.id),
        customer: Some(invoice.customer.clone()),
        test_clock: customer.test_clock.clone(),
        due_at,
        payload: json!({"invoice": invoice.id, "subscription": invoice.subscription}),
        max_attempts: crate::app::jobs::MAX_ATTEMPTS,
        created_at: engine.now(),
    };
    store.enqueue_job(&job).await?;
    Ok(())
}

/// A job's charge: an invoice no longer open (paid by hand meanwhile, voided) is left alone.
pub(crate) async fn collect_for_job(
    engine: &Engine,
    workspace: &str,
    invoice: &str,
) -> AppResult<CollectOutcome> {
    let record = invoice_of(engine, workspace, invoice).await?;
    if stripe_is_biller(engine, workspace).await? {
        return Ok(outcome("stripe_is_biller"));
    }
    match record.status {
        InvoiceStatus::Open | InvoiceStatus::Uncollectible => {
            collect(engine, workspace, invoice).await
        }
        InvoiceStatus::Paid => Ok(outcome("already_paid")),
        _ => Ok(outcome("not_open")),
    }
}

/// Charges what `invoice` still owes to its customer's saved card, off-session. A decline
/// starts (or continues) the invoice's dunning; a charge Stripe cannot take now (unreachable)
/// is an error, and nothing is recorded.
pub async fn collect(engine: &Engine, workspace: &str, invoice: &str) -> AppResult<CollectOutcome> {
    let invoice = invoice_of(engine, workspace, invoice).await?;
    if invoice.status == InvoiceStatus::Paid {
        return Ok(outcome("already_paid"));
    }
    if stripe_is_biller(engine, workspace).await? {
        return Err(biller_refusal(workspace));
    }
    if !matches!(
        invoice.status,
        InvoiceStatus::Open | InvoiceStatus::Uncollectible
    ) {
        return Err(Error::conflict(
            Code::InvoiceNotOpen,
            format!("invoice {:?} is {}", invoice.id, invoice.status.as_str()),
        ));
    }
    let remaining = invoice
        .amount_due_minor
        .checked_sub(paid_so_far(engine, &invoice).await?)
        .ok_or_else(|| Error::internal("an invoice's payments overflow"))?;
    if remaining <= 0 {
        return Ok(outcome("nothing_due"));
    }
    let client = stripe_client(engine, workspace).await?;
    let link = stripe_link(engine, workspace, &invoice.customer).await?;
    let Some((link, method)) = link.and_then(|l| {
        let method = l.default_payment_method.clone()?;
        Some((l, method))
    }) else {
        return Err(Error::conflict(
            Code::NoPaymentMethod,
            format!(
                "customer {:?} has no saved card: start a card setup first",
                invoice.customer
            ),
        ));
    };
    // One idempotency key per attempt: a retried call (or job) charges once, a dunning retry
    // charges afresh.
    let failures = engine
        .store()
        .dunning(&WorkspaceId::from(workspace), &invoice.id)
        .await?
        .map_or(0, |d| d.failures);
    let request = ChargeRequest {
        idempotency_key: format!("tollgate:{workspace}:{}:charge:{failures}", invoice.id),
        workspace: workspace.to_owned(),
        invoice: invoice.id.clone(),
        customer: invoice.customer.clone(),
        provider_customer: link.provider_customer.clone(),
        payment_method: method,
        amount_minor: remaining,
        currency: invoice.currency.clone(),
    };
    match client.charge(&request).await? {
        ChargeOutcome::Succeeded { reference } => {
            let (payment, _) = payment_arrived(
                engine,
                &invoice,
                stripe::NAME,
                &reference,
                remaining,
                Some("card"),
            )
            .await?;
            Ok(CollectOutcome {
                result: "paid".into(),
                payment: Some(payment),
                dunning: None,
            })
        }
        ChargeOutcome::Declined {
            reference,
            code,
            message,
        } => {
            let reference =
                reference.unwrap_or_else(|| format!("{}:attempt:{failures}", invoice.id));
            let failure = super::dunning::Failure {
                provider: stripe::NAME,
                reference,
                amount_minor: remaining,
                code,
                message,
            };
            let (payment, dunning) = super::dunning::failed(engine, &invoice, failure).await?;
            Ok(CollectOutcome {
                result: "declined".into(),
                payment: Some(payment),
                dunning,
            })
        }
        ChargeOutcome::RequiresAction { reference, url } => {
            super::payment_link::action_required(engine, &invoice, &reference, url, remaining)
                .await?;
            Ok(outcome("requires_action"))
        }
        ChargeOutcome::Manual => Ok(outcome("nothing_due")),
    }
}
