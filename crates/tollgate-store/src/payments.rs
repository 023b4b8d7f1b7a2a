//! Payments (docs/PAYMENTS.md): the workspace's provider settings, the provider's customer of
//! each Tollgate customer, every payment attempt, the provider events handled, the dunning of
//! unpaid invoices and the refunds made for credit notes.
//!
//! What must happen once is held by a key: a payment's `(provider, reference)` (a Stripe
//! PaymentIntent id, a bank transfer's reference), so a replayed webhook or a retried request
//! finds the payment already recorded and changes nothing; a provider event's id; a refund's
//! `(credit note, payment)`. A payment that covers what the invoice still owes marks the invoice
//! paid in the same transaction, with its events. Secrets arrive here sealed (the server seals
//! them under the master key); the store never sees them in clear.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use crate::backend::{Backend, Conn, args, run_all, run_execute, run_optional};
use crate::billing::{InvoiceRecord, InvoiceStatus};
use crate::codec::{Columns, insert_error, invoice};
use crate::outbox::{OutboxEvent, append};
use crate::{StoreError, StoreResult};

/// A workspace's payment settings. `stripe_*` secrets are sealed (base64 of nonce and
/// ciphertext); `stripe_key_hint` is the key's last four characters, for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSettingsRecord {
    pub workspace: String,
    pub stripe_secret_key: Option<String>,
    pub stripe_key_hint: Option<String>,
    pub stripe_webhook_secret: Option<String>,
    /// Payment instructions printed for manual payment (bank details).
    pub manual_instructions: Option<String>,
    pub updated_at: Timestamp,
}

/// The provider's customer for a Tollgate customer (`cus_...` at Stripe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCustomerRecord {
    pub workspace: String,
    pub customer: String,
    pub provider: String,
    pub provider_customer: String,
    /// The saved method charged off-session (`pm_...`).
    pub default_payment_method: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Succeeded,
    Failed,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
        }
    }
}

/// One payment attempt on an invoice: money received (`succeeded`) or a charge refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub workspace: String,
    pub id: String,
    pub invoice: String,
    pub customer: String,
    /// `manual` or `stripe`.
    pub provider: String,
    pub status: PaymentStatus,
    pub amount_minor: i64,
    pub currency: String,
    /// Unique per provider: the bank transfer's reference, the PaymentIntent id.
    pub reference: String,
    /// `bank_transfer`, `card`, ...
    pub method: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// On the customer's clock.
    pub created_at: Timestamp,
}

/// Mark the invoice paid if this payment completes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Settle {
    /// What the invoice owes in all (its `amount_due_minor`).
    pub amount_due_minor: i64,
    /// The status it is in now (`open` or `uncollectible`).
    pub from: InvoiceStatus,
    pub at: Timestamp,
    /// Written only when the invoice becomes paid (`invoice.paid`).
    pub events: Vec<OutboxEvent>,
}

/// What recording a payment did.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentOutcome {
    /// Stored; the invoice when this payment made it paid.
    Recorded {
        payment: PaymentRecord,
        paid: Option<Box<InvoiceRecord>>,
    },
    /// A payment with the same provider and reference exists: it, and nothing written.
    Duplicate(PaymentRecord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DunningStatus {
    /// Retries are scheduled.
    Retrying,
    /// Every retry failed; the catalog's `then` was applied.
    Exhausted,
    /// A payment succeeded.
    Recovered,
}

impl DunningStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DunningStatus::Retrying => "retrying",
            DunningStatus::Exhausted => "exhausted",
            DunningStatus::Recovered => "recovered",
        }
    }

    fn parse(s: &str) -> StoreResult<DunningStatus> {
        [
            DunningStatus::Retrying,
            DunningStatus::Exhausted,
            DunningStatus::Recovered,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown dunning status {s:?}")))
    }
}

/// The dunning of one unpaid invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningRecord {
    pub workspace: String,
    pub invoice: String,
    pub customer: String,
    pub subscription: Option<String>,
    pub status: DunningStatus,
    /// Failed attempts so far (the first charge included).
    pub failures: i64,
    pub next_retry_at: Option<Timestamp>,
    /// Whether the dunning suspended the customer (a recovery lifts it).
    pub suspended: bool,
    pub started_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Succeeded,
    Pending,
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Pending => "pending",
            RefundStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> StoreResult<RefundStatus> {
        [
            RefundStatus::Succeeded,
            RefundStatus::Pending,
            RefundStatus::Failed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown refund status {s:?}")))
    }
}

