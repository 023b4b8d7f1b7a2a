//! The bill run: for every subscription of a workspace, end trials that are over, then finalize
//! every invoice it owes up to now (on its customer's clock), each exactly once.
//!
//! Each invoice is written in its own transaction with its number, so a crash mid-run loses at
//! most the invoice in flight, and a re-run (or a concurrent one) finds the invoices already
//! written by their keys: no duplicate, no gap.

use std::collections::HashSet;
use tollgate_core::ids::WorkspaceId;

use serde::Serialize;
use tollgate_core::schedule::DueInvoice;
use tollgate_store::billing::{InvoiceEffects, InvoiceInsert, InvoiceRecord};
use tollgate_store::{SubscriptionRecord, SubscriptionStatus};

use crate::billing::invoices::{build_due_invoice, record, terms};
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

/// Runs billing for one workspace. `progress(done, total, report so far)` is called after each
/// subscription.
pub async fn bill_run(
    engine: &Engine,
    workspace: &str,
    progress: &(dyn Fn(usize, usize, &BillRunReport) + Send + Sync),
) -> AppResult<BillRunReport> {
    let store = engine.store();
    let subscriptions = store
        .list_workspace_subscriptions(&WorkspaceId::from(workspace))
        .await?;
    let total = subscriptions.len();
    let mut report = BillRunReport {
        subscriptions: total,
        ..Default::default()
    };
    let mut batch: Vec<(SubscriptionRecord, InvoiceRecord, InvoiceEffects)> = Vec::new();
    for (done, sub) in subscriptions.into_iter().enumerate() {
        match bill_subscription(engine, sub.clone(), &mut report).await {
            Ok(None) => {}
            Ok(Some((invoice, effects))) => {
                batch.push((sub, invoice, effects));
                if batch.len() >= BATCH {
                    flush(engine, workspace, &mut batch, &mut report).await;
                }
            }
            Err(e) => report.errors.push(error_of(&sub, &e)),
        }
        progress(done + 1, total, &report);
    }
    flush(engine, workspace, &mut batch, &mut report).await;
    metrics::counter!("tollgate_invoices_created_total")
        .increment(u64::try_from(report.invoices_created).unwrap_or(u64::MAX));
    Ok(report)
}

/// Bills one subscription up to now on its customer's clock, exactly as the bill run does
/// (trial end, due invoices, a downgrade scheduled for a period end): the scheduler's renewals
/// call this, so no bill run is needed.
pub async fn bill_one(engine: &Engine, sub: SubscriptionRecord) -> AppResult<BillRunReport> {
    let mut report = BillRunReport {
        subscriptions: 1,
        ..Default::default()
    };
    if let Some((invoice, effects)) = bill_subscription(engine, sub, &mut report).await? {
        let inserted = engine.store().insert_invoice(&invoice, &effects).await?;
        count_inserted(engine, inserted, &mut report).await?;
    }
    Ok(report)
}

/// Invoices written per transaction on the fast path (one commit, one fsync, per batch).
const BATCH: usize = 500;

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
async fn flush(
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
    report: &mut BillRunReport,
) -> AppResult<Option<(InvoiceRecord, InvoiceEffects)>> {
    let store = engine.store();
    let customer = store
        .get_customer(&WorkspaceId::from(&sub.workspace), &sub.customer)
        .await?
        .ok_or_else(|| crate::error::Error::not_found("customer", &sub.customer))?;
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

    let existing: HashSet<String> = store
        .invoice_keys(&WorkspaceId::from(&sub.workspace), &sub.id)
        .await?
        .into_iter()
        .collect();
    let mut scheduled = store
        .scheduled_change(&WorkspaceId::from(&sub.workspace), &sub.id)
        .await?;
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
        for due in missing {
            finalize(
                engine,
                &sub,
                &catalog.catalog,
                due,
                due.key(&sub.id),
                now,
                report,
            )
            .await?;
        }
        if pause_reached {
            crate::app::subscriptions::pause_reached(engine, sub, now).await?;
        } else {
            crate::app::subscriptions::expire_reached(engine, sub, now).await?;
        }
        return Ok(None);
    }
    if let ([only], None) = (missing.as_slice(), &scheduled) {
        let (draft, mut effects) =
            build_due_invoice(store.as_ref(), &sub, &catalog.catalog, only).await?;
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
        let inserted = store.insert_invoice(&invoice, &effects).await?;
        count_inserted(engine, inserted, report).await?;
        return Ok(None);
    }
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
            finalize(
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
            finalize(
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
        finalize(engine, &sub, &catalog.catalog, &due, key, now, report).await?;
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
async fn finalize(
    engine: &Engine,
    sub: &SubscriptionRecord,
    catalog: &tollgate_core::catalog::Catalog,
    due: &DueInvoice,
    key: String,
    now: jiff::Timestamp,
    report: &mut BillRunReport,
) -> AppResult<()> {
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
/// customer paying, which rewards its referrer.
async fn count_inserted(
    engine: &Engine,
    inserted: InvoiceInsert,
    report: &mut BillRunReport,
) -> AppResult<()> {
    match inserted {
        InvoiceInsert::Created(created) => {
            report.invoices_created += 1;
            crate::app::referrals::reward_if_paying(engine, &created.workspace, &created).await?;
            // Charged automatically when the customer saved a card (a job).
            crate::app::payments::enqueue_collection(engine, &created).await?;
            report.created.push(created.id);
        }
        InvoiceInsert::Exists(_) => report.invoices_existing += 1,
    }
    Ok(())
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
