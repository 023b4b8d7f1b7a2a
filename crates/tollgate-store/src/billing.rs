//! Persistence of money documents: invoices with gapless numbers, credit notes, prepaid credit,
//! coupon redemptions and pending charges (prorations waiting for the next invoice).
//!
//! The rules live in `tollgate-core::pricing`; this trait only stores their results, atomically:
//! an invoice, its number, the credit it used and the pending charges it consumed are written in
//! one transaction, so a crash or a re-run never leaves a duplicate, a gap or a half-paid invoice.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::StoreResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Void,
    Uncollectible,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
            InvoiceStatus::Uncollectible => "uncollectible",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => InvoiceStatus::Draft,
            "open" => InvoiceStatus::Open,
            "paid" => InvoiceStatus::Paid,
            "void" => InvoiceStatus::Void,
            "uncollectible" => InvoiceStatus::Uncollectible,
            _ => return None,
        })
    }
}

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
    /// Pending charges the invoice billed: marked as invoiced.
    pub pending_charges: Vec<String>,
    /// Coupon redemptions the invoice used: their `applied` count goes up by one.
    pub coupon_redemptions: Vec<String>,
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

#[async_trait]
pub trait BillingStore: Send + Sync {
    /// Schedules a plan change, replacing any not yet applied for the same subscription.
    async fn schedule_change(&self, change: &ScheduledChangeRecord) -> StoreResult<()>;
    /// The change not yet applied of a subscription, if any.
    async fn scheduled_change(
        &self,
        workspace: &str,
        subscription: &str,
    ) -> StoreResult<Option<ScheduledChangeRecord>>;
    async fn mark_change_applied(
        &self,
        workspace: &str,
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
        workspace: &str,
        invoices: &[(InvoiceRecord, InvoiceEffects)],
    ) -> StoreResult<Vec<InvoiceInsert>>;
    async fn get_invoice(&self, workspace: &str, id: &str) -> StoreResult<Option<InvoiceRecord>>;
    /// A customer's invoices, oldest first.
    async fn list_invoices(
        &self,
        workspace: &str,
        customer: &str,
    ) -> StoreResult<Vec<InvoiceRecord>>;
    /// Dedupe keys of a subscription's invoices (the bill run skips these periods).
    async fn invoice_keys(&self, workspace: &str, subscription: &str) -> StoreResult<Vec<String>>;
    /// Moves an invoice from `from` to `to` (compare-and-set); `Conflict` if it is not in `from`.
    async fn set_invoice_status(
        &self,
        workspace: &str,
        id: &str,
        from: InvoiceStatus,
        to: InvoiceStatus,
        at: Timestamp,
    ) -> StoreResult<InvoiceRecord>;
    /// Every subscription of a workspace (the bill run's worklist).
    async fn list_workspace_subscriptions(
        &self,
        workspace: &str,
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
        workspace: &str,
        invoice: &str,
    ) -> StoreResult<Vec<CreditNoteRecord>>;

    async fn add_pending_charge(&self, charge: &PendingChargeRecord) -> StoreResult<()>;
    /// Charges not yet invoiced, oldest first.
    async fn pending_charges(
        &self,
        workspace: &str,
        customer: &str,
    ) -> StoreResult<Vec<PendingChargeRecord>>;

    async fn add_coupon_redemption(&self, redemption: &CouponRedemptionRecord) -> StoreResult<()>;
    async fn coupon_redemptions(
        &self,
        workspace: &str,
        customer: &str,
    ) -> StoreResult<Vec<CouponRedemptionRecord>>;

    /// Adds a credit grant (or correction) to the ledger.
    async fn add_credit_entry(&self, entry: &CreditEntryRecord) -> StoreResult<()>;
    /// The sum of the customer's credit ledger, in minor units.
    async fn credit_balance(&self, workspace: &str, customer: &str) -> StoreResult<i64>;
}

/// Statements shared by both backends: written with `$N` placeholders in order of first use,
/// which SQLite reads as named parameters numbered the same way.
pub(crate) mod sql {
    macro_rules! invoice_cols {
        () => {
            "workspace, id, number, customer, subscription, dedupe_key, status, currency, period_start, \
             period_end, total_minor, credit_applied_minor, amount_due_minor, document, created_at, paid_at, voided_at"
        };
    }
    macro_rules! credit_note_cols {
        () => {
            "workspace, id, number, invoice, customer, amount_minor, currency, reason, created_at"
        };
    }

