//! Recurring revenue, computed exactly: MRR at the close of each month and its movements (new,
//! expansion, contraction, churn, reactivation), from spans of recurring revenue the caller
//! reads from subscriptions. Pure: no clock, no store (docs/DASHBOARD.md, "Analytics").
//!
//! A [`Span`] says "this customer pays `monthly_minor` a month from `from` until `to`". Each month
//! is read at its close, the last instant before the next month starts: a span counts in a month
//! when `from < close` and (`to` is none or `to >= close`), `close` being the next month's first
//! instant. So a subscription that ends exactly at a month boundary counts in the month before
//! and not after, and one that starts exactly at a boundary counts from that month on. Movements compare
//! each customer's MRR at the previous close with the one at this close, so for every month
//! `start + new + expansion + reactivation - contraction - churn = end`, exactly.

// Money path: no `as` casts.
#![deny(clippy::as_conversions)]

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::catalog::{BasePrice, Interval};
use crate::code::Code;
use crate::money::{Currency, Money, Rounding};

/// At most this many months in one report (ten years).
pub const MAX_MONTHS: usize = 120;

/// Recurring revenue of one customer over a span of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub customer: String,
    pub from: Timestamp,
    /// `None`: still running.
    pub to: Option<Timestamp>,
    /// The recurring price normalised to one month, in minor units.
    pub monthly_minor: i64,
}

/// One month of the report. Every amount is in minor units; decreases are positive numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MrrMonth {
    /// `YYYY-MM`.
    pub month: String,
    pub start_minor: i64,
    pub new_minor: i64,
    pub expansion_minor: i64,
    pub contraction_minor: i64,
    pub churn_minor: i64,
    pub reactivation_minor: i64,
    pub end_minor: i64,
    /// `end_minor * 12`.
    pub arr_minor: i64,
    /// Customers with MRR at the month's start and close.
    pub customers_start: u64,
    pub customers_end: u64,
    pub new_customers: u64,
    pub churned_customers: u64,
    pub reactivated_customers: u64,
    /// Average revenue per paying customer at the close: `end / customers_end`, rounded half
    /// away from zero (0 without customers).
    pub arpu_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyticsError {
    #[error("{0:?} is not a month: write YYYY-MM")]
    InvalidMonth(String),
    #[error("`from` ({from}) is after `to` ({to})")]
    Reversed { from: String, to: String },
    #[error("at most {MAX_MONTHS} months in one report")]
    TooManyMonths,
    #[error("an amount is out of range")]
    Overflow,
}

impl AnalyticsError {
    pub fn code(&self) -> Code {
        match self {
            AnalyticsError::Overflow => Code::AmountOutOfRange,
            _ => Code::InvalidMonth,
        }
    }
}

/// The first day of the month written `YYYY-MM`.
pub fn parse_month(text: &str) -> Result<Date, AnalyticsError> {
    let bad = || AnalyticsError::InvalidMonth(text.to_owned());
    let (year, month) = text.split_once('-').ok_or_else(bad)?;
    if year.len() != 4 || month.len() != 2 {
        return Err(bad());
    }
    let year: i16 = year.parse().map_err(|_| bad())?;
    let month: i8 = month.parse().map_err(|_| bad())?;
    Date::new(year, month, 1).map_err(|_| bad())
}

/// `YYYY-MM` of a date.
pub fn month_label(date: Date) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

/// The month `date` falls in, as its first day (UTC).
pub fn month_of(at: Timestamp) -> Date {
    let date = at.to_zoned(TimeZone::UTC).date();
    date.first_of_month()
}

fn next_month(date: Date) -> Result<Date, AnalyticsError> {
    date.checked_add(jiff::Span::new().months(1))
        .map_err(|_| AnalyticsError::Overflow)
}

fn start_of(date: Date) -> Result<Timestamp, AnalyticsError> {
    date.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|_| AnalyticsError::Overflow)
}

