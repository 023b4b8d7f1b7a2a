//! The bill run: for every subscription of a workspace, end trials that are over, then finalize
//! every invoice it owes up to now (on its customer's clock), each exactly once.
//!
//! Each invoice is written in its own transaction with its number, so a crash mid-run loses at
//! most the invoice in flight, and a re-run (or a concurrent one) finds the invoices already
//! written by their keys: no duplicate, no gap.

use std::collections::HashSet;

use serde::Serialize;
use tollgate_core::schedule::DueInvoice;
use tollgate_store::billing::InvoiceInsert;
use tollgate_store::{SubscriptionRecord, SubscriptionStatus};

use super::invoices::{build_due_invoice, record, terms};
use crate::engine::Engine;
use crate::error::ApiResult;

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

/// Runs billing for one workspace. `progress(done, total)` is called after each subscription.
pub async fn bill_run(engine: &Engine, workspace: &str, progress: &(dyn Fn(usize, usize) + Send + Sync)) -> ApiResult<BillRunReport> {
    let store = engine.store();
    let subscriptions = store.list_workspace_subscriptions(workspace).await?;
    let total = subscriptions.len();
    let mut report = BillRunReport { subscriptions: total, ..Default::default() };
    for (done, sub) in subscriptions.into_iter().enumerate() {
        if let Err(e) = bill_subscription(engine, sub.clone(), &mut report).await {
            report.errors.push(BillRunError {
                subscription: sub.id.clone(),
                customer: sub.customer.clone(),
                code: e.code.to_owned(),
                message: e.detail.clone(),
            });
        }
        progress(done + 1, total);
    }
    metrics::counter!("tollgate_invoices_created_total").increment(report.invoices_created as u64);
    Ok(report)
}

async fn bill_subscription(engine: &Engine, mut sub: SubscriptionRecord, report: &mut BillRunReport) -> ApiResult<()> {
    let store = engine.store();
    let customer = store
        .get_customer(&sub.workspace, &sub.customer)
        .await?
        .ok_or_else(|| crate::error::ApiError::not_found("customer", &sub.customer))?;
    let now = engine.now_for(&sub.workspace, customer.test_clock.as_deref()).await?;
    let mut catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;

    // A trial that is over: paid from now on, or moved to its fallback plan without a payment
    // method (Apex: `early` -> `free`).
    if sub.status == SubscriptionStatus::Trialing && sub.trial_end.is_some_and(|end| end <= now) {
        sub.status = SubscriptionStatus::Active;
        let fallback = catalog.catalog.plans.get(&sub.plan).and_then(|p| p.trial_fallback.clone());
        if let (false, Some(plan)) = (customer.has_payment_method, fallback) {
            sub.plan = plan;
        }
        store.update_subscription(&sub).await?;
        engine.refresh_customer(&sub.workspace, &sub.customer).await?;
        catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
        report.trials_ended += 1;
    }

    let existing: HashSet<String> = store.invoice_keys(&sub.workspace, &sub.id).await?.into_iter().collect();
    let mut scheduled = store.scheduled_change(&sub.workspace, &sub.id).await?;
    for due in terms(&sub, &catalog.catalog).due_invoices(now) {
        let key = due.key(&sub.id);
        // A downgrade scheduled for this period end: the closing invoice bills the old plan's
        // usage only, the plan changes, and an opening invoice bills the new plan in advance.
        if let (Some(change), DueInvoice::Closing { closing, opening: Some(next) }) = (&scheduled, &due) {
            if change.effective_at <= closing.end {
                let closing_only = DueInvoice::Closing { closing: *closing, opening: None };
                finalize(engine, &sub, &catalog.catalog, &closing_only, key, now, report).await?;
                sub.plan = change.plan.clone();
                sub.addons = change.addons.clone();
                if let Some(latest) = engine.latest_catalog(&sub.workspace).await? {
                    sub.catalog_version = latest.version;
                }
                store.update_subscription(&sub).await?;
                store.mark_change_applied(&sub.workspace, &change.id, now).await?;
                engine.refresh_customer(&sub.workspace, &sub.customer).await?;
                catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
                let opening = DueInvoice::Opening { period: *next };
                let opening_key = opening.key(&sub.id);
                finalize(engine, &sub, &catalog.catalog, &opening, opening_key, now, report).await?;
                scheduled = None;
                continue;
            }
        }
        if existing.contains(&key) {
            report.invoices_existing += 1;
            continue;
        }
        finalize(engine, &sub, &catalog.catalog, &due, key, now, report).await?;
    }
    Ok(())
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
) -> ApiResult<()> {
    let store = engine.store();
    let (draft, effects) = build_due_invoice(store.as_ref(), sub, catalog, due).await?;
    let invoice = record((&sub.workspace, &sub.customer, Some(&sub.id)), key, &draft, now)?;
    match store.insert_invoice(&invoice, &effects).await? {
        InvoiceInsert::Created(created) => {
            report.invoices_created += 1;
            report.created.push(created.id);
        }
        InvoiceInsert::Exists(_) => report.invoices_existing += 1,
    }
    Ok(())
}