    pub const INVOICE_BY_KEY: &str = concat!(
        "SELECT ",
        invoice_cols!(),
        " FROM invoices WHERE workspace = $1 AND dedupe_key = $2"
    );
    pub const INVOICE_BY_ID: &str = concat!(
        "SELECT ",
        invoice_cols!(),
        " FROM invoices WHERE workspace = $1 AND id = $2"
    );
    pub const INVOICES_OF_CUSTOMER: &str = concat!(
        "SELECT ",
        invoice_cols!(),
        " FROM invoices WHERE workspace = $1 AND customer = $2 ORDER BY number"
    );
    pub const INVOICE_KEYS: &str =
        "SELECT dedupe_key FROM invoices WHERE workspace = $1 AND subscription = $2";
    /// The next number of a kind of document, in the caller's transaction: a rolled-back
    /// transaction gives its number back, so numbers stay gapless.
    pub const NEXT_NUMBER: &str = "INSERT INTO document_counters (workspace, kind, last) VALUES ($1, $2, 1) \
         ON CONFLICT (workspace, kind) DO UPDATE SET last = document_counters.last + 1 RETURNING last";
    pub const INSERT_INVOICE: &str = concat!(
        "INSERT INTO invoices (",
        invoice_cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    );
    pub const SET_INVOICE_STATUS: &str = concat!(
        "UPDATE invoices SET status = $1, \
         paid_at = CASE WHEN $1 = 'paid' THEN $2 ELSE paid_at END, \
         voided_at = CASE WHEN $1 = 'void' THEN $2 ELSE voided_at END \
         WHERE workspace = $3 AND id = $4 AND status = $5 RETURNING ",
        invoice_cols!()
    );
    pub const CREDIT_BALANCE: &str = "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS balance FROM credit_entries WHERE workspace = $1 AND customer = $2";
    pub const INSERT_CREDIT_ENTRY: &str = "INSERT INTO credit_entries \
         (workspace, id, customer, amount_minor, currency, reason, invoice, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    pub const BILL_PENDING_CHARGE: &str = "UPDATE pending_charges SET invoice = $1 WHERE workspace = $2 AND id = $3 AND invoice IS NULL";
    pub const COUNT_COUPON_USE: &str =
        "UPDATE coupon_redemptions SET applied = applied + 1 WHERE workspace = $1 AND id = $2";
    pub const CREDITED: &str = "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS credited FROM credit_notes WHERE workspace = $1 AND invoice = $2";
    pub const INSERT_CREDIT_NOTE: &str = concat!(
        "INSERT INTO credit_notes (",
        credit_note_cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    pub const CREDIT_NOTES: &str = concat!(
        "SELECT ",
        credit_note_cols!(),
        " FROM credit_notes WHERE workspace = $1 AND invoice = $2 ORDER BY number"
    );
    pub const INSERT_PENDING_CHARGE: &str = "INSERT INTO pending_charges \
         (workspace, id, customer, subscription, charge, created_at, invoice) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    pub const PENDING_CHARGES: &str = "SELECT workspace, id, customer, subscription, charge, created_at, invoice \
         FROM pending_charges WHERE workspace = $1 AND customer = $2 AND invoice IS NULL ORDER BY created_at, id";
    pub const INSERT_REDEMPTION: &str = "INSERT INTO coupon_redemptions \
         (workspace, id, customer, coupon, applied, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
    pub const REDEMPTIONS: &str = "SELECT workspace, id, customer, coupon, applied, created_at \
         FROM coupon_redemptions WHERE workspace = $1 AND customer = $2 ORDER BY created_at, id";
    pub const WORKSPACE_SUBSCRIPTIONS: &str = "SELECT workspace, id, customer, plan, catalog_version, status, CAST(addons AS TEXT) AS addons, \
         started_at, billing_anchor, trial_end, canceled_at, ends_at FROM subscriptions WHERE workspace = $1 ORDER BY id";
    pub const CANCEL_SCHEDULED: &str = "DELETE FROM scheduled_changes WHERE workspace = $1 AND subscription = $2 AND applied_at IS NULL";
    pub const INSERT_SCHEDULED: &str = "INSERT INTO scheduled_changes \
         (workspace, id, subscription, customer, plan, addons, effective_at, created_at, applied_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    pub const SCHEDULED: &str = "SELECT workspace, id, subscription, customer, plan, addons, effective_at, created_at, applied_at \
         FROM scheduled_changes WHERE workspace = $1 AND subscription = $2 AND applied_at IS NULL";
    pub const MARK_APPLIED: &str =
        "UPDATE scheduled_changes SET applied_at = $1 WHERE workspace = $2 AND id = $3";
    pub const WORKSPACES: &str =
        "SELECT workspace, name, created_at FROM workspaces ORDER BY workspace";
}

/// Row decoders shared by both backends.
pub(crate) mod decode {
    use super::*;
    use crate::codec::Columns;

