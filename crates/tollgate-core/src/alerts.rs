//! Usage alerts: which thresholds of a plan's allowance a meter's value has reached.
//!
//! A catalog's `alerts: { api_calls: [80, 100] }` asks for a notice when a customer's usage of a
//! meter in a period reaches 80% and 100% of what its plan allows. What the plan allows is the
//! `included` units of its price on the meter, else its finite per-customer period quota; a plan
//! with neither has nothing to measure against and never alerts. That each threshold fires once
//! per period is the store's job (the alert's key); this module only says what is reached.

use rust_decimal::Decimal;

use crate::catalog::{Limit, Plan, QuotaReset, Scope};

/// The allowance `plan` gives on `meter` for a period, if it has one.
pub fn allowance(plan: &Plan, meter: &str) -> Option<Decimal> {
    let included = plan
        .prices
        .iter()
        .find(|p| p.meter == meter)
        .and_then(|p| p.included)
        .filter(|i| *i > Decimal::ZERO);
    included.or_else(|| {
        plan.quotas
            .iter()
            .filter(|q| {
                q.meter == meter && q.reset == QuotaReset::Period && q.per == Scope::Customer
            })
            .find_map(|q| match q.limit {
                Limit::Finite(l) if l > Decimal::ZERO => Some(l),
                _ => None,
            })
    })
}

/// The usage at which `percent` of `allowance` is reached (80% of 10,000 is 8,000), or `None`
/// if it overflows.
pub fn level(allowance: Decimal, percent: Decimal) -> Option<Decimal> {
    allowance
        .checked_mul(percent)?
        .checked_div(Decimal::ONE_HUNDRED)
}

/// The thresholds (percentages, as the catalog lists them) that `used` has reached: the 8,000th
/// call reaches 80% of 10,000, the 7,999th does not.
pub fn reached(thresholds: &[Decimal], allowance: Decimal, used: Decimal) -> Vec<Decimal> {
    thresholds
        .iter()
        .copied()
        .filter(|percent| level(allowance, *percent).is_some_and(|at| used >= at))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn levqor_thresholds() {
        let t = [dec!(80), dec!(100)];
        assert!(reached(&t, dec!(10000), dec!(7999)).is_empty());
        assert_eq!(reached(&t, dec!(10000), dec!(8000)), vec![dec!(80)]);
        assert_eq!(reached(&t, dec!(10000), dec!(8001)), vec![dec!(80)]);
        assert_eq!(reached(&t, dec!(10000), dec!(10000)), t.to_vec());
        assert_eq!(reached(&t, dec!(10000), dec!(50000)), t.to_vec());
    }

    proptest! {
        /// Reaching is monotone: more usage never un-reaches a threshold, and a reached
        /// threshold's level is at most the usage.
        #[test]
        fn more_usage_reaches_at_least_as_much(
            allowance in 1u64..1_000_000,
            a in 0u64..2_000_000,
            b in 0u64..2_000_000,
            percents in proptest::collection::btree_set(1u32..300, 0..5),
        ) {
            let t: Vec<Decimal> = percents.into_iter().map(Decimal::from).collect();
            let (lo, hi) = (a.min(b), a.max(b));
            let low = reached(&t, Decimal::from(allowance), Decimal::from(lo));
            let high = reached(&t, Decimal::from(allowance), Decimal::from(hi));
            prop_assert!(low.iter().all(|p| high.contains(p)));
            for p in &high {
                prop_assert!(level(Decimal::from(allowance), *p).unwrap() <= Decimal::from(hi));
            }
        }
    }
}
