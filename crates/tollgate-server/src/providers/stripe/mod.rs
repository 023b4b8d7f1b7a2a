//! Stripe: a Stripe customer per Tollgate customer, card capture through a Checkout Session in
//! setup mode, finalized invoices charged off-session with a PaymentIntent, refunds, the
//! Billing Portal, and the verification of Stripe's webhook signatures.
//!
//! Requests are form-encoded as Stripe's API wants them, amounts in integer minor units; every
//! POST carries an `Idempotency-Key` (GETs are idempotent by nature and Stripe ignores the
//! header on them), and a call answered 429 or 5xx, or not answered, is tried again with the
//! same key after a pause that doubles (unless Stripe says `Stripe-Should-Retry: false`). The
//! secret key travels only in the `Authorization` header and is never logged. The wire structs
//! in [`wire`] read only the fields Tollgate uses, so they parse Stripe's published sample
//! objects (a test holds them to `fixtures3.json`).

use std::time::Duration;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use sha2_11::Sha256;

pub mod billing;

use super::{
    ChargeOutcome, ChargeRequest, PaymentProvider, PaymentsConfig, ProviderError, RefundOutcome,
    RefundRequest, Refusal, Secret,
};

pub const NAME: &str = "stripe";
pub const API_BASE: &str = "https://api.stripe.com";
/// The Stripe API version every call asks for (`Stripe-Version`), so the shapes Stripe answers
/// do not change when the account's default version is upgraded in the Dashboard. It is the
/// version of the shapes the wire structs below are held to: Stripe's published samples
/// (`fixtures3.json` of stripe/openapi at f6c2a48f, 2026-08-21, whose own `api_version` fields
/// are null) were generated between the releases of `2026-07-29.dahlia` and
/// `2026-08-26.dahlia`. Webhook events are shaped by the endpoint's own version, chosen when
/// the endpoint is made in the Dashboard (docs/PAYMENTS.md: pick this one).
pub const API_VERSION: &str = "2026-07-29.dahlia";

/// Currencies Stripe's API keeps as two-decimal although ISO 4217 (and Tollgate) gives them
/// none: an amount of `100` is one króna or shilling (Stripe's "special cases").
const TWO_DECIMAL_IN_STRIPE: [&str; 2] = ["ISK", "UGX"];
/// Three-decimal currencies Stripe charges only in multiples of 10 of the minor unit.
const THREE_DECIMAL: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];

/// Tollgate's ISO 4217 minor units of `currency` as Stripe's API wants them: ISK and UGX times
/// 100; a three-decimal amount only when its last digit is 0 (Stripe refuses others, and
/// rounding would charge a different amount than the invoice says, so the charge is refused
/// here with the reason). Every other currency unchanged.
pub fn to_stripe_amount(currency: &str, minor: i64) -> Result<i64, ProviderError> {
    let code = currency.to_ascii_uppercase();
    let refuse = |message: String| {
        ProviderError::Refused(Box::new(Refusal {
            provider: NAME,
            status: 400,
            kind: "invalid_request_error".into(),
            code: Some("amount_not_chargeable".into()),
            decline_code: None,
            message,
            payment_intent: None,
        }))
    };
    if TWO_DECIMAL_IN_STRIPE.contains(&code.as_str()) {
        return minor
            .checked_mul(100)
            .ok_or_else(|| refuse(format!("{minor} {code} is beyond Stripe's amounts")));
    }
    if THREE_DECIMAL.contains(&code.as_str()) && minor % 10 != 0 {
        return Err(refuse(format!(
            "Stripe charges {code} only in multiples of 10 of its minor unit; {minor} cannot \
             be charged exactly (collect it manually)"
        )));
    }
    Ok(minor)
}

/// An amount Stripe reports, in Tollgate's minor units (the inverse of [`to_stripe_amount`];
/// a fraction of an ISK or UGX unit, which Stripe no longer takes, is dropped).
pub fn from_stripe_amount(currency: &str, amount: i64) -> i64 {
    if TWO_DECIMAL_IN_STRIPE.contains(&currency.to_ascii_uppercase().as_str()) {
        amount / 100
    } else {
        amount
    }
}

