//! Persistence of money documents: invoices with gapless numbers, credit notes, prepaid credit,
//! coupon redemptions and pending charges (prorations waiting for the next invoice).
//!
//! The rules live in `tollgate-core::pricing`; this trait only stores their results, atomically:
//! an invoice, its number, the credit it used and the pending charges it consumed are written in
//! one transaction, so a crash or a re-run never leaves a duplicate, a gap or a half-paid invoice.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use crate::backend::{Arg, Backend, Conn, args, run_all, run_execute, run_optional};
use crate::codec::{self, Columns, insert_error};
use crate::{StoreError, StoreResult, sql};

/// The invoice lifecycle is the domain's: this is core's enum, re-exported at the path the store
/// always had it, and its transitions are `tollgate_core::lifecycle::invoice::apply`.
pub use tollgate_core::lifecycle::InvoiceStatus;

/// A finalized invoice. Immutable once stored except for its status and timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceRecord {
    pub workspace: String,
    pub id: String,
    /// Gapless per workspace, assigned by the store on insert: 1, 2, 3...
    pub number: i64,
    pub customer: String,
    pub subscription: Option<String>,
    /// Unique per workspace: what this invoice is for (e.g. `sub_x:close:2026-11-01T00:00:00Z`).
    /// A second insert with the same key is refused, so a bill run re-run bills nothing twice.
    pub dedupe_key: String,
    pub status: InvoiceStatus,
    pub currency: String,
    pub period_start: Option<Timestamp>,
    pub period_end: Option<Timestamp>,
    pub total_minor: i64,
    pub credit_applied_minor: i64,
    pub amount_due_minor: i64,
    /// The whole invoice as built by the pricing engine (lines, descriptions, periods).
    pub document: serde_json::Value,
    pub created_at: Timestamp,
    pub paid_at: Option<Timestamp>,
    pub voided_at: Option<Timestamp>,
}

/// What inserting an invoice did.
#[derive(Debug, Clone, PartialEq)]
pub enum InvoiceInsert {
    /// Stored, with its number.
    Created(InvoiceRecord),
    /// An invoice with the same dedupe key exists: this one, untouched.
    Exists(InvoiceRecord),
}

/// Side effects written in the same transaction as an invoice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvoiceEffects {
    /// Prepaid credit the invoice used: subtracted from the customer's balance (which must
    /// cover it, else the insert fails with `Conflict`).
    pub credit_used_minor: i64,
    /// The customer's balance the invoice used: a negative balance entry (the balance must
    /// cover it, else the insert fails with `Conflict`).
    pub balance_used_minor: i64,
    /// Pending charges the invoice billed: marked as invoiced.
    pub pending_charges: Vec<String>,
    /// Coupon redemptions the invoice used: their `applied` count goes up by one.
    pub coupon_redemptions: Vec<String>,
    /// Domain events announcing the invoice (`invoice.finalized`), written only when it is
    /// created (an invoice that exists already announces nothing again).
    pub events: Vec<crate::outbox::OutboxEvent>,
}

impl InvoiceEffects {
    /// Whether the invoice changes anything but itself and its announcements (credit,
    /// pending charges, coupons): such invoices are written alone, never batched.
    pub fn touches_other_rows(&self) -> bool {
        self.credit_used_minor != 0
            || self.balance_used_minor != 0
            || !self.pending_charges.is_empty()
            || !self.coupon_redemptions.is_empty()
    }
}

/// A refund or correction of an invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditNoteRecord {
    pub workspace: String,
    pub id: String,
    /// Gapless per workspace, in its own sequence.
    pub number: i64,
    pub invoice: String,
    pub customer: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: Option<String>,
    pub created_at: Timestamp,
    /// What the credit note does with its amount.
    #[serde(default)]
    pub method: CreditNoteMethod,
}

/// What a credit note does with its amount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditNoteMethod {
    /// Money back to the customer (through the provider that took it).
    #[default]
    Refund,
    /// Added to the customer's balance, which pays its later invoices.
    Credit,
}

impl CreditNoteMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CreditNoteMethod::Refund => "refund",
            CreditNoteMethod::Credit => "credit",
        }
    }

    /// The method a stored name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refund" => Some(CreditNoteMethod::Refund),
            "credit" => Some(CreditNoteMethod::Credit),
            _ => None,
        }
    }
}

/// What a credit note to the balance does to an unpaid invoice (docs/INVOICES.md, "The
/// customer's balance"): its amount due goes from `from_minor` to `to_minor` (compare-and-set
/// with `status`; at zero the invoice is paid at `at`), and only the rest of the note's amount
/// is added to the customer's balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountDueChange {
    pub status: InvoiceStatus,
    pub from_minor: i64,
    pub to_minor: i64,
    pub at: Timestamp,
}

/// One movement of a customer's balance: a credit note credited to it (positive), an invoice
/// it paid (negative). Listed in the order they were written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceEntryRecord {
    pub workspace: String,
    pub id: String,
    pub customer: String,
    pub amount_minor: i64,
    pub currency: String,
    /// `credit_note` or `invoice`.
    pub kind: String,
    pub credit_note: Option<String>,
    pub invoice: Option<String>,
    pub created_at: Timestamp,
}

/// A charge computed between invoices (a proration), billed on the customer's next invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingChargeRecord {
    pub workspace: String,
    pub id: String,
    pub customer: String,
    pub subscription: Option<String>,
    /// A `tollgate_core::pricing::Charge` as JSON.
    pub charge: serde_json::Value,
    pub created_at: Timestamp,
    /// The invoice that billed it, once billed.
    pub invoice: Option<String>,
}

/// A coupon applied to a customer, with how many invoices it has discounted so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CouponRedemptionRecord {
    pub workspace: String,
    pub id: String,
    pub customer: String,
    pub coupon: String,
    pub applied: i64,
    pub created_at: Timestamp,
}