    pub fn invoice(r: &impl Columns) -> StoreResult<InvoiceRecord> {
        let status = r.text("status")?;
        Ok(InvoiceRecord {
            workspace: r.text("workspace")?,
            id: r.text("id")?,
            number: r.int("number")?,
            customer: r.text("customer")?,
            subscription: r.opt_text("subscription")?,
            dedupe_key: r.text("dedupe_key")?,
            status: InvoiceStatus::parse(&status).ok_or_else(|| {
                crate::StoreError::Corrupt(format!("unknown invoice status {status:?}"))
            })?,
            currency: r.text("currency")?,
            period_start: r.opt_time("period_start")?,
            period_end: r.opt_time("period_end")?,
            total_minor: r.int("total_minor")?,
            credit_applied_minor: r.int("credit_applied_minor")?,
            amount_due_minor: r.int("amount_due_minor")?,
            document: crate::codec::json(&r.text("document")?)?,
            created_at: r.time("created_at")?,
            paid_at: r.opt_time("paid_at")?,
            voided_at: r.opt_time("voided_at")?,
        })
    }

    pub fn credit_note(r: &impl Columns) -> StoreResult<CreditNoteRecord> {
        Ok(CreditNoteRecord {
            workspace: r.text("workspace")?,
            id: r.text("id")?,
            number: r.int("number")?,
            invoice: r.text("invoice")?,
            customer: r.text("customer")?,
            amount_minor: r.int("amount_minor")?,
            currency: r.text("currency")?,
            reason: r.opt_text("reason")?,
            created_at: r.time("created_at")?,
        })
    }

    pub fn pending_charge(r: &impl Columns) -> StoreResult<PendingChargeRecord> {
        Ok(PendingChargeRecord {
            workspace: r.text("workspace")?,
            id: r.text("id")?,
            customer: r.text("customer")?,
            subscription: r.opt_text("subscription")?,
            charge: crate::codec::json(&r.text("charge")?)?,
            created_at: r.time("created_at")?,
            invoice: r.opt_text("invoice")?,
        })
    }

    pub fn scheduled_change(r: &impl Columns) -> StoreResult<ScheduledChangeRecord> {
        Ok(ScheduledChangeRecord {
            workspace: r.text("workspace")?,
            id: r.text("id")?,
            subscription: r.text("subscription")?,
            customer: r.text("customer")?,
            plan: r.text("plan")?,
            addons: crate::codec::json(&r.text("addons")?)?,
            effective_at: r.time("effective_at")?,
            created_at: r.time("created_at")?,
            applied_at: r.opt_time("applied_at")?,
        })
    }

