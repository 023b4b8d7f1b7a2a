//! Quotes and plan recommendations: "what would this usage cost", without any customer.
//!
//! A quote is an invoice for one whole period on a plan: its base fee, its add-ons and its usage
//! all for that same period, priced by the same [`assemble`](super::assemble) that bills real
//! customers, so a quote and the invoice that follows it cannot disagree.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::invoice::{InvoiceLine, InvoiceRequest, assemble_in};
use super::{BillingPeriod, MeterUsage, PricingError};
use crate::catalog::{Catalog, Enforcement, Interval, Limit, Plan, QuotaReset, Scope};
use crate::money::{Currency, Money};

/// What one period on a plan would cost.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quote {
    pub plan: String,
    pub currency: Currency,
    pub period: BillingPeriod,
    pub lines: Vec<InvoiceLine>,
    pub total: Money,
}

/// A plan and what the given usage would cost on it per month.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanCost {
    pub plan: String,
    pub total: Money,
}

/// Prices one period of `plan_key` with this usage and these add-on quantities.
///
/// Control plane case 5: starter, 130,000 requests, 3 seats, 1 extra policy pack: 465.00, with
/// the same lines as the invoice. No setup fee, discounts or credit: a quote is the plan's price.
pub fn quote(
    catalog: &Catalog,
    plan_key: &str,
    usage: &BTreeMap<String, MeterUsage>,
    addon_quantities: &BTreeMap<String, Decimal>,
    period: &BillingPeriod,
) -> Result<Quote, PricingError> {
    quote_in(catalog, plan_key, usage, addon_quantities, period, None)
}

fn quote_in(
    catalog: &Catalog,
    plan_key: &str,
    usage: &BTreeMap<String, MeterUsage>,
    addon_quantities: &BTreeMap<String, Decimal>,
    period: &BillingPeriod,
    interval: Option<Interval>,
) -> Result<Quote, PricingError> {
    let request = InvoiceRequest {
        plan: Some(plan_key.to_owned()),
        closing: Some(*period),
        opening: Some(*period),
        usage: usage.clone(),
        addons: addon_quantities.clone(),
        ..InvoiceRequest::default()
    };
    let draft = assemble_in(catalog, &request, interval)?;
    Ok(Quote {
        plan: plan_key.to_owned(),
        currency: draft.currency,
        period: *period,
        lines: draft.lines,
        total: draft.total,
    })
}

/// Every plan that can serve this month of usage and these add-ons, cheapest first (ties in the
/// catalog's order). Plans the operator keeps out of upgrade offers (`upgrade_target: false`,
/// e.g. pay-as-you-go) are not recommended.
///
/// Plans are compared per month: a yearly base fee counts as a twelfth. A plan cannot serve the
/// usage when a hard, per-customer, per-period quota of it is below the usage (Control plane's
/// `open_source` at 900,000 requests), or when it does not offer an add-on the customer has.
/// Control plane case 4: at 900,000 requests `professional` (999.00) comes before `starter`
/// (1,099.00); the saving is the difference of the two totals.
pub fn recommend(
    catalog: &Catalog,
    usage: &BTreeMap<String, MeterUsage>,
    addon_quantities: &BTreeMap<String, Decimal>,
    period: &BillingPeriod,
) -> Result<Vec<PlanCost>, PricingError> {
    let mut costs = Vec::new();
    for (key, plan) in &catalog.plans {
        // A plan billed per day or week has no exact monthly cost to compare: not recommended.
        let monthly = plan.cadence().converts_to(crate::period::Cadence::MONTH);
        if !plan.upgrade_target || !monthly || !serves(plan, usage, addon_quantities) {
            continue;
        }
        let quote = quote_in(
            catalog,
            key,
            usage,
            addon_quantities,
            period,
            Some(Interval::Month),
        )?;
        costs.push(PlanCost {
            plan: key.clone(),
            total: quote.total,
        });
    }
    costs.sort_by_key(|c| c.total.minor()); // stable: ties keep the catalog's order
    Ok(costs)
}

fn serves(
    plan: &Plan,
    usage: &BTreeMap<String, MeterUsage>,
    addons: &BTreeMap<String, Decimal>,
) -> bool {
    let within_quotas = plan.quotas.iter().all(|q| {
        let binding = q.enforcement == Enforcement::Hard
            && q.per == Scope::Customer
            && q.reset == QuotaReset::Period
            && matches!(q.limit, Limit::Finite(_));
        let used = usage.get(&q.meter).map_or(Decimal::ZERO, |u| u.total);
        !binding || q.limit.admits(Decimal::ZERO, used)
    });
    let offers_addons = addons
        .iter()
        .all(|(key, quantity)| quantity.is_zero() || plan.addons.contains_key(key));
    within_quotas && offers_addons
}