/// One movement of a customer's prepaid credit balance (grants positive, uses negative).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditEntryRecord {
    pub workspace: String,
    pub id: String,
    pub customer: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    pub invoice: Option<String>,
    pub created_at: Timestamp,
}

/// A plan change that takes effect later (a downgrade at the period end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledChangeRecord {
    pub workspace: String,
    pub id: String,
    pub subscription: String,
    pub customer: String,
    pub plan: String,
    /// Add-on quantities after the change.
    pub addons: serde_json::Value,
    pub effective_at: Timestamp,
    pub created_at: Timestamp,
    pub applied_at: Option<Timestamp>,
}

/// What the bill run reads about many subscriptions at once ([`BillingStore::billing_chunk`]):
/// the per-subscription reads of an invoice (customer, profile, invoice keys, scheduled change,
/// pending charges, coupons, credit and balance), each kind in one query per chunk, so a run
/// costs a few queries per hundred subscriptions instead of about ten per subscription.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BillingChunk {
    pub customers: Vec<crate::CustomerRecord>,
    /// `(customer, profile)` of the customers that have one.
    pub profiles: Vec<(String, serde_json::Value)>,
    /// `(subscription, dedupe key)`, in number order per subscription.
    pub invoice_keys: Vec<(String, String)>,
    /// The changes not yet applied.
    pub scheduled: Vec<ScheduledChangeRecord>,
    /// Not yet invoiced, oldest first per customer.
    pub pending_charges: Vec<PendingChargeRecord>,
    pub redemptions: Vec<CouponRedemptionRecord>,
    /// `(customer, sum)` of the customers with credit entries (absent: 0).
    pub credit_balances: Vec<(String, i64)>,
    /// `(customer, sum)` of the customers with balance entries (absent: 0).
    pub customer_balances: Vec<(String, i64)>,
}

/// A pass of the bill run, begun by [`BillingStore::begin_bill_pass`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillPass {
    /// The workspace's `bill_run` counter after this pass bumped it: customers claimed at this
    /// number or later are billed by a claim taken after the pass began.
    pub number: i64,
    /// The workspace's subscriptions when it began (for progress).
    pub subscriptions: i64,
}

#[async_trait]
pub trait BillingStore: Send + Sync {
    /// Schedules a plan change, replacing any not yet applied for the same subscription.
    async fn schedule_change(&self, change: &ScheduledChangeRecord) -> StoreResult<()>;
    /// The change not yet applied of a subscription, if any.
    async fn scheduled_change(
        &self,
        workspace: &WorkspaceId,
        subscription: &str,
    ) -> StoreResult<Option<ScheduledChangeRecord>>;
    async fn mark_change_applied(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        at: Timestamp,
    ) -> StoreResult<()>;

