//! Proration: the share of a period's fee that a part of the period is worth, to the second.
//!
//! A fee for a period is spread evenly over the seconds of that period, so a 30-day month's fee
//! buys 1/2,592,000 of itself per second and a 31-day month's 1/2,678,400. Amounts stay exact
//! (`fee x covered seconds / period seconds`, multiplied before dividing); the invoice rounds each
//! resulting line once, half away from zero unless the catalog says otherwise. So the exact parts
//! of a split period sum to the fee exactly, and their rounded lines to within half a minor unit
//! per line of it; a part that is the whole period is the fee itself.

use jiff::Timestamp;
use rust_decimal::Decimal;

use super::format::{price as money_text, qty, share_of_period};
use super::invoice::{Charge, LineKind, label, non_negative, per_interval};
use super::{BillingPeriod, PricingError, checked_div, checked_mul, checked_sub};
use crate::catalog::{BasePrice, Catalog, Plan, Timing};
use crate::period::Cadence;

/// `amount`, the fee of the whole period `full`, for `period`, the part of it billed: prorated
/// by seconds and rounded toward zero to `digits` decimals (the currency's minor unit), with the
/// share as text (`11 of 30 days`). `None` for `full`, or a `full` that is `period` itself: the
/// fee is the amount, untouched.
///
/// Rounding toward zero makes the parts of a split fee sum to at most the fee, whatever the
/// split, and a part that is the whole period is the fee exactly.
pub fn part_of_period(
    amount: Decimal,
    period: &BillingPeriod,
    full: Option<BillingPeriod>,
    digits: u32,
) -> Result<(Decimal, Option<String>), PricingError> {
    match full {
        Some(full) if full != *period => {
            let (covered, total) = covered_seconds(period.start, period.end, &full)?;
            let prorated = prorate(amount, period.start, period.end, full.start, full.end)?
                .round_dp_with_strategy(digits, rust_decimal::RoundingStrategy::ToZero);
            Ok((prorated, Some(share_of_period(covered, total))))
        }
        _ => Ok((amount, None)),
    }
}

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
    let unit = per_interval(addon.amount, Cadence::from(addon.interval), plan.cadence())?;
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

/// The lines of a plan change at `at` within a whole period, see [`plan_change_within`].
pub fn plan_change(
    catalog: &Catalog,
    from_plan: &str,
    to_plan: &str,
    at: Timestamp,
    period: &BillingPeriod,
) -> Result<Vec<Charge>, PricingError> {
    plan_change_within(catalog, from_plan, to_plan, at, period, period)
}

