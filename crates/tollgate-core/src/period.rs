//! Billing periods: calendar months or years in UTC, counted from an anchor.

use jiff::civil::DateTime;
use jiff::{Timestamp, ToSpan, tz::TimeZone};

use crate::catalog::Interval;

/// A half-open span of time `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Period {
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }

    /// The period of `interval` length counted from `anchor` that contains `at`.
    ///
    /// Months are added to the anchor's civil time in UTC, so an anchor on the 1st at midnight
    /// gives calendar months, and one on the 31st gives the last day of shorter months (jiff's
    /// constrained arithmetic). `at` before the anchor gives periods counted backwards.
    pub fn containing(anchor: Timestamp, interval: Interval, at: Timestamp) -> Period {
        let months_per_step: i32 = match interval {
            Interval::Month => 1,
            Interval::Year => 12,
        };
        let anchor_dt = anchor.to_zoned(TimeZone::UTC).datetime();
        let at_dt = at.to_zoned(TimeZone::UTC).datetime();
        let month_index = |d: DateTime| i32::from(d.year()) * 12 + i32::from(d.month()) - 1;
        let mut step = (month_index(at_dt) - month_index(anchor_dt)).div_euclid(months_per_step);
        let boundary = |step: i32| -> Timestamp {
            anchor_dt
                .checked_add((step * months_per_step).months())
                .and_then(|d| d.to_zoned(TimeZone::UTC))
                .map(|z| z.timestamp())
                // Past jiff's range (a test clock set near year 9999): the period saturates
                // rather than panicking.
                .unwrap_or(if step < 0 {
                    Timestamp::MIN
                } else {
                    Timestamp::MAX
                })
        };
        while boundary(step) > at {
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
        let dt = at.to_zoned(TimeZone::UTC).datetime();
        // The first of a month always exists in UTC; `at` itself is a safe fallback.
        let first = DateTime::new(dt.year(), dt.month(), 1, 0, 0, 0, 0)
            .ok()
            .and_then(|d| d.to_zoned(TimeZone::UTC).ok())
            .map_or(at, |z| z.timestamp());
        Period::containing(first, Interval::Month, at)
    }
}

/// The billing period of a subscription that contains `at`.
///
/// Periods count from `anchor` in steps of `interval`, except around a free trial, which is a
/// period of its own (as Stripe has it): `[trial_start, trial_end)`, and the period in which the
/// trial ends starts at the trial's end. So trial usage is never mixed with billable usage, and
/// the first paid period opens when the trial ends.
pub fn subscription_period(
    anchor: Timestamp,
    interval: Interval,
    trial: Option<(Timestamp, Timestamp)>,
    at: Timestamp,
) -> Period {
    if let Some((start, end)) = trial {
        if at < end {
            return Period {
                start: start.min(at),
                end,
            };
        }
        let period = Period::containing(anchor, interval, at);
        if period.start < end {
            return Period {
                start: end,
                end: period.end,
            };
        }
        return period;
    }
    Period::containing(anchor, interval, at)
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
        let trial = Some((ts("2026-11-03T10:00:00Z"), ts("2026-11-17T10:00:00Z")));
        let p = subscription_period(anchor, Interval::Month, trial, ts("2026-11-10T00:00:00Z"));
        assert_eq!(
            (p.start, p.end),
            (ts("2026-11-03T10:00:00Z"), ts("2026-11-17T10:00:00Z"))
        );
        let p = subscription_period(anchor, Interval::Month, trial, ts("2026-11-17T10:00:00Z"));
        assert_eq!(
            (p.start, p.end),
            (ts("2026-11-17T10:00:00Z"), ts("2026-12-01T00:00:00Z"))
        );
        let p = subscription_period(anchor, Interval::Month, trial, ts("2026-12-05T00:00:00Z"));
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
