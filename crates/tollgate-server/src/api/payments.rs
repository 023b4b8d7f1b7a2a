//! Payments (docs/PAYMENTS.md): the workspace's provider settings, payments recorded by hand,
//! automatic collection on demand, card capture and the Billing Portal: thin handlers over
//! `app::payments`. Stripe's webhooks are `stripe_webhooks.rs`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tollgate_core::money::Currency;
use tollgate_store::payments::{DunningRecord, PaymentRecord, RefundRecord};

use crate::api::body::JsonBody;
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::app::payments as app;
use crate::auth::Principal;
use crate::providers::Secret;
use crate::state::AppState;

/// A change of the payment settings: an absent field is kept, an empty string removes it.
/// Secrets are sealed under the master key and never answered back.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentSettingsIn {
    /// The Stripe secret key (`sk_live_...`, `sk_test_...` or a restricted `rk_...`).
    pub stripe_secret_key: Option<String>,
    /// The signing secret of the Stripe webhook endpoint (`whsec_...`).
    pub stripe_webhook_secret: Option<String>,
    /// How to pay by hand (bank details), for invoices paid by transfer.
    pub manual_instructions: Option<String>,
    /// Stripe as the biller: Stripe Billing charges the customers from the catalog synced to it
    /// (`POST /v1/payments/stripe_sync`) and the usage pushed to its meters; Tollgate charges
    /// no invoice itself (`stripe_is_biller`).
    pub stripe_billing: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentIn {
    /// A decimal string in the invoice's currency; default: everything the invoice still owes.
    #[schema(value_type = Option<String>)]
    pub amount: Option<Decimal>,
    /// The transfer's reference, as on the bank statement (1-128 characters, once per workspace).
    pub reference: String,
    /// `bank_transfer` (default), `check`, `cash` or `other`.
    pub method: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PaymentOut {
    pub id: String,
    pub invoice: String,
    /// `manual` or `stripe`.
    pub provider: String,
    /// `succeeded` or `failed`.
    pub status: String,
    /// A decimal string.
    pub amount: String,
    pub currency: String,
    /// The bank reference, or the Stripe PaymentIntent.
    pub reference: String,
    pub method: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

fn decimal(minor: i64, currency: &str) -> String {
    let digits = currency.parse::<Currency>().map_or(2, |c| c.minor_digits());
    Decimal::new(minor, digits).to_string()
}

impl From<PaymentRecord> for PaymentOut {
    fn from(p: PaymentRecord) -> Self {
        PaymentOut {
            amount: decimal(p.amount_minor, &p.currency),
            id: p.id,
            invoice: p.invoice,
            provider: p.provider,
            status: p.status.as_str().to_owned(),
            currency: p.currency,
            reference: p.reference,
            method: p.method,
            failure_code: p.failure_code,
            failure_message: p.failure_message,
            created_at: p.created_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RefundOut {
    pub id: String,
    pub credit_note: String,
    pub payment: String,
    pub provider: String,
    /// `succeeded`, `pending` or `failed`.
    pub status: String,
    pub amount: String,
    pub currency: String,
    pub provider_refund: Option<String>,
    pub failure_message: Option<String>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

impl From<RefundRecord> for RefundOut {
    fn from(r: RefundRecord) -> Self {
        RefundOut {
            amount: decimal(r.amount_minor, &r.currency),
            id: r.id,
            credit_note: r.credit_note,
            payment: r.payment,
            provider: r.provider,
            status: r.status.as_str().to_owned(),
            currency: r.currency,
            provider_refund: r.provider_refund,
            failure_message: r.failure_message,
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DunningOut {
    /// `retrying`, `exhausted` or `recovered`.
    pub status: String,
    /// Declined attempts so far.
    pub failures: i64,
    #[schema(value_type = Option<String>)]
    pub next_retry_at: Option<Timestamp>,
    /// Whether the dunning suspended the customer.
    pub suspended: bool,
    #[schema(value_type = String)]
    pub started_at: Timestamp,
}

impl From<DunningRecord> for DunningOut {
    fn from(d: DunningRecord) -> Self {
        DunningOut {
            status: d.status.as_str().to_owned(),
            failures: d.failures,
            next_retry_at: d.next_retry_at,
            suspended: d.suspended,
            started_at: d.started_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InvoicePaymentsOut {
    pub invoice: String,
    /// The invoice's status after the call.
    pub invoice_status: String,
    /// What the invoice still owes, a decimal string.
    pub amount_remaining: String,
    pub data: Vec<PaymentOut>,
    pub refunds: Vec<RefundOut>,
    pub dunning: Option<DunningOut>,
}

async fn invoice_payments(
    state: &AppState,
    workspace: &str,
    invoice: &str,
) -> ApiResult<InvoicePaymentsOut> {
    let (invoice, payments, refunds, dunning) =
        app::list_payments(&state.engine, workspace, invoice).await?;
    let paid: i64 = payments
        .iter()
        .filter(|p| p.status == tollgate_store::payments::PaymentStatus::Succeeded)
        .map(|p| p.amount_minor)
        .sum();
    let remaining = match invoice.status {
        tollgate_store::billing::InvoiceStatus::Open
        | tollgate_store::billing::InvoiceStatus::Uncollectible => {
            (invoice.amount_due_minor - paid).max(0)
        }
        _ => 0,
    };
    Ok(InvoicePaymentsOut {
        amount_remaining: decimal(remaining, &invoice.currency),
        invoice_status: invoice.status.as_str().to_owned(),
        invoice: invoice.id,
        data: payments.into_iter().map(Into::into).collect(),
        refunds: refunds.into_iter().map(Into::into).collect(),
        dunning: dunning.map(Into::into),
    })
}

/// Set the payment settings
///
/// Stripe's secret key and webhook secret are sealed under the master key at rest; answers
/// only say whether each is set (and the key's last four characters).
#[utoipa::path(put, path = "/v1/payment_settings", operation_id = "payment_settings_set", request_body = PaymentSettingsIn,
    responses((status = 200, description = "The settings, without secrets", body = app::PaymentSettingsView),
        (status = 400, description = "A key of the wrong shape (`invalid_provider_settings`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No master key (`master_key_missing`)", body = Problem, content_type = "application/problem+json")))]
pub async fn set_settings(
    State(state): State<AppState>,
    caller: Principal,
    JsonBody(body): JsonBody<PaymentSettingsIn>,
) -> ApiResult<Json<app::PaymentSettingsView>> {
    let workspace = caller.require_admin()?.to_owned();
    let view = app::set_settings(
        &state.engine,
        app::SetPaymentSettings {
            workspace,
            stripe_secret_key: body.stripe_secret_key.map(Secret::new),
            stripe_webhook_secret: body.stripe_webhook_secret.map(Secret::new),
            manual_instructions: body.manual_instructions,
            stripe_billing: body.stripe_billing,
        },
    )
    .await?;
    Ok(Json(view))
}

/// Get the payment settings (never a secret)
#[utoipa::path(get, path = "/v1/payment_settings", operation_id = "payment_settings_get",
    responses((status = 200, description = "OK", body = app::PaymentSettingsView)))]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<Json<app::PaymentSettingsView>> {
    let workspace = caller.require_admin()?;
    Ok(Json(app::get_settings(&state.engine, workspace).await?))
}

/// Record a payment received by hand
///
/// A bank transfer (or cheque, cash) with its reference, in full or in part; the invoice is
/// paid when its payments cover what it owes.
#[utoipa::path(post, path = "/v1/invoices/{id}/payments", operation_id = "invoices_record_payment", params(("id" = String, Path)), request_body = PaymentIn,
    responses((status = 201, description = "Recorded; the invoice's payments", body = InvoicePaymentsOut),
        (status = 400, description = "A bad reference or amount (`invalid_payment_reference`, `invalid_amount`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "More than is owed, an invoice not open, a reference recorded before (`payment_exceeds_amount_due`, `invoice_not_open`, `already_exists`)", body = Problem, content_type = "application/problem+json")))]
pub async fn record(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PaymentIn>,
) -> ApiResult<(StatusCode, Json<InvoicePaymentsOut>)> {
    let workspace = caller.require_admin()?.to_owned();
    app::record_manual_payment(
        &state.engine,
        app::RecordPayment {
            workspace: workspace.clone(),
            invoice: id.clone(),
            amount: body.amount,
            reference: body.reference,
            method: body.method,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(invoice_payments(&state, &workspace, &id).await?),
    ))
}

/// List an invoice's payments, refunds and dunning
#[utoipa::path(get, path = "/v1/invoices/{id}/payments", operation_id = "invoices_list_payments", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = InvoicePaymentsOut), (status = 404, description = "No such invoice", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<InvoicePaymentsOut>> {
    let workspace = caller.require_admin()?;
    Ok(Json(invoice_payments(&state, workspace, &id).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CollectOut {
    /// `paid`, `declined`, `already_paid` or `nothing_due`.
    pub result: String,
    /// The attempt: succeeded, or failed with its reason.
    pub payment: Option<PaymentOut>,
    /// The invoice's dunning after a decline.
    pub dunning: Option<DunningOut>,
}

/// Charge an invoice now
///
/// What the invoice still owes, from the customer's saved card, off-session (what finalizing
/// does by itself through a job). A decline is an answer (`result: declined`) and starts or
/// continues the dunning.
#[utoipa::path(post, path = "/v1/invoices/{id}/collect", operation_id = "invoices_collect", params(("id" = String, Path)),
    responses((status = 200, description = "What the charge did", body = CollectOut),
        (status = 409, description = "Stripe not set up, no saved card, an invoice not open (`payment_provider_missing`, `no_payment_method`, `invoice_not_open`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stripe unreachable (`payment_provider_error`)", body = Problem, content_type = "application/problem+json")))]
pub async fn collect(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<CollectOut>> {
    let workspace = caller.require_admin()?;
    let outcome = app::collect(&state.engine, workspace, &id).await?;
    Ok(Json(CollectOut {
        result: outcome.result,
        payment: outcome.payment.map(Into::into),
        dunning: outcome.dunning.map(Into::into),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutIn {
    /// Where Stripe sends the customer once the card is saved.
    pub success_url: String,
    /// Where Stripe sends the customer if it gives up.
    pub cancel_url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckoutOut {
    /// The Checkout Session (`cs_...`).
    pub id: String,
    /// Send the customer here to save a card.
    pub url: String,
    /// The customer's Stripe customer (`cus_...`).
    pub stripe_customer: String,
}

/// Start a card setup
///
/// A Stripe Checkout Session in setup mode for the customer (its Stripe customer made once).
/// When the customer completes it, Stripe's webhook saves the card as the default and the
/// customer has a payment method.
#[utoipa::path(post, path = "/v1/customers/{id}/payment_methods/checkout", operation_id = "customers_card_checkout", params(("id" = String, Path)), request_body = CheckoutIn,
    responses((status = 201, description = "The session and its URL", body = CheckoutOut),
        (status = 400, description = "A bad redirect URL (`invalid_redirect_url`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Stripe not set up (`payment_provider_missing`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stripe unreachable (`payment_provider_error`)", body = Problem, content_type = "application/problem+json")))]
pub async fn checkout(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    JsonBody(body): JsonBody<CheckoutIn>,
) -> ApiResult<(StatusCode, Json<CheckoutOut>)> {
    let workspace = caller
        .require_customer(&customer)
        .map_err(|_| ApiError::not_found("customer", &customer))?
        .to_owned();
    let started = app::checkout_setup(
        &state.engine,
        app::CardSetup {
            workspace,
            customer,
            success_url: body.success_url,
            cancel_url: body.cancel_url,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CheckoutOut {
            id: started.session,
            url: started.url,
            stripe_customer: started.stripe_customer,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalIn {
    /// Where the portal sends the customer back.
    pub return_url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PortalOut {
    pub url: String,
}

/// Open the Stripe Billing Portal for a customer (to replace its card)
#[utoipa::path(post, path = "/v1/customers/{id}/billing_portal", operation_id = "customers_billing_portal", params(("id" = String, Path)), request_body = PortalIn,
    responses((status = 201, description = "The portal session's URL", body = PortalOut),
        (status = 409, description = "Stripe not set up, or no Stripe customer yet (`payment_provider_missing`, `no_payment_method`)", body = Problem, content_type = "application/problem+json")))]
pub async fn portal(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    JsonBody(body): JsonBody<PortalIn>,
) -> ApiResult<(StatusCode, Json<PortalOut>)> {
    let workspace = caller
        .require_customer(&customer)
        .map_err(|_| ApiError::not_found("customer", &customer))?;
    let url = app::portal(&state.engine, workspace, &customer, &body.return_url).await?;
    Ok((StatusCode::CREATED, Json(PortalOut { url })))
}

/// Compare Tollgate's card payments with Stripe's
///
/// Read-only: the differences between the payments Tollgate recorded from Stripe and the
/// PaymentIntents Stripe holds for this workspace (`missing_in_tollgate`, `missing_at_provider`,
/// `amount_mismatch`).
#[utoipa::path(get, path = "/v1/payments/reconciliation", operation_id = "payments_reconcile",
    responses((status = 200, description = "The differences (empty when both agree)", body = app::Reconciliation),
        (status = 409, description = "Stripe not set up (`payment_provider_missing`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stripe unreachable (`payment_provider_error`)", body = Problem, content_type = "application/problem+json")))]
pub async fn reconcile(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<Json<app::Reconciliation>> {
    let workspace = caller.require_admin()?;
    Ok(Json(app::reconcile(&state.engine, workspace).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct StripeSyncQuery {
    /// Say what would be created or updated at Stripe without writing anything there.
    #[serde(default)]
    pub dry_run: bool,
}

/// Sync the catalog to Stripe Billing
///
/// Meters, Products and Prices from the workspace's current catalog (Stripe as the biller):
/// found again on a second sync, a changed price replaced by a new Price (the old one
/// deactivated). With `dry_run=true`, only Stripe's read endpoints are called.
#[utoipa::path(post, path = "/v1/payments/stripe_sync", operation_id = "payments_stripe_sync", params(StripeSyncQuery),
    responses((status = 200, description = "What was (or would be) done, per Stripe object", body = app::SyncReport),
        (status = 409, description = "Stripe not set up, or no catalog (`payment_provider_missing`, `no_catalog`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stripe unreachable or refusing (`payment_provider_error`)", body = Problem, content_type = "application/problem+json")))]
pub async fn stripe_sync(
    State(state): State<AppState>,
    caller: Principal,
    axum::extract::Query(query): axum::extract::Query<StripeSyncQuery>,
) -> ApiResult<Json<app::SyncReport>> {
    let workspace = caller.require_admin()?;
    Ok(Json(
        app::stripe_sync(&state.engine, workspace, query.dry_run).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentLinkIn {
    /// Where Stripe sends the customer once the invoice is paid (required with Stripe).
    pub success_url: Option<String>,
    /// Where Stripe sends the customer if it gives up (required with Stripe).
    pub cancel_url: Option<String>,
}

/// Make a payment link for an open invoice
///
/// With Stripe, a Checkout Session in payment mode for what the invoice still owes: send the
/// customer to `url`; Stripe's `checkout.session.completed` then marks the invoice paid (once).
/// Without Stripe, the workspace's manual payment instructions. The link is stored with the
/// invoice and shown as its `payment_url` while it is open.
#[utoipa::path(post, path = "/v1/invoices/{id}/payment_link", operation_id = "invoices_payment_link", params(("id" = String, Path)), request_body = PaymentLinkIn,
    responses((status = 201, description = "Where the customer pays", body = app::PaymentLink),
        (status = 400, description = "Missing or bad redirect URLs (`invalid_redirect_url`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An invoice not open or owing nothing, nothing set up, Stripe the biller (`invoice_not_open`, `payment_provider_missing`, `stripe_is_biller`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stripe unreachable (`payment_provider_error`)", body = Problem, content_type = "application/problem+json")))]
pub async fn payment_link(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PaymentLinkIn>,
) -> ApiResult<(StatusCode, Json<app::PaymentLink>)> {
    let workspace = caller.require_admin()?.to_owned();
    let link = app::create_payment_link(
        &state.engine,
        app::PaymentLinkRequest {
            workspace,
            invoice: id,
            success_url: body.success_url,
            cancel_url: body.cancel_url,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(link)))
}
