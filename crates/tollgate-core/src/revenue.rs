//! Retention and invoiced revenue by month, exact (docs/DASHBOARD.md, "Retention and revenue").
//! Pure: retention is read from the MRR report's movements ([`crate::analytics`]); revenue from
//! invoice lines the caller reads.
//!
//! - **Logo churn** of a month: customers with MRR at the previous close who have none at this
//!   one, over the customers at the previous close.
//! - **Revenue churn** (gross): MRR lost to churn and contraction over the MRR at the previous
//!   close.
//! - **Net revenue retention**: what the customers at the previous close pay at this one,
//!   expansion included, over what they paid: `(start + expansion - contraction - churn) /
//!   start`. New and reactivated customers are not in it.
//!
//! Each is a percentage to two decimals, half away from zero; none when the month starts without
//! MRR (or customers).

// Money path: no `as` casts.
#![deny(clippy::as_conversions)]

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::analytics::{AnalyticsError, MrrMonth, month_label, month_of};

/// `part / whole x 100` to two decimals, half away from zero; `None` when `whole` is 0.
pub fn percent(part: i64, whole: i64) -> Result<Option<Decimal>, AnalyticsError> {
    if whole == 0 {
        return Ok(None);
    }
    let ratio = Decimal::from(part)
        .checked_mul(Decimal::ONE_HUNDRED)
        .and_then(|p| p.checked_div(Decimal::from(whole)))
        .ok_or(AnalyticsError::Overflow)?;
    let mut rounded =
        ratio.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(2);
    Ok(Some(rounded))
}

/// One month's retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionMonth {
    /// `YYYY-MM`.
    pub month: String,
    pub customers_start: u64,
    pub churned_customers: u64,
    pub logo_churn_percent: Option<Decimal>,
    pub start_minor: i64,
    /// `churn + contraction`.
    pub lost_minor: i64,
    pub revenue_churn_percent: Option<Decimal>,
    /// `start + expansion - contraction - churn`: the starting customers' MRR at the close.
    pub retained_minor: i64,
    pub net_revenue_retention_percent: Option<Decimal>,
}

/// Retention of each month of an MRR report.
pub fn retention(months: &[MrrMonth]) -> Result<Vec<RetentionMonth>, AnalyticsError> {
    let overflow = || AnalyticsError::Overflow;
    months
        .iter()
        .map(|m| {
            let lost = m
                .churn_minor
                .checked_add(m.contraction_minor)
                .ok_or_else(overflow)?;
            let retained = m
                .start_minor
                .checked_add(m.expansion_minor)
                .and_then(|r| r.checked_sub(lost))
                .ok_or_else(overflow)?;
            let start_customers = i64::try_from(m.customers_start).map_err(|_| overflow())?;
            let churned = i64::try_from(m.churned_customers).map_err(|_| overflow())?;
            Ok(RetentionMonth {
                month: m.month.clone(),
                customers_start: m.customers_start,
                churned_customers: m.churned_customers,
                logo_churn_percent: percent(churned, start_customers)?,
                start_minor: m.start_minor,
                lost_minor: lost,
                revenue_churn_percent: percent(lost, m.start_minor)?,
                retained_minor: retained,
                net_revenue_retention_percent: percent(retained, m.start_minor)?,
            })
        })
        .collect()
}

/// One invoiced amount: a line of an issued invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevenueLine {
    /// When the period the line is for starts (the invoice's period when the line has none).
    pub at: Timestamp,
    /// The plan of the invoice (`None`: an invoice of one-time products).
    pub plan: Option<String>,
    /// The meter of a usage line.
    pub meter: Option<String>,
    pub minor: i64,
}

/// Invoiced revenue of one month, by plan and by meter (usage lines only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RevenueMonth {
    /// `YYYY-MM`.
    pub month: String,
    pub total_minor: i64,
    pub by_plan: BTreeMap<String, i64>,
    pub by_meter: BTreeMap<String, i64>,
}

