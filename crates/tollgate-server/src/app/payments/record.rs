//! A payment arrives: recorded once per provider reference, and, when it covers what the
//! invoice owes, the invoice paid in the same transaction (then what a paid invoice does: the
//! referrer's reward, the licenses, the end of a dunning). The operator records manual payments
//! (a bank transfer, in full or in parts) with their reference; Stripe's arrive from a charge or
//! a webhook.

use rust_decimal::Decimal;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_core::money::{Currency, Money};
use tollgate_store::billing::{InvoiceRecord, InvoiceStatus};
use tollgate_store::payments::{
    DunningRecord, PaymentOutcome, PaymentRecord, PaymentStatus, RefundRecord, Settle,
};

use super::payment_data;
use crate::app::outbox::{self, types};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;
use crate::providers::manual;

/// What the invoice's succeeded payments add up to, in minor units.
pub(crate) async fn paid_so_far(engine: &Engine, invoice: &InvoiceRecord) -> AppResult<i64> {
    let payments = engine
        .store()
        .list_payments(&WorkspaceId::from(&invoice.workspace), &invoice.id)
        .await?;
    payments
        .iter()
        .filter(|p| p.status == PaymentStatus::Succeeded)
        .try_fold(0i64, |sum, p| sum.checked_add(p.amount_minor))
        .ok_or_else(|| Error::internal("payments of an invoice overflow i64"))
}

pub(crate) async fn invoice_of(
    engine: &Engine,
    workspace: &str,
    id: &str,
) -> AppResult<InvoiceRecord> {
    engine
        .store()
        .get_invoice(&WorkspaceId::from(workspace), id)
        .await?
        .ok_or_else(|| Error::not_found("invoice", id))
}

fn payable(invoice: &InvoiceRecord) -> AppResult<()> {
    match invoice.status {
        InvoiceStatus::Open | InvoiceStatus::Uncollectible => Ok(()),
        other => Err(Error::conflict(
            Code::InvoiceNotOpen,
            format!(
                "invoice {:?} is {}: only an open or uncollectible invoice takes a payment",
                invoice.id,
                other.as_str()
            ),
        )),
    }
}

/// Money received for `invoice`: recorded (once per `provider` and `reference`), the invoice
/// paid if this covers it. Answers the payment and whether it was recorded before.
pub(crate) async fn payment_arrived(
    engine: &Engine,
    invoice: &InvoiceRecord,
    provider: &str,
    reference: &str,
    amount_minor: i64,
    method: Option<&str>,
) -> AppResult<(PaymentRecord, bool)> {
    let store = engine.store();
    let ws = WorkspaceId::from(&invoice.workspace);
    if let Some(existing) = store.payment_by_reference(&ws, provider, reference).await? {
        return Ok((existing, true));
    }
    payable(invoice)?;
    let now =
        crate::app::subscriptions::customer_now(engine, &invoice.workspace, &invoice.customer)
            .await?;
    let payment = PaymentRecord {
        workspace: invoice.workspace.clone(),
        id: new_id("pay"),
        invoice: invoice.id.clone(),
        customer: invoice.customer.clone(),
        provider: provider.to_owned(),
        status: PaymentStatus::Succeeded,
        amount_minor,
        currency: invoice.currency.clone(),
        reference: reference.to_owned(),
        method: method.map(str::to_owned),
        failure_code: None,
        failure_message: None,
        created_at: now,
    };
    let paid_view = InvoiceRecord {
        status: InvoiceStatus::Paid,
        paid_at: Some(now),
        ..invoice.clone()
    };
    let event = |kind: &str, data| {
        outbox::event(
            engine,
            &invoice.workspace,
            Some(&invoice.customer),
            kind,
            now,
            data,
        )
    };
    let settle = Settle {
        amount_due_minor: invoice.amount_due_minor,
        from: invoice.status,
        at: now,
        events: vec![event(
            types::INVOICE_PAID,
            crate::app::invoices::event_data(&paid_view),
        )],
    };
    let succeeded = event(types::PAYMENT_SUCCEEDED, payment_data(&payment));
    match store
        .record_payment(&payment, Some(&settle), &[succeeded])
        .await
        .map_err(|e| match e {
            tollgate_store::StoreError::Invalid { code, detail } => Error::conflict(code, detail),
            other => other.into(),
        })? {
        PaymentOutcome::Duplicate(existing) => Ok((existing, true)),
        PaymentOutcome::Recorded { payment, paid } => {
            if let Some(paid) = paid {
                // What `invoices::pay` does after an invoice is paid.
                crate::app::referrals::reward_if_paying(engine, &paid.workspace, &paid).await?;
                crate::app::licenses::on_paid(engine, &paid, now).await?;
                super::dunning::recovered(engine, &paid).await?;
            }
            Ok((payment, false))
        }
    }
}

