//! Billing periods: cadences (N days, weeks, months, quarters or years) in UTC, counted from an
//! anchor, and the period of a subscription that contains a given time.
//!
//! Rules (docs/BILLING-PERIODS.md has worked examples):
//! - Periods are half-open `[start, end)` and tile time: the end of one is the start of the next.
//! - Month-based cadences add whole months to the anchor's civil time in UTC, always counted from
//!   the anchor (never from the previous boundary), so an anchor on Jan 31 gives Feb 28 (29),
//!   Mar 31, Apr 30, ...: the day is kept when the month has it, else the month's last day.
//! - Day-based cadences (days, weeks) are whole multiples of 86,400 seconds from the anchor.
//! - Calendar anchors: midnight UTC for days, Monday midnight for weeks, the 1st of the month for
//!   months, the 1st of the quarter (Jan, Apr, Jul, Oct), half-year or year when the number of
//!   months divides 12, Jan 1 for whole years, else the 1st of the start month.
//! - A subscription's first period starts at its start (or the end of its free trial), so a start
//!   between two calendar boundaries gives a shorter first period, and nothing before the start.

use std::fmt;

use jiff::civil::{Date, DateTime};
use jiff::{SignedDuration, Timestamp, ToSpan, tz::TimeZone};
use rust_decimal::Decimal;

use crate::catalog::{Anchor, BasePrice, Interval};

/// A half-open span of time `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// The length of a billing period: `count` times `unit` (`every: 3` months).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cadence {
    pub unit: Interval,
    pub count: u32,
}

/// A cadence as a number of months or of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Months(i64),
    Days(i64),
}

const SECONDS_PER_DAY: i64 = 86_400;

impl Cadence {
    pub const MONTH: Cadence = Cadence {
        unit: Interval::Month,
        count: 1,
    };

    /// `count` of `unit`; a count of 0 is taken as 1 (validation refuses it in catalogs).
    pub fn new(unit: Interval, count: u32) -> Cadence {
        Cadence {
            unit,
            count: count.max(1),
        }
    }

    /// The cadence of a base fee.
    pub fn of(base: &BasePrice) -> Cadence {
        Cadence::new(base.interval, base.every)
    }

    fn step(&self) -> Step {
        let n = i64::from(self.count.max(1));
        match self.unit {
            Interval::Day => Step::Days(n),
            Interval::Week => Step::Days(7 * n),
            Interval::Month => Step::Months(n),
            Interval::Quarter => Step::Months(3 * n),
            Interval::Year => Step::Months(12 * n),
        }
    }

    /// Months per period, for month-based cadences (months, quarters, years).
    pub fn months(&self) -> Option<i64> {
        match self.step() {
            Step::Months(m) => Some(m),
            Step::Days(_) => None,
        }
    }

    /// Days per period, for day-based cadences (days, weeks).
    pub fn days(&self) -> Option<i64> {
        match self.step() {
            Step::Days(d) => Some(d),
            Step::Months(_) => None,
        }
    }

    /// Whether the periods are whole years (1 year, 24 months, ...).
    pub fn is_whole_years(&self) -> bool {
        self.months().is_some_and(|m| m % 12 == 0)
    }

    /// `amount` per period of this cadence converted to a period of `to`: months to months or
    /// days to days, exact (multiplied before dividing). `None` between a month-based and a
    /// day-based cadence, which have no exact ratio (catalog validation refuses such add-ons).
    pub fn convert(&self, amount: Decimal, to: Cadence) -> Option<Decimal> {
        let (from, to) = match (self.step(), to.step()) {
            (Step::Months(a), Step::Months(b)) | (Step::Days(a), Step::Days(b)) => (a, b),
            _ => return None,
        };
        if from == to {
            return Some(amount);
        }
        amount
            .checked_mul(Decimal::from(to))?
            .checked_div(Decimal::from(from))
    }

    /// Whether amounts convert between the two (both month-based or both day-based).
    pub fn converts_to(&self, to: Cadence) -> bool {
        self.convert(Decimal::ONE, to).is_some()
    }

    /// `amount` per period as an amount per month, to compare plans (never invoiced): exact for
    /// month-based cadences, with a month of 365.25 / 12 days for day-based ones.
    pub fn monthly(&self, amount: Decimal) -> Decimal {
        let per_month = match self.step() {
            Step::Months(m) => amount.checked_div(Decimal::from(m)),
            Step::Days(d) => amount
                .checked_mul(Decimal::new(30_436_875, 6))
                .and_then(|a| a.checked_div(Decimal::from(d))),
        };
        per_month.unwrap_or(Decimal::MAX)
    }