/// The lines' revenue by the month their period starts in, for the months `from..=to`
/// (first days of months; every month of the range is listed, empty ones too).
pub fn revenue_by_month(
    lines: &[RevenueLine],
    from: Date,
    to: Date,
) -> Result<Vec<RevenueMonth>, AnalyticsError> {
    if from > to {
        return Err(AnalyticsError::Reversed {
            from: month_label(from),
            to: month_label(to),
        });
    }
    let mut months: BTreeMap<Date, RevenueMonth> = BTreeMap::new();
    let mut m = from.first_of_month();
    while m <= to {
        if months.len() >= crate::analytics::MAX_MONTHS {
            return Err(AnalyticsError::TooManyMonths);
        }
        months.insert(
            m,
            RevenueMonth {
                month: month_label(m),
                ..RevenueMonth::default()
            },
        );
        m = m
            .checked_add(jiff::Span::new().months(1))
            .map_err(|_| AnalyticsError::Overflow)?;
    }
    let add = |slot: &mut i64, minor: i64| -> Result<(), AnalyticsError> {
        *slot = slot.checked_add(minor).ok_or(AnalyticsError::Overflow)?;
        Ok(())
    };
    for line in lines {
        let Some(month) = months.get_mut(&month_of(line.at)) else {
            continue;
        };
        add(&mut month.total_minor, line.minor)?;
        let plan = line.plan.clone().unwrap_or_else(|| "(none)".to_owned());
        add(month.by_plan.entry(plan).or_insert(0), line.minor)?;
        if let Some(meter) = &line.meter {
            add(month.by_meter.entry(meter.clone()).or_insert(0), line.minor)?;
        }
    }
    Ok(months.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::parse_month;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn mrr_month(start: i64, expansion: i64, contraction: i64, churn: i64, new: i64) -> MrrMonth {
        MrrMonth {
            month: "2026-11".into(),
            start_minor: start,
            new_minor: new,
            expansion_minor: expansion,
            contraction_minor: contraction,
            churn_minor: churn,
            reactivation_minor: 0,
            end_minor: start + new + expansion - contraction - churn,
            arr_minor: 0,
            customers_start: 3,
            customers_end: 3,
            new_customers: 1,
            churned_customers: 1,
            reactivated_customers: 0,
            arpu_minor: 0,
        }
    }

    /// By hand: 697.00 at October's close (3 customers); in November 99.00 churns, 400.00 of
    /// expansion, 50.00 of contraction and a new customer (not counted): logo churn 1/3 =
    /// 33.33 %, revenue churn 149/697 = 21.3773... -> 21.38 %, NRR (697 + 400 - 149) / 697 =
    /// 136.0114... -> 136.01 %.
    #[test]
    fn retention_by_hand() {
        let rows = retention(&[mrr_month(69_700, 40_000, 5_000, 9_900, 9_900)]).unwrap();
        let r = &rows[0];
        assert_eq!(r.logo_churn_percent, Some(d("33.33")));
        assert_eq!(r.lost_minor, 14_900);
        assert_eq!(r.revenue_churn_percent, Some(d("21.38")));
        assert_eq!(r.retained_minor, 94_800);
        assert_eq!(r.net_revenue_retention_percent, Some(d("136.01")));
        // A month that starts empty has no rates.
        let mut empty = mrr_month(0, 0, 0, 0, 9_900);
        empty.customers_start = 0;
        empty.churned_customers = 0;
        let r = &retention(&[empty]).unwrap()[0];
        assert_eq!(
            (
                r.logo_churn_percent,
                r.revenue_churn_percent,
                r.net_revenue_retention_percent
            ),
            (None, None, None)
        );
        assert_eq!(percent(1, 8).unwrap(), Some(d("12.50")));
        assert_eq!(percent(2, 3).unwrap(), Some(d("66.67")));
    }

    #[test]
    fn revenue_by_hand() {
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        let line = |t: &str, plan: Option<&str>, meter: Option<&str>, minor| RevenueLine {
            at: at(t),
            plan: plan.map(str::to_owned),
            meter: meter.map(str::to_owned),
            minor,
        };
        let lines = vec![
            line("2026-10-01T00:00:00Z", Some("starter"), None, 9_900),
            line(
                "2026-10-01T00:00:00Z",
                Some("starter"),
                Some("generations"),
                150,
            ),
            line("2026-11-01T00:00:00Z", Some("starter"), None, 9_900),
            line(
                "2026-11-01T00:00:00Z",
                Some("payg"),
                Some("generations"),
                700,
            ),
            line("2026-11-16T00:00:00Z", Some("professional"), None, 20_000),
            line("2026-11-03T00:00:00Z", None, None, 1_500),
            // Outside the report.
            line("2026-12-01T00:00:00Z", Some("starter"), None, 9_900),
        ];
        let months = revenue_by_month(
            &lines,
            parse_month("2026-09").unwrap(),
            parse_month("2026-11").unwrap(),
        )
        .unwrap();
        assert_eq!(months.len(), 3);
        assert_eq!(months[0].total_minor, 0);
        assert_eq!(months[1].total_minor, 10_050);
        assert_eq!(months[1].by_plan["starter"], 10_050);
        assert_eq!(months[1].by_meter["generations"], 150);
        let nov = &months[2];
        assert_eq!(nov.total_minor, 9_900 + 700 + 20_000 + 1_500);
        assert_eq!(
            nov.by_plan,
            BTreeMap::from([
                ("(none)".to_owned(), 1_500),
                ("payg".to_owned(), 700),
                ("professional".to_owned(), 20_000),
                ("starter".to_owned(), 9_900),
            ])
        );
        assert_eq!(
            nov.by_meter,
            BTreeMap::from([("generations".to_owned(), 700)])
        );
    }
}
