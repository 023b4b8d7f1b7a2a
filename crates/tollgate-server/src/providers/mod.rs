//! Payment providers: the one place Tollgate calls a payment service (docs/PAYMENTS.md).
//!
//! A provider takes money for an invoice ([`PaymentProvider::charge`]) and gives it back for a
//! credit note ([`PaymentProvider::refund`]). Two exist, one file each with its wire structs
//! beside their conversions:
//! - [`manual`]: money arrives outside Tollgate (a bank transfer) and the operator records it;
//!   charging and refunding are the operator's to do, so they answer what to tell them;
//! - [`stripe`]: customers, card capture (Checkout in setup mode), off-session PaymentIntents,
//!   refunds, the Billing Portal and the verification of Stripe's webhook signatures.
//!
//! The use cases in `app/payments/` pick the provider and record what it answered; nothing
//! here reads or writes the store. Amounts are integer minor units, never floats.

pub mod manual;
pub mod stripe;

use std::future::Future;
use std::time::Duration;

use tollgate_core::code::Code;

/// How the server talks to payment providers (`ServerConfig::payments`).
#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    /// Where Stripe's API answers: `https://api.stripe.com` (tests point it at a local server).
    pub stripe_api_base: String,
    /// The longest one call may take.
    pub timeout: Duration,
    /// Attempts of one call when the answer is 429, a 5xx or no answer (the first included).
    pub max_attempts: u32,
    /// The pause before the second attempt, doubled before each next one.
    pub backoff: Duration,
    /// How far a webhook's signed timestamp may be from now (Stripe's libraries: 5 minutes).
    pub webhook_tolerance: Duration,
    /// Stripe as the biller: how often usage is pushed to Stripe's meters.
    pub meter_push_interval: Duration,
    /// Usage received less than this long ago waits for the next push (an ingest transaction
    /// still open would otherwise be passed by the cursor).
    pub meter_settle: Duration,
    /// Stored events read per batch of a push.
    pub meter_batch: i64,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            stripe_api_base: stripe::API_BASE.to_owned(),
            timeout: Duration::from_secs(30),
            max_attempts: 4,
            backoff: Duration::from_millis(500),
            webhook_tolerance: Duration::from_secs(300),
            meter_push_interval: Duration::from_secs(60),
            meter_settle: Duration::from_secs(30),
            meter_batch: 100,
        }
    }
}

/// A provider secret in clear, in memory only: its `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Take `amount_minor` for `invoice` from a saved payment method, off-session.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    /// The same key for a retried call, so the provider charges once.
    pub idempotency_key: String,
    pub workspace: String,
    pub invoice: String,
    /// Tollgate's customer id (sent as metadata).
    pub customer: String,
    /// The provider's customer and saved method.
    pub provider_customer: String,
    pub payment_method: String,
    pub amount_minor: i64,
    /// ISO 4217, as Tollgate writes it (`USD`).
    pub currency: String,
}

/// What a charge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money is taken; `reference` is the provider's payment (a PaymentIntent id).
    Succeeded { reference: String },
    /// The bank or the provider refused (`card_declined`, `insufficient_funds`, ...).
    Declined {
        reference: Option<String>,
        code: String,
        message: String,
    },
    /// The bank asks the customer to authenticate the payment (3-D Secure): nothing is taken
    /// yet, and it is not a decline; `url` is where the customer authenticates, when the
    /// provider gives one.
    RequiresAction {
        reference: String,
        url: Option<String>,
    },
    /// Nothing to charge automatically: the operator records the payment when it arrives.
    Manual,
}

/// Give back `amount_minor` of a payment.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub idempotency_key: String,
    /// The payment's reference (a PaymentIntent id).
    pub reference: String,
    pub amount_minor: i64,
    /// ISO 4217 code of the amount (Stripe wants some currencies in other units).
    pub currency: String,
    pub credit_note: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Given back (or on its way: `pending`), as the provider's refund `reference`.
    Refunded { reference: String, pending: bool },
    /// The operator sends the money back (a bank transfer).
    Manual,
}

/// Why a provider call did not give an answer the use case can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("{provider} could not be reached: {detail}")]
    Unreachable {
        provider: &'static str,
        detail: String,
    },
    #[error("{} refused the request ({}): {}", .0.provider, .0.status, .0.message)]
    Refused(Box<Refusal>),
    #[error("{provider} answered what Tollgate cannot read: {detail}")]
    Unreadable {
        provider: &'static str,
        detail: String,
    },
}

/// What a provider said when it refused a call.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub provider: &'static str,
    pub status: u16,
    /// The provider's error type (`card_error`, `invalid_request_error`).
    pub kind: String,
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: String,
    /// The PaymentIntent a refused charge left behind.
    pub payment_intent: Option<String>,
}

impl From<ProviderError> for crate::error::Error {
    fn from(e: ProviderError) -> Self {
        tracing::warn!(error = %e, "payment provider call failed");
        crate::error::Error::unavailable(Code::PaymentProviderError, e.to_string())
    }
}

/// The interface both providers implement.
pub trait PaymentProvider {
    /// `manual` or `stripe`, as stored with each payment.
    fn name(&self) -> &'static str;
    fn charge(
        &self,
        request: &ChargeRequest,
    ) -> impl Future<Output = Result<ChargeOutcome, ProviderError>> + Send;
    fn refund(
        &self,
        request: &RefundRequest,
    ) -> impl Future<Output = Result<RefundOutcome, ProviderError>> + Send;
}

/// The provider of a payment, chosen by the use cases.
pub enum Provider {
    Manual(manual::Manual),
    Stripe(Box<stripe::Stripe>),
}

impl PaymentProvider for Provider {
    fn name(&self) -> &'static str {
        match self {
            Provider::Manual(p) => p.name(),
            Provider::Stripe(p) => p.name(),
        }
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        match self {
            Provider::Manual(p) => p.charge(request).await,
            Provider::Stripe(p) => p.charge(request).await,
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, ProviderError> {
        match self {
            Provider::Manual(p) => p.refund(request).await,
            Provider::Stripe(p) => p.refund(request).await,
        }
    }
}