/// A recurring base price normalised to one month, in minor units, rounded once, half away
/// from zero: a year is 12 months, a quarter 3, a week 52/12 of a month, a day 365/12.
pub fn monthly_minor(base: &BasePrice, currency: Currency) -> Result<i64, AnalyticsError> {
    let every = Decimal::from(base.every.max(1));
    let (per, months) = match base.interval {
        Interval::Month => (Decimal::ONE, Decimal::ONE),
        Interval::Quarter => (Decimal::ONE, Decimal::from(3)),
        Interval::Year => (Decimal::ONE, Decimal::from(12)),
        Interval::Week => (Decimal::from(52), Decimal::from(12)),
        Interval::Day => (Decimal::from(365), Decimal::from(12)),
    };
    let divisor = months.checked_mul(every).ok_or(AnalyticsError::Overflow)?;
    let exact = base
        .amount
        .checked_mul(per)
        .and_then(|a| a.checked_div(divisor))
        .ok_or(AnalyticsError::Overflow)?;
    Money::round(exact, currency, Rounding::HalfAwayFromZero)
        .map(|m| m.minor())
        .map_err(|_| AnalyticsError::Overflow)
}

/// One subscription's recurring revenue as spans, one per plan it was on (docs/DASHBOARD.md,
/// "Plan changes"): `first_monthly` from `from`, then each change's monthly amount from the
/// change's time on, until `to`. Changes at or before `from` (already in `first_monthly`) and
/// at or after `to` (the subscription had ended) are left out; they are read in time order.
pub fn spans_with_changes(
    customer: &str,
    from: Timestamp,
    to: Option<Timestamp>,
    first_monthly: i64,
    changes: &[(Timestamp, i64)],
) -> Vec<Span> {
    let mut changes: Vec<(Timestamp, i64)> = changes
        .iter()
        .copied()
        .filter(|(at, _)| *at > from && to.is_none_or(|to| *at < to))
        .collect();
    changes.sort_by_key(|(at, _)| *at);
    let mut out = Vec::with_capacity(changes.len() + 1);
    let (mut start, mut monthly) = (from, first_monthly);
    for (at, next) in changes {
        if next == monthly {
            continue;
        }
        out.push(Span {
            customer: customer.to_owned(),
            from: start,
            to: Some(at),
            monthly_minor: monthly,
        });
        (start, monthly) = (at, next);
    }
    out.push(Span {
        customer: customer.to_owned(),
        from: start,
        to,
        monthly_minor: monthly,
    });
    out
}

/// Each customer's MRR just before `close`.
fn mrr_at(spans: &[Span], close: Timestamp) -> Result<BTreeMap<&str, i64>, AnalyticsError> {
    let mut out: BTreeMap<&str, i64> = BTreeMap::new();
    for span in spans {
        let covers = span.from < close && span.to.is_none_or(|to| to >= close);
        if covers && span.monthly_minor != 0 {
            let entry = out.entry(span.customer.as_str()).or_insert(0);
            *entry = entry
                .checked_add(span.monthly_minor)
                .ok_or(AnalyticsError::Overflow)?;
        }
    }
    out.retain(|_, v| *v > 0);
    Ok(out)
}

