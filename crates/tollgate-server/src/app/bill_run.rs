//! The bill run: for every subscription of a workspace, end trials that are over, then finalize
//! every invoice it owes up to now (on its customer's clock), each exactly once.
//!
//! Each invoice is written in its own transaction with its number (or with others of a batch
//! that have no side effects), so a crash mid-run loses at most the invoices in flight, and a
//! re-run (or a concurrent one) finds the invoices already written by their keys: no
//! duplicate, no gap.
//!
//! What an invoice reads (customer, profile, invoice keys, scheduled change, aggregates,
//! pending charges, coupons, credit and balance) is read for a chunk of subscriptions at once,
//! one query per kind ([`Chunk`]); a customer whose rows the run changed since (an invoice
//! that used credit, a trial that ended...) is read again, alone, as before.
//!
//! The work is split by customer: workers claim chunks of customers (on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, so several workers of a node, and several nodes running a bill
//! run at the same moment, take disjoint ones) and write one chunk while they read and rate
//! the next ([`pipeline`]). A customer's subscriptions are billed by one worker, in order. A
//! row read ahead may change before the write (an API call bills a pending charge, uses the
//! credit): the store refuses such a write (`Conflict`), and the subscription is billed again
//! from fresh reads.

mod pipeline;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tollgate_core::ids::WorkspaceId;

use serde::Serialize;
use tollgate_core::schedule::DueInvoice;
use tollgate_store::billing::{
    CouponRedemptionRecord, InvoiceEffects, InvoiceInsert, InvoiceRecord, PendingChargeRecord,
    ScheduledChangeRecord,
};
use tollgate_store::{AggregateRow, CustomerRecord, SubscriptionRecord, SubscriptionStatus};

use crate::billing::invoices::{Known, build_due_invoice, build_due_invoice_with, record, terms};
use crate::billing::profiles::SellerProfile;
use crate::engine::Engine;
use crate::error::AppResult;

#[derive(Debug, Default, Clone, Serialize, utoipa::ToSchema)]
pub struct BillRunReport {
    pub subscriptions: usize,
    pub trials_ended: usize,
    pub invoices_created: usize,
    /// Invoices that were already there (a re-run or a concurrent run).
    pub invoices_existing: usize,
    /// Ids of the invoices this run created.
    pub created: Vec<String>,
    pub errors: Vec<BillRunError>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BillRunError {
    pub subscription: String,
    pub customer: String,
    pub code: String,
    pub message: String,
}

/// How a bill run is run: `--bill-run-workers` (docs/OPERATIONS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillRunOptions {
    /// Workers that claim chunks of customers at once, each a read-and-rate -> write pipeline
    /// of its own, on PostgreSQL. SQLite has one writer, so one worker (its pipeline still
    /// reads the next chunk while the last one is written).
    pub workers: std::num::NonZeroUsize,
}

impl BillRunOptions {
    /// The most workers a run may have: each holds up to two of the pool's connections.
    pub const MAX_WORKERS: usize = 8;
}

impl Default for BillRunOptions {
    fn default() -> Self {
        BillRunOptions {
            workers: std::num::NonZeroUsize::MIN,
        }
    }
}

impl BillRunReport {
    /// Adds what a chunk's report counted.
    fn absorb(&mut self, part: BillRunReport) {
        self.subscriptions += part.subscriptions;
        self.trials_ended += part.trials_ended;
        self.invoices_created += part.invoices_created;
        self.invoices_existing += part.invoices_existing;
        self.created.extend(part.created);
        self.errors.extend(part.errors);
    }
}

/// Runs billing for one workspace. `progress(done, total, report so far)` is called after each
/// chunk of subscriptions is written; `total` is every subscription of the workspace, `done`
/// those this run billed (another run at the same moment, on this node or another, bills the
/// others: each customer is claimed by one, see [`pipeline`]).
pub async fn bill_run(
    engine: &Arc<Engine>,
    workspace: &str,
    options: BillRunOptions,
    progress: &(dyn Fn(usize, usize, &BillRunReport) + Send + Sync),
) -> AppResult<BillRunReport> {
    bill_run_with(engine, workspace, options, progress, true).await
}