    /// The calendar boundary at or before `at` that periods of this cadence count from (see the
    /// module rules).
    pub fn calendar_start(&self, at: Timestamp) -> Timestamp {
        let date = at.to_zoned(TimeZone::UTC).date();
        let first = match self.step() {
            Step::Days(d) if d % 7 == 0 => {
                let back = i64::from(date.weekday().to_monday_zero_offset());
                date.checked_sub(back.days()).unwrap_or(date)
            }
            Step::Days(_) => date,
            Step::Months(m) if m % 12 == 0 => Date::new(date.year(), 1, 1).unwrap_or(date),
            Step::Months(m) if 12 % m == 0 => {
                let m = i8::try_from(m).unwrap_or(1);
                let month = (date.month() - 1) / m * m + 1;
                Date::new(date.year(), month, 1).unwrap_or(date)
            }
            Step::Months(_) => Date::new(date.year(), date.month(), 1).unwrap_or(date),
        };
        first
            .to_zoned(TimeZone::UTC)
            .map_or(at, |z| z.timestamp())
            .min(at)
    }

    /// The anchor of a subscription starting at `start`: its calendar boundary, or `start`.
    pub fn anchor(&self, anchor: Anchor, start: Timestamp) -> Timestamp {
        match anchor {
            Anchor::Calendar => self.calendar_start(start),
            Anchor::Anniversary => start,
        }
    }
}

impl From<Interval> for Cadence {
    fn from(unit: Interval) -> Cadence {
        Cadence::new(unit, 1)
    }
}

impl fmt::Display for Cadence {
    /// `month`, `3 months`, `2 weeks`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Quarter => "quarter",
            Interval::Year => "year",
        };
        match self.count {
            0 | 1 => write!(f, "{unit}"),
            n => write!(f, "{n} {unit}s"),
        }
    }
}

impl Period {
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }

    /// The period of `cadence` counted from `anchor` that contains `at`.
    ///
    /// `at` before the anchor gives periods counted backwards. Never panics: near the ends of
    /// jiff's range the period saturates at `Timestamp::MIN` / `Timestamp::MAX`.
    pub fn containing(anchor: Timestamp, cadence: impl Into<Cadence>, at: Timestamp) -> Period {
        match cadence.into().step() {
            Step::Months(m) => Self::containing_months(anchor, m, at),
            Step::Days(d) => Self::containing_days(anchor, d, at),
        }
    }

    fn containing_days(anchor: Timestamp, days: i64, at: Timestamp) -> Period {
        let step = days.saturating_mul(SECONDS_PER_DAY).max(1);
        let offset = at.as_second().saturating_sub(anchor.as_second());
        let k = offset.div_euclid(step);
        let boundary = |k: i64| -> Timestamp {
            let secs = k.saturating_mul(step);
            anchor
                .checked_add(SignedDuration::from_secs(secs))
                .unwrap_or(if secs < 0 {
                    Timestamp::MIN
                } else {
                    Timestamp::MAX
                })
        };
        let (mut start, mut end) = (boundary(k), boundary(k.saturating_add(1)));
        // Sub-second parts of `at` and the anchor: keep `start <= at < end`.
        if start > at {
            (start, end) = (boundary(k.saturating_sub(1)), start);
        } else if end <= at && end < Timestamp::MAX {
            (start, end) = (end, boundary(k.saturating_add(2)));
        }
        Period { start, end }
    }

    fn containing_months(anchor: Timestamp, months: i64, at: Timestamp) -> Period {
        let months = months.max(1);
        let anchor_dt = anchor.to_zoned(TimeZone::UTC).datetime();
        let at_dt = at.to_zoned(TimeZone::UTC).datetime();
        let month_index = |d: DateTime| i64::from(d.year()) * 12 + i64::from(d.month()) - 1;
        let mut step = (month_index(at_dt) - month_index(anchor_dt)).div_euclid(months);
        let boundary = |step: i64| -> Timestamp {
            step.checked_mul(months)
                .and_then(|m| jiff::Span::new().try_months(m).ok())
                .and_then(|span| anchor_dt.checked_add(span).ok())
                .and_then(|d| d.to_zoned(TimeZone::UTC).ok())
                .map(|z| z.timestamp())
                // Past jiff's range (a test clock set near year 9999): the period saturates
                // rather than panicking.
                .unwrap_or(if step < 0 {
                    Timestamp::MIN
                } else {
                    Timestamp::MAX
                })
        };
        while boundary(step) > at && boundary(step) > Timestamp::MIN {
            step -= 1;
        }
        while boundary(step + 1) <= at && boundary(step + 1) < Timestamp::MAX {
            step += 1;
        }
        Period {
            start: boundary(step),
            end: boundary(step + 1),
        }
    }

    /// The calendar month in UTC that contains `at`.
    pub fn calendar_month(at: Timestamp) -> Period {
        Period::containing(Cadence::MONTH.calendar_start(at), Cadence::MONTH, at)
    }
}

