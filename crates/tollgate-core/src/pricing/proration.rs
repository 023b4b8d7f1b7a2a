//! Proration: the share of a period's fee that a part of the period is worth, to the second.
//!
//! A fee for a period is spread evenly over the seconds of that period, so a 30-day month's fee
//! buys 1/2,592,000 of itself per second and a 31-day month's 1/2,678,400. Amounts stay exact;
//! the invoice rounds each resulting line once.

use jiff::Timestamp;
use rust_decimal::Decimal;

use super::format::{price as money_text, qty, share_of_period};
use super::invoice::{Charge, LineKind, label, non_negative, per_interval};
use super::{BillingPeriod, PricingError, checked_div, checked_mul, checked_sub};
use crate::catalog::{Catalog, Plan, Timing};

/// The fraction of `period` covered by `[from, to)` (clamped to the period), in whole seconds.
pub fn proration_fraction(
    from: Timestamp,
    to: Timestamp,
    period: &BillingPeriod,
) -> Result<Decimal, PricingError> {
    let (covered, total) = covered_seconds(from, to, period)?;
    checked_div(Decimal::from(covered), Decimal::from(total))
}

/// `amount` for the part `[from, to)` of the period `[period_start, period_end)`:
/// `amount x covered seconds / period seconds`, exact (multiplied before dividing, so 15 of 30
/// days of 58.00 is exactly 29.00).
pub fn prorate(
    amount: Decimal,
    from: Timestamp,
    to: Timestamp,
    period_start: Timestamp,
    period_end: Timestamp,
) -> Result<Decimal, PricingError> {
    let period = BillingPeriod::new(period_start, period_end)?;
    let (covered, total) = covered_seconds(from, to, &period)?;
    checked_div(
        checked_mul(amount, Decimal::from(covered))?,
        Decimal::from(total),
    )
}

fn covered_seconds(
    from: Timestamp,
    to: Timestamp,
    period: &BillingPeriod,
) -> Result<(i64, i64), PricingError> {
    if period.end <= period.start {
        return Err(PricingError::InvalidPeriod {
            start: period.start,
            end: period.end,
        });
    }
    if to < from {
        return Err(PricingError::InvalidPeriod {
            start: from,
            end: to,
        });
    }
    let start = from.max(period.start).as_second();
    let end = to.min(period.end).as_second();
    Ok(((end - start).max(0), period.seconds()))
}

/// The charge (or credit, when fewer) for changing an add-on's quantity at `at`, for the rest of
/// the period, on a plan whose add-on fees are billed in advance.
///
/// Only units beyond the plan's included ones cost anything, so going from 1 to 3 seats with 2
/// included charges for one. Control plane case 7: +2 seats at 29.00 halfway through a 30-day
/// period is `2 x 29.00 x 15 of 30 days = 29.00`.
pub fn addon_quantity_change(
    catalog: &Catalog,
    plan_key: &str,
    addon_key: &str,
    from_quantity: Decimal,
    to_quantity: Decimal,
    at: Timestamp,
    period: &BillingPeriod,
) -> Result<Charge, PricingError> {
    let plan = find_plan(catalog, plan_key)?;
    let addon = catalog
        .addons
        .get(addon_key)
        .ok_or_else(|| PricingError::UnknownAddon(addon_key.to_owned()))?;
    let terms = plan
        .addons
        .get(addon_key)
        .ok_or_else(|| PricingError::AddonNotOnPlan {
            plan: plan_key.to_owned(),
            addon: addon_key.to_owned(),
        })?;
    non_negative(from_quantity, addon_key)?;
    non_negative(to_quantity, addon_key)?;
    let charged = |q: Decimal| checked_sub(q, terms.included).map(|c| c.max(Decimal::ZERO));
    let delta = checked_sub(charged(to_quantity)?, charged(from_quantity)?)?;
    let unit = per_interval(addon.amount, addon.interval, plan.interval())?;
    let (covered, total) = covered_seconds(at, period.end, period)?;
    let amount = prorate(
        checked_mul(delta, unit)?,
        at,
        period.end,
        period.start,
        period.end,
    )?;
    let name = addon.name.as_deref().unwrap_or(addon_key);
    let (word, count) = if delta < Decimal::ZERO {
        ("fewer", -delta)
    } else {
        ("more", delta)
    };
    Ok(Charge {
        kind: LineKind::Proration,
        description: format!(
            "{name}: {} {word} x {} x {} ({} to {})",
            qty(count),
            money_text(unit),
            share_of_period(covered, total),
            qty(from_quantity),
            qty(to_quantity),
        ),
        quantity: delta,
        unit_price: Some(unit),
        amount,
        period: Some(BillingPeriod {
            start: at.max(period.start),
            end: period.end,
        }),
    })
}

/// The lines of a plan change at `at` within a period whose base fee was billed in advance: a
/// credit for the unused time of the old plan's base fee and a charge for the rest of the period
/// on the new plan's. An upgrade nets a charge, a downgrade a credit.
///
/// The new plan's fee is taken per the old plan's interval (the period being split is the old
/// plan's). A base fee billed in arrears has not been billed yet, so there is nothing to credit:
/// that case is refused rather than guessed; its caller rates the two parts of the period itself.
/// Usage is not prorated here: usage before and after the change is rated under each plan.
pub fn plan_change(
    catalog: &Catalog,
    from_plan: &str,
    to_plan: &str,
    at: Timestamp,
    period: &BillingPeriod,
) -> Result<Vec<Charge>, PricingError> {
    let old = find_plan(catalog, from_plan)?;
    let new = find_plan(catalog, to_plan)?;
    if [old, new].iter().any(|p| {
        p.base
            .as_ref()
            .is_some_and(|b| b.timing == Timing::InArrears)
    }) {
        return Err(PricingError::ArrearsProration);
    }
    let (covered, total) = covered_seconds(at, period.end, period)?;
    let share = share_of_period(covered, total);
    let rest = BillingPeriod {
        start: at.max(period.start),
        end: period.end,
    };
    let mut charges = Vec::new();
    if let Some(base) = &old.base {
        let amount = prorate(base.amount, at, period.end, period.start, period.end)?;
        charges.push(Charge {
            kind: LineKind::Proration,
            description: format!(
                "{}: unused time, {} x {share}, credited",
                label(from_plan, old),
                money_text(base.amount)
            ),
            quantity: Decimal::ONE,
            unit_price: None,
            amount: -amount,
            period: Some(rest),
        });
    }
    if let Some(base) = &new.base {
        let per_period = per_interval(base.amount, base.interval, old.interval())?;
        let amount = prorate(per_period, at, period.end, period.start, period.end)?;
        charges.push(Charge {
            kind: LineKind::Proration,
            description: format!(
                "{}: remaining time, {} x {share}",
                label(to_plan, new),
                money_text(per_period)
            ),
            quantity: Decimal::ONE,
            unit_price: None,
            amount,
            period: Some(rest),
        });
    }
    Ok(charges)
}

fn find_plan<'a>(catalog: &'a Catalog, key: &str) -> Result<&'a Plan, PricingError> {
    catalog
        .plans
        .get(key)
        .ok_or_else(|| PricingError::UnknownPlan(key.to_owned()))
}