/// Money given back for a credit note, from one payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    pub workspace: String,
    pub id: String,
    pub credit_note: String,
    pub invoice: String,
    pub payment: String,
    pub provider: String,
    pub status: RefundStatus,
    pub amount_minor: i64,
    pub currency: String,
    /// The provider's refund (`re_...`).
    pub provider_refund: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: Timestamp,
}

/// Stripe as the biller of a workspace (Stripe Billing charges its customers; Tollgate charges
/// no invoice itself), and the cursor of the usage pushed to Stripe's meters: the
/// `(received_at, id)` of the last stored event handled. Made when the mode is first switched
/// on, with the cursor at that time: usage received from then on is pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeBillingRecord {
    pub workspace: String,
    pub enabled: bool,
    pub cursor_received_at: Timestamp,
    pub cursor_event: String,
    /// Meter events pushed so far.
    pub pushed: i64,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentLinkKind {
    /// A Checkout Session in payment mode: the customer pays the invoice there.
    Checkout,
    /// The page where the customer authenticates a payment (3-D Secure).
    Authenticate,
}

impl PaymentLinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentLinkKind::Checkout => "checkout",
            PaymentLinkKind::Authenticate => "authenticate",
        }
    }

    fn parse(s: &str) -> StoreResult<PaymentLinkKind> {
        match s {
            "checkout" => Ok(PaymentLinkKind::Checkout),
            "authenticate" => Ok(PaymentLinkKind::Authenticate),
            other => Err(StoreError::Corrupt(format!(
                "unknown payment link kind {other:?}"
            ))),
        }
    }
}