    pub fn redemption(r: &impl Columns) -> StoreResult<CouponRedemptionRecord> {
        Ok(CouponRedemptionRecord {
            workspace: r.text("workspace")?,
            id: r.text("id")?,
            customer: r.text("customer")?,
            coupon: r.text("coupon")?,
            applied: r.int("applied")?,
            created_at: r.time("created_at")?,
        })
    }
}

/// Implements [`BillingStore`] for a backend, given how it opens a write transaction, a read
/// transaction (both scoped to a workspace) and an unscoped one. The statements are shared.
macro_rules! impl_billing_store {
    ($store:ty, write: |$w:ident, $ww:ident| $write:expr, read: |$r:ident, $rw:ident| $read:expr, unscoped: |$u:ident| $unscoped:expr $(,)?) => {
        #[async_trait::async_trait]
        impl $crate::billing::BillingStore for $store {
            async fn schedule_change(
                &self,
                c: &$crate::billing::ScheduledChangeRecord,
            ) -> $crate::StoreResult<()> {
                use $crate::billing::sql;
                let mut tx = {
                    let $w = self;
                    let $ww = c.workspace.as_str();
                    $write
                }
                .await?;
                sqlx::query(sql::CANCEL_SCHEDULED)
                    .bind(&c.workspace)
                    .bind(&c.subscription)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::INSERT_SCHEDULED)
                    .bind(&c.workspace)
                    .bind(&c.id)
                    .bind(&c.subscription)
                    .bind(&c.customer)
                    .bind(&c.plan)
                    .bind($crate::codec::json_text(&c.addons))
                    .bind($crate::codec::micros(c.effective_at))
                    .bind($crate::codec::micros(c.created_at))
                    .bind($crate::codec::opt_micros(c.applied_at))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn scheduled_change(
                &self,
                workspace: &str,
                subscription: &str,
            ) -> $crate::StoreResult<Option<$crate::billing::ScheduledChangeRecord>> {
                let mut tx = {
                    let $r = self;
                    let $rw = workspace;
                    $read
                }
                .await?;
                let row = sqlx::query($crate::billing::sql::SCHEDULED)
                    .bind(workspace)
                    .bind(subscription)
                    .fetch_optional(&mut *tx)
                    .await?;
                row.map(|r| $crate::billing::decode::scheduled_change(&r))
                    .transpose()
            }

            async fn mark_change_applied(
                &self,
                workspace: &str,
                id: &str,
                at: jiff::Timestamp,
            ) -> $crate::StoreResult<()> {
                let mut tx = {
                    let $w = self;
                    let $ww = workspace;
                    $write
                }
                .await?;
                sqlx::query($crate::billing::sql::MARK_APPLIED)
                    .bind($crate::codec::micros(at))
                    .bind(workspace)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn insert_invoice(
                &self,
                inv: &$crate::billing::InvoiceRecord,
                effects: &$crate::billing::InvoiceEffects,
            ) -> $crate::StoreResult<$crate::billing::InvoiceInsert> {
                let pair = [(inv.clone(), effects.clone())];
                let mut out = self.insert_invoices(&inv.workspace, &pair).await?;
                Ok(out.remove(0))
            }

            async fn insert_invoices(
                &self,
                workspace: &str,
                invoices: &[(
                    $crate::billing::InvoiceRecord,
                    $crate::billing::InvoiceEffects,
                )],
            ) -> $crate::StoreResult<Vec<$crate::billing::InvoiceInsert>> {
                use $crate::billing::{InvoiceInsert, decode, sql};
                use $crate::codec::{json_text, micros, opt_micros};
                for attempt in 0..2 {
                    let mut tx = {
                        let $w = self;
                        let $ww = workspace;
                        $write
                    }
                    .await?;
                    let mut outcomes = Vec::with_capacity(invoices.len());
                    let mut raced = false;
                    for (inv, effects) in invoices {
                        if let Some(row) = sqlx::query(sql::INVOICE_BY_KEY)
                            .bind(&inv.workspace)
                            .bind(&inv.dedupe_key)
                            .fetch_optional(&mut *tx)
                            .await?
                        {
                            outcomes.push(InvoiceInsert::Exists(decode::invoice(&row)?));
                            continue;
                        }
                        let number: i64 = sqlx::Row::try_get(
                            &sqlx::query(sql::NEXT_NUMBER)
                                .bind(&inv.workspace)
                                .bind("invoice")
                                .fetch_one(&mut *tx)
                                .await?,
                            "last",
                        )?;
                        let inserted = sqlx::query(sql::INSERT_INVOICE)
                            .bind(&inv.workspace)
                            .bind(&inv.id)
                            .bind(number)
                            .bind(&inv.customer)
                            .bind(inv.subscription.as_deref())
                            .bind(&inv.dedupe_key)
                            .bind(inv.status.as_str())
                            .bind(&inv.currency)
                            .bind(opt_micros(inv.period_start))
                            .bind(opt_micros(inv.period_end))
                            .bind(inv.total_minor)
                            .bind(inv.credit_applied_minor)
                            .bind(inv.amount_due_minor)
                            .bind(json_text(&inv.document))
                            .bind(micros(inv.created_at))
                            .bind(opt_micros(inv.paid_at))
                            .bind(opt_micros(inv.voided_at))
                            .execute(&mut *tx)
                            .await;
                        if let Err(sqlx::Error::Database(db)) = &inserted {
                            if db.kind() == sqlx::error::ErrorKind::UniqueViolation {
                                // A concurrent run inserted one first: roll back everything (the
                                // numbers too) and go again; this time it is found by its key.
                                raced = true;
                                break;
                            }
                        }
                        inserted.map_err(|e| {
                            $crate::codec::insert_error(
                                e,
                                "invoice",
                                &inv.id,
                                "customer",
                                &inv.customer,
                            )
                        })?;
                        if effects.credit_used_minor > 0 {
                            let balance: i64 = sqlx::Row::try_get(
                                &sqlx::query(sql::CREDIT_BALANCE)
                                    .bind(&inv.workspace)
                                    .bind(&inv.customer)
                                    .fetch_one(&mut *tx)
                                    .await?,
                                "balance",
                            )?;
                            if balance < effects.credit_used_minor {
                                return Err($crate::StoreError::Conflict(format!(
                                    "credit balance {balance} does not cover {}",
                                    effects.credit_used_minor
                                )));
                            }
                            sqlx::query(sql::INSERT_CREDIT_ENTRY)
                                .bind(&inv.workspace)
                                .bind(format!("{}_credit", inv.id))
                                .bind(&inv.customer)
                                .bind(-effects.credit_used_minor)
                                .bind(&inv.currency)
                                .bind("applied to invoice")
                                .bind(Some(inv.id.as_str()))
                                .bind(micros(inv.created_at))
                                .execute(&mut *tx)
                                .await?;
                        }
                        for id in &effects.pending_charges {
                            sqlx::query(sql::BILL_PENDING_CHARGE)
                                .bind(&inv.id)
                                .bind(&inv.workspace)
                                .bind(id)
                                .execute(&mut *tx)
                                .await?;
                        }
                        for id in &effects.coupon_redemptions {
                            sqlx::query(sql::COUNT_COUPON_USE)
                                .bind(&inv.workspace)
                                .bind(id)
                                .execute(&mut *tx)
                                .await?;
                        }
                        outcomes.push(InvoiceInsert::Created($crate::billing::InvoiceRecord {
                            number,
                            ..inv.clone()
                        }));
                    }
                    if raced && attempt == 0 {
                        drop(tx);
                        continue;
                    }
                    if raced {
                        return Err($crate::StoreError::Conflict(
                            "invoices were inserted concurrently; retry".into(),
                        ));
                    }
                    tx.commit().await?;
                    return Ok(outcomes);
                }
                unreachable!("the loop returns on its second attempt")
            }

            async fn get_invoice(
                &self,
                workspace: &str,
                id: &str,
            ) -> $crate::StoreResult<Option<$crate::billing::InvoiceRecord>> {
                let mut tx = {
                    let $r = self;
                    let $rw = workspace;
                    $read
                }
                .await?;
                let row = sqlx::query($crate::billing::sql::INVOICE_BY_ID)
                    .bind(workspace)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                row.map(|r| $crate::billing::decode::invoice(&r))
                    .transpose()
            }

            async fn list_invoices(
                &self,
                workspace: &str,
                customer: &str,
            ) -> $crate::StoreResult<Vec<$crate::billing::InvoiceRecord>> {
                let mut tx = {
                    let $r = self;
                    let $rw = workspace;
                    $read
                }
                .await?;
                let rows = sqlx::query($crate::billing::sql::INVOICES_OF_CUSTOMER)
                    .bind(workspace)
                    .bind(customer)
                    .fetch_all(&mut *tx)
                    .await?;
                rows.iter().map($crate::billing::decode::invoice).collect()
            }

            async fn invoice_keys(
                &self,
                workspace: &str,
                subscription: &str,
            ) -> $crate::StoreResult<Vec<String>> {
                let mut tx = {
                    let $r = self;
                    let $rw = workspace;
                    $read
                }
                .await?;
                let rows = sqlx::query($crate::billing::sql::INVOICE_KEYS)
                    .bind(workspace)
                    .bind(subscription)
                    .fetch_all(&mut *tx)
                    .await?;
                rows.iter()
                    .map(|r| Ok(sqlx::Row::try_get::<String, _>(r, "dedupe_key")?))
                    .collect()
            }

            async fn set_invoice_status(
                &self,
                workspace: &str,
                id: &str,
                from: $crate::billing::InvoiceStatus,
                to: $crate::billing::InvoiceStatus,
                at: jiff::Timestamp,
            ) -> $crate::StoreResult<$crate::billing::InvoiceRecord> {
                let mut tx = {
                    let $w = self;
                    let $ww = workspace;
                    $write
                }
                .await?;
                let row = sqlx::query($crate::billing::sql::SET_INVOICE_STATUS)
                    .bind(to.as_str())
                    .bind($crate::codec::micros(at))
                    .bind(workspace)
                    .bind(id)
                    .bind(from.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else {
                    let exists = sqlx::query($crate::billing::sql::INVOICE_BY_ID)
                        .bind(workspace)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    return Err(match exists {
                        Some(_) => $crate::StoreError::Conflict(format!(
                            "invoice {id:?} is not {}",
                            from.as_str()
                        )),
                        None => $crate::StoreError::NotFound {
                            kind: "invoice",
                            id: id.to_owned(),
                        },
                    });
                };
                let record = $crate::billing::decode::invoice(&row)?;
                tx.commit().await?;
                Ok(record)
            }

            async fn list_workspace_subscriptions(
                &self,
                workspace: &str,
            ) -> $crate::StoreResult<Vec<$crate::SubscriptionRecord>> {
                let mut tx = {
                    let $r = self;
                    let $rw = workspace;
                    $read
                }
                .await?;
                let rows = sqlx::query($crate::billing::sql::WORKSPACE_SUBSCRIPTIONS)
                    .bind(workspace)
                    .fetch_all(&mut *tx)
                    .await?;
                rows.iter().map($crate::codec::subscription).collect()
            }

            async fn list_workspaces(&self) -> $crate::StoreResult<Vec<$crate::WorkspaceRecord>> {
                let mut tx = {
                    let $u = self;
                    $unscoped
                }
                .await?;
                let rows = sqlx::query($crate::billing::sql::WORKSPACES)
                    .fetch_all(&mut *tx)
                    .await?;
                rows.iter().map($crate::codec::workspace).collect()
            }

            async fn insert_credit_note(
                &self,
                note: &$crate::billing::CreditNoteRecord,
                invoice_total_minor: i64,
            ) -> $crate::StoreResult<$crate::billing::CreditNoteRecord> {
                use $crate::billing::sql;
                let mut tx = {
                    let $w = self;
                    let $ww = note.workspace.as_str();
                    $write
                }
                .await?;
                let credited: i64 = sqlx::Row::try_get(
                    &sqlx::query(sql::CREDITED)
                        .bind(&note.workspace)
                        .bind(&note.invoice)
                        .fetch_one(&mut *tx)
                        .await?,
                    "credited",
                )?;
                if credited + note.amount_minor > invoice_total_minor {
                    return Err($crate::StoreError::Conflict(
                        "credit notes would exceed the invoice total".into(),
                    ));
                }
                let number: i64 = sqlx::Row::try_get(
                    &sqlx::query(sql::NEXT_NUMBER)
                        .bind(&note.workspace)
                        .bind("credit_note")
                        .fetch_one(&mut *tx)
                        .await?,
                    "last",
                )?;
                sqlx::query(sql::INSERT_CREDIT_NOTE)
                    .bind(&note.workspace)
                    .bind(&note.id)
                    .bind(number)
                    .bind(&note.invoice)
                    .bind(&note.customer)
                    .bind(note.amount_minor)
                    .bind(&note.currency)
                    .bind(note.reason.as_deref())
                    .bind($crate::codec::micros(note.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        $crate::codec::insert_error(
                            e,
                            "credit note",
                            &note.id,
                            "invoice",
                            &note.invoice,
                        )
                    })?;
                tx.commit().await?;
                Ok($crate::billing::CreditNoteRecord {
                    number,
                    ..note.clone()
                })
            }

            async fn list_credit_notes(
                &self,
                workspace: &str,
                invoice: &str,
            ) -> $crate::StoreResult<Vec<$crate::billing::CreditNoteRecord>> {
                let mut tx = {
                    let $r = self;
                    let $rw = workspace;
                    $read
                }
                .await?;
                let rows = sqlx::query($crate::billing::sql::CREDIT_NOTES)
                    .bind(workspace)
                    .bind(invoice)
                    .fetch_all(&mut *tx)
                    .await?;
                rows.iter()
                    .map($crate::billing::decode::credit_note)
                    .collect()
            }

            async fn add_pending_charge(
                &self,
                c: &$crate::billing::PendingChargeRecord,
            ) -> $crate::StoreResult<()> {
                let mut tx = {
                    let $w = self;
                    let $ww = c.workspace.as_str();
                    $write
                }
                .await?;
                sqlx::query($crate::billing::sql::INSERT_PENDING_CHARGE)
                    .bind(&c.workspace)
                    .bind(&c.id)
                    .bind(&c.customer)
                    .bind(c.subscription.as_deref())
                    .bind($crate::codec::json_text(&c.charge))
                    .bind($crate::codec::micros(c.created_at))
                    .bind(c.invoice.as_deref())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn pending_charges(
                &self,
                workspace: &str,
                customer: &str,
            ) -> $crate::StoreResult<Vec<$crate::billing::PendingChargeRecord>> {
                let mut tx = {
                    let $r = self;
                    let $rw = workspace;
                    $read
                }
                .await?;
                let rows = sqlx::query($crate::billing::sql::PENDING_CHARGES)
                    .bind(workspace)
                    .bind(customer)
                    .fetch_all(&mut *tx)
                    .await?;
                rows.iter()
                    .map($crate::billing::decode::pending_charge)
                    .collect()
            }

            async fn add_coupon_redemption(
                &self,
                r: &$crate::billing::CouponRedemptionRecord,
            ) -> $crate::StoreResult<()> {
                let mut tx = {
                    let $w = self;
                    let $ww = r.workspace.as_str();
                    $write
                }
                .await?;
                sqlx::query($crate::billing::sql::INSERT_REDEMPTION)
                    .bind(&r.workspace)
                    .bind(&r.id)
                    .bind(&r.customer)
                    .bind(&r.coupon)
                    .bind(r.applied)
                    .bind($crate::codec::micros(r.created_at))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn coupon_redemptions(
                &self,
                workspace: &str,
                customer: &str,
            ) -> $crate::StoreResult<Vec<$crate::billing::CouponRedemptionRecord>> {
                let mut tx = {
                    let $r = self;
                    let $rw = workspace;
                    $read
                }
                .await?;
                let rows = sqlx::query($crate::billing::sql::REDEMPTIONS)
                    .bind(workspace)
                    .bind(customer)
                    .fetch_all(&mut *tx)
                    .await?;
                rows.iter()
                    .map($crate::billing::decode::redemption)
                    .collect()
            }

            async fn add_credit_entry(
                &self,
                e: &$crate::billing::CreditEntryRecord,
            ) -> $crate::StoreResult<()> {
                let mut tx = {
                    let $w = self;
                    let $ww = e.workspace.as_str();
                    $write
                }
                .await?;
                sqlx::query($crate::billing::sql::INSERT_CREDIT_ENTRY)
                    .bind(&e.workspace)
                    .bind(&e.id)
                    .bind(&e.customer)
                    .bind(e.amount_minor)
                    .bind(&e.currency)
                    .bind(&e.reason)
                    .bind(e.invoice.as_deref())
                    .bind($crate::codec::micros(e.created_at))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn credit_balance(
                &self,
                workspace: &str,
                customer: &str,
            ) -> $crate::StoreResult<i64> {
                let mut tx = {
                    let $r = self;
                    let $rw = workspace;
                    $read
                }
                .await?;
                let row = sqlx::query($crate::billing::sql::CREDIT_BALANCE)
                    .bind(workspace)
                    .bind(customer)
                    .fetch_one(&mut *tx)
                    .await?;
                Ok(sqlx::Row::try_get(&row, "balance")?)
            }
        }
    };
}
pub(crate) use impl_billing_store;