/// [`bill_run`] reading each subscription's rows alone, as it did before chunked reads: the
/// billing benchmark's baseline, measured beside it in the same run. Not for use.
#[doc(hidden)]
pub async fn bill_run_per_subscription(
    engine: &Arc<Engine>,
    workspace: &str,
    progress: &(dyn Fn(usize, usize, &BillRunReport) + Send + Sync),
) -> AppResult<BillRunReport> {
    bill_run_with(
        engine,
        workspace,
        BillRunOptions::default(),
        progress,
        false,
    )
    .await
}

async fn bill_run_with(
    engine: &Arc<Engine>,
    workspace: &str,
    options: BillRunOptions,
    progress: &(dyn Fn(usize, usize, &BillRunReport) + Send + Sync),
    chunked: bool,
) -> AppResult<BillRunReport> {
    let store = engine.store();
    let pass = store.begin_bill_pass(&WorkspaceId::from(workspace)).await?;
    let total = usize::try_from(pass.subscriptions).unwrap_or(usize::MAX);
    // Read once: the run never changes it.
    let seller = crate::billing::profiles::seller_profile(store.as_ref(), workspace).await?;
    let workers = if store.backend() == "postgres" {
        options.workers.get().min(BillRunOptions::MAX_WORKERS)
    } else {
        1
    };
    let (written, mut parts) = tokio::sync::mpsc::channel(workers * 2);
    let run = pipeline::Run {
        engine: engine.clone(),
        workspace: workspace.to_owned(),
        pass: pass.number,
        seller: Arc::new(seller),
        chunked,
        stop: Arc::default(),
    };
    let mut tasks = tokio::task::JoinSet::new();
    let name = crate::ids::new_id("brw");
    for n in 0..workers {
        tasks.spawn(pipeline::work(
            run.clone(),
            format!("{name}/{n}"),
            written.clone(),
        ));
    }
    drop(written);
    let mut report = BillRunReport::default();
    while let Some(part) = parts.recv().await {
        report.absorb(part);
        progress(report.subscriptions, total, &report);
    }
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.unwrap_or_else(|e| {
            Err(crate::error::Error::internal(format!(
                "a bill run worker stopped: {e}"
            )))
        });
        if let Err(e) = outcome {
            failure.get_or_insert(e);
        }
    }
    metrics::counter!("tollgate_invoices_created_total")
        .increment(u64::try_from(report.invoices_created).unwrap_or(u64::MAX));
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// What a chunk's invoices read, read at once; `None` (each subscription reads its own rows)
/// for the benchmark's baseline, or when the chunk cannot be read (each then reports its own
/// error).
async fn read_chunk<'s>(
    engine: &Engine,
    workspace: &str,
    subs: &[SubscriptionRecord],
    seller: Option<&'s SellerProfile>,
    chunked: bool,
) -> Option<Chunk<'s>> {
    if !chunked {
        return None;
    }
    match Chunk::read(engine, workspace, subs, seller).await {
        Ok(chunk) => Some(chunk),
        Err(e) => {
            tracing::warn!(error = %e.describe(), "reading a chunk of the bill run");
            None
        }
    }
}

/// Rates the subscriptions of a chunk of customers (`subs`, by customer) from what was read
/// for them (`chunk`): trials ended, invoices with side effects and anything unusual written
/// here, in order; the common invoices (one owed, nothing else touched) returned for one
/// batched write.
async fn rate_chunk(
    engine: &Engine,
    subs: &[SubscriptionRecord],
    mut chunk: Option<Chunk<'_>>,
    report: &mut BillRunReport,
) -> Vec<(SubscriptionRecord, InvoiceRecord, InvoiceEffects)> {
    let mut batch = Vec::new();
    for sub in subs {
        report.subscriptions += 1;
        let mut touched = Touched::default();
        let read_ahead = chunk.as_ref().is_some_and(|c| c.of(sub).is_some());
        let existing = report.invoices_existing;
        let mut outcome =
            bill_subscription(engine, sub.clone(), chunk.as_ref(), &mut touched, report).await;
        if let Err(e) = &outcome
            && e.kind == crate::error::Kind::Conflict
            && read_ahead
        {
            // What the chunk read changed before the write (another invoice billed one of
            // its pending charges, its credit was used): billed again from what is there now.
            tracing::info!(subscription = %sub.id, detail = %e.detail, "billed again from fresh reads");
            touched.customer = true;
            report.invoices_existing = existing;
            outcome = bill_subscription(engine, sub.clone(), None, &mut touched, report).await;
        }
        match outcome {
            Ok(None) => {}
            Ok(Some((invoice, effects))) => batch.push((sub.clone(), invoice, effects)),
            Err(e) => {
                // It may have written part of its work: its customer is read again.
                touched.customer = true;
                report.errors.push(error_of(sub, &e));
            }
        }
        if touched.others {
            chunk = None;
        } else if touched.customer
            && let Some(chunk) = chunk.as_mut()
        {
            chunk.stale.insert(sub.customer.clone());
        }
    }
    batch
}