/// What Stripe answers with, as Tollgate reads it.
pub mod wire {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::Value;

    /// The id of a field Stripe answers either as an id or, expanded, as an object.
    pub fn id_of(field: &Option<Value>) -> Option<String> {
        match field {
            Some(Value::String(id)) => Some(id.clone()),
            Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        }
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct Customer {
        pub id: String,
        #[serde(default)]
        pub email: Option<String>,
        #[serde(default)]
        pub metadata: BTreeMap<String, String>,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct CheckoutSession {
        pub id: String,
        /// `payment`, `setup` or `subscription`.
        pub mode: String,
        /// Where the customer goes to enter a card (while the session is open).
        #[serde(default)]
        pub url: Option<String>,
        #[serde(default)]
        pub status: Option<String>,
        #[serde(default)]
        pub customer: Option<Value>,
        #[serde(default)]
        pub setup_intent: Option<Value>,
        /// The payment of a session in payment mode.
        #[serde(default)]
        pub payment_intent: Option<Value>,
        /// `paid`, `unpaid` or `no_payment_required`.
        #[serde(default)]
        pub payment_status: Option<String>,
        #[serde(default)]
        pub amount_total: Option<i64>,
        #[serde(default)]
        pub currency: Option<String>,
        #[serde(default)]
        pub metadata: BTreeMap<String, String>,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct SetupIntent {
        pub id: String,
        pub status: String,
        #[serde(default)]
        pub customer: Option<Value>,
        #[serde(default)]
        pub payment_method: Option<Value>,
        #[serde(default)]
        pub metadata: BTreeMap<String, String>,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct PaymentIntent {
        pub id: String,
        pub status: String,
        /// Minor units.
        pub amount: i64,
        pub currency: String,
        #[serde(default)]
        pub customer: Option<Value>,
        #[serde(default)]
        pub latest_charge: Option<Value>,
        #[serde(default)]
        pub metadata: BTreeMap<String, String>,
        #[serde(default)]
        pub last_payment_error: Option<ApiError>,
        /// What the customer must do (`requires_action`): a `redirect_to_url` holds the page.
        #[serde(default)]
        pub next_action: Option<Value>,
    }

    impl PaymentIntent {
        /// The page where the customer authenticates, when Stripe gives one
        /// (`next_action.redirect_to_url.url`).
        pub fn action_url(&self) -> Option<String> {
            self.next_action
                .as_ref()?
                .get("redirect_to_url")?
                .get("url")?
                .as_str()
                .map(str::to_owned)
        }

        /// `amount` in Tollgate's minor units.
        pub fn amount_minor(&self) -> i64 {
            super::from_stripe_amount(&self.currency, self.amount)
        }
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct Charge {
        pub id: String,
        pub amount: i64,
        pub amount_refunded: i64,
        pub currency: String,
        pub refunded: bool,
        #[serde(default)]
        pub payment_intent: Option<Value>,
        #[serde(default)]
        pub metadata: BTreeMap<String, String>,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct Refund {
        pub id: String,
        pub amount: i64,
        pub currency: String,
        /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
        #[serde(default)]
        pub status: Option<String>,
        #[serde(default)]
        pub charge: Option<Value>,
        #[serde(default)]
        pub payment_intent: Option<Value>,
        /// `tollgate_credit_note` for Tollgate's own refunds.
        #[serde(default)]
        pub metadata: BTreeMap<String, String>,
    }

    impl Refund {
        /// Money given back or on its way (`succeeded`, `pending`, `requires_action`).
        pub fn counts(&self) -> bool {
            !matches!(self.status.as_deref(), Some("failed" | "canceled"))
        }
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct Dispute {
        pub id: String,
        pub amount: i64,
        pub currency: String,
        #[serde(default)]
        pub charge: Option<Value>,
        #[serde(default)]
        pub payment_intent: Option<Value>,
        pub reason: String,
        pub status: String,
    }

    /// A page of a list (`GET /v1/payment_intents`).
    #[derive(Debug, Clone, Deserialize)]
    pub struct List<T> {
        pub data: Vec<T>,
        pub has_more: bool,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct PortalSession {
        pub id: String,
        pub url: String,
    }

    /// A webhook event: `data.object` is read by its `type`.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Event {
        pub id: String,
        #[serde(rename = "type")]
        pub kind: String,
        pub created: i64,
        #[serde(default)]
        pub livemode: bool,
        pub data: EventData,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct EventData {
        pub object: Value,
    }

    /// `{"error": {...}}`, the body of every refusal.
    #[derive(Debug, Clone, Deserialize)]
    pub struct ErrorBody {
        pub error: ApiError,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct ApiError {
        #[serde(rename = "type")]
        pub kind: String,
        #[serde(default)]
        pub code: Option<String>,
        #[serde(default)]
        pub decline_code: Option<String>,
        #[serde(default)]
        pub message: Option<String>,
        #[serde(default)]
        pub payment_intent: Option<Value>,
    }
}

/// A client of one Stripe account.
pub struct Stripe {
    http: reqwest::Client,
    key: Secret,
    config: PaymentsConfig,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("base", &self.config.stripe_api_base)
            .finish_non_exhaustive()
    }
}

fn unreadable(detail: impl std::fmt::Display) -> ProviderError {
    ProviderError::Unreadable {
        provider: NAME,
        detail: detail.to_string(),
    }
}

/// `application/x-www-form-urlencoded`, as Stripe reads it (`metadata[key]=value`).
fn encode_form(pairs: &[(String, String)]) -> String {
    fn encode(text: &str, out: &mut String) {
        for b in text.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    out.push(char::from(b))
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode(k, &mut out);
        out.push('=');
        encode(v, &mut out);
    }
    out
}

fn pair(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

impl Stripe {
    pub fn new(config: &PaymentsConfig, key: Secret) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| ProviderError::Unreachable {
                provider: NAME,
                detail: format!("no HTTP client: {e}"),
            })?;
        Ok(Stripe {
            http,
            key,
            config: config.clone(),
        })
    }

    /// One call, tried again on 429, 5xx and no answer; a 2xx body parsed as `T`, a refusal as
    /// [`ProviderError::Refused`].
    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        form: Option<(&[(String, String)], &str)>,
    ) -> Result<T, ProviderError> {
        let url = format!(
            "{}{path}",
            self.config.stripe_api_base.trim_end_matches('/')
        );
        let attempts = self.config.max_attempts.max(1);
        let mut pause = self.config.backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            let request = match form {
                Some((pairs, key)) => self
                    .http
                    .post(&url)
                    .header("Idempotency-Key", key)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(encode_form(pairs)),
                None => self.http.get(&url),
            };
            let answer = request
                .header("Stripe-Version", API_VERSION)
                .bearer_auth(self.key.expose())
                .send()
                .await;
            let retry = match answer {
                Err(e) => {
                    last = format!("no answer from {path}: {}", e.without_url());
                    true
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let should_retry = response
                        .headers()
                        .get("Stripe-Should-Retry")
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v == "true");
                    let body = response
                        .bytes()
                        .await
                        .map_err(|e| unreadable(e.without_url()))?;
                    if (200..300).contains(&status) {
                        return serde_json::from_slice(&body)
                            .map_err(|e| unreadable(format!("{path}: {e}")));
                    }
                    let transient = status == 429 || status >= 500;
                    if !transient || should_retry == Some(false) {
                        return Err(refusal(status, &body));
                    }
                    last = format!("{path} answered {status}");
                    should_retry != Some(false)
                }
            };
            if !retry || attempt == attempts {
                break;
            }
            tracing::debug!(%path, attempt, "stripe call failed; trying again");
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2).min(Duration::from_secs(30));
        }
        Err(ProviderError::Unreachable {
            provider: NAME,
            detail: last,
        })
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        pairs: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<T, ProviderError> {
        self.call(path, Some((pairs, idempotency_key))).await
    }

    /// The Stripe customer of Tollgate customer `customer` (created once per key).
    pub async fn create_customer(
        &self,
        workspace: &str,
        customer: &str,
        email: Option<&str>,
        name: Option<&str>,
    ) -> Result<wire::Customer, ProviderError> {
        let mut form = vec![
            pair("metadata[tollgate_workspace]", workspace),
            pair("metadata[tollgate_customer]", customer),
        ];
        if let Some(email) = email {
            form.push(pair("email", email));
        }
        if let Some(name) = name {
            form.push(pair("name", name));
        }
        let key = format!("tollgate:{workspace}:{customer}:customer");
        self.post("/v1/customers", &form, &key).await
    }

    /// A Checkout Session in setup mode: the customer saves a card at its `url`.
    pub async fn checkout_setup(
        &self,
        setup: &CheckoutSetup<'_>,
    ) -> Result<wire::CheckoutSession, ProviderError> {
        let form = vec![
            pair("mode", "setup"),
            pair("customer", setup.stripe_customer),
            pair("payment_method_types[0]", "card"),
            pair("success_url", setup.success_url),
            pair("cancel_url", setup.cancel_url),
            pair("metadata[tollgate_customer]", setup.customer),
            pair(
                "setup_intent_data[metadata][tollgate_customer]",
                setup.customer,
            ),
        ];
        self.post("/v1/checkout/sessions", &form, setup.idempotency_key)
            .await
    }

    /// A Checkout Session in payment mode for what an invoice still owes: the customer pays
    /// it at its `url` (authenticating there when the bank asks). The PaymentIntent carries
    /// the invoice in its metadata, as an off-session charge does.
    pub async fn checkout_payment(
        &self,
        payment: &CheckoutPayment<'_>,
    ) -> Result<wire::CheckoutSession, ProviderError> {
        let amount = to_stripe_amount(payment.currency, payment.amount_minor)?;
        let mut form = vec![
            pair("mode", "payment"),
            pair("customer", payment.stripe_customer),
            pair("line_items[0][quantity]", "1"),
            pair(
                "line_items[0][price_data][currency]",
                payment.currency.to_ascii_lowercase(),
            ),
            pair("line_items[0][price_data][unit_amount]", amount.to_string()),
            pair(
                "line_items[0][price_data][product_data][name]",
                payment.description,
            ),
            pair("success_url", payment.success_url),
            pair("cancel_url", payment.cancel_url),
        ];
        for prefix in ["metadata", "payment_intent_data[metadata]"] {
            form.extend([
                pair(&format!("{prefix}[tollgate_workspace]"), payment.workspace),
                pair(&format!("{prefix}[tollgate_invoice]"), payment.invoice),
                pair(&format!("{prefix}[tollgate_customer]"), payment.customer),
            ]);
        }
        self.post("/v1/checkout/sessions", &form, payment.idempotency_key)
            .await
    }

    /// Closes what an invoice's previous payment link opened, so the customer cannot pay
    /// twice: an open Checkout Session (`cs_...`) expired, a PaymentIntent waiting for
    /// authentication (`pi_...`) canceled. One already completed, expired or canceled is
    /// left as it is (Stripe refuses the call with 400).
    pub async fn close_payment_page(&self, reference: &str) -> Result<(), ProviderError> {
        let id = path_segment(reference)?;
        let path = if id.starts_with("cs_") {
            format!("/v1/checkout/sessions/{id}/expire")
        } else {
            format!("/v1/payment_intents/{id}/cancel")
        };
        let key = format!("tollgate:close:{id}");
        match self.post::<serde_json::Value>(&path, &[], &key).await {
            Ok(_) => Ok(()),
            Err(ProviderError::Refused(r)) if r.status == 400 => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn setup_intent(&self, id: &str) -> Result<wire::SetupIntent, ProviderError> {
        self.call(&format!("/v1/setup_intents/{}", path_segment(id)?), None)
            .await
    }

    /// The account's PaymentIntents, newest first, at most `max_pages` pages of 100
    /// (reconciliation).
    pub async fn payment_intents(
        &self,
        max_pages: usize,
    ) -> Result<Vec<wire::PaymentIntent>, ProviderError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..max_pages {
            let path = match &after {
                Some(id) => format!(
                    "/v1/payment_intents?limit=100&starting_after={}",
                    path_segment(id)?
                ),
                None => "/v1/payment_intents?limit=100".to_owned(),
            };
            let page: wire::List<wire::PaymentIntent> = self.call(&path, None).await?;
            after = page.data.last().map(|p| p.id.clone());
            all.extend(page.data);
            if !page.has_more || after.is_none() {
                break;
            }
        }
        Ok(all)
    }

    /// The account's Refunds, newest first (of one PaymentIntent when `payment_intent` is
    /// given), at most `max_pages` pages of 100.
    pub async fn refunds(
        &self,
        payment_intent: Option<&str>,
        max_pages: usize,
    ) -> Result<Vec<wire::Refund>, ProviderError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..max_pages {
            let mut query = vec![pair("limit", "100")];
            if let Some(pi) = payment_intent {
                query.push(pair("payment_intent", path_segment(pi)?));
            }
            if let Some(id) = &after {
                query.push(pair("starting_after", path_segment(id)?));
            }
            let path = format!("/v1/refunds?{}", encode_form(&query));
            let page: wire::List<wire::Refund> = self.call(&path, None).await?;
            after = page.data.last().map(|r| r.id.clone());
            all.extend(page.data);
            if !page.has_more || after.is_none() {
                break;
            }
        }
        Ok(all)
    }

    /// Makes `payment_method` the customer's default for invoices.
    pub async fn set_default_payment_method(
        &self,
        stripe_customer: &str,
        payment_method: &str,
    ) -> Result<wire::Customer, ProviderError> {
        let form = vec![pair(
            "invoice_settings[default_payment_method]",
            payment_method,
        )];
        let key = format!("tollgate:{stripe_customer}:default:{payment_method}");
        let path = format!("/v1/customers/{}", path_segment(stripe_customer)?);
        self.post(&path, &form, &key).await
    }

    /// A Billing Portal session where the customer updates its card.
    pub async fn portal_session(
        &self,
        stripe_customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> Result<wire::PortalSession, ProviderError> {
        let form = vec![
            pair("customer", stripe_customer),
            pair("return_url", return_url),
        ];
        self.post("/v1/billing_portal/sessions", &form, idempotency_key)
            .await
    }
}

/// What a payment-mode Checkout Session needs.
#[derive(Debug, Clone)]
pub struct CheckoutPayment<'a> {
    pub idempotency_key: &'a str,
    pub workspace: &'a str,
    pub invoice: &'a str,
    pub customer: &'a str,
    pub stripe_customer: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    /// The line the customer sees (`Invoice INV-000042`).
    pub description: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

/// What a setup-mode Checkout Session needs.
#[derive(Debug, Clone)]
pub struct CheckoutSetup<'a> {
    pub idempotency_key: &'a str,
    pub customer: &'a str,
    pub stripe_customer: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

/// An id put in a path: Stripe's ids are letters, digits and `_`.
fn path_segment(id: &str) -> Result<&str, ProviderError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(unreadable(format!("{id:?} is not a Stripe id")))
    }
}

fn refusal(status: u16, body: &[u8]) -> ProviderError {
    let refusal = match serde_json::from_slice::<wire::ErrorBody>(body) {
        Ok(wire::ErrorBody { error }) => Refusal {
            provider: NAME,
            status,
            payment_intent: wire::id_of(&error.payment_intent),
            message: error
                .message
                .unwrap_or_else(|| format!("{} ({})", error.kind, status)),
            kind: error.kind,
            code: error.code,
            decline_code: error.decline_code,
        },
        Err(_) => Refusal {
            provider: NAME,
            status,
            kind: "unknown".into(),
            code: None,
            decline_code: None,
            message: format!("answered {status}"),
            payment_intent: None,
        },
    };
    ProviderError::Refused(Box::new(refusal))
}

impl PaymentProvider for Stripe {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn charge(&self, r: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        let form = vec![
            pair(
                "amount",
                to_stripe_amount(&r.currency, r.amount_minor)?.to_string(),
            ),
            pair("currency", r.currency.to_ascii_lowercase()),
            pair("customer", r.provider_customer.as_str()),
            pair("payment_method", r.payment_method.as_str()),
            pair("off_session", "true"),
            pair("confirm", "true"),
            pair("description", format!("Invoice {}", r.invoice)),
            pair("metadata[tollgate_workspace]", r.workspace.as_str()),
            pair("metadata[tollgate_invoice]", r.invoice.as_str()),
            pair("metadata[tollgate_customer]", r.customer.as_str()),
        ];
        match self
            .post::<wire::PaymentIntent>("/v1/payment_intents", &form, &r.idempotency_key)
            .await
        {
            Ok(intent) if intent.status == "succeeded" => Ok(ChargeOutcome::Succeeded {
                reference: intent.id,
            }),
            Ok(intent) if intent.status == "requires_action" => Ok(ChargeOutcome::RequiresAction {
                url: intent.action_url(),
                reference: intent.id,
            }),
            Ok(intent) => {
                // Another state that took no money: a failed attempt for dunning.
                let error = intent.last_payment_error.clone();
                Ok(ChargeOutcome::Declined {
                    reference: Some(intent.id),
                    code: error
                        .as_ref()
                        .and_then(|e| e.decline_code.clone().or(e.code.clone()))
                        .unwrap_or(intent.status),
                    message: error
                        .and_then(|e| e.message)
                        .unwrap_or_else(|| "the payment needs the customer's action".into()),
                })
            }
            // An off-session charge the bank wants authenticated: Stripe declines it with
            // `authentication_required` and the PaymentIntent waits for the customer.
            Err(ProviderError::Refused(refusal))
                if refusal.kind == "card_error"
                    && refusal.code.as_deref() == Some("authentication_required")
                    && refusal.payment_intent.is_some() =>
            {
                Ok(ChargeOutcome::RequiresAction {
                    reference: refusal.payment_intent.unwrap_or_default(),
                    url: None,
                })
            }
            Err(ProviderError::Refused(refusal)) if refusal.kind == "card_error" => {
                let Refusal {
                    code,
                    decline_code,
                    message,
                    payment_intent,
                    ..
                } = *refusal;
                Ok(ChargeOutcome::Declined {
                    reference: payment_intent,
                    code: decline_code
                        .or(code)
                        .unwrap_or_else(|| "card_declined".into()),
                    message,
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn refund(&self, r: &RefundRequest) -> Result<RefundOutcome, ProviderError> {
        let form = vec![
            pair("payment_intent", r.reference.as_str()),
            pair(
                "amount",
                to_stripe_amount(&r.currency, r.amount_minor)?.to_string(),
            ),
            pair("metadata[tollgate_credit_note]", r.credit_note.as_str()),
        ];
        let refund: wire::Refund = self.post("/v1/refunds", &form, &r.idempotency_key).await?;
        match refund.status.as_deref() {
            Some("failed" | "canceled") => Err(ProviderError::Refused(Box::new(Refusal {
                provider: NAME,
                status: 200,
                kind: "refund_failed".into(),
                code: refund.status.clone(),
                decline_code: None,
                message: format!("refund {} {}", refund.id, refund.status.unwrap_or_default()),
                payment_intent: Some(r.reference.clone()),
            }))),
            status => Ok(RefundOutcome::Refunded {
                pending: status != Some("succeeded"),
                reference: refund.id,
            }),
        }
    }
}

/// Why a webhook's `Stripe-Signature` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing or has no `t=` and `v1=`")]
    Malformed,
    #[error("no v1 signature matches the endpoint's secret")]
    Mismatch,
    #[error("the signature's timestamp is outside the tolerance (a stale or replayed request)")]
    Stale,
}

/// Verifies `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`: some `v1` must be
/// HMAC-SHA256(secret, "<t>.<payload>") under one of `secrets` (compared in constant time),
/// and `t` within `tolerance` of `now` (unix seconds).
pub fn verify_signature(
    payload: &[u8],
    header: &str,
    secrets: &[&str],
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let Some(t) = timestamp else {
        return Err(SignatureError::Malformed);
    };
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let signed_matches = |secret: &str| {
        signatures.iter().any(|sig| {
            let Ok(bytes) = hex::decode(sig) else {
                return false;
            };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
                return false;
            };
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(payload);
            mac.verify_slice(&bytes).is_ok()
        })
    };
    if !secrets.iter().any(|s| signed_matches(s)) {
        return Err(SignatureError::Mismatch);
    }
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(t) > tolerance.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_follow_stripes_special_cases() {
        // ISK and UGX: no minor unit in ISO 4217, two decimals in Stripe's API.
        assert_eq!(to_stripe_amount("ISK", 5_000).unwrap(), 500_000);
        assert_eq!(to_stripe_amount("ugx", 12).unwrap(), 1_200);
        assert_eq!(from_stripe_amount("isk", 500_000), 5_000);
        // Zero-decimal (JPY) and two-decimal (USD, HUF) currencies pass unchanged.
        assert_eq!(to_stripe_amount("JPY", 500).unwrap(), 500);
        assert_eq!(to_stripe_amount("USD", 1_099).unwrap(), 1_099);
        assert_eq!(from_stripe_amount("usd", 1_099), 1_099);
        // Three decimals: only multiples of 10 can be charged; others are refused, not rounded.
        assert_eq!(to_stripe_amount("KWD", 5_120).unwrap(), 5_120);
        match to_stripe_amount("KWD", 5_124) {
            Err(ProviderError::Refused(r)) => {
                assert_eq!(r.code.as_deref(), Some("amount_not_chargeable"));
                assert!(r.message.contains("multiples of 10"), "{}", r.message);
            }
            other => panic!("{other:?}"),
        }
        assert!(to_stripe_amount("ISK", i64::MAX / 10).is_err());
    }

    fn sign(secret: &str, t: i64, payload: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(payload);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn signatures_verify_under_any_listed_secret_within_the_tolerance() {
        let payload = br#"{"id":"evt_1"}"#;
        let t = 1_700_000_000;
        let five = Duration::from_secs(300);
        let good = sign("whsec_new", t, payload);
        let old = sign("whsec_old", t, payload);
        let header = format!("t={t},v1={old},v1={good}");
        assert_eq!(
            verify_signature(payload, &header, &["whsec_new"], t + 10, five),
            Ok(())
        );
        assert_eq!(
            verify_signature(payload, &header, &["whsec_other"], t, five),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"{}", &header, &["whsec_new"], t, five),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(payload, &header, &["whsec_new"], t + 301, five),
            Err(SignatureError::Stale)
        );
        for bad in ["", "v1=abc", &format!("t={t}"), "t=x,v1=00"] {
            assert!(
                verify_signature(payload, bad, &["whsec_new"], t, five).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn forms_are_encoded_as_stripe_reads_them() {
        let form = vec![
            pair("metadata[tollgate_customer]", "a b&c"),
            pair("amount", "1099"),
        ];
        assert_eq!(
            encode_form(&form),
            "metadata%5Btollgate_customer%5D=a+b%26c&amount=1099"
        );
    }
}