/// The billing period of a subscription that contains `at`.
///
/// Periods count from `anchor` in steps of `cadence`, except around the start: a free trial is
/// a period of its own (as Stripe has it), `[started_at, trial_end)`, and the first paid period
/// starts when the subscription becomes paid (its start, or its trial's end) and ends at the next
/// boundary. So trial usage is never mixed with billable usage, and no period of a subscription
/// covers time before it existed.
pub fn subscription_period(
    anchor: Timestamp,
    cadence: impl Into<Cadence>,
    started_at: Timestamp,
    trial_end: Option<Timestamp>,
    at: Timestamp,
) -> Period {
    if let Some(end) = trial_end
        && at < end
    {
        return Period {
            start: started_at.min(at),
            end,
        };
    }
    let paid_from = trial_end.unwrap_or(started_at);
    let period = Period::containing(anchor, cadence, at);
    // Usage recorded before the start in the boundary period that holds the start (a customer
    // metered before it subscribed, an event that arrives with an earlier time) counts in the
    // first paid period: its key is the first period's start, so it is neither lost nor billed
    // twice. Fees are still prorated from `paid_from`.
    if period.start < paid_from && paid_from < period.end {
        return Period {
            start: paid_from,
            end: period.end,
        };
    }
    period
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn calendar_months() {
        let p = Period::calendar_month(ts("2026-11-20T12:00:00Z"));
        assert_eq!(p.start, ts("2026-11-01T00:00:00Z"));
        assert_eq!(p.end, ts("2026-12-01T00:00:00Z"));
        let p = Period::calendar_month(ts("2026-12-01T00:00:00Z"));
        assert_eq!(p.start, ts("2026-12-01T00:00:00Z"));
    }

    #[test]
    fn a_trial_is_a_period_of_its_own() {
        let anchor = ts("2026-11-01T00:00:00Z");
        let (start, trial) = (ts("2026-11-03T10:00:00Z"), Some(ts("2026-11-17T10:00:00Z")));
        let p = subscription_period(
            anchor,
            Interval::Month,
            start,
            trial,
            ts("2026-11-10T00:00:00Z"),
        );
        assert_eq!(
            (p.start, p.end),
            (ts("2026-11-03T10:00:00Z"), ts("2026-11-17T10:00:00Z"))
        );
        let p = subscription_period(
            anchor,
            Interval::Month,
            start,
            trial,
            ts("2026-11-17T10:00:00Z"),
        );
        assert_eq!(
            (p.start, p.end),
            (ts("2026-11-17T10:00:00Z"), ts("2026-12-01T00:00:00Z"))
        );
        let p = subscription_period(
            anchor,
            Interval::Month,
            start,
            trial,
            ts("2026-12-05T00:00:00Z"),
        );
        assert_eq!(
            (p.start, p.end),
            (ts("2026-12-01T00:00:00Z"), ts("2027-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn yearly_from_anchor() {
        let p = Period::containing(
            ts("2026-11-01T00:00:00Z"),
            Interval::Year,
            ts("2027-03-01T00:00:00Z"),
        );
        assert_eq!(p.start, ts("2026-11-01T00:00:00Z"));
        assert_eq!(p.end, ts("2027-11-01T00:00:00Z"));
    }

    #[test]
    fn month_end_anchor_and_times_before_the_anchor() {
        let anchor = ts("2026-01-31T00:00:00Z");
        let p = Period::containing(anchor, Interval::Month, ts("2026-02-15T00:00:00Z"));
        assert_eq!(p.start, ts("2026-01-31T00:00:00Z"));
        assert_eq!(p.end, ts("2026-02-28T00:00:00Z"));
        let p = Period::containing(
            ts("2026-11-01T00:00:00Z"),
            Interval::Month,
            ts("2026-10-05T00:00:00Z"),
        );
        assert_eq!(p.start, ts("2026-10-01T00:00:00Z"));
    }
}

#[cfg(test)]
mod range_tests {
    use super::*;

    #[test]
    fn periods_at_the_end_of_time_saturate_instead_of_panicking() {
        for at in [Timestamp::MAX, "9999-12-30T00:00:00Z".parse().unwrap()] {
            let p = Period::calendar_month(at);
            assert!(p.start <= at && at <= p.end, "{p:?}");
            let y = Period::containing("2026-01-15T00:00:00Z".parse().unwrap(), Interval::Year, at);
            assert!(y.start <= at, "{y:?}");
        }
    }
}

#[cfg(test)]
mod cadence_tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn period(anchor: &str, cadence: Cadence, at: &str) -> (Timestamp, Timestamp) {
        let p = Period::containing(ts(anchor), cadence, ts(at));
        (p.start, p.end)
    }

    #[test]
    fn every_unit_and_count() {
        let anchor = "2026-01-01T00:00:00Z";
        let at = "2026-05-20T12:00:00Z";
        let cases = [
            (Cadence::new(Interval::Day, 1), "2026-05-20", "2026-05-21"),
            (Cadence::new(Interval::Day, 10), "2026-05-11", "2026-05-21"),
            (Cadence::new(Interval::Week, 1), "2026-05-14", "2026-05-21"),
            (Cadence::new(Interval::Week, 2), "2026-05-07", "2026-05-21"),
            (Cadence::new(Interval::Month, 1), "2026-05-01", "2026-06-01"),
            (Cadence::new(Interval::Month, 3), "2026-04-01", "2026-07-01"),
            (
                Cadence::new(Interval::Quarter, 1),
                "2026-04-01",
                "2026-07-01",
            ),
            (
                Cadence::new(Interval::Quarter, 2),
                "2026-01-01",
                "2026-07-01",
            ),
            (Cadence::new(Interval::Year, 1), "2026-01-01", "2027-01-01"),
            (Cadence::new(Interval::Year, 2), "2026-01-01", "2028-01-01"),
        ];
        for (cadence, start, end) in cases {
            assert_eq!(
                period(anchor, cadence, at),
                (
                    ts(&format!("{start}T00:00:00Z")),
                    ts(&format!("{end}T00:00:00Z"))
                ),
                "{cadence}"
            );
        }
    }

    #[test]
    fn calendar_anchors() {
        let at = ts("2026-05-20T12:34:56Z"); // a Wednesday
        let start = |c: Cadence| c.calendar_start(at);
        assert_eq!(start(Interval::Day.into()), ts("2026-05-20T00:00:00Z"));
        assert_eq!(start(Interval::Week.into()), ts("2026-05-18T00:00:00Z"));
        assert_eq!(start(Interval::Month.into()), ts("2026-05-01T00:00:00Z"));
        assert_eq!(start(Interval::Quarter.into()), ts("2026-04-01T00:00:00Z"));
        assert_eq!(
            start(Cadence::new(Interval::Month, 6)),
            ts("2026-01-01T00:00:00Z")
        );
        assert_eq!(
            start(Cadence::new(Interval::Month, 5)),
            ts("2026-05-01T00:00:00Z")
        );
        assert_eq!(start(Interval::Year.into()), ts("2026-01-01T00:00:00Z"));
        assert_eq!(
            Cadence::MONTH.anchor(Anchor::Anniversary, at),
            at,
            "anniversary: the start itself"
        );
    }

    #[test]
    fn month_end_anchor_keeps_its_day_when_the_month_has_it() {
        let anchor = "2026-01-31T00:00:00Z";
        let ends: Vec<Timestamp> = ["2026-02-15", "2026-03-15", "2026-04-15", "2026-05-15"]
            .iter()
            .map(|d| {
                Period::containing(ts(anchor), Cadence::MONTH, ts(&format!("{d}T00:00:00Z"))).end
            })
            .collect();
        assert_eq!(
            ends,
            [
                ts("2026-02-28T00:00:00Z"),
                ts("2026-03-31T00:00:00Z"),
                ts("2026-04-30T00:00:00Z"),
                ts("2026-05-31T00:00:00Z")
            ]
        );
        // A leap year: Jan 31 + 1 month is Feb 29.
        let p = Period::containing(
            ts("2028-01-31T00:00:00Z"),
            Cadence::MONTH,
            ts("2028-02-10T00:00:00Z"),
        );
        assert_eq!(p.end, ts("2028-02-29T00:00:00Z"));
    }

    #[test]
    fn a_start_mid_period_opens_a_shorter_first_period_and_nothing_before() {
        let start = ts("2026-04-15T00:00:00Z");
        let anchor = Cadence::MONTH.calendar_start(start);
        let p = subscription_period(anchor, Cadence::MONTH, start, None, start);
        assert_eq!((p.start, p.end), (start, ts("2026-05-01T00:00:00Z")));
        let p = subscription_period(
            anchor,
            Cadence::MONTH,
            start,
            None,
            ts("2026-05-03T00:00:00Z"),
        );
        assert_eq!(p.start, ts("2026-05-01T00:00:00Z"));
    }

    #[test]
    fn conversions_between_cadences() {
        let month = Cadence::MONTH;
        let quarter = Cadence::from(Interval::Quarter);
        let year = Cadence::from(Interval::Year);
        let week = Cadence::from(Interval::Week);
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(month.convert(d("29.00"), quarter), Some(d("87.00")));
        assert_eq!(year.convert(d("1200.00"), month), Some(d("100.00")));
        assert_eq!(
            Cadence::from(Interval::Day).convert(d("2.00"), week),
            Some(d("14.00"))
        );
        assert_eq!(month.convert(d("29.00"), week), None);
        assert_eq!(quarter.to_string(), "quarter");
        assert_eq!(Cadence::new(Interval::Month, 3).to_string(), "3 months");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn cadence() -> impl Strategy<Value = Cadence> {
        (
            prop_oneof![
                Just(Interval::Day),
                Just(Interval::Week),
                Just(Interval::Month),
                Just(Interval::Quarter),
                Just(Interval::Year),
            ],
            1u32..=24,
        )
            .prop_map(|(unit, count)| Cadence::new(unit, count))
    }

    /// 1900-01-01 to 2200-01-01, to the second.
    fn time() -> impl Strategy<Value = Timestamp> {
        (-2_208_988_800i64..7_258_118_400i64).prop_map(|s| Timestamp::from_second(s).unwrap())
    }

    proptest! {
        #[test]
        fn periods_tile_time(anchor in time(), cadence in cadence(), at in time()) {
            let p = Period::containing(anchor, cadence, at);
            prop_assert!(p.start <= at && at < p.end, "{p:?} does not contain {at}");
            // The next period starts where this one ends, the previous one ends where it starts.
            let next = Period::containing(anchor, cadence, p.end);
            prop_assert_eq!(next.start, p.end);
            let before = Period::containing(anchor, cadence, p.start - SignedDuration::from_secs(1));
            prop_assert_eq!(before.end, p.start);
            prop_assert_eq!(Period::containing(anchor, cadence, p.start), p);
        }

        #[test]
        fn a_subscription_s_periods_tile_from_its_start(
            start in time(),
            cadence in cadence(),
            calendar in any::<bool>(),
            trial_days in proptest::option::of(1i64..60),
            steps in 1usize..30,
        ) {
            let anchor_kind = if calendar { Anchor::Calendar } else { Anchor::Anniversary };
            let trial_end = trial_days.map(|d| start + SignedDuration::from_hours(24 * d));
            let anchor = cadence.anchor(anchor_kind, trial_end.unwrap_or(start));
            let mut at = start;
            let first = subscription_period(anchor, cadence, start, trial_end, at);
            prop_assert_eq!(first.start, start, "nothing before the start");
            for _ in 0..steps {
                let p = subscription_period(anchor, cadence, start, trial_end, at);
                prop_assert!(p.start <= at && at < p.end);
                prop_assert!(p.start >= start);
                let next = subscription_period(anchor, cadence, start, trial_end, p.end);
                prop_assert_eq!(next.start, p.end, "no gap, no overlap");
                at = p.end;
            }
        }

        #[test]
        fn no_panic_for_any_date(anchor in any::<i64>(), at in any::<i64>(), cadence in cadence()) {
            let clamp = |s: i64| {
                Timestamp::from_second(
                    s.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second()),
                )
                .unwrap()
            };
            let (anchor, at) = (clamp(anchor), clamp(at));
            let p = Period::containing(anchor, cadence, at);
            prop_assert!(p.start <= p.end);
            let _ = subscription_period(anchor, cadence, anchor, None, at);
            let _ = cadence.calendar_start(at);
        }
    }
}
