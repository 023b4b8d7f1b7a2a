//! Payments (docs/PAYMENTS.md): the workspace's provider settings, card capture, the collection
//! of finalized invoices, payments recorded by hand, dunning, refunds and Stripe's webhooks.
//! One file per use case; the providers themselves (`crate::providers`) make the calls.
//!
//! Every invoice can be paid by hand (the `manual` provider: a bank transfer recorded with its
//! reference). An invoice of a customer with a saved Stripe card is also charged automatically
//! when it is finalized: a `invoice.collect` job, then the catalog's dunning when the card is
//! declined. A payment is recorded once per provider reference, so a replayed webhook, a retried
//! job or a retried request never counts one twice. Reconciliation compares what Tollgate
//! recorded with Stripe's PaymentIntents.

mod card;
mod collect;
mod dunning;
mod meter_push;
mod payment_link;
mod reconcile;
mod record;
mod refund;
mod settings;
mod stripe_events;
mod stripe_sync;

pub use card::{CardSetup, CheckoutStarted, checkout_setup, portal};
pub use collect::{
    CollectOutcome, collect, collects_automatically, enqueue_collection, enqueue_if_carded,
};
pub use meter_push::{PushOutcome, push_usage};
pub use payment_link::{PaymentLink, PaymentLinkRequest, create_payment_link, payment_url};
pub use reconcile::{Difference, Reconciliation, reconcile};
pub use record::{RecordPayment, list_payments, record_manual_payment};
pub use refund::refund_credit_note;
pub use settings::{PaymentSettingsView, SetPaymentSettings, get_settings, set_settings};
pub use stripe_events::{StripeWebhook, WebhookOutcome, handle_stripe_webhook};
pub use stripe_sync::{SyncAction, SyncReport, meter_event_name, stripe_sync};

use serde_json::{Value, json};
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::jobs::JobRecord;
use tollgate_store::outbox::OutboxEvent;
use tollgate_store::payments::{PaymentRecord, ProviderCustomerRecord};

use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::providers::stripe::{self, Stripe};
use crate::providers::{PaymentsConfig, Secret};

/// The job kinds of payments (run by `crate::jobs`).
pub mod kinds {
    /// Charge a finalized invoice with the customer's saved method.
    pub const COLLECT: &str = "invoice.collect";
    /// A dunning retry of a declined invoice.
    pub const RETRY: &str = "invoice.payment_retry";
    /// Push a workspace's new usage to Stripe's meters (Stripe as the biller).
    pub const METER_PUSH: &str = "stripe.meter_push";
    /// Try a failed refund again.
    pub const REFUND_RETRY: &str = "refund.retry";
    pub const ALL: [&str; 4] = [COLLECT, RETRY, METER_PUSH, REFUND_RETRY];
}

/// Runs a payment job: the result to record with it (its events are written by the use case).
pub(crate) async fn run_job(
    engine: &Engine,
    job: &JobRecord,
) -> AppResult<(Value, Vec<OutboxEvent>)> {
    if job.kind == kinds::METER_PUSH {
        return meter_push::run_job(engine, job).await;
    }
    if job.kind == kinds::REFUND_RETRY {
        return refund::retry_job(engine, job).await;
    }
    let Some(invoice) = job.payload.get("invoice").and_then(Value::as_str) else {
        return Err(Error::invalid(
            Code::ValidationFailed,
            format!("job {} has no `invoice` in its payload", job.id),
        ));
    };
    let outcome = collect::collect_for_job(engine, &job.workspace, invoice).await?;
    Ok((json!({"invoice": invoice, "outcome": outcome}), Vec::new()))
}

/// The sealing context of a workspace's provider secret: a sealed value copied to another
/// workspace or field does not open.
fn context(workspace: &str, field: &str) -> String {
    format!("{workspace}/payments/{field}")
}

const SECRET_KEY: &str = "stripe_secret_key";
const WEBHOOK_SECRET: &str = "stripe_webhook_secret";

fn master_key(engine: &Engine) -> AppResult<&crate::sealing::MasterKey> {
    engine.master_key().ok_or_else(|| {
        Error::unavailable(
            Code::MasterKeyMissing,
            "provider secrets are sealed under the operator's master key: start the server with \
             TOLLGATE_MASTER_KEY or TOLLGATE_MASTER_KEY_FILE",
        )
    })
}

fn not_configured(what: &str) -> Error {
    Error::conflict(
        Code::PaymentProviderMissing,
        format!(
            "Stripe is not set up for this workspace: PUT /v1/payment_settings with its {what}"
        ),
    )
}

/// Opens a sealed secret of `workspace`.
fn open_secret(engine: &Engine, workspace: &str, field: &str, sealed: &str) -> AppResult<Secret> {
    let bytes = master_key(engine)?
        .open(sealed, &context(workspace, field))
        .map_err(|e| Error::internal(format!("opening the {field} of {workspace}: {e}")))?;
    String::from_utf8(bytes)
        .map(Secret::new)
        .map_err(|_| Error::internal(format!("the {field} of {workspace} is not text")))
}

/// The Stripe client of `workspace`, with its secret key opened.
async fn stripe_client(engine: &Engine, workspace: &str) -> AppResult<Stripe> {
    let settings = engine
        .store()
        .payment_settings(&WorkspaceId::from(workspace))
        .await?;
    let sealed = settings
        .and_then(|s| s.stripe_secret_key)
        .ok_or_else(|| not_configured("`stripe_secret_key`"))?;
    let key = open_secret(engine, workspace, SECRET_KEY, &sealed)?;
    let config: &PaymentsConfig = engine.payments();
    Ok(Stripe::new(config, key)?)
}

/// Whether Stripe is set up for `workspace` (its secret key stored).
async fn stripe_configured(engine: &Engine, workspace: &str) -> AppResult<bool> {
    Ok(engine
        .store()
        .payment_settings(&WorkspaceId::from(workspace))
        .await?
        .is_some_and(|s| s.stripe_secret_key.is_some()))
}

/// Whether Stripe Billing charges this workspace's customers (Stripe as the biller): then
/// Tollgate charges no invoice itself (docs/PAYMENTS.md).
async fn stripe_is_biller(engine: &Engine, workspace: &str) -> AppResult<bool> {
    Ok(engine
        .store()
        .stripe_billing(&WorkspaceId::from(workspace))
        .await?
        .is_some_and(|b| b.enabled))
}

fn biller_refusal(workspace: &str) -> Error {
    Error::conflict(
        Code::StripeIsBiller,
        format!(
            "Stripe Billing charges the customers of {workspace} (`stripe_billing: true`): \
             Tollgate charges no invoice itself, so nothing is billed twice"
        ),
    )
}

async fn stripe_link(
    engine: &Engine,
    workspace: &str,
    customer: &str,
) -> AppResult<Option<ProviderCustomerRecord>> {
    Ok(engine
        .store()
        .provider_customer(
            &WorkspaceId::from(workspace),
            &CustomerId::from(customer),
            stripe::NAME,
        )
        .await?)
}

/// What a `payment.*` domain event says about a payment.
fn payment_data(p: &PaymentRecord) -> Value {
    json!({
        "payment": p.id,
        "invoice": p.invoice,
        "provider": p.provider,
        "status": p.status.as_str(),
        "amount_minor": p.amount_minor,
        "currency": p.currency,
        "reference": p.reference,
        "method": p.method,
        "failure_code": p.failure_code,
        "failure_message": p.failure_message,
    })
}
