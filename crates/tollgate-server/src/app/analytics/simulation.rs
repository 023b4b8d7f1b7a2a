//! Price simulation (docs/DASHBOARD.md, "Price simulation"): what each subscription's last
//! closed period would have been invoiced on a draft catalog, against what it comes to on the
//! catalog version it is on. Nothing is applied or written: both sides are priced by the bill
//! run's own request builder (`billing::invoices::build_due_invoice`, read-only) and core's
//! `pricing::assemble`, on the period's recorded usage.
//!
//! The period is priced whole: its fees in advance (as its opening invoice billed them) and its
//! usage and fees in arrears (as its closing invoice did). Only charges of the catalog count:
//! base fees, usage, add-ons, minimum top-ups; discounts, prorations, taxes and credit are the
//! same on both sides or not the catalog's, and are left out.

// Money path: no `as` casts.
#![deny(clippy::as_conversions)]

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use tollgate_core::catalog::Catalog;
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::lifecycle::InvoiceStatus;
use tollgate_core::money::Currency;
use tollgate_core::period::Period;
use tollgate_core::pricing::{InvoiceDraft, LineKind};
use tollgate_core::schedule::DueInvoice;
use tollgate_store::SubscriptionRecord;

use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// One subscription's last closed period on both catalogs; amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedPeriod {
    pub customer: String,
    pub subscription: String,
    pub plan: String,
    pub period: Period,
    pub current_minor: i64,
    pub draft_minor: i64,
    pub difference_minor: i64,
}

/// A plan's subscriptions summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulatedPlan {
    pub plan: String,
    pub subscriptions: u64,
    pub current_minor: i64,
    pub draft_minor: i64,
    pub difference_minor: i64,
}

/// A subscription left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub customer: String,
    pub subscription: String,
    pub reason: String,
}

pub struct Simulation {
    pub currency: Currency,
    pub subscriptions: Vec<SimulatedPeriod>,
    pub plans: Vec<SimulatedPlan>,
    pub total: SimulatedPlan,
    pub skipped: Vec<Skipped>,
}

fn overflow() -> Error {
    Error::invalid(Code::AmountOutOfRange, "an amount is out of range")
}

/// Simulates `draft` (a validated catalog, not applied) on the workspace's subscriptions.
pub async fn simulate(engine: &Engine, workspace: &str, draft: &Catalog) -> AppResult<Simulation> {
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let Some(latest) = engine.latest_catalog(workspace).await? else {
        return Err(Error::not_found("catalog", workspace).with_code(Code::NoCatalog));
    };
    let currency = latest.catalog.currency;
    if draft.currency != currency {
        let message = format!(
            "the draft is in {}, the workspace's catalog in {}: a simulation compares one currency",
            draft.currency.code(),
            currency.code()
        );
        return Err(Error::validation(
            "the catalog has 1 error(s)",
            vec![crate::error::FieldError {
                path: "currency".into(),
                message,
            }],
        )
        .with_code(Code::InvalidCatalog));
    }
    let mut last: HashMap<String, Period> = HashMap::new();
    for customer in store.list_customers(&ws).await? {
        for invoice in store
            .list_invoices(&ws, &CustomerId::from(customer.id.as_str()))
            .await?
        {
            let (Some(sub), false) = (
                invoice.subscription.as_ref(),
                matches!(invoice.status, InvoiceStatus::Void | InvoiceStatus::Draft),
            ) else {
                continue;
            };
            let Some(closing) = invoice.document.get("closing") else {
                continue;
            };
            let at = |k: &str| -> Option<Timestamp> { closing.get(k)?.as_str()?.parse().ok() };
            let (Some(start), Some(end)) = (at("start"), at("end")) else {
                continue;
            };
            let slot = last.entry(sub.clone()).or_insert(Period { start, end });
            if end > slot.end {
                *slot = Period { start, end };
            }
        }
    }
    let mut subscriptions = Vec::new();
    let mut skipped = Vec::new();
    let mut subs = store.list_workspace_subscriptions(&ws).await?;
    subs.sort_by(|a, b| (&a.customer, &a.id).cmp(&(&b.customer, &b.id)));
    for sub in subs {
        let skip = |reason: &str| Skipped {
            customer: sub.customer.clone(),
            subscription: sub.id.clone(),
            reason: reason.to_owned(),
        };
        let Some(period) = last.get(&sub.id).copied() else {
            skipped.push(skip("no closed period yet"));
            continue;
        };
        if !draft.plans.contains_key(&sub.plan) {
            skipped.push(skip(&format!(
                "the draft has no plan `{}`: the subscription would have to move",
                sub.plan
            )));
            continue;
        }
        let current = engine.catalog(workspace, sub.catalog_version).await?;
        if current.catalog.currency != currency {
            skipped.push(skip("sold in another currency"));
            continue;
        }
        let current_minor = period_revenue(engine, &sub, &current.catalog, period).await?;
        let draft_minor = period_revenue(engine, &sub, draft, period).await?;
        subscriptions.push(SimulatedPeriod {
            customer: sub.customer.clone(),
            subscription: sub.id.clone(),
            plan: sub.plan.clone(),
            period,
            current_minor,
            draft_minor,
            difference_minor: draft_minor
                .checked_sub(current_minor)
                .ok_or_else(overflow)?,
        });
    }
    let mut by_plan: BTreeMap<String, SimulatedPlan> = BTreeMap::new();
    let mut total = SimulatedPlan {
        plan: "total".into(),
        ..SimulatedPlan::default()
    };
    for s in &subscriptions {
        let plan = by_plan
            .entry(s.plan.clone())
            .or_insert_with(|| SimulatedPlan {
                plan: s.plan.clone(),
                ..SimulatedPlan::default()
            });
        for row in [plan, &mut total] {
            row.subscriptions += 1;
            row.current_minor = row
                .current_minor
                .checked_add(s.current_minor)
                .ok_or_else(overflow)?;
            row.draft_minor = row
                .draft_minor
                .checked_add(s.draft_minor)
                .ok_or_else(overflow)?;
            row.difference_minor = row
                .difference_minor
                .checked_add(s.difference_minor)
                .ok_or_else(overflow)?;
        }
    }
    Ok(Simulation {
        currency,
        subscriptions,
        plans: by_plan.into_values().collect(),
        total,
        skipped,
    })
}

/// The catalog's charges for `period` of `sub` priced on `catalog`, in minor units.
async fn period_revenue(
    engine: &Engine,
    sub: &SubscriptionRecord,
    catalog: &Catalog,
    period: Period,
) -> AppResult<i64> {
    let due = DueInvoice::Closing {
        closing: period,
        opening: Some(period),
    };
    let (draft, _) =
        crate::billing::invoices::build_due_invoice(engine.store().as_ref(), sub, catalog, &due)
            .await?;
    catalog_charges(&draft)
}

fn catalog_charges(draft: &InvoiceDraft) -> AppResult<i64> {
    draft
        .lines
        .iter()
        .filter(|l| {
            matches!(
                l.kind,
                LineKind::Base { .. }
                    | LineKind::Usage { .. }
                    | LineKind::Addon { .. }
                    | LineKind::MinimumTopUp
            )
        })
        .try_fold(0i64, |t, l| t.checked_add(l.amount.minor()))
        .ok_or_else(overflow)
}