/// Bills one subscription up to now on its customer's clock, exactly as the bill run does
/// (trial end, due invoices, a downgrade scheduled for a period end): the scheduler's renewals
/// call this, so no bill run is needed.
pub async fn bill_one(engine: &Engine, sub: SubscriptionRecord) -> AppResult<BillRunReport> {
    let mut report = BillRunReport {
        subscriptions: 1,
        ..Default::default()
    };
    let mut touched = Touched::default();
    if let Some((invoice, effects)) =
        bill_subscription(engine, sub, None, &mut touched, &mut report).await?
    {
        let inserted = engine.store().insert_invoice(&invoice, &effects).await?;
        count_inserted(engine, inserted, &mut report).await?;
    }
    Ok(report)
}

/// Customers claimed, read and written at once: each kind of row in a few queries per
/// chunk, its common invoices in one transaction (one commit, one fsync).
const CHUNK: usize = 500;

/// What billing one subscription wrote besides the batched invoice it returns: the rows read
/// for the chunk may be out of date for its customer, or for others.
#[derive(Debug, Default)]
struct Touched {
    /// Its customer's rows changed (credit used, a trial ended, an invoice written alone...).
    customer: bool,
    /// Another customer's rows may have changed (a referrer rewarded).
    others: bool,
}

/// What a chunk of subscriptions' invoices read, read at once ([`BillingStore::billing_chunk`]
/// and [`BillingStore::chunk_aggregates`]), by customer and by subscription.
///
/// [`BillingStore::billing_chunk`]: tollgate_store::billing::BillingStore::billing_chunk
/// [`BillingStore::chunk_aggregates`]: tollgate_store::billing::BillingStore::chunk_aggregates
struct Chunk<'s> {
    seller: Option<&'s SellerProfile>,
    customers: HashMap<String, CustomerRecord>,
    profiles: HashMap<String, serde_json::Value>,
    keys: HashMap<String, Vec<String>>,
    scheduled: HashMap<String, ScheduledChangeRecord>,
    pending: HashMap<String, Vec<PendingChargeRecord>>,
    redemptions: HashMap<String, Vec<CouponRedemptionRecord>>,
    credit: HashMap<String, i64>,
    balance: HashMap<String, i64>,
    /// The rows of the periods read, by customer and period start (a period read without rows
    /// is there, empty).
    aggregates: HashMap<(String, jiff::Timestamp), Vec<AggregateRow>>,
    /// Customers whose rows the run changed since they were read: read again, alone.
    stale: HashSet<String>,
}

