//! Gross margin per meter: invoiced revenue against what the usage cost the operator, exact
//! (docs/DASHBOARD.md, "Margins"). Pure: the caller reads the invoices' usage lines and the
//! usage of the periods they closed; costs come from the catalog's `costs` section.
//!
//! Revenue of a meter is the sum of its invoiced usage lines (each already rounded to minor
//! units: what the customer was charged). Its cost is every unit used in those periods (included
//! units too: they cost the operator as much) times its unit cost, summed exactly and rounded
//! once to minor units, half away from zero. Margin is revenue minus cost; its percentage is of
//! revenue, to two decimals (none without revenue).

// Money path: no `as` casts.
#![deny(clippy::as_conversions)]

use indexmap::IndexMap;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::catalog::MeterCost;
use crate::money::{Currency, Money, Rounding};
use crate::pricing::MeterUsage;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarginError {
    #[error("an amount is out of range")]
    Overflow,
}

/// The exact cost of one period's usage of one meter.
pub fn cost_of(cost: &MeterCost, usage: &MeterUsage) -> Result<Decimal, MarginError> {
    let mul = |units: Decimal, each: Decimal| units.checked_mul(each).ok_or(MarginError::Overflow);
    match &cost.dimension {
        Some(dimension) if !usage.groups.is_empty() => {
            usage.groups.iter().try_fold(Decimal::ZERO, |total, g| {
                let each = cost.unit_cost(g.group.get(dimension).map(String::as_str));
                total
                    .checked_add(mul(g.value.max(Decimal::ZERO), each)?)
                    .ok_or(MarginError::Overflow)
            })
        }
        _ => mul(usage.total.max(Decimal::ZERO), cost.unit_cost(None)),
    }
}

/// Revenue and cost of one meter, summed over the invoices of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeterTotals {
    /// Invoiced usage lines, in minor units.
    pub revenue_minor: i64,
    /// Units used in the invoiced periods.
    pub units: Decimal,
    /// Exact, not yet rounded.
    pub cost: Decimal,
}

impl MeterTotals {
    pub fn add(
        &mut self,
        revenue_minor: i64,
        units: Decimal,
        cost: Decimal,
    ) -> Result<(), MarginError> {
        self.revenue_minor = self
            .revenue_minor
            .checked_add(revenue_minor)
            .ok_or(MarginError::Overflow)?;
        self.units = self.units.checked_add(units).ok_or(MarginError::Overflow)?;
        self.cost = self.cost.checked_add(cost).ok_or(MarginError::Overflow)?;
        Ok(())
    }
}

/// One meter of the report; amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeterMargin {
    pub meter: String,
    pub units: Decimal,
    pub revenue_minor: i64,
    pub cost_minor: i64,
    /// `revenue - cost`.
    pub margin_minor: i64,
    /// `margin / revenue x 100`, to two decimals, half away from zero; none without revenue.
    pub margin_percent: Option<Decimal>,
}

/// `margin / revenue x 100`, to two decimals, half away from zero; `None` without revenue.
pub fn percent_of(margin_minor: i64, revenue_minor: i64) -> Result<Option<Decimal>, MarginError> {
    if revenue_minor == 0 {
        return Ok(None);
    }
    let ratio = Decimal::from(margin_minor)
        .checked_mul(Decimal::ONE_HUNDRED)
        .and_then(|m| m.checked_div(Decimal::from(revenue_minor)))
        .ok_or(MarginError::Overflow)?;
    let mut rounded =
        ratio.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(2);
    Ok(Some(rounded))
}

/// The report's rows, in the order given (the catalog's meters).
pub fn margins(
    totals: &IndexMap<String, MeterTotals>,
    currency: Currency,
) -> Result<Vec<MeterMargin>, MarginError> {
    totals
        .iter()
        .map(|(meter, t)| {
            let cost_minor = Money::round(t.cost, currency, Rounding::HalfAwayFromZero)
                .map_err(|_| MarginError::Overflow)?
                .minor();
            let margin_minor = t
                .revenue_minor
                .checked_sub(cost_minor)
                .ok_or(MarginError::Overflow)?;
            let margin_percent = percent_of(margin_minor, t.revenue_minor)?;
            Ok(MeterMargin {
                meter: meter.clone(),
                units: t.units.normalize(),
                revenue_minor: t.revenue_minor,
                cost_minor,
                margin_minor,
                margin_percent,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::GroupUsage;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn group(tier: &str, model: &str, value: &str) -> GroupUsage {
        GroupUsage {
            group: [
                ("tier".to_owned(), tier.to_owned()),
                ("model".to_owned(), model.to_owned()),
            ]
            .into(),
            value: d(value),
        }
    }

    /// QLP case 6 on case 1: 10 T0, 4 T2, 2 T3 on gpt-4 billed $7.00; $0.03 per T0 and $0.12
    /// per T3 generation cost 10 x 0.03 + 2 x 0.12 = 0.54 (T2 has no cost given): margin 6.46,
    /// 92.29 % of revenue.
    #[test]
    fn qlp_case_6_by_hand() {
        let cost = MeterCost {
            unit_amount: None,
            dimension: Some("tier".into()),
            rates: [("T0".to_owned(), d("0.03")), ("T3".to_owned(), d("0.12"))].into(),
        };
        let usage = MeterUsage {
            total: d("16"),
            groups: vec![
                group("T0", "standard", "10"),
                group("T2", "standard", "4"),
                group("T3", "gpt-4", "2"),
            ],
            transactions: None,
        };
        let exact = cost_of(&cost, &usage).unwrap();
        assert_eq!(exact, d("0.54"));
        let mut totals = IndexMap::new();
        totals
            .entry("generations".to_owned())
            .or_insert_with(MeterTotals::default)
            .add(700, usage.total, exact)
            .unwrap();
        let rows = margins(&totals, Currency::USD).unwrap();
        assert_eq!(
            rows,
            vec![MeterMargin {
                meter: "generations".into(),
                units: d("16"),
                revenue_minor: 700,
                cost_minor: 54,
                margin_minor: 646,
                margin_percent: Some(d("92.29")),
            }]
        );
    }

    /// A cost without dimension is per unit of the total; costs are summed exactly and rounded
    /// once (three periods of 0.004 cost 0.012 -> 0.01, not 3 x 0.00); no revenue, no percent.
    #[test]
    fn rounded_once_and_no_revenue() {
        let cost = MeterCost {
            unit_amount: Some(d("0.001")),
            ..MeterCost::default()
        };
        let mut t = MeterTotals::default();
        for _ in 0..3 {
            let exact = cost_of(&cost, &MeterUsage::total(d("4"))).unwrap();
            assert_eq!(exact, d("0.004"));
            t.add(0, d("4"), exact).unwrap();
        }
        let rows = margins(
            &[("api_calls".to_owned(), t)].into_iter().collect(),
            Currency::USD,
        )
        .unwrap();
        assert_eq!(rows[0].cost_minor, 1);
        assert_eq!(rows[0].margin_minor, -1);
        assert_eq!(rows[0].margin_percent, None);
    }
}