/// The report for the months `from..=to` (first days of months).
pub fn mrr_by_month(spans: &[Span], from: Date, to: Date) -> Result<Vec<MrrMonth>, AnalyticsError> {
    if from > to {
        return Err(AnalyticsError::Reversed {
            from: month_label(from),
            to: month_label(to),
        });
    }
    let mut months = Vec::new();
    let mut m = from.first_of_month();
    while m <= to {
        if months.len() >= MAX_MONTHS {
            return Err(AnalyticsError::TooManyMonths);
        }
        months.push(m);
        m = next_month(m)?;
    }
    // Who had MRR at any close before the report: a return is a reactivation, not new.
    // Closes before `from` are read from the earliest span's month on.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut previous = BTreeMap::new();
    if let Some(earliest) = spans.iter().map(|s| month_of(s.from)).min() {
        let mut m = earliest;
        while m < from.first_of_month() {
            let close = start_of(next_month(m)?)?;
            previous = mrr_at(spans, close)?;
            seen.extend(previous.keys().copied());
            m = next_month(m)?;
        }
    }
    let mut out = Vec::with_capacity(months.len());
    for month in months {
        let close = start_of(next_month(month)?)?;
        let current = mrr_at(spans, close)?;
        let mut row = MrrMonth {
            month: month_label(month),
            start_minor: sum(&previous)?,
            new_minor: 0,
            expansion_minor: 0,
            contraction_minor: 0,
            churn_minor: 0,
            reactivation_minor: 0,
            end_minor: sum(&current)?,
            arr_minor: 0,
            customers_start: count(&previous),
            customers_end: count(&current),
            new_customers: 0,
            churned_customers: 0,
            reactivated_customers: 0,
            arpu_minor: 0,
        };
        let customers: BTreeSet<&str> = previous.keys().chain(current.keys()).copied().collect();
        for customer in customers {
            let before = previous.get(customer).copied().unwrap_or(0);
            let after = current.get(customer).copied().unwrap_or(0);
            let add = |total: &mut i64, amount: i64| -> Result<(), AnalyticsError> {
                *total = total.checked_add(amount).ok_or(AnalyticsError::Overflow)?;
                Ok(())
            };
            if before == 0 && after > 0 {
                if seen.contains(customer) {
                    add(&mut row.reactivation_minor, after)?;
                    row.reactivated_customers += 1;
                } else {
                    add(&mut row.new_minor, after)?;
                    row.new_customers += 1;
                }
            } else if before > 0 && after == 0 {
                add(&mut row.churn_minor, before)?;
                row.churned_customers += 1;
            } else if after > before {
                add(&mut row.expansion_minor, after - before)?;
            } else if after < before {
                add(&mut row.contraction_minor, before - after)?;
            }
        }
        row.arr_minor = row
            .end_minor
            .checked_mul(12)
            .ok_or(AnalyticsError::Overflow)?;
        row.arpu_minor = arpu(row.end_minor, row.customers_end)?;
        seen.extend(current.keys().copied());
        previous = current;
        out.push(row);
    }
    Ok(out)
}

fn sum(mrr: &BTreeMap<&str, i64>) -> Result<i64, AnalyticsError> {
    mrr.values()
        .try_fold(0i64, |t, v| t.checked_add(*v))
        .ok_or(AnalyticsError::Overflow)
}

fn count(mrr: &BTreeMap<&str, i64>) -> u64 {
    u64::try_from(mrr.len()).unwrap_or(u64::MAX)
}