impl<'s> Chunk<'s> {
    async fn read(
        engine: &Engine,
        workspace: &str,
        subs: &[SubscriptionRecord],
        seller: Option<&'s SellerProfile>,
    ) -> AppResult<Self> {
        let store = engine.store();
        let ws = WorkspaceId::from(workspace);
        let ids: Vec<&str> = subs.iter().map(|s| s.id.as_str()).collect();
        let mut customers: Vec<&str> = subs.iter().map(|s| s.customer.as_str()).collect();
        customers.sort_unstable();
        customers.dedup();
        let read = store.billing_chunk(&ws, &ids, &customers).await?;
        let mut chunk = Chunk {
            seller,
            customers: read
                .customers
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect(),
            profiles: read.profiles.into_iter().collect(),
            keys: HashMap::new(),
            scheduled: HashMap::new(),
            pending: HashMap::new(),
            redemptions: HashMap::new(),
            credit: read.credit_balances.into_iter().collect(),
            balance: read.customer_balances.into_iter().collect(),
            aggregates: HashMap::new(),
            stale: HashSet::new(),
        };
        for (sub, key) in read.invoice_keys {
            chunk.keys.entry(sub).or_default().push(key);
        }
        for change in read.scheduled {
            chunk
                .scheduled
                .entry(change.subscription.clone())
                .or_insert(change);
        }
        for charge in read.pending_charges {
            chunk
                .pending
                .entry(charge.customer.clone())
                .or_default()
                .push(charge);
        }
        for redemption in read.redemptions {
            chunk
                .redemptions
                .entry(redemption.customer.clone())
                .or_default()
                .push(redemption);
        }
        // The closing period of each subscription that owes exactly one closing invoice (the
        // common case): its aggregates, read at once.
        let mut periods: HashSet<(String, jiff::Timestamp)> = HashSet::new();
        for sub in subs {
            let Some(customer) = chunk.customers.get(&sub.customer) else {
                continue;
            };
            let now = engine
                .now_for(workspace, customer.test_clock.as_deref())
                .await?;
            let catalog = engine.catalog(workspace, sub.catalog_version).await?;
            let keys = chunk.keys.get(&sub.id);
            let mut missing = terms(sub, &catalog.catalog)
                .due_invoices(now)
                .into_iter()
                .filter(|d| keys.is_none_or(|k| !k.contains(&d.key(&sub.id))));
            if let (Some(DueInvoice::Closing { closing, .. }), None) =
                (missing.next(), missing.next())
            {
                periods.insert((sub.customer.clone(), closing.start));
            }
        }
        if let (Some(from), Some(to)) = (
            periods.iter().map(|p| p.1).min(),
            periods.iter().map(|p| p.1).max(),
        ) {
            let mut of: Vec<&str> = periods.iter().map(|p| p.0.as_str()).collect();
            of.sort_unstable();
            of.dedup();
            for (customer, row) in store.chunk_aggregates(&ws, &of, from, to).await? {
                let key = (customer, row.period_start);
                if periods.contains(&key) {
                    chunk.aggregates.entry(key).or_default().push(row);
                }
            }
            for period in periods {
                chunk.aggregates.entry(period).or_default();
            }
        }
        Ok(chunk)
    }

    /// What was read for `sub`, unless its customer's rows changed since (or were not found).
    fn of(&self, sub: &SubscriptionRecord) -> Option<View<'_>> {
        if self.stale.contains(&sub.customer) {
            return None;
        }
        Some(View {
            chunk: self,
            customer: self.customers.get(&sub.customer)?,
            keys: self.keys.get(&sub.id).map_or(&[], Vec::as_slice),
            scheduled: self.scheduled.get(&sub.id),
        })
    }
}

/// One subscription's part of a [`Chunk`].
#[derive(Clone, Copy)]
struct View<'c> {
    chunk: &'c Chunk<'c>,
    customer: &'c CustomerRecord,
    keys: &'c [String],
    scheduled: Option<&'c ScheduledChangeRecord>,
}

impl<'c> View<'c> {
    /// The inputs of the invoice closing (or opening) the period starting at `closing_start`.
    fn known(&self, closing_start: Option<jiff::Timestamp>) -> Known<'c> {
        let id = &self.customer.id;
        let chunk = self.chunk;
        Known {
            customer: self.customer,
            profile: chunk.profiles.get(id),
            seller: chunk.seller,
            pending_charges: chunk.pending.get(id).map_or(&[], Vec::as_slice),
            redemptions: chunk.redemptions.get(id).map_or(&[], Vec::as_slice),
            credit_balance: chunk.credit.get(id).copied().unwrap_or(0),
            customer_balance: chunk.balance.get(id).copied().unwrap_or(0),
            aggregates: closing_start.and_then(|start| {
                chunk
                    .aggregates
                    .get(&(id.clone(), start))
                    .map(Vec::as_slice)
            }),
        }
    }
}