    /// Inserts an invoice (its `number` is ignored and assigned), with its effects, in one
    /// transaction. Same `dedupe_key` again: `Exists`, and nothing is written.
    async fn insert_invoice(
        &self,
        invoice: &InvoiceRecord,
        effects: &InvoiceEffects,
    ) -> StoreResult<InvoiceInsert>;
    /// [`BillingStore::insert_invoice`] for many invoices of one workspace in ONE transaction
    /// (one commit, one fsync): the bill run's fast path. Outcomes in order.
    async fn insert_invoices(
        &self,
        workspace: &WorkspaceId,
        invoices: &[(InvoiceRecord, InvoiceEffects)],
    ) -> StoreResult<Vec<InvoiceInsert>>;
    async fn get_invoice(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<InvoiceRecord>>;
    /// A customer's invoices, oldest first.
    async fn list_invoices(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<InvoiceRecord>>;
    /// Dedupe keys of a subscription's invoices (the bill run skips these periods).
    async fn invoice_keys(
        &self,
        workspace: &WorkspaceId,
        subscription: &str,
    ) -> StoreResult<Vec<String>>;
    /// Moves an invoice from `from` to `to` (compare-and-set); `Conflict` if it is not in `from`.
    async fn set_invoice_status(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        from: InvoiceStatus,
        to: InvoiceStatus,
        at: Timestamp,
    ) -> StoreResult<InvoiceRecord>;
    /// [`BillingStore::set_invoice_status`] and the events announcing it, in one transaction.
    async fn set_invoice_status_with_events(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        from_to: (InvoiceStatus, InvoiceStatus),
        at: Timestamp,
        events: &[crate::outbox::OutboxEvent],
    ) -> StoreResult<InvoiceRecord>;
    /// Every subscription of a workspace (the bill run's worklist).
    async fn list_workspace_subscriptions(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<crate::SubscriptionRecord>>;
    async fn list_workspaces(&self) -> StoreResult<Vec<crate::WorkspaceRecord>>;

    /// Stores a credit note with the next credit-note number; refused (`Conflict`) if the notes
    /// of the invoice would exceed its total.
    async fn insert_credit_note(
        &self,
        note: &CreditNoteRecord,
        invoice_total_minor: i64,
    ) -> StoreResult<CreditNoteRecord>;
    async fn list_credit_notes(
        &self,
        workspace: &WorkspaceId,
        invoice: &str,
    ) -> StoreResult<Vec<CreditNoteRecord>>;
    /// [`BillingStore::insert_credit_note`] and the events announcing it, in one transaction.
    async fn insert_credit_note_with_events(
        &self,
        note: &CreditNoteRecord,
        invoice_total_minor: i64,
        events: &[crate::outbox::OutboxEvent],
    ) -> StoreResult<CreditNoteRecord>;

    /// [`BillingStore::insert_credit_note_with_events`] of a credit note that also lowers the
    /// amount due of its unpaid invoice (`lower`), in the same transaction; `Conflict` if the
    /// invoice's status or amount due changed since it was read.
    async fn insert_credit_note_lowering_due(
        &self,
        note: &CreditNoteRecord,
        invoice_total_minor: i64,
        lower: Option<AmountDueChange>,
        events: &[crate::outbox::OutboxEvent],
    ) -> StoreResult<CreditNoteRecord>;

    async fn add_pending_charge(&self, charge: &PendingChargeRecord) -> StoreResult<()>;
    /// Writes a subscription's new terms (a plan change) and the charges it brings (prorations)
    /// in ONE transaction: all of it or none of it.
    async fn change_subscription(
        &self,
        subscription: &crate::SubscriptionRecord,
        charges: &[PendingChargeRecord],
    ) -> StoreResult<()>;
    /// Charges not yet invoiced, oldest first.
    async fn pending_charges(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<PendingChargeRecord>>;

    async fn add_coupon_redemption(&self, redemption: &CouponRedemptionRecord) -> StoreResult<()>;
    async fn coupon_redemptions(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<CouponRedemptionRecord>>;

    /// Adds a credit grant (or correction) to the ledger.
    /// The customer's balance (credit notes credited to it, less what invoices used), in
    /// minor units.
    async fn customer_balance(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<i64>;
    /// The movements of the customer's balance, oldest first.
    async fn balance_entries(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<BalanceEntryRecord>>;
    async fn add_credit_entry(&self, entry: &CreditEntryRecord) -> StoreResult<()>;
    /// The sum of the customer's credit ledger, in minor units.
    async fn credit_balance(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<i64>;

    /// What the bill run reads about `subscriptions` and their `customers` (any number; read
    /// in chunks, in one session, so every kind is of the same moment on PostgreSQL).
    async fn billing_chunk(
        &self,
        workspace: &WorkspaceId,
        subscriptions: &[&str],
        customers: &[&str],
    ) -> StoreResult<BillingChunk>;
    /// Begins a pass of the bill run over `workspace`: every customer with a subscription gets
    /// a claim row, and the workspace's `bill_run` counter goes up by one (the pass's number).
    /// Workers of this pass then claim customers ([`BillingStore::claim_bill_customers`]) until
    /// none is left ([`BillingStore::bill_pass_remaining`]).
    async fn begin_bill_pass(&self, workspace: &WorkspaceId) -> StoreResult<BillPass>;
    /// Claims up to `limit` customers after `after` (`""`: from the first), in id order, that
    /// pass `pass` has still to bill and that no live lease holds, for `lease.worker` until
    /// `lease.until`. (A worker goes on after the last customer it claimed, so a claim does not
    /// scan again the customers billed before it; one that finds nothing there looks again
    /// from the first.) PostgreSQL skips rows
    /// another worker is claiming (`FOR UPDATE SKIP LOCKED`), so concurrent workers of one node
    /// or of several take disjoint customers. Each claimed row is stamped with the pass counter
    /// of the moment, so a pass that began before this claim still bills that customer again
    /// once it is released (its own moment may be later), and one that began after does not.
    async fn claim_bill_customers(
        &self,
        workspace: &WorkspaceId,
        pass: i64,
        lease: &crate::jobs::Lease,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>>;
    /// Releases claimed customers once their invoices are written; only rows `worker` still
    /// holds (a lease that ran out may have passed them to another worker).
    async fn release_bill_customers(
        &self,
        workspace: &WorkspaceId,
        worker: &str,
        customers: &[String],
    ) -> StoreResult<()>;
    /// How many customers pass `pass` has still to see billed: not claimed since it began,
    /// or held by a worker now.
    async fn bill_pass_remaining(&self, workspace: &WorkspaceId, pass: i64) -> StoreResult<i64>;
    /// The subscriptions of `customers` (any number), by customer then id.
    async fn subscriptions_of_customers(
        &self,
        workspace: &WorkspaceId,
        customers: &[String],
    ) -> StoreResult<Vec<crate::SubscriptionRecord>>;
    /// `(customer, row)`: the aggregate rows of `customers` for periods starting in
    /// `[from, to]` (the caller keeps each customer's own period), as `aggregates` reads one.
    async fn chunk_aggregates(
        &self,
        workspace: &WorkspaceId,
        customers: &[&str],
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<(String, crate::AggregateRow)>>;
}

/// A sum of `i64` amounts as the database returned it (text, see `sql::CREDIT_BALANCE`), or
/// `Invalid` when it does not fit an `i64`.
fn stored_sum(row: &impl Columns, what: &str) -> StoreResult<i64> {
    let text = row.text("total")?;
    let sum: i128 = text
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("{what} {text:?}: {e}")))?;
    i64::try_from(sum).map_err(|_| overflow(format!("{what} {sum} exceeds a 64-bit amount")))
}

fn overflow(detail: String) -> StoreError {
    StoreError::Invalid {
        code: Code::AmountOverflow,
        detail,
    }
}

/// The credit balance inside `tx`, for a change of it: the ledger's counter is bumped first,
/// which locks the workspace's ledger until commit, so concurrent changes are checked one after
/// another, each against the entries committed before it (PostgreSQL; SQLite's writer is
/// serial anyway).
async fn balance_for_change<C: Conn>(
    tx: &mut C,
    workspace: &str,
    customer: &str,
) -> StoreResult<i64> {
    next_number(tx, workspace, "credit_entry").await?;
    balance_in(tx, workspace, customer).await
}

/// The credit balance inside `tx`.
async fn balance_in<C: Conn>(tx: &mut C, workspace: &str, customer: &str) -> StoreResult<i64> {
    let row = tx
        .fetch_optional(sql::CREDIT_BALANCE, args![workspace, customer])
        .await?
        .ok_or_else(|| StoreError::Corrupt("a sum returned no row".into()))?;
    stored_sum(&row, "credit balance")
}

/// The customer's balance inside `tx`.
async fn customer_balance_in<C: Conn>(
    tx: &mut C,
    workspace: &str,
    customer: &str,
) -> StoreResult<i64> {
    let row = tx
        .fetch_optional(sql::CUSTOMER_BALANCE, args![workspace, customer])
        .await?
        .ok_or_else(|| StoreError::Corrupt("a sum returned no row".into()))?;
    stored_sum(&row, "customer balance")
}

/// One invoice of [`BillingStore::insert_invoices`] inside its transaction. `None` when a
/// unique key refused it and `may_retry`: a concurrent insert may have taken its key first,
/// and the caller rolls back and retries. On the retry such an invoice is found by its key, so a
/// unique key that refuses it again is a real clash (`AlreadyExists`).
async fn insert_one<C: Conn>(
    tx: &mut C,
    inv: &InvoiceRecord,
    effects: &InvoiceEffects,
    may_retry: bool,
) -> StoreResult<Option<InvoiceInsert>> {
    let key = args![&inv.workspace, &inv.dedupe_key];
    if let Some(row) = tx.fetch_optional(sql::INVOICE_BY_KEY, key).await? {
        return Ok(Some(InvoiceInsert::Exists(codec::invoice(&row)?)));
    }
    let number = next_number(tx, &inv.workspace, "invoice").await?;
    let values = args![
        &inv.workspace,
        &inv.id,
        number,
        &inv.customer,
        &inv.subscription,
        &inv.dedupe_key,
        inv.status.as_str(),
        &inv.currency,
        inv.period_start,
        inv.period_end,
        inv.total_minor,
        inv.credit_applied_minor,
        inv.amount_due_minor,
        &inv.document,
        inv.created_at,
        inv.paid_at,
        inv.voided_at,
    ];
    match tx.execute(sql::INSERT_INVOICE, values).await {
        Err(sqlx::Error::Database(db))
            if may_retry && db.kind() == sqlx::error::ErrorKind::UniqueViolation =>
        {
            return Ok(None);
        }
        inserted => {
            inserted.map_err(|e| insert_error(e, "invoice", &inv.id, "customer", &inv.customer))?;
        }
    }
    if effects.credit_used_minor > 0 {
        let balance = balance_for_change(tx, &inv.workspace, &inv.customer).await?;
        if balance < effects.credit_used_minor {
            return Err(StoreError::Conflict(format!(
                "credit balance {balance} does not cover {}",
                effects.credit_used_minor
            )));
        }
        let used = effects
            .credit_used_minor
            .checked_neg()
            .ok_or_else(|| overflow(format!("credit used {}", effects.credit_used_minor)))?;
        let entry = format!("{}_credit", inv.id);
        let values = args![
            &inv.workspace,
            &entry,
            &inv.customer,
            used,
            &inv.currency,
            "applied to invoice",
            inv.id.as_str(),
            inv.created_at,
        ];
        tx.execute(sql::INSERT_CREDIT_ENTRY, values).await?;
    }
    if effects.balance_used_minor > 0 {
        let seq = next_number(tx, &inv.workspace, "balance_entry").await?;
        let balance = customer_balance_in(tx, &inv.workspace, &inv.customer).await?;
        if balance < effects.balance_used_minor {
            return Err(StoreError::Conflict(format!(
                "customer balance {balance} does not cover {}",
                effects.balance_used_minor
            )));
        }
        let used = effects
            .balance_used_minor
            .checked_neg()
            .ok_or_else(|| overflow(format!("balance used {}", effects.balance_used_minor)))?;
        let entry = format!("{}_balance", inv.id);
        let values = args![
            &inv.workspace,
            &entry,
            &inv.customer,
            used,
            &inv.currency,
            "invoice",
            None::<&str>,
            Some(inv.id.as_str()),
            inv.created_at,
            seq,
        ];
        tx.execute(sql::INSERT_BALANCE_ENTRY, values).await?;
    }
    // A charge billed since the invoice was built (another invoice took it in between) is
    // refused, not billed twice: the caller builds the invoice again from what is there now.
    for id in &effects.pending_charges {
        let values = args![&inv.id, &inv.workspace, id];
        if tx.execute(sql::BILL_PENDING_CHARGE, values).await? != 1 {
            return Err(StoreError::Conflict(format!(
                "pending charge {id:?} is no longer pending"
            )));
        }
    }
    for id in &effects.coupon_redemptions {
        tx.execute(sql::COUNT_COUPON_USE, args![&inv.workspace, id])
            .await?;
    }
    crate::outbox::append(tx, &effects.events).await?;
    Ok(Some(InvoiceInsert::Created(InvoiceRecord {
        number,
        ..inv.clone()
    })))
}

/// Lowers the amount due of a credit note's unpaid invoice inside `tx` (see
/// [`AmountDueChange`]); what it took off, in minor units.
async fn lower_amount_due<C: Conn>(
    tx: &mut C,
    note: &CreditNoteRecord,
    change: AmountDueChange,
) -> StoreResult<i64> {
    let lowered = change.from_minor.checked_sub(change.to_minor).unwrap_or(0);
    if note.method != CreditNoteMethod::Credit
        || change.to_minor < 0
        || lowered <= 0
        || lowered > note.amount_minor
    {
        return Err(StoreError::Invalid {
            code: Code::InvalidAmount,
            detail: format!(
                "a credit note of {} cannot lower an amount due from {} to {}",
                note.amount_minor, change.from_minor, change.to_minor
            ),
        });
    }
    let values = args![
        change.to_minor,
        change.at,
        &note.workspace,
        &note.invoice,
        change.status.as_str(),
        change.from_minor,
    ];
    match tx.fetch_optional(sql::LOWER_AMOUNT_DUE, values).await? {
        Some(_) => Ok(lowered),
        None => Err(StoreError::Conflict(format!(
            "invoice {:?} is no longer {} with {} due",
            note.invoice,
            change.status.as_str(),
            change.from_minor
        ))),
    }
}

/// Gives back, inside `tx`, what a voided invoice took from the customer's balance and prepaid
/// credit: one positive movement of each (`invoice_void`, "invoice voided").
async fn give_back<C: Conn>(tx: &mut C, inv: &InvoiceRecord, at: Timestamp) -> StoreResult<()> {
    let key = args![&inv.workspace, &inv.customer, &inv.id];
    let row = tx
        .fetch_optional(sql::BALANCE_USED_BY_INVOICE, key)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a sum returned no row".into()))?;
    let balance_used = stored_sum(&row, "balance used")?;
    if balance_used < 0 {
        let back = balance_used
            .checked_neg()
            .ok_or_else(|| overflow(format!("balance used {balance_used}")))?;
        let seq = next_number(tx, &inv.workspace, "balance_entry").await?;
        let entry = format!("{}_void_balance", inv.id);
        let values = args![
            &inv.workspace,
            &entry,
            &inv.customer,
            back,
            &inv.currency,
            "invoice_void",
            None::<&str>,
            Some(inv.id.as_str()),
            at,
            seq,
        ];
        tx.execute(sql::INSERT_BALANCE_ENTRY, values).await?;
    }
    let key = args![&inv.workspace, &inv.customer, &inv.id];
    let row = tx
        .fetch_optional(sql::CREDIT_USED_BY_INVOICE, key)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a sum returned no row".into()))?;
    let credit_used = stored_sum(&row, "credit used")?;
    if credit_used < 0 {
        let back = credit_used
            .checked_neg()
            .ok_or_else(|| overflow(format!("credit used {credit_used}")))?;
        // The ledger's counter first, as every change of the credit balance takes it.
        next_number(tx, &inv.workspace, "credit_entry").await?;
        let entry = format!("{}_void_credit", inv.id);
        let values = args![
            &inv.workspace,
            &entry,
            &inv.customer,
            back,
            &inv.currency,
            "invoice voided",
            Some(inv.id.as_str()),
            at,
        ];
        tx.execute(sql::INSERT_CREDIT_ENTRY, values).await?;
    }
    Ok(())
}

/// The next number of a kind of document in `tx` (see `sql::NEXT_NUMBER`).
async fn next_number<C: Conn>(tx: &mut C, workspace: &str, kind: &str) -> StoreResult<i64> {
    let row = tx
        .fetch_optional(sql::NEXT_NUMBER, args![workspace, kind])
        .await?
        .ok_or_else(|| StoreError::Corrupt("a counter returned no row".into()))?;
    row.int("last")
}

/// A subscription's new terms and the charges they bring, inside `tx` (see
/// [`BillingStore::change_subscription`]).
pub(crate) async fn write_subscription_change<C: Conn>(
    tx: &mut C,
    s: &crate::SubscriptionRecord,
    charges: &[PendingChargeRecord],
) -> StoreResult<()> {
    let rows = tx
        .execute(
            sql::UPDATE_SUBSCRIPTION,
            &crate::store::subscription_args(s),
        )
        .await?;
    crate::store::require_row(rows, "subscription", &s.id)?;
    for c in charges {
        tx.execute(sql::INSERT_PENDING_CHARGE, &pending_charge_args(c))
            .await
            .map_err(|e| insert_error(e, "pending charge", &c.id, "workspace", &c.workspace))?;
    }
    Ok(())
}

/// The values of `sql::INSERT_PENDING_CHARGE` (a proration alone, or with a plan change).
fn pending_charge_args(c: &PendingChargeRecord) -> [Arg<'_>; 7] {
    [
        Arg::from(&c.workspace),
        Arg::from(&c.id),
        Arg::from(&c.customer),
        Arg::from(&c.subscription),
        Arg::from(&c.charge),
        Arg::from(c.created_at),
        Arg::from(&c.invoice),
    ]
}

#[async_trait]
impl<B: Backend> BillingStore for B {
    async fn schedule_change(&self, c: &ScheduledChangeRecord) -> StoreResult<()> {
        let mut tx = self.write(&c.workspace).await?;
        tx.execute(sql::CANCEL_SCHEDULED, args![&c.workspace, &c.subscription])
            .await?;
        let values = args![
            &c.workspace,
            &c.id,
            &c.subscription,
            &c.customer,
            &c.plan,
            &c.addons,
            c.effective_at,
            c.created_at,
            c.applied_at,
        ];
        tx.execute(sql::INSERT_SCHEDULED, values)
            .await
            .map_err(|e| insert_error(e, "scheduled change", &c.id, "workspace", &c.workspace))?;
        Ok(tx.commit().await?)
    }

    async fn scheduled_change(
        &self,
        workspace: &WorkspaceId,
        subscription: &str,
    ) -> StoreResult<Option<ScheduledChangeRecord>> {
        let values = args![workspace, subscription];
        run_optional(
            self.read(workspace),
            sql::SCHEDULED,
            values,
            codec::scheduled_change,
        )
        .await
    }

    async fn mark_change_applied(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        run_execute(
            self.write(workspace),
            sql::MARK_APPLIED,
            args![at, workspace, id],
        )
        .await?;
        Ok(())
    }

    async fn insert_invoice(
        &self,
        invoice: &InvoiceRecord,
        effects: &InvoiceEffects,
    ) -> StoreResult<InvoiceInsert> {
        let pair = [(invoice.clone(), effects.clone())];
        let mut out = self
            .insert_invoices(&WorkspaceId::from(&invoice.workspace), &pair)
            .await?;
        out.pop()
            .ok_or_else(|| StoreError::Corrupt("an insert returned no outcome".into()))
    }

    async fn insert_invoices(
        &self,
        workspace: &WorkspaceId,
        invoices: &[(InvoiceRecord, InvoiceEffects)],
    ) -> StoreResult<Vec<InvoiceInsert>> {
        // A concurrent run that inserted one of these first makes the insert fail on a unique
        // key: roll back everything (the numbers too) and go again once, when it is found by
        // its key.
        for may_retry in [true, false] {
            let mut tx = self.write(workspace).await?;
            let mut outcomes = Vec::with_capacity(invoices.len());
            for (inv, effects) in invoices {
                match insert_one(&mut tx, inv, effects, may_retry).await? {
                    Some(outcome) => outcomes.push(outcome),
                    None => break,
                }
            }
            if outcomes.len() == invoices.len() {
                tx.commit().await?;
                return Ok(outcomes);
            }
        }
        Err(StoreError::Conflict(
            "invoices were inserted concurrently; retry".into(),
        ))
    }

    async fn get_invoice(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<InvoiceRecord>> {
        let values = args![workspace, id];
        run_optional(
            self.read(workspace),
            sql::INVOICE_BY_ID,
            values,
            codec::invoice,
        )
        .await
    }

    async fn list_invoices(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<InvoiceRecord>> {
        let values = args![workspace, customer];
        run_all(
            self.read(workspace),
            sql::INVOICES_OF_CUSTOMER,
            values,
            codec::invoice,
        )
        .await
    }

    async fn invoice_keys(
        &self,
        workspace: &WorkspaceId,
        subscription: &str,
    ) -> StoreResult<Vec<String>> {
        let values = args![workspace, subscription];
        let key = |r: &<B::Conn as Conn>::Row| r.text("dedupe_key");
        run_all(self.read(workspace), sql::INVOICE_KEYS, values, key).await
    }

    async fn set_invoice_status(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        from: InvoiceStatus,
        to: InvoiceStatus,
        at: Timestamp,
    ) -> StoreResult<InvoiceRecord> {
        self.set_invoice_status_with_events(workspace, id, (from, to), at, &[])
            .await
    }

    async fn set_invoice_status_with_events(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        (from, to): (InvoiceStatus, InvoiceStatus),
        at: Timestamp,
        events: &[crate::outbox::OutboxEvent],
    ) -> StoreResult<InvoiceRecord> {
        let mut tx = self.write(workspace).await?;
        let values = args![to.as_str(), at, workspace, id, from.as_str()];
        let Some(row) = tx.fetch_optional(sql::SET_INVOICE_STATUS, values).await? else {
            let exists = tx
                .fetch_optional(sql::INVOICE_BY_ID, args![workspace, id])
                .await?;
            return Err(match exists {
                Some(_) => StoreError::Conflict(format!("invoice {id:?} is not {}", from.as_str())),
                None => StoreError::NotFound {
                    kind: "invoice",
                    id: id.to_owned(),
                },
            });
        };
        let record = codec::invoice(&row)?;
        // A voided invoice never took anything: what it used comes back.
        if to == InvoiceStatus::Void {
            give_back(&mut tx, &record, at).await?;
        }
        crate::outbox::append(&mut tx, events).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn list_workspace_subscriptions(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<crate::SubscriptionRecord>> {
        let values = args![workspace];
        let session = self.read(workspace);
        run_all(
            session,
            sql::WORKSPACE_SUBSCRIPTIONS,
            values,
            codec::subscription,
        )
        .await
    }

    async fn list_workspaces(&self) -> StoreResult<Vec<crate::WorkspaceRecord>> {
        let session = self.workspace_listing();
        run_all(session, sql::WORKSPACES, args![], codec::workspace).await
    }

    async fn insert_credit_note(
        &self,
        note: &CreditNoteRecord,
        invoice_total_minor: i64,
    ) -> StoreResult<CreditNoteRecord> {
        self.insert_credit_note_with_events(note, invoice_total_minor, &[])
            .await
    }

    async fn insert_credit_note_with_events(
        &self,
        note: &CreditNoteRecord,
        invoice_total_minor: i64,
        events: &[crate::outbox::OutboxEvent],
    ) -> StoreResult<CreditNoteRecord> {
        self.insert_credit_note_lowering_due(note, invoice_total_minor, None, events)
            .await
    }

    async fn insert_credit_note_lowering_due(
        &self,
        note: &CreditNoteRecord,
        invoice_total_minor: i64,
        lower: Option<AmountDueChange>,
        events: &[crate::outbox::OutboxEvent],
    ) -> StoreResult<CreditNoteRecord> {
        if note.amount_minor <= 0 {
            return Err(StoreError::Invalid {
                code: Code::InvalidAmount,
                detail: format!(
                    "a credit note amount must be positive, not {}",
                    note.amount_minor
                ),
            });
        }
        let mut tx = self.write(&note.workspace).await?;
        // The number first: taking it locks the workspace's credit-note counter until commit,
        // so concurrent notes are checked one after another, each seeing the ones before it
        // (PostgreSQL; SQLite's writer is serial anyway). A refused note gives it back.
        let number = next_number(&mut tx, &note.workspace, "credit_note").await?;
        let row = tx
            .fetch_optional(sql::CREDITED, args![&note.workspace, &note.invoice])
            .await?
            .ok_or_else(|| StoreError::Corrupt("a sum returned no row".into()))?;
        let credited = stored_sum(&row, "credited amount")?;
        let after = credited.checked_add(note.amount_minor).ok_or_else(|| {
            overflow(format!(
                "credited {credited} plus {} exceeds a 64-bit amount",
                note.amount_minor
            ))
        })?;
        if after > invoice_total_minor {
            return Err(StoreError::Conflict(
                "credit notes would exceed the invoice total".into(),
            ));
        }
        let values = args![
            &note.workspace,
            &note.id,
            number,
            &note.invoice,
            &note.customer,
            note.amount_minor,
            &note.currency,
            &note.reason,
            note.created_at,
            note.method.as_str(),
        ];
        tx.execute(sql::INSERT_CREDIT_NOTE, values)
            .await
            .map_err(|e| insert_error(e, "credit note", &note.id, "invoice", &note.invoice))?;
        let lowered = match lower {
            Some(change) => lower_amount_due(&mut tx, note, change).await?,
            None => 0,
        };
        let to_balance = note.amount_minor - lowered;
        if note.method == CreditNoteMethod::Credit && to_balance > 0 {
            let seq = next_number(&mut tx, &note.workspace, "balance_entry").await?;
            let entry = format!("{}_balance", note.id);
            let values = args![
                &note.workspace,
                &entry,
                &note.customer,
                to_balance,
                &note.currency,
                "credit_note",
                Some(note.id.as_str()),
                Some(note.invoice.as_str()),
                note.created_at,
                seq,
            ];
            tx.execute(sql::INSERT_BALANCE_ENTRY, values).await?;
        }
        crate::outbox::append(&mut tx, events).await?;
        tx.commit().await?;
        Ok(CreditNoteRecord {
            number,
            ..note.clone()
        })
    }

    async fn list_credit_notes(
        &self,
        workspace: &WorkspaceId,
        invoice: &str,
    ) -> StoreResult<Vec<CreditNoteRecord>> {
        let values = args![workspace, invoice];
        run_all(
            self.read(workspace),
            sql::CREDIT_NOTES,
            values,
            codec::credit_note,
        )
        .await
    }

    async fn add_pending_charge(&self, c: &PendingChargeRecord) -> StoreResult<()> {
        run_execute(
            self.write(&c.workspace),
            sql::INSERT_PENDING_CHARGE,
            &pending_charge_args(c),
        )
        .await
        .map_err(|e| insert_error(e, "pending charge", &c.id, "workspace", &c.workspace))?;
        Ok(())
    }

    async fn change_subscription(
        &self,
        s: &crate::SubscriptionRecord,
        charges: &[PendingChargeRecord],
    ) -> StoreResult<()> {
        let mut tx = self.write(&s.workspace).await?;
        write_subscription_change(&mut tx, s, charges).await?;
        Ok(tx.commit().await?)
    }

    async fn pending_charges(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<PendingChargeRecord>> {
        let values = args![workspace, customer];
        run_all(
            self.read(workspace),
            sql::PENDING_CHARGES,
            values,
            codec::pending_charge,
        )
        .await
    }

    async fn add_coupon_redemption(&self, r: &CouponRedemptionRecord) -> StoreResult<()> {
        let values = args![
            &r.workspace,
            &r.id,
            &r.customer,
            &r.coupon,
            r.applied,
            r.created_at,
        ];
        run_execute(self.write(&r.workspace), sql::INSERT_REDEMPTION, values)
            .await
            .map_err(|e| insert_error(e, "coupon redemption", &r.id, "workspace", &r.workspace))?;
        Ok(())
    }

    async fn coupon_redemptions(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<CouponRedemptionRecord>> {
        let values = args![workspace, customer];
        run_all(
            self.read(workspace),
            sql::REDEMPTIONS,
            values,
            codec::redemption,
        )
        .await
    }

    async fn customer_balance(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<i64> {
        let mut tx = self.read(workspace).await?;
        let balance = customer_balance_in(&mut tx, workspace, customer).await?;
        tx.commit().await?;
        Ok(balance)
    }

    async fn balance_entries(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<BalanceEntryRecord>> {
        let values = args![workspace, customer];
        run_all(
            self.read(workspace),
            sql::BALANCE_ENTRIES,
            values,
            codec::balance_entry,
        )
        .await
    }

    async fn add_credit_entry(&self, e: &CreditEntryRecord) -> StoreResult<()> {
        let mut tx = self.write(&e.workspace).await?;
        // The balance must stay an `i64` so that every later sum of the ledger is one.
        let balance = balance_for_change(&mut tx, &e.workspace, &e.customer).await?;
        balance.checked_add(e.amount_minor).ok_or_else(|| {
            overflow(format!(
                "credit balance {balance} plus {} exceeds a 64-bit amount",
                e.amount_minor
            ))
        })?;
        let values = args![
            &e.workspace,
            &e.id,
            &e.customer,
            e.amount_minor,
            &e.currency,
            &e.reason,
            &e.invoice,
            e.created_at,
        ];
        tx.execute(sql::INSERT_CREDIT_ENTRY, values)
            .await
            .map_err(|err| insert_error(err, "credit entry", &e.id, "workspace", &e.workspace))?;
        Ok(tx.commit().await?)
    }

    async fn credit_balance(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<i64> {
        let mut tx = self.read(workspace).await?;
        let balance = balance_in(&mut tx, workspace, customer).await?;
        tx.commit().await?;
        Ok(balance)
    }

    async fn billing_chunk(
        &self,
        workspace: &WorkspaceId,
        subscriptions: &[&str],
        customers: &[&str],
    ) -> StoreResult<BillingChunk> {
        let mut out = BillingChunk::default();
        let mut tx = self.read(workspace).await?;
        for part in customers.chunks(sql::CHUNK) {
            let values = chunk_args(workspace.as_str(), &[], part);
            for row in tx.fetch_all(sql::CHUNK_CUSTOMERS.as_str(), &values).await? {
                out.customers.push(codec::customer(&row)?);
            }
            for row in tx
                .fetch_all(sql::CHUNK_CUSTOMER_PROFILES.as_str(), &values)
                .await?
            {
                out.profiles
                    .push((row.text("customer")?, row.json("profile")?));
            }
            for row in tx
                .fetch_all(sql::CHUNK_PENDING_CHARGES.as_str(), &values)
                .await?
            {
                out.pending_charges.push(codec::pending_charge(&row)?);
            }
            for row in tx
                .fetch_all(sql::CHUNK_REDEMPTIONS.as_str(), &values)
                .await?
            {
                out.redemptions.push(codec::redemption(&row)?);
            }
            for row in tx
                .fetch_all(sql::CHUNK_CREDIT_BALANCES.as_str(), &values)
                .await?
            {
                let sum = stored_sum(&row, "credit balance")?;
                out.credit_balances.push((row.text("customer")?, sum));
            }
            for row in tx
                .fetch_all(sql::CHUNK_CUSTOMER_BALANCES.as_str(), &values)
                .await?
            {
                let sum = stored_sum(&row, "customer balance")?;
                out.customer_balances.push((row.text("customer")?, sum));
            }
        }
        for part in subscriptions.chunks(sql::CHUNK) {
            let values = chunk_args(workspace.as_str(), &[], part);
            for row in tx
                .fetch_all(sql::CHUNK_INVOICE_KEYS.as_str(), &values)
                .await?
            {
                out.invoice_keys
                    .push((row.text("subscription")?, row.text("dedupe_key")?));
            }
            for row in tx.fetch_all(sql::CHUNK_SCHEDULED.as_str(), &values).await? {
                out.scheduled.push(codec::scheduled_change(&row)?);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn begin_bill_pass(&self, workspace: &WorkspaceId) -> StoreResult<BillPass> {
        // The number first, alone: a run that begins while another claims gets its number at
        // once, not after the other's rows are in, so the claims the other takes from then on
        // count for it too.
        let mut tx = self.write(workspace).await?;
        let number = next_number(&mut tx, workspace, "bill_run").await?;
        tx.commit().await?;
        let mut tx = self.write(workspace).await?;
        tx.execute(sql::BILL_PASS_CLAIM_ROWS, args![workspace])
            .await?;
        let subscriptions = tx
            .fetch_optional(sql::COUNT_WORKSPACE_SUBSCRIPTIONS, args![workspace])
            .await?
            .ok_or_else(|| StoreError::Corrupt("a count returned no row".into()))?
            .int("n")?;
        tx.commit().await?;
        Ok(BillPass {
            number,
            subscriptions,
        })
    }

    async fn claim_bill_customers(
        &self,
        workspace: &WorkspaceId,
        pass: i64,
        lease: &crate::jobs::Lease,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let claim = if B::NAME == "postgres" {
            sql::CLAIM_BILL_CUSTOMERS_SKIP_LOCKED
        } else {
            sql::CLAIM_BILL_CUSTOMERS
        };
        let values = args![
            workspace,
            pass,
            &lease.worker,
            lease.now,
            limit,
            lease.until,
            after
        ];
        let customer = |r: &<B::Conn as Conn>::Row| r.text("customer");
        let mut claimed = run_all(self.write(workspace), claim, values, customer).await?;
        claimed.sort_unstable();
        Ok(claimed)
    }

    async fn release_bill_customers(
        &self,
        workspace: &WorkspaceId,
        worker: &str,
        customers: &[String],
    ) -> StoreResult<()> {
        if customers.is_empty() {
            return Ok(());
        }
        let mut tx = self.write(workspace).await?;
        let ids: Vec<&str> = customers.iter().map(String::as_str).collect();
        for part in ids.chunks(sql::CHUNK) {
            let values = chunk_args(workspace.as_str(), &[Arg::from(worker)], part);
            tx.execute(sql::RELEASE_BILL_CUSTOMERS.as_str(), &values)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn bill_pass_remaining(&self, workspace: &WorkspaceId, pass: i64) -> StoreResult<i64> {
        let count = |r: &<B::Conn as Conn>::Row| r.int("n");
        run_optional(
            self.read(workspace),
            sql::BILL_PASS_REMAINING,
            args![workspace, pass],
            count,
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("a count returned no row".into()))
    }

    async fn subscriptions_of_customers(
        &self,
        workspace: &WorkspaceId,
        customers: &[String],
    ) -> StoreResult<Vec<crate::SubscriptionRecord>> {
        let mut out = Vec::new();
        let mut ids: Vec<&str> = customers.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut tx = self.read(workspace).await?;
        for part in ids.chunks(sql::CHUNK) {
            let values = chunk_args(workspace.as_str(), &[], part);
            for row in tx
                .fetch_all(sql::CHUNK_SUBSCRIPTIONS_OF_CUSTOMERS.as_str(), &values)
                .await?
            {
                out.push(codec::subscription(&row)?);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn chunk_aggregates(
        &self,
        workspace: &WorkspaceId,
        customers: &[&str],
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<(String, crate::AggregateRow)>> {
        let mut out = Vec::new();
        let mut tx = self.read(workspace).await?;
        for part in customers.chunks(sql::CHUNK) {
            let values = chunk_args(workspace.as_str(), &[Arg::from(from), Arg::from(to)], part);
            for row in tx
                .fetch_all(sql::CHUNK_AGGREGATES.as_str(), &values)
                .await?
            {
                out.push((row.text("customer")?, codec::aggregate(&row)?));
            }
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// The values of a chunked read: the workspace, `fixed`, then `part` padded to `sql::CHUNK`
/// with its last value (a repeated value in `IN (...)` matches nothing more).
fn chunk_args<'a>(workspace: &'a str, fixed: &[Arg<'a>], part: &[&'a str]) -> Vec<Arg<'a>> {
    let mut values = Vec::with_capacity(1 + fixed.len() + sql::CHUNK);
    values.push(Arg::from(workspace));
    values.extend_from_slice(fixed);
    let last = part.last().copied().unwrap_or_default();
    values.extend(
        part.iter()
            .copied()
            .chain(std::iter::repeat(last))
            .take(sql::CHUNK)
            .map(Arg::from),
    );
    values
}