/// Where the customer pays an open invoice (one per invoice, replaced by a newer one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentLinkRecord {
    pub workspace: String,
    pub invoice: String,
    pub provider: String,
    pub kind: PaymentLinkKind,
    /// The provider's object behind the page (`cs_...`, `pi_...`).
    pub reference: String,
    pub url: String,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait PaymentStore: Send + Sync {
    async fn put_payment_settings(&self, settings: &PaymentSettingsRecord) -> StoreResult<()>;
    async fn payment_settings(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<PaymentSettingsRecord>>;

    /// Links a customer to the provider's customer; when one is linked already, that one is
    /// kept and answered (two racing requests end with one provider customer).
    async fn link_provider_customer(
        &self,
        link: &ProviderCustomerRecord,
    ) -> StoreResult<ProviderCustomerRecord>;
    async fn provider_customer(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        provider: &str,
    ) -> StoreResult<Option<ProviderCustomerRecord>>;
    async fn provider_customer_by_ref(
        &self,
        workspace: &WorkspaceId,
        provider: &str,
        provider_customer: &str,
    ) -> StoreResult<Option<ProviderCustomerRecord>>;
    /// Saves the default payment method and sets the customer's `has_payment_method`, in one
    /// transaction; the link answered, `NotFound` without one.
    async fn set_default_payment_method(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        provider: &str,
        payment_method: &str,
        at: Timestamp,
    ) -> StoreResult<ProviderCustomerRecord>;

    /// Records a payment with its `events`. A succeeded payment may not take what the invoice's
    /// succeeded payments add up to beyond `settle.amount_due_minor`
    /// (`payment_exceeds_amount_due`); reaching it marks the invoice paid with `settle.events`.
    async fn record_payment(
        &self,
        payment: &PaymentRecord,
        settle: Option<&Settle>,
        events: &[OutboxEvent],
    ) -> StoreResult<PaymentOutcome>;
    /// An invoice's payments, oldest first.
    async fn list_payments(
        &self,
        workspace: &WorkspaceId,
        invoice: &str,
    ) -> StoreResult<Vec<PaymentRecord>>;
    async fn payment_by_reference(
        &self,
        workspace: &WorkspaceId,
        provider: &str,
        reference: &str,
    ) -> StoreResult<Option<PaymentRecord>>;
    /// Every payment of `provider` in the workspace, oldest first (reconciliation).
    async fn provider_payments(
        &self,
        workspace: &WorkspaceId,
        provider: &str,
    ) -> StoreResult<Vec<PaymentRecord>>;

    /// Claims a provider event: `true` the first time, `false` when it was claimed before.
    async fn claim_provider_event(
        &self,
        workspace: &WorkspaceId,
        provider: &str,
        event_id: &str,
        event_type: &str,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// Forgets a claim whose handling failed, so the provider's retry is handled.
    async fn release_provider_event(
        &self,
        workspace: &WorkspaceId,
        provider: &str,
        event_id: &str,
    ) -> StoreResult<()>;

    async fn dunning(
        &self,
        workspace: &WorkspaceId,
        invoice: &str,
    ) -> StoreResult<Option<DunningRecord>>;
    /// Writes the dunning of an invoice (inserted or replaced) with its events.
    async fn put_dunning(&self, dunning: &DunningRecord, events: &[OutboxEvent])
    -> StoreResult<()>;

    /// Stores a refund with its events; a second refund of the same credit note and payment is
    /// `AlreadyExists`.
    async fn insert_refund(&self, refund: &RefundRecord, events: &[OutboxEvent])
    -> StoreResult<()>;
    async fn list_refunds(
        &self,
        workspace: &WorkspaceId,
        invoice: &str,
    ) -> StoreResult<Vec<RefundRecord>>;

    /// Every refund of `provider` in the workspace, oldest first (reconciliation).
    async fn provider_refunds(
        &self,
        workspace: &WorkspaceId,
        provider: &str,
    ) -> StoreResult<Vec<RefundRecord>>;
    async fn get_refund(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<RefundRecord>>;
    /// A retry of a `failed` refund: its status, provider refund and failure replaced, with
    /// `events`, in one transaction. `Conflict` when the refund is no longer `failed` (another
    /// retry got there first), `NotFound` without it.
    async fn retry_refund(&self, refund: &RefundRecord, events: &[OutboxEvent]) -> StoreResult<()>;

    async fn stripe_billing(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<StripeBillingRecord>>;
    /// Switches Stripe-as-the-biller on or off; the first time, the push cursor starts at `at`
    /// (a later switch keeps it). The record answered.
    async fn set_stripe_biller(
        &self,
        workspace: &WorkspaceId,
        enabled: bool,
        at: Timestamp,
    ) -> StoreResult<StripeBillingRecord>;
    /// Usage events after the cursor `(received_at, id)` and received at `until` or before, in
    /// that order, at most `limit`.
    async fn usage_events_after(
        &self,
        workspace: &WorkspaceId,
        after: (Timestamp, &str),
        until: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<crate::EventRecord>>;
    /// Moves the push cursor from `from` to `to`, adding `pushed`; `false` (nothing written)
    /// when the cursor is no longer at `from` (another pass moved it).
    async fn advance_meter_cursor(
        &self,
        workspace: &WorkspaceId,
        from: (Timestamp, &str),
        to: (Timestamp, &str),
        pushed: i64,
        at: Timestamp,
    ) -> StoreResult<bool>;

    /// Stores an invoice's payment link, replacing the one it had.
    async fn put_payment_link(&self, link: &PaymentLinkRecord) -> StoreResult<()>;
    async fn payment_link(
        &self,
        workspace: &WorkspaceId,
        invoice: &str,
    ) -> StoreResult<Option<PaymentLinkRecord>>;
}

fn settings(r: &impl Columns) -> StoreResult<PaymentSettingsRecord> {
    Ok(PaymentSettingsRecord {
        workspace: r.text("workspace")?,
        stripe_secret_key: r.opt_text("stripe_secret_key")?,
        stripe_key_hint: r.opt_text("stripe_key_hint")?,
        stripe_webhook_secret: r.opt_text("stripe_webhook_secret")?,
        manual_instructions: r.opt_text("manual_instructions")?,
        updated_at: r.time("updated_at")?,
    })
}

fn provider_customer(r: &impl Columns) -> StoreResult<ProviderCustomerRecord> {
    Ok(ProviderCustomerRecord {
        workspace: r.text("workspace")?,
        customer: r.text("customer")?,
        provider: r.text("provider")?,
        provider_customer: r.text("provider_customer")?,
        default_payment_method: r.opt_text("default_payment_method")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn payment(r: &impl Columns) -> StoreResult<PaymentRecord> {
    let status = match r.text("status")?.as_str() {
        "succeeded" => PaymentStatus::Succeeded,
        "failed" => PaymentStatus::Failed,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown payment status {other:?}"
            )));
        }
    };
    Ok(PaymentRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        invoice: r.text("invoice")?,
        customer: r.text("customer")?,
        provider: r.text("provider")?,
        status,
        amount_minor: r.int("amount_minor")?,
        currency: r.text("currency")?,
        reference: r.text("reference")?,
        method: r.opt_text("method")?,
        failure_code: r.opt_text("failure_code")?,
        failure_message: r.opt_text("failure_message")?,
        created_at: r.time("created_at")?,
    })
}

fn dunning(r: &impl Columns) -> StoreResult<DunningRecord> {
    Ok(DunningRecord {
        workspace: r.text("workspace")?,
        invoice: r.text("invoice")?,
        customer: r.text("customer")?,
        subscription: r.opt_text("subscription")?,
        status: DunningStatus::parse(&r.text("status")?)?,
        failures: r.int("failures")?,
        next_retry_at: r.opt_time("next_retry_at")?,
        suspended: r.flag("suspended")?,
        started_at: r.time("started_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn refund(r: &impl Columns) -> StoreResult<RefundRecord> {
    Ok(RefundRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        credit_note: r.text("credit_note")?,
        invoice: r.text("invoice")?,
        payment: r.text("payment")?,
        provider: r.text("provider")?,
        status: RefundStatus::parse(&r.text("status")?)?,
        amount_minor: r.int("amount_minor")?,
        currency: r.text("currency")?,
        provider_refund: r.opt_text("provider_refund")?,
        failure_message: r.opt_text("failure_message")?,
        created_at: r.time("created_at")?,
    })
}

fn stripe_billing(r: &impl Columns) -> StoreResult<StripeBillingRecord> {
    Ok(StripeBillingRecord {
        workspace: r.text("workspace")?,
        enabled: r.flag("enabled")?,
        cursor_received_at: r.time("cursor_received_at")?,
        cursor_event: r.text("cursor_event")?,
        pushed: r.int("pushed")?,
        updated_at: r.time("updated_at")?,
    })
}

fn payment_link(r: &impl Columns) -> StoreResult<PaymentLinkRecord> {
    Ok(PaymentLinkRecord {
        workspace: r.text("workspace")?,
        invoice: r.text("invoice")?,
        provider: r.text("provider")?,
        kind: PaymentLinkKind::parse(&r.text("kind")?)?,
        reference: r.text("reference")?,
        url: r.text("url")?,
        created_at: r.time("created_at")?,
    })
}

#[async_trait]
impl<B: Backend> PaymentStore for B {
    async fn put_payment_settings(&self, s: &PaymentSettingsRecord) -> StoreResult<()> {
        let values = args![
            &s.workspace,
            &s.stripe_secret_key,
            &s.stripe_key_hint,
            &s.stripe_webhook_secret,
            &s.manual_instructions,
            s.updated_at,
        ];
        run_execute(self.write(&s.workspace), sql::PUT_SETTINGS, values).await?;
        Ok(())
    }

    async fn payment_settings(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<PaymentSettingsRecord>> {
        run_optional(
            self.read(workspace.as_str()),
            sql::SETTINGS,
            args![workspace],
            settings,
        )
        .await
    }

    async fn link_provider_customer(
        &self,
        l: &ProviderCustomerRecord,
    ) -> StoreResult<ProviderCustomerRecord> {
        let mut tx = self.write(&l.workspace).await?;
        let values = args![
            &l.workspace,
            &l.customer,
            &l.provider,
            &l.provider_customer,
            &l.default_payment_method,
            l.created_at,
            l.updated_at,
        ];
        tx.execute(sql::LINK_CUSTOMER, values).await.map_err(|e| {
            insert_error(
                e,
                "provider customer",
                &l.provider_customer,
                "customer",
                &l.customer,
            )
        })?;
        let row = tx
            .fetch_optional(
                sql::PROVIDER_CUSTOMER,
                args![&l.workspace, &l.customer, &l.provider],
            )
            .await?;
        tx.commit().await?;
        row.as_ref()
            .map(provider_customer)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("a linked provider customer vanished".into()))
    }

    async fn provider_customer(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        provider: &str,
    ) -> StoreResult<Option<ProviderCustomerRecord>> {
        run_optional(
            self.read(workspace.as_str()),
            sql::PROVIDER_CUSTOMER,
            args![workspace, customer, provider],
            provider_customer,
        )
        .await
    }

    async fn provider_customer_by_ref(
        &self,
        workspace: &WorkspaceId,
        provider: &str,
        reference: &str,
    ) -> StoreResult<Option<ProviderCustomerRecord>> {
        run_optional(
            self.read(workspace.as_str()),
            sql::PROVIDER_CUSTOMER_BY_REF,
            args![workspace, provider, reference],
            provider_customer,
        )
        .await
    }

    async fn set_default_payment_method(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        provider: &str,
        payment_method: &str,
        at: Timestamp,
    ) -> StoreResult<ProviderCustomerRecord> {
        let mut tx = self.write(workspace.as_str()).await?;
        let row = tx
            .fetch_optional(
                sql::SET_DEFAULT_METHOD,
                args![workspace, customer, provider, payment_method, at],
            )
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                kind: "provider customer",
                id: customer.as_str().to_owned(),
            });
        };
        let link = provider_customer(&row)?;
        tx.execute(sql::FLAG_PAYMENT_METHOD, args![workspace, customer, true])
            .await?;
        tx.commit().await?;
        Ok(link)
    }

    async fn record_payment(
        &self,
        p: &PaymentRecord,
        settle: Option<&Settle>,
        events: &[OutboxEvent],
    ) -> StoreResult<PaymentOutcome> {
        let mut tx = self.write(&p.workspace).await?;
        // The invoice's row first: concurrent payments of one invoice take turns here, so each
        // sums the ones committed before it (PostgreSQL's row lock; SQLite has one writer).
        let locked = tx
            .execute(sql::LOCK_INVOICE, args![&p.workspace, &p.invoice])
            .await?;
        if locked == 0 {
            return Err(StoreError::NotFound {
                kind: "invoice",
                id: p.invoice.clone(),
            });
        }
        let values = args![
            &p.workspace,
            &p.id,
            &p.invoice,
            &p.customer,
            &p.provider,
            p.status.as_str(),
            p.amount_minor,
            &p.currency,
            &p.reference,
            &p.method,
            &p.failure_code,
            &p.failure_message,
            p.created_at,
        ];
        let inserted = tx
            .execute(sql::INSERT_PAYMENT, values)
            .await
            .map_err(|e| insert_error(e, "payment", &p.id, "invoice", &p.invoice))?;
        if inserted == 0 {
            let existing = tx
                .fetch_optional(
                    sql::PAYMENT_BY_REFERENCE,
                    args![&p.workspace, &p.provider, &p.reference],
                )
                .await?;
            let existing = existing
                .as_ref()
                .map(payment)
                .transpose()?
                .ok_or_else(|| StoreError::Corrupt("a duplicate payment vanished".into()))?;
            return Ok(PaymentOutcome::Duplicate(existing));
        }
        let mut paid = None;
        if let (PaymentStatus::Succeeded, Some(settle)) = (p.status, settle) {
            let sum_row = tx
                .fetch_optional(sql::PAID_SO_FAR, args![&p.workspace, &p.invoice])
                .await?;
            let paid_so_far = match sum_row {
                Some(row) => row.opt_int("paid")?.unwrap_or(0),
                None => 0,
            };
            if paid_so_far > settle.amount_due_minor {
                return Err(StoreError::Invalid {
                    code: Code::PaymentExceedsAmountDue,
                    detail: format!(
                        "the payments of invoice {:?} would add up to {paid_so_far} (minor units), more than the {} it owes",
                        p.invoice, settle.amount_due_minor
                    ),
                });
            }
            if paid_so_far == settle.amount_due_minor {
                let values = args![
                    InvoiceStatus::Paid.as_str(),
                    settle.at,
                    &p.workspace,
                    &p.invoice,
                    settle.from.as_str(),
                ];
                let Some(row) = tx
                    .fetch_optional(crate::sql::SET_INVOICE_STATUS, values)
                    .await?
                else {
                    return Err(StoreError::Conflict(format!(
                        "invoice {:?} is no longer {}",
                        p.invoice,
                        settle.from.as_str()
                    )));
                };
                paid = Some(Box::new(invoice(&row)?));
                append(&mut tx, &settle.events).await?;
            }
        }
        append(&mut tx, events).await?;
        tx.commit().await?;
        Ok(PaymentOutcome::Recorded {
            payment: p.clone(),
            paid,
        })
    }

    async fn list_payments(
        &self,
        workspace: &WorkspaceId,
        invoice: &str,
    ) -> StoreResult<Vec<PaymentRecord>> {
        run_all(
            self.read(workspace.as_str()),
            sql::LIST_PAYMENTS,
            args![workspace, invoice],
            payment,
        )
        .await
    }

    async fn payment_by_reference(
        &self,
        workspace: &WorkspaceId,
        provider: &str,
        reference: &str,
    ) -> StoreResult<Option<PaymentRecord>> {
        run_optional(
            self.read(workspace.as_str()),
            sql::PAYMENT_BY_REFERENCE,
            args![workspace, provider, reference],
            payment,
        )
        .await
    }

    async fn provider_payments(
        &self,
        workspace: &WorkspaceId,
        provider: &str,
    ) -> StoreResult<Vec<PaymentRecord>> {
        run_all(
            self.read(workspace.as_str()),
            sql::PROVIDER_PAYMENTS,
            args![workspace, provider],
            payment,
        )
        .await
    }

    async fn claim_provider_event(
        &self,
        workspace: &WorkspaceId,
        provider: &str,
        event_id: &str,
        event_type: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let values = args![workspace, provider, event_id, event_type, at];
        let inserted =
            run_execute(self.write(workspace.as_str()), sql::CLAIM_EVENT, values).await?;
        Ok(inserted == 1)
    }

    async fn release_provider_event(
        &self,
        workspace: &WorkspaceId,
        provider: &str,
        event_id: &str,
    ) -> StoreResult<()> {
        run_execute(
            self.write(workspace.as_str()),
            sql::RELEASE_EVENT,
            args![workspace, provider, event_id],
        )
        .await?;
        Ok(())
    }

    async fn dunning(
        &self,
        workspace: &WorkspaceId,
        invoice: &str,
    ) -> StoreResult<Option<DunningRecord>> {
        run_optional(
            self.read(workspace.as_str()),
            sql::DUNNING,
            args![workspace, invoice],
            dunning,
        )
        .await
    }

    async fn put_dunning(&self, d: &DunningRecord, events: &[OutboxEvent]) -> StoreResult<()> {
        let mut tx = self.write(&d.workspace).await?;
        let values = args![
            &d.workspace,
            &d.invoice,
            &d.customer,
            &d.subscription,
            d.status.as_str(),
            d.failures,
            d.next_retry_at,
            d.suspended,
            d.started_at,
            d.updated_at,
        ];
        tx.execute(sql::PUT_DUNNING, values)
            .await
            .map_err(|e| insert_error(e, "dunning", &d.invoice, "invoice", &d.invoice))?;
        append(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_refund(&self, r: &RefundRecord, events: &[OutboxEvent]) -> StoreResult<()> {
        let mut tx = self.write(&r.workspace).await?;
        let values = args![
            &r.workspace,
            &r.id,
            &r.credit_note,
            &r.invoice,
            &r.payment,
            &r.provider,
            r.status.as_str(),
            r.amount_minor,
            &r.currency,
            &r.provider_refund,
            &r.failure_message,
            r.created_at,
        ];
        tx.execute(sql::INSERT_REFUND, values)
            .await
            .map_err(|e| insert_error(e, "refund", &r.credit_note, "payment", &r.payment))?;
        append(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_refunds(
        &self,
        workspace: &WorkspaceId,
        invoice: &str,
    ) -> StoreResult<Vec<RefundRecord>> {
        run_all(
            self.read(workspace.as_str()),
            sql::LIST_REFUNDS,
            args![workspace, invoice],
            refund,
        )
        .await
    }

    async fn provider_refunds(
        &self,
        workspace: &WorkspaceId,
        provider: &str,
    ) -> StoreResult<Vec<RefundRecord>> {
        run_all(
            self.read(workspace.as_str()),
            sql::PROVIDER_REFUNDS,
            args![workspace, provider],
            refund,
        )
        .await
    }

    async fn get_refund(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<RefundRecord>> {
        run_optional(
            self.read(workspace.as_str()),
            sql::GET_REFUND,
            args![workspace, id],
            refund,
        )
        .await
    }

    async fn retry_refund(&self, r: &RefundRecord, events: &[OutboxEvent]) -> StoreResult<()> {
        let mut tx = self.write(&r.workspace).await?;
        let values = args![
            &r.workspace,
            &r.id,
            r.status.as_str(),
            &r.provider_refund,
            &r.failure_message,
        ];
        let changed = tx.execute(sql::RETRY_REFUND, values).await?;
        if changed == 0 {
            let exists = tx
                .fetch_optional(sql::GET_REFUND, args![&r.workspace, &r.id])
                .await?
                .is_some();
            return Err(if exists {
                StoreError::Conflict(format!("refund {:?} is no longer failed", r.id))
            } else {
                StoreError::NotFound {
                    kind: "refund",
                    id: r.id.clone(),
                }
            });
        }
        append(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn stripe_billing(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<StripeBillingRecord>> {
        run_optional(
            self.read(workspace.as_str()),
            sql::STRIPE_BILLING,
            args![workspace],
            stripe_billing,
        )
        .await
    }

    async fn set_stripe_biller(
        &self,
        workspace: &WorkspaceId,
        enabled: bool,
        at: Timestamp,
    ) -> StoreResult<StripeBillingRecord> {
        let mut tx = self.write(workspace.as_str()).await?;
        let row = tx
            .fetch_optional(sql::SET_STRIPE_BILLER, args![workspace, enabled, at])
            .await?;
        tx.commit().await?;
        row.as_ref()
            .map(stripe_billing)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("a written stripe_billing row vanished".into()))
    }

    async fn usage_events_after(
        &self,
        workspace: &WorkspaceId,
        after: (Timestamp, &str),
        until: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<crate::EventRecord>> {
        run_all(
            self.read(workspace.as_str()),
            sql::EVENTS_AFTER,
            args![workspace, after.0, after.1, until, limit.max(0)],
            crate::codec::event,
        )
        .await
    }

    async fn advance_meter_cursor(
        &self,
        workspace: &WorkspaceId,
        from: (Timestamp, &str),
        to: (Timestamp, &str),
        pushed: i64,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let values = args![workspace, from.0, from.1, to.0, to.1, pushed, at];
        let moved =
            run_execute(self.write(workspace.as_str()), sql::ADVANCE_CURSOR, values).await?;
        Ok(moved == 1)
    }

    async fn put_payment_link(&self, l: &PaymentLinkRecord) -> StoreResult<()> {
        let values = args![
            &l.workspace,
            &l.invoice,
            &l.provider,
            l.kind.as_str(),
            &l.reference,
            &l.url,
            l.created_at,
        ];
        run_execute(self.write(&l.workspace), sql::PUT_PAYMENT_LINK, values)
            .await
            .map_err(|e| insert_error(e, "payment link", &l.invoice, "invoice", &l.invoice))?;
        Ok(())
    }

    async fn payment_link(
        &self,
        workspace: &WorkspaceId,
        invoice: &str,
    ) -> StoreResult<Option<PaymentLinkRecord>> {
        run_optional(
            self.read(workspace.as_str()),
            sql::PAYMENT_LINK,
            args![workspace, invoice],
            payment_link,
        )
        .await
    }
}

/// The statements of this file, written once for both backends (`$N` placeholders).
mod sql {
    pub(super) const PUT_SETTINGS: &str = "INSERT INTO payment_settings (workspace, \
           stripe_secret_key, stripe_key_hint, stripe_webhook_secret, manual_instructions, \
           updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (workspace) DO UPDATE SET stripe_secret_key = $2, stripe_key_hint = $3, \
           stripe_webhook_secret = $4, manual_instructions = $5, updated_at = $6";
    pub(super) const SETTINGS: &str = "SELECT workspace, stripe_secret_key, stripe_key_hint, \
           stripe_webhook_secret, manual_instructions, updated_at \
         FROM payment_settings WHERE workspace = $1";

    macro_rules! customer_cols {
        () => {
            "workspace, customer, provider, provider_customer, default_payment_method, \
             created_at, updated_at"
        };
    }
    pub(super) const LINK_CUSTOMER: &str = concat!(
        "INSERT INTO payment_customers (",
        customer_cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workspace, customer, provider) DO NOTHING"
    );
    pub(super) const PROVIDER_CUSTOMER: &str = concat!(
        "SELECT ",
        customer_cols!(),
        " FROM payment_customers WHERE workspace = $1 AND customer = $2 AND provider = $3"
    );
    pub(super) const PROVIDER_CUSTOMER_BY_REF: &str = concat!(
        "SELECT ",
        customer_cols!(),
        " FROM payment_customers WHERE workspace = $1 AND provider = $2 AND provider_customer = $3"
    );
    pub(super) const SET_DEFAULT_METHOD: &str = concat!(
        "UPDATE payment_customers SET default_payment_method = $4, updated_at = $5 \
         WHERE workspace = $1 AND customer = $2 AND provider = $3 RETURNING ",
        customer_cols!()
    );
    pub(super) const FLAG_PAYMENT_METHOD: &str =
        "UPDATE customers SET has_payment_method = $3 WHERE workspace = $1 AND id = $2";

    macro_rules! payment_cols {
        () => {
            "workspace, id, invoice, customer, provider, status, amount_minor, currency, \
             reference, method, failure_code, failure_message, created_at"
        };
    }
    pub(super) const INSERT_PAYMENT: &str = concat!(
        "INSERT INTO payments (",
        payment_cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (workspace, provider, reference) DO NOTHING"
    );
    pub(super) const PAYMENT_BY_REFERENCE: &str = concat!(
        "SELECT ",
        payment_cols!(),
        " FROM payments WHERE workspace = $1 AND provider = $2 AND reference = $3"
    );
    pub(super) const LIST_PAYMENTS: &str = concat!(
        "SELECT ",
        payment_cols!(),
        " FROM payments WHERE workspace = $1 AND invoice = $2 ORDER BY created_at, id"
    );
    pub(super) const PROVIDER_PAYMENTS: &str = concat!(
        "SELECT ",
        payment_cols!(),
        " FROM payments WHERE workspace = $1 AND provider = $2 ORDER BY created_at, id"
    );
    /// A write that changes nothing but takes the invoice's row lock until the commit.
    pub(super) const LOCK_INVOICE: &str =
        "UPDATE invoices SET status = status WHERE workspace = $1 AND id = $2";
    /// What the invoice's succeeded payments add up to (the new one included).
    pub(super) const PAID_SO_FAR: &str = "SELECT CAST(SUM(amount_minor) AS BIGINT) AS paid \
         FROM payments WHERE workspace = $1 AND invoice = $2 AND status = 'succeeded'";

    pub(super) const CLAIM_EVENT: &str = "INSERT INTO provider_events (workspace, provider, \
           event_id, type, received_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
    pub(super) const RELEASE_EVENT: &str = "DELETE FROM provider_events \
         WHERE workspace = $1 AND provider = $2 AND event_id = $3";

    macro_rules! dunning_cols {
        () => {
            "workspace, invoice, customer, subscription, status, failures, next_retry_at, \
             suspended, started_at, updated_at"
        };
    }
    pub(super) const DUNNING: &str = concat!(
        "SELECT ",
        dunning_cols!(),
        " FROM dunning WHERE workspace = $1 AND invoice = $2"
    );
    pub(super) const PUT_DUNNING: &str = concat!(
        "INSERT INTO dunning (",
        dunning_cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (workspace, invoice) DO UPDATE SET status = $5, failures = $6, \
           next_retry_at = $7, suspended = $8, updated_at = $10"
    );

    macro_rules! refund_cols {
        () => {
            "workspace, id, credit_note, invoice, payment, provider, status, amount_minor, \
             currency, provider_refund, failure_message, created_at"
        };
    }
    pub(super) const INSERT_REFUND: &str = concat!(
        "INSERT INTO refunds (",
        refund_cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    pub(super) const LIST_REFUNDS: &str = concat!(
        "SELECT ",
        refund_cols!(),
        " FROM refunds WHERE workspace = $1 AND invoice = $2 ORDER BY created_at, id"
    );

    macro_rules! stripe_billing_cols {
        () => {
            "workspace, enabled, cursor_received_at, cursor_event, pushed, updated_at"
        };
    }
    pub(super) const STRIPE_BILLING: &str = concat!(
        "SELECT ",
        stripe_billing_cols!(),
        " FROM stripe_billing WHERE workspace = $1"
    );
    /// The first switch starts the cursor at its time; later ones keep the cursor.
    pub(super) const SET_STRIPE_BILLER: &str = concat!(
        "INSERT INTO stripe_billing (",
        stripe_billing_cols!(),
        ") VALUES ($1, $2, $3, '', 0, $3) \
         ON CONFLICT (workspace) DO UPDATE SET enabled = $2, updated_at = $3 RETURNING ",
        stripe_billing_cols!()
    );
    pub(super) const EVENTS_AFTER: &str = "SELECT workspace, id, customer, event_type, ts, \
           subject, CAST(properties AS TEXT) AS properties, received_at FROM events \
         WHERE workspace = $1 AND (received_at > $2 OR (received_at = $2 AND id > $3)) \
           AND received_at <= $4 \
         ORDER BY received_at, id LIMIT $5";
    pub(super) const ADVANCE_CURSOR: &str = "UPDATE stripe_billing SET cursor_received_at = $4, \
           cursor_event = $5, pushed = pushed + $6, updated_at = $7 \
         WHERE workspace = $1 AND cursor_received_at = $2 AND cursor_event = $3";

    macro_rules! link_cols {
        () => {
            "workspace, invoice, provider, kind, reference, url, created_at"
        };
    }
    pub(super) const PUT_PAYMENT_LINK: &str = concat!(
        "INSERT INTO invoice_payment_links (",
        link_cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (workspace, invoice) DO UPDATE SET provider = $3, kind = $4, \
           reference = $5, url = $6, created_at = $7"
    );
    pub(super) const PAYMENT_LINK: &str = concat!(
        "SELECT ",
        link_cols!(),
        " FROM invoice_payment_links WHERE workspace = $1 AND invoice = $2"
    );

    pub(super) const PROVIDER_REFUNDS: &str = concat!(
        "SELECT ",
        refund_cols!(),
        " FROM refunds WHERE workspace = $1 AND provider = $2 ORDER BY created_at, id"
    );
    pub(super) const GET_REFUND: &str = concat!(
        "SELECT ",
        refund_cols!(),
        " FROM refunds WHERE workspace = $1 AND id = $2"
    );
    pub(super) const RETRY_REFUND: &str = "UPDATE refunds SET status = $3, provider_refund = $4, \
           failure_message = $5 WHERE workspace = $1 AND id = $2 AND status = 'failed'";
}