fn error_of(sub: &SubscriptionRecord, e: &crate::error::Error) -> BillRunError {
    BillRunError {
        subscription: sub.id.clone(),
        customer: sub.customer.clone(),
        code: e.code.as_str().to_owned(),
        message: e.detail.clone(),
    }
}

/// Writes the batched invoices in one transaction; on failure, each subscription of the batch
/// is reported (nothing of the batch was written, so a re-run bills them).
pub(super) async fn flush(
    engine: &Engine,
    workspace: &str,
    batch: &mut Vec<(SubscriptionRecord, InvoiceRecord, InvoiceEffects)>,
    report: &mut BillRunReport,
) {
    if batch.is_empty() {
        return;
    }
    let items: Vec<(InvoiceRecord, InvoiceEffects)> = batch
        .iter()
        .map(|(_, i, e)| (i.clone(), e.clone()))
        .collect();
    // Charged automatically when Stripe is set up and the customer saved a card (a job).
    let collecting = match crate::app::payments::collects_automatically(engine, workspace).await {
        Ok(on) => on,
        Err(e) => {
            tracing::warn!(error = %e.describe(), "reading the payment settings");
            false
        }
    };
    match engine
        .store()
        .insert_invoices(&WorkspaceId::from(workspace), &items)
        .await
    {
        Ok(outcomes) => {
            for outcome in outcomes {
                match outcome {
                    InvoiceInsert::Created(created) => {
                        report.invoices_created += 1;
                        let enqueued = if collecting {
                            crate::app::payments::enqueue_if_carded(engine, &created).await
                        } else {
                            Ok(())
                        };
                        if let Err(e) = enqueued {
                            report.errors.push(BillRunError {
                                subscription: created.subscription.clone().unwrap_or_default(),
                                customer: created.customer.clone(),
                                code: e.code.as_str().to_owned(),
                                message: e.detail.clone(),
                            });
                        }
                        report.created.push(created.id);
                    }
                    InvoiceInsert::Exists(_) => report.invoices_existing += 1,
                }
            }
        }
        Err(e) => {
            let e = crate::error::Error::from(e);
            report
                .errors
                .extend(batch.iter().map(|(sub, _, _)| error_of(sub, &e)));
        }
    }
    batch.clear();
}