/// A payment the operator records by hand.
#[derive(Debug, Clone)]
pub struct RecordPayment {
    pub workspace: String,
    pub invoice: String,
    /// In major units; `None`: what the invoice still owes.
    pub amount: Option<Decimal>,
    /// The transfer's reference, as on the bank statement (unique in the workspace).
    pub reference: String,
    /// `bank_transfer` (the default), `check`, `cash` or `other`.
    pub method: Option<String>,
}

/// Records a manual payment: the payment, and the invoice (paid when this completes it).
pub async fn record_manual_payment(
    engine: &Engine,
    input: RecordPayment,
) -> AppResult<(PaymentRecord, InvoiceRecord)> {
    if let Some(problem) = manual::reference_problem(&input.reference) {
        return Err(Error::invalid(Code::InvalidPaymentReference, problem));
    }
    let method = input.method.as_deref().unwrap_or("bank_transfer");
    if !manual::METHODS.contains(&method) {
        return Err(Error::invalid(
            Code::InvalidRequest,
            format!("`method` must be one of {}", manual::METHODS.join(", ")),
        ));
    }
    let invoice = invoice_of(engine, &input.workspace, &input.invoice).await?;
    let store = engine.store();
    let ws = WorkspaceId::from(&input.workspace);
    if store
        .payment_by_reference(&ws, manual::NAME, &input.reference)
        .await?
        .is_some()
    {
        return Err(Error::conflict(
            Code::AlreadyExists,
            format!(
                "a payment with reference {:?} is recorded already",
                input.reference
            ),
        ));
    }
    payable(&invoice)?;
    let currency: Currency = invoice.currency.parse().map_err(Error::internal)?;
    let remaining = invoice
        .amount_due_minor
        .checked_sub(paid_so_far(engine, &invoice).await?)
        .ok_or_else(|| Error::internal("an invoice's payments overflow"))?;
    let amount_minor = match input.amount {
        None => remaining,
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
    if amount_minor <= 0 {
        return Err(Error::invalid(
            Code::InvalidAmount,
            "the invoice owes nothing more",
        ));
    }
    if amount_minor > remaining {
        return Err(Error::conflict(
            Code::PaymentExceedsAmountDue,
            format!(
                "the invoice owes {} {}; record at most that",
                Decimal::new(remaining, currency.minor_digits()),
                invoice.currency
            ),
        ));
    }
    let (payment, _) = payment_arrived(
        engine,
        &invoice,
        manual::NAME,
        &input.reference,
        amount_minor,
        Some(method),
    )
    .await?;
    let invoice = invoice_of(engine, &input.workspace, &input.invoice).await?;
    Ok((payment, invoice))
}

/// An invoice's payments (oldest first), refunds and dunning.
pub async fn list_payments(
    engine: &Engine,
    workspace: &str,
    invoice: &str,
) -> AppResult<(
    InvoiceRecord,
    Vec<PaymentRecord>,
    Vec<RefundRecord>,
    Option<DunningRecord>,
)> {
    let invoice = invoice_of(engine, workspace, invoice).await?;
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let payments = store.list_payments(&ws, &invoice.id).await?;
    let refunds = store.list_refunds(&ws, &invoice.id).await?;
    let dunning = store.dunning(&ws, &invoice.id).await?;
    Ok((invoice, payments, refunds, dunning))
}
