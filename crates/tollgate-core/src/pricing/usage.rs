//! Turning raw levels and sums into billable units: time-weighted levels (GB-month) and unit
//! conversion (milliseconds to minutes).
//!
//! The meter layer owns aggregation; these helpers are the arithmetic it (and a quote, or a test)
//! needs, kept here so that the unit a price is quoted in and the unit usage is measured in are
//! defined in one place.

use jiff::{Timestamp, ToSpan, tz::Offset};
use rust_decimal::Decimal;

use super::{BillingPeriod, PricingError, checked_add, checked_div, checked_mul};
use crate::catalog::TimeUnit;

/// The level integrated over time, in `level x per` units (GB-month for `per = Month`).
///
/// `changes` are the points where the level was set, `(time, level)`, in any order; a level
/// holds from its time until the next change. The level at `period.start` is the last one set at
/// or before it (zero when none was). Changes at the same instant keep the one given last.
///
/// A month is the calendar month (UTC) that each piece of time falls in: one GB held for all of
/// November (30 days) and one GB held for all of December (31 days) are each exactly one
/// GB-month. Time counts to the second.
pub fn time_weighted(
    changes: &[(Timestamp, Decimal)],
    period: &BillingPeriod,
    per: TimeUnit,
) -> Result<Decimal, PricingError> {
    let mut sorted: Vec<(Timestamp, Decimal)> = changes.to_vec();
    sorted.sort_by_key(|(t, _)| *t); // stable: the last of equal times wins below

    let mut level = Decimal::ZERO;
    let mut segments: Vec<(Timestamp, Decimal)> = Vec::new();
    for (t, l) in sorted {
        if t <= period.start {
            level = l;
        } else if t < period.end {
            segments.push((t, l));
        }
    }

    let mut total = Decimal::ZERO;
    let mut from = period.start;
    for (t, next_level) in segments
        .into_iter()
        .chain(std::iter::once((period.end, Decimal::ZERO)))
    {
        total = checked_add(total, level_time(level, from, t, per)?)?;
        from = t;
        level = next_level;
    }
    Ok(total)
}

/// `level` held over `[from, to)`, in `per` units.
fn level_time(
    level: Decimal,
    from: Timestamp,
    to: Timestamp,
    per: TimeUnit,
) -> Result<Decimal, PricingError> {
    if to <= from || level.is_zero() {
        return Ok(Decimal::ZERO);
    }
    let unit_seconds = match per {
        TimeUnit::Second => 1,
        TimeUnit::Minute => 60,
        TimeUnit::Hour => 3_600,
        TimeUnit::Day => 86_400,
        TimeUnit::Month => return level_months(level, from, to),
    };
    let seconds = Decimal::from(to.as_second() - from.as_second());
    checked_div(checked_mul(level, seconds)?, Decimal::from(unit_seconds))
}

/// Splits `[from, to)` at calendar-month boundaries and divides each piece by its month's length.
fn level_months(level: Decimal, from: Timestamp, to: Timestamp) -> Result<Decimal, PricingError> {
    let mut total = Decimal::ZERO;
    let mut at = from;
    while at < to {
        let (month_start, month_end) = month_of(at)?;
        let piece_end = month_end.min(to);
        let seconds = Decimal::from(piece_end.as_second() - at.as_second());
        let month_seconds = Decimal::from(month_end.as_second() - month_start.as_second());
        total = checked_add(
            total,
            checked_div(checked_mul(level, seconds)?, month_seconds)?,
        )?;
        at = piece_end;
    }
    Ok(total)
}

/// The UTC calendar month containing `t`, as `[first instant, first instant of the next)`.
fn month_of(t: Timestamp) -> Result<(Timestamp, Timestamp), PricingError> {
    let first = Offset::UTC.to_datetime(t).date().first_of_month();
    let next = first
        .checked_add(1.month())
        .map_err(|_| PricingError::Overflow)?;
    let start = Offset::UTC
        .to_timestamp(first.at(0, 0, 0, 0))
        .map_err(|_| PricingError::Overflow)?;
    let end = Offset::UTC
        .to_timestamp(next.at(0, 0, 0, 0))
        .map_err(|_| PricingError::Overflow)?;
    Ok((start, end))
}

/// A meter's unit conversion: the aggregated value divided by the meter's `divide_by`
/// (5,400,000 ms / 60,000 = 90 minutes). No divisor leaves the value as it is.
pub fn divide_by(value: Decimal, divisor: Option<Decimal>) -> Result<Decimal, PricingError> {
    match divisor {
        None => Ok(value),
        Some(d) if d.is_zero() => Err(PricingError::DivisionByZero),
        Some(d) => checked_div(value, d),
    }
}