/// Bills one subscription. The common case, exactly one invoice owed and nothing else to do, is
/// returned for the caller to write in a batch; anything else is written here, in order.
async fn bill_subscription(
    engine: &Engine,
    mut sub: SubscriptionRecord,
    chunk: Option<&Chunk<'_>>,
    touched: &mut Touched,
    report: &mut BillRunReport,
) -> AppResult<Option<(InvoiceRecord, InvoiceEffects)>> {
    let store = engine.store();
    let mut view = chunk.and_then(|c| c.of(&sub));
    let fetched;
    let customer = match view {
        Some(v) => v.customer,
        None => {
            fetched = store
                .get_customer(&WorkspaceId::from(&sub.workspace), &sub.customer)
                .await?
                .ok_or_else(|| crate::error::Error::not_found("customer", &sub.customer))?;
            &fetched
        }
    };
    let now = engine
        .now_for(&sub.workspace, customer.test_clock.as_deref())
        .await?;
    let mut catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
    // Paused: nothing is billed until it is resumed (which restarts its periods).
    if sub.status == SubscriptionStatus::Paused {
        return Ok(None);
    }

    // A trial that is over: paid from now on, or moved to its fallback plan without a payment
    // method (Apex: `early` -> `free`).
    if sub.status == SubscriptionStatus::Trialing && sub.trial_end.is_some_and(|end| end <= now) {
        touched.customer = true;
        view = None;
        sub.status = SubscriptionStatus::Active;
        let trial_plan = sub.plan.clone();
        let fallback = catalog
            .catalog
            .plans
            .get(&sub.plan)
            .and_then(|p| p.trial_fallback.clone());
        if let (false, Some(plan)) = (customer.has_payment_method, fallback) {
            sub.plan = plan;
        }
        let ended = crate::app::outbox::event(
            engine,
            &sub.workspace,
            Some(&sub.customer),
            crate::app::outbox::types::SUBSCRIPTION_TRIAL_ENDED,
            sub.trial_end.unwrap_or(now),
            // `trial_plan`: the plan of the trial; `plan` differs when it fell back.
            crate::app::subscriptions::with_field(
                crate::app::subscriptions::event_data(&sub),
                "trial_plan",
                trial_plan.into(),
            ),
        );
        store
            .update_subscription_with_events(&sub, &[ended])
            .await?;
        engine
            .refresh_customer(&sub.workspace, &sub.customer)
            .await?;
        catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
        report.trials_ended += 1;
    }

    let (existing, mut scheduled): (HashSet<String>, _) = match view {
        Some(v) => (v.keys.iter().cloned().collect(), v.scheduled.cloned()),
        None => (
            store
                .invoice_keys(&WorkspaceId::from(&sub.workspace), &sub.id)
                .await?
                .into_iter()
                .collect(),
            store
                .scheduled_change(&WorkspaceId::from(&sub.workspace), &sub.id)
                .await?,
        ),
    };
    let due_invoices = terms(&sub, &catalog.catalog).due_invoices(now);
    let missing: Vec<&DueInvoice> = due_invoices
        .iter()
        .filter(|d| !existing.contains(&d.key(&sub.id)))
        .collect();
    report.invoices_existing += due_invoices.len() - missing.len();
    // A pause that took effect, or a cancellation that reached its end: the invoices up to it
    // are written first (each alone, never batched, so none can be lost behind the status
    // change), then the subscription pauses, or expires.
    let pause_reached =
        crate::app::subscriptions::is_pausing(&sub) && sub.ends_at.is_some_and(|end| end <= now);
    let expired = tollgate_core::lifecycle::should_expire(sub.status, sub.ends_at, now);
    if pause_reached || expired {
        touched.customer = true;
        for due in missing {
            let rewarded = finalize(
                engine,
                &sub,
                &catalog.catalog,
                due,
                due.key(&sub.id),
                now,
                report,
            )
            .await?;
            touched.others |= rewarded;
        }
        if pause_reached {
            crate::app::subscriptions::pause_reached(engine, sub, now).await?;
        } else {
            crate::app::subscriptions::expire_reached(engine, sub, now).await?;
        }
        return Ok(None);
    }
    if let ([only], None) = (missing.as_slice(), &scheduled) {
        let closing_start = match only {
            DueInvoice::Closing { closing, .. } => Some(closing.start),
            DueInvoice::Opening { .. } => None,
        };
        let known = view.map(|v| v.known(closing_start));
        let (draft, mut effects) =
            build_due_invoice_with(store.as_ref(), &sub, &catalog.catalog, only, known).await?;
        let mut invoice = record(
            (&sub.workspace, &sub.customer, Some(&sub.id)),
            only.key(&sub.id),
            &draft,
            now,
        )?;
        note_rating(&mut invoice, &sub);
        effects.events.push(finalized(engine, &invoice));
        // Only invoices without side effects share a transaction: one that uses credit,
        // prorations or coupons is written alone, so a conflict never fails a whole batch.
        if !effects.touches_other_rows() {
            return Ok(Some((invoice, effects)));
        }
        touched.customer = true;
        let inserted = store.insert_invoice(&invoice, &effects).await?;
        touched.others |= count_inserted(engine, inserted, report).await?;
        return Ok(None);
    }
    // Anything else writes (invoices one by one, a plan change): the customer is read again.
    touched.customer = !missing.is_empty() || scheduled.is_some();
    for due in due_invoices {
        let key = due.key(&sub.id);
        // A downgrade scheduled for this period end: the closing invoice bills the old plan's
        // usage only, the plan changes, and an opening invoice bills the new plan in advance.
        if let (
            Some(change),
            DueInvoice::Closing {
                closing,
                opening: Some(next),
            },
        ) = (&scheduled, &due)
            && change.effective_at <= closing.end
        {
            let closing_only = DueInvoice::Closing {
                closing: *closing,
                opening: None,
            };
            touched.others |= finalize(
                engine,
                &sub,
                &catalog.catalog,
                &closing_only,
                key,
                now,
                report,
            )
            .await?;
            sub.plan = change.plan.clone();
            sub.addons = change.addons.clone();
            if let Some(latest) = engine.latest_catalog(&sub.workspace).await? {
                sub.catalog_version = latest.version;
            }
            // Announced like any plan change (webhooks; MRR reads the plan history from it).
            let updated = crate::app::outbox::event(
                engine,
                &sub.workspace,
                Some(&sub.customer),
                crate::app::outbox::types::SUBSCRIPTION_UPDATED,
                change.effective_at,
                crate::app::subscriptions::event_data(&sub),
            );
            store
                .update_subscription_with_events(&sub, &[updated])
                .await?;
            store
                .mark_change_applied(&WorkspaceId::from(&sub.workspace), &change.id, now)
                .await?;
            engine
                .refresh_customer(&sub.workspace, &sub.customer)
                .await?;
            catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
            let opening = DueInvoice::Opening { period: *next };
            let opening_key = opening.key(&sub.id);
            touched.others |= finalize(
                engine,
                &sub,
                &catalog.catalog,
                &opening,
                opening_key,
                now,
                report,
            )
            .await?;
            scheduled = None;
            continue;
        }
        if existing.contains(&key) {
            continue;
        }
        touched.others |= finalize(engine, &sub, &catalog.catalog, &due, key, now, report).await?;
    }
    Ok(None)
}