/// The lines of a plan change at `at` within the subscription's current period `billed`, a part
/// of (or all of) the whole billing period `full` whose seconds every share counts. An upgrade
/// nets a charge, a downgrade a credit; the subscription's next invoices bill the new plan.
///
/// - An old base fee billed in advance was paid for `billed`: its unused time `[at, end)` is
///   credited. One billed in arrears has not been billed: its used time `[start, at)` is charged.
/// - A new base fee billed in advance is charged for the rest `[at, end)`. One billed in arrears
///   will be billed for all of `billed` by the invoice that closes it, so the time before the
///   change `[start, at)` is credited.
///
/// Either way the period costs the old fee for the time before the change and the new fee for
/// the time after it (Lago's and Stripe's rule). The new plan's fee is taken per the old plan's
/// cadence (the period being split is the old plan's). Usage is not prorated here.
pub fn plan_change_within(
    catalog: &Catalog,
    from_plan: &str,
    to_plan: &str,
    at: Timestamp,
    billed: &BillingPeriod,
    full: &BillingPeriod,
) -> Result<Vec<Charge>, PricingError> {
    let old = find_plan(catalog, from_plan)?;
    let new = find_plan(catalog, to_plan)?;
    let at = at.clamp(billed.start, billed.end);
    let before = BillingPeriod {
        start: billed.start,
        end: at,
    };
    let after = BillingPeriod {
        start: at,
        end: billed.end,
    };
    let part = |base: &BasePrice, amount: Decimal, range: &BillingPeriod| {
        let (covered, total) = covered_seconds(range.start, range.end, full)?;
        let share = share_of_period(covered, total);
        let exact = prorate(amount, range.start, range.end, full.start, full.end)?;
        Ok::<_, PricingError>((base.timing, share, exact))
    };
    let mut charges = Vec::new();
    if let Some(base) = &old.base {
        let arrears = base.timing == Timing::InArrears;
        let range = if arrears { &before } else { &after };
        let (_, share, exact) = part(base, base.amount, range)?;
        let (text, amount) = if arrears {
            ("used time", exact)
        } else {
            ("unused time", -exact)
        };
        let credited = if arrears { "" } else { ", credited" };
        charges.push(Charge {
            kind: LineKind::Proration,
            description: format!(
                "{}: {text}, {} x {share}{credited}",
                label(from_plan, old),
                money_text(base.amount)
            ),
            quantity: Decimal::ONE,
            unit_price: None,
            amount,
            period: Some(*range),
        });
    }
    if let Some(base) = &new.base {
        let per_period = per_interval(base.amount, Cadence::of(base), old.cadence())?;
        let arrears = base.timing == Timing::InArrears;
        let range = if arrears { &before } else { &after };
        let (_, share, exact) = part(base, per_period, range)?;
        let (text, amount) = if arrears {
            ("time before the change", -exact)
        } else {
            ("remaining time", exact)
        };
        let credited = if arrears { ", credited" } else { "" };
        charges.push(Charge {
            kind: LineKind::Proration,
            description: format!(
                "{}: {text}, {} x {share}{credited}",
                label(to_plan, new),
                money_text(per_period)
            ),
            quantity: Decimal::ONE,
            unit_price: None,
            amount,
            period: Some(*range),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Interval, Plan};
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn period(start: &str, end: &str) -> BillingPeriod {
        BillingPeriod::new(ts(start), ts(end)).unwrap()
    }

    fn monthly(amount: Decimal, timing: Timing) -> Plan {
        Plan {
            base: Some(BasePrice {
                amount,
                interval: Interval::Month,
                timing,
                every: 1,
            }),
            ..Plan::default()
        }
    }

    /// Stripe's documented example (docs.stripe.com, Prorations, "How prorations work"): an
    /// upgrade from a 10 USD to a 20 USD monthly plan halfway through the period bills -5 USD of
    /// unused time and +10 USD of remaining time.
    #[test]
    fn stripe_upgrade_halfway() {
        let mut catalog = Catalog::default();
        catalog
            .plans
            .insert("ten".into(), monthly(dec!(10), Timing::InAdvance));
        catalog
            .plans
            .insert("twenty".into(), monthly(dec!(20), Timing::InAdvance));
        let november = period("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
        let lines = plan_change(
            &catalog,
            "ten",
            "twenty",
            ts("2026-11-16T00:00:00Z"),
            &november,
        )
        .unwrap();
        let amounts: Vec<Decimal> = lines.iter().map(|c| c.amount).collect();
        assert_eq!(amounts, [dec!(-5), dec!(10)]);
    }

    /// Lago's documented example (getlago.com, Upgrades and downgrades, "Subscription paid in
    /// arrears"): Plan A, 100/month in arrears on calendar billing from January 1st, upgraded to
    /// Plan B, 200/month, on January 15th: Plan A is billed 14/31 x 100 = 45.16 for the days
    /// before the upgrade, and Plan B only for the days after it.
    #[test]
    fn lago_upgrade_in_arrears() {
        let mut catalog = Catalog::default();
        catalog
            .plans
            .insert("a".into(), monthly(dec!(100), Timing::InArrears));
        catalog
            .plans
            .insert("b".into(), monthly(dec!(200), Timing::InArrears));
        let january = period("2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z");
        let at = ts("2027-01-15T00:00:00Z");
        let lines = plan_change(&catalog, "a", "b", at, &january).unwrap();
        assert_eq!(lines[0].amount.round_dp(2), dec!(45.16));
        assert_eq!(lines[0].description, "a: used time, 100.00 x 14 of 31 days");
        // Plan B's in-arrears fee for January, less the credit for the 14 days before the change:
        // 17 of 31 days of 200.
        let b_for_january = dec!(200) + lines[1].amount;
        assert_eq!(
            b_for_january,
            prorate(dec!(200), at, january.end, january.start, january.end).unwrap()
        );
        assert_eq!(b_for_january.round_dp(2), dec!(109.68));
    }

    #[test]
    fn a_prorated_part_rounds_toward_zero_and_a_whole_period_is_the_fee() {
        let month = period("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
        let rest = period("2026-11-20T00:00:00Z", "2026-12-01T00:00:00Z");
        // 99.00 x 11 of 30 days = 36.30 exactly; 10.00 x 11/30 = 3.6666.. -> 3.66.
        assert_eq!(
            part_of_period(dec!(99.00), &rest, Some(month), 2)
                .unwrap()
                .0,
            dec!(36.30)
        );
        assert_eq!(
            part_of_period(dec!(10.00), &rest, Some(month), 2)
                .unwrap()
                .0,
            dec!(3.66)
        );
        assert_eq!(
            part_of_period(dec!(10.00), &month, Some(month), 2).unwrap(),
            (dec!(10.00), None)
        );
        assert_eq!(
            part_of_period(dec!(10.00), &month, None, 2).unwrap(),
            (dec!(10.00), None)
        );
    }

    proptest! {
        /// A period split anywhere into parts: the parts' prorated fees sum to at most the fee,
        /// and to exactly the fee when the part is the whole period.
        #[test]
        fn split_parts_sum_to_at_most_the_fee(
            cents in 0i64..100_000_000,
            len in 1i64..40_000_000,
            mut cuts in proptest::collection::vec(0i64..40_000_000, 0..6),
        ) {
            let fee = Decimal::new(cents, 2);
            let start = ts("2026-11-01T00:00:00Z");
            let at = |s: i64| Timestamp::from_second(start.as_second() + s).unwrap();
            let full = BillingPeriod::new(start, at(len)).unwrap();
            cuts.retain(|c| *c > 0 && *c < len);
            cuts.sort_unstable();
            cuts.dedup();
            let mut bounds = vec![0];
            bounds.extend(cuts);
            bounds.push(len);
            let mut sum = Decimal::ZERO;
            for w in bounds.windows(2) {
                let part = BillingPeriod::new(at(w[0]), at(w[1])).unwrap();
                let (amount, _) = part_of_period(fee, &part, Some(full), 2).unwrap();
                prop_assert!(amount >= Decimal::ZERO);
                sum += amount;
            }
            prop_assert!(sum <= fee, "{sum} > {fee}");
            if bounds.len() == 2 {
                prop_assert_eq!(sum, fee);
            }
        }
    }
}