fn arpu(total: i64, customers: u64) -> Result<i64, AnalyticsError> {
    if customers == 0 {
        return Ok(0);
    }
    let exact = Decimal::from(total)
        .checked_div(Decimal::from(customers))
        .ok_or(AnalyticsError::Overflow)?;
    let rounded =
        exact.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    i64::try_from(rounded).map_err(|_| AnalyticsError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn span(customer: &str, from: &str, to: Option<&str>, monthly_minor: i64) -> Span {
        Span {
            customer: customer.into(),
            from: t(from),
            to: to.map(t),
            monthly_minor,
        }
    }

    fn month(text: &str) -> Date {
        parse_month(text).unwrap()
    }

    /// Hand-computed: A joins in September at $499, B in October at $99 and upgrades to $499
    /// in November, C joins in October at $99 and is refunded on November 20 (QLP case 5: MRR
    /// no longer counts it), D leaves at the end of October and comes back in December, A moves
    /// down to $99 in December.
    #[test]
    fn movements_by_hand() {
        let spans = vec![
            span(
                "A",
                "2026-09-10T00:00:00Z",
                Some("2026-12-05T00:00:00Z"),
                49_900,
            ),
            span("A", "2026-12-05T00:00:00Z", None, 9_900),
            span(
                "B",
                "2026-10-15T00:00:00Z",
                Some("2026-11-15T00:00:00Z"),
                9_900,
            ),
            span("B", "2026-11-15T00:00:00Z", None, 49_900),
            span(
                "C",
                "2026-10-02T00:00:00Z",
                Some("2026-11-20T00:00:00Z"),
                9_900,
            ),
            span(
                "D",
                "2026-09-01T00:00:00Z",
                Some("2026-11-01T00:00:00Z"),
                2_900,
            ),
            span("D", "2026-12-01T00:00:00Z", None, 2_900),
        ];
        let report = mrr_by_month(&spans, month("2026-10"), month("2026-12")).unwrap();
        let rows: Vec<_> = report
            .iter()
            .map(|r| {
                (
                    r.month.as_str(),
                    r.start_minor,
                    r.new_minor,
                    r.expansion_minor,
                    r.contraction_minor,
                    r.churn_minor,
                    r.reactivation_minor,
                    r.end_minor,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                // Sep close: A 499 + D 29 = 528. Oct: B and C new (99 + 99); D ends at the
                // boundary of November, so it still counts at October's close.
                ("2026-10", 52_800, 19_800, 0, 0, 0, 0, 72_600),
                // Nov: B +400, C refunded (-99), D gone (-29).
                ("2026-11", 72_600, 0, 40_000, 0, 12_800, 0, 99_800),
                // Dec: A -400, D back (+29).
                ("2026-12", 99_800, 0, 0, 40_000, 0, 2_900, 62_700),
            ]
        );
        let nov = &report[1];
        assert_eq!(nov.customers_start, 4);
        assert_eq!(nov.customers_end, 2);
        assert_eq!(nov.churned_customers, 2);
        assert_eq!(nov.arr_minor, 99_800 * 12);
        assert_eq!(nov.arpu_minor, 49_900);
        assert_eq!(report[2].reactivated_customers, 1);
        assert_eq!(report[2].arpu_minor, 20_900); // 627.00 / 3
    }

    /// An upgrade on November 15 splits one subscription in two spans: expansion in November,
    /// counted once at every close; changes outside the subscription's life are ignored.
    #[test]
    fn plan_changes_split_a_subscription() {
        let spans = spans_with_changes(
            "B",
            t("2026-10-15T00:00:00Z"),
            Some(t("2027-01-10T00:00:00Z")),
            9_900,
            &[
                (t("2026-12-01T00:00:00Z"), 2_900),
                (t("2026-11-15T00:00:00Z"), 49_900),
                (t("2026-11-20T00:00:00Z"), 49_900),
                (t("2026-10-01T00:00:00Z"), 1),
                (t("2027-02-01T00:00:00Z"), 2),
            ],
        );
        assert_eq!(
            spans,
            vec![
                span(
                    "B",
                    "2026-10-15T00:00:00Z",
                    Some("2026-11-15T00:00:00Z"),
                    9_900
                ),
                span(
                    "B",
                    "2026-11-15T00:00:00Z",
                    Some("2026-12-01T00:00:00Z"),
                    49_900
                ),
                span(
                    "B",
                    "2026-12-01T00:00:00Z",
                    Some("2027-01-10T00:00:00Z"),
                    2_900
                ),
            ]
        );
        let report = mrr_by_month(&spans, month("2026-10"), month("2027-01")).unwrap();
        let moves: Vec<_> = report
            .iter()
            .map(|r| {
                (
                    r.new_minor,
                    r.expansion_minor,
                    r.contraction_minor,
                    r.churn_minor,
                    r.end_minor,
                )
            })
            .collect();
        assert_eq!(
            moves,
            vec![
                (9_900, 0, 0, 0, 9_900),
                (0, 40_000, 0, 0, 49_900),
                (0, 0, 47_000, 0, 2_900),
                (0, 0, 0, 2_900, 0),
            ]
        );
        // No change: one span, open.
        assert_eq!(
            spans_with_changes("A", t("2026-10-01T00:00:00Z"), None, 9_900, &[]),
            vec![span("A", "2026-10-01T00:00:00Z", None, 9_900)]
        );
    }

    #[test]
    fn months_are_checked() {
        assert_eq!(month("2026-02"), Date::new(2026, 2, 1).unwrap());
        for bad in [
            "2026-13", "2026-1", "26-01", "2026/01", "", "2026-00", "abcd-ef",
        ] {
            assert!(parse_month(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            mrr_by_month(&[], month("2026-03"), month("2026-02")),
            Err(AnalyticsError::Reversed { .. })
        ));
        assert_eq!(
            mrr_by_month(&[], month("2000-01"), month("2020-01")),
            Err(AnalyticsError::TooManyMonths)
        );
        assert_eq!(
            mrr_by_month(&[], month("2026-01"), month("2026-12"))
                .unwrap()
                .len(),
            12
        );
    }

    #[test]
    fn prices_are_normalised_to_a_month() {
        let base = |amount: &str, interval, every| BasePrice {
            amount: amount.parse().unwrap(),
            interval,
            timing: Default::default(),
            every,
        };
        let usd = Currency::USD;
        assert_eq!(
            monthly_minor(&base("99.00", Interval::Month, 1), usd),
            Ok(9_900)
        );
        assert_eq!(
            monthly_minor(&base("1188.00", Interval::Year, 1), usd),
            Ok(9_900)
        );
        // 100 / 12 = 8.333... -> 8.33
        assert_eq!(
            monthly_minor(&base("100.00", Interval::Year, 1), usd),
            Ok(833)
        );
        assert_eq!(
            monthly_minor(&base("300.00", Interval::Month, 3), usd),
            Ok(10_000)
        );
        assert_eq!(
            monthly_minor(&base("300.00", Interval::Quarter, 1), usd),
            Ok(10_000)
        );
        // 10 * 52 / 12 = 43.333... -> 43.33
        assert_eq!(
            monthly_minor(&base("10.00", Interval::Week, 1), usd),
            Ok(4_333)
        );
        // 1 * 365 / 12 = 30.4166... -> 30.42
        assert_eq!(
            monthly_minor(&base("1.00", Interval::Day, 1), usd),
            Ok(3_042)
        );
    }

    proptest! {
        /// Whatever the spans, every month's movements carry its start to its end, each month
        /// starts where the previous one ended, and the end is the sum of the customers'.
        #[test]
        fn start_plus_movements_is_end(
            raw in proptest::collection::vec(
                (0usize..5, 0i64..400, proptest::option::of(1i64..400), 0i64..100_000),
                0..25,
            )
        ) {
            let base = t("2026-01-01T00:00:00Z");
            let spans: Vec<Span> = raw
                .iter()
                .map(|(c, from, len, amount)| Span {
                    customer: format!("c{c}"),
                    from: base + jiff::SignedDuration::from_hours(from * 24),
                    to: len.map(|l| base + jiff::SignedDuration::from_hours((from + l) * 24)),
                    monthly_minor: *amount,
                })
                .collect();
            let report = mrr_by_month(&spans, month("2026-03"), month("2027-06")).unwrap();
            let mut previous_end = None;
            for row in &report {
                prop_assert_eq!(
                    row.start_minor + row.new_minor + row.expansion_minor + row.reactivation_minor
                        - row.contraction_minor
                        - row.churn_minor,
                    row.end_minor,
                    "{:?}",
                    row
                );
                prop_assert_eq!(
                    row.customers_start + row.new_customers + row.reactivated_customers
                        - row.churned_customers,
                    row.customers_end
                );
                if let Some(end) = previous_end {
                    prop_assert_eq!(row.start_minor, end);
                }
                previous_end = Some(row.end_minor);
            }
        }
    }
}