/// Notes on the invoice the plan and catalog version it was rated with (`rated_with`), so its
/// customer can recompute it later from the proven events (`tollgate ledger recompute-invoice`)
/// even after the subscription moved to another plan or catalog.
fn note_rating(invoice: &mut InvoiceRecord, sub: &SubscriptionRecord) {
    if let Some(document) = invoice.document.as_object_mut() {
        document.insert(
            "rated_with".to_owned(),
            serde_json::json!({ "plan": sub.plan, "catalog_version": sub.catalog_version }),
        );
    }
}

/// Builds and stores one invoice; an invoice already stored under its key is left alone.
/// True when it rewarded a referrer (another customer's rows changed).
async fn finalize(
    engine: &Engine,
    sub: &SubscriptionRecord,
    catalog: &tollgate_core::catalog::Catalog,
    due: &DueInvoice,
    key: String,
    now: jiff::Timestamp,
    report: &mut BillRunReport,
) -> AppResult<bool> {
    let store = engine.store();
    let (draft, mut effects) = build_due_invoice(store.as_ref(), sub, catalog, due).await?;
    let mut invoice = record(
        (&sub.workspace, &sub.customer, Some(&sub.id)),
        key,
        &draft,
        now,
    )?;
    note_rating(&mut invoice, sub);
    effects.events.push(finalized(engine, &invoice));
    let inserted = store.insert_invoice(&invoice, &effects).await?;
    count_inserted(engine, inserted, report).await
}

/// Counts an invoice written alone; one paid at once by the customer's credit can make the
/// customer paying, which rewards its referrer (then true).
async fn count_inserted(
    engine: &Engine,
    inserted: InvoiceInsert,
    report: &mut BillRunReport,
) -> AppResult<bool> {
    match inserted {
        InvoiceInsert::Created(created) => {
            report.invoices_created += 1;
            let rewarded =
                crate::app::referrals::reward_if_paying(engine, &created.workspace, &created)
                    .await?;
            // Charged automatically when the customer saved a card (a job).
            crate::app::payments::enqueue_collection(engine, &created).await?;
            report.created.push(created.id);
            Ok(rewarded)
        }
        InvoiceInsert::Exists(_) => {
            report.invoices_existing += 1;
            Ok(false)
        }
    }
}

/// The `invoice.finalized` event of an invoice about to be written (with it, in its
/// transaction; not written when the invoice exists already).
pub(crate) fn finalized(
    engine: &Engine,
    invoice: &InvoiceRecord,
) -> tollgate_store::outbox::OutboxEvent {
    crate::app::outbox::event(
        engine,
        &invoice.workspace,
        Some(&invoice.customer),
        crate::app::outbox::types::INVOICE_FINALIZED,
        invoice.created_at,
        crate::app::invoices::event_data(invoice),
    )
}
