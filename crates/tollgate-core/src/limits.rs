//! Limit algorithms, as plain data that the caller feeds with the time.
//!
//! - [`RollingWindow`] is exact: "3 per 5 hours" admits at most 3 in *any* 5-hour span. It keeps
//!   one entry per admitted use (merged per second), which is what quotas such as Apex's
//!   per-user runs need; a token bucket or GCRA would admit 6 in the first 5 hours.
//! - [`FixedWindow`] counts per aligned window (every minute on the minute, UTC); it is what
//!   request rate limits use, with the reset time clients expect from `RateLimit` headers.

use std::collections::VecDeque;

use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;

use crate::duration::WindowLength;

/// An exact rolling window over second-resolution entries.
#[derive(Debug, Clone, PartialEq)]
pub struct RollingWindow {
    length: WindowLength,
    /// `(unix second, quantity)`, oldest first, at most one entry per second.
    entries: VecDeque<(i64, Decimal)>,
    total: Decimal,
}

impl RollingWindow {
    pub fn new(length: WindowLength) -> Self {
        RollingWindow {
            length,
            entries: VecDeque::new(),
            total: Decimal::ZERO,
        }
    }

    pub fn length(&self) -> WindowLength {
        self.length
    }

    /// Drops entries that no window ending at `now` can contain: those at or before
    /// `now - length`.
    fn expire(&mut self, now: Timestamp) {
        let horizon = now.as_second() - self.length.seconds() as i64;
        while let Some(&(at, qty)) = self.entries.front() {
            if at > horizon {
                break;
            }
            self.total = self.total.saturating_sub(qty);
            self.entries.pop_front();
        }
    }

    /// The quantity used in the window ending at `now`.
    pub fn used(&mut self, now: Timestamp) -> Decimal {
        self.expire(now);
        self.total
    }

    /// Records a use. Entries are kept in time order; a use older than the newest entry (a
    /// late event) is inserted in place.
    pub fn record(&mut self, at: Timestamp, quantity: Decimal) {
        let second = at.as_second();
        self.total = self.total.saturating_add(quantity);
        match self.entries.back_mut() {
            Some((last, qty)) if *last == second => *qty = qty.saturating_add(quantity),
            Some((last, _)) if *last > second => {
                let pos = self.entries.partition_point(|(s, _)| *s < second);
                match self.entries.get_mut(pos) {
                    Some((s, qty)) if *s == second => *qty = qty.saturating_add(quantity),
                    _ => self.entries.insert(pos, (second, quantity)),
                }
            }
            _ => self.entries.push_back((second, quantity)),
        }
    }

    /// The quantity used in the window of length `within` (at most the retention length) ending
    /// at `now`: one retained history serves every window of a meter.
    pub fn used_in(&mut self, now: Timestamp, within: WindowLength) -> Decimal {
        self.expire(now);
        let horizon = now.as_second() - within.seconds() as i64;
        self.entries
            .iter()
            .rev()
            .take_while(|(at, _)| *at > horizon)
            .fold(Decimal::ZERO, |sum, (_, q)| sum.saturating_add(*q))
    }

    /// Like [`RollingWindow::next_fit`] for a window of length `within`.
    pub fn next_fit_in(
        &mut self,
        now: Timestamp,
        quantity: Decimal,
        limit: Decimal,
        within: WindowLength,
    ) -> Option<Timestamp> {
        if quantity > limit {
            return None;
        }
        let mut used = self.used_in(now, within);
        if used.saturating_add(quantity) <= limit {
            return Some(now);
        }
        let horizon = now.as_second() - within.seconds() as i64;
        for &(at, qty) in self.entries.iter().filter(|(at, _)| *at > horizon) {
            used = used.saturating_sub(qty);
            if used.saturating_add(quantity) <= limit {
                return Timestamp::from_second(at + within.seconds() as i64).ok();
            }
        }
        Some(now)
    }

    /// Takes back a use recorded at `at` (a reservation whose write failed or was a duplicate).
    pub fn unrecord(&mut self, at: Timestamp, quantity: Decimal) {
        let second = at.as_second();
        if let Some(pos) = self.entries.iter().position(|(s, _)| *s == second) {
            self.total = self.total.saturating_sub(quantity);
            let entry = &mut self.entries[pos];
            entry.1 = entry.1.saturating_sub(quantity);
            if entry.1.is_zero() {
                self.entries.remove(pos);
            }
        }
    }

    /// The earliest time at or after `now` when `quantity` more fits under `limit`, assuming no
    /// other use in between. `None` if it never fits (`quantity > limit`).
    pub fn next_fit(
        &mut self,
        now: Timestamp,
        quantity: Decimal,
        limit: Decimal,
    ) -> Option<Timestamp> {
        if quantity > limit {
            return None;
        }
        let mut used = self.used(now);
        if used.saturating_add(quantity) <= limit {
            return Some(now);
        }
        for &(at, qty) in &self.entries {
            used = used.saturating_sub(qty);
            if used.saturating_add(quantity) <= limit {
                let frees_at = at + self.length.seconds() as i64;
                return Timestamp::from_second(frees_at).ok();
            }
        }
        Some(now)
    }

    /// Entries still inside the window ending at `now` (for persistence and tests).
    pub fn entries(&self) -> impl Iterator<Item = (i64, Decimal)> + '_ {
        self.entries.iter().copied()
    }
}

/// A counter per aligned window (`[k * length, (k + 1) * length)` in unix seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedWindow {
    length: WindowLength,
    window_start: i64,
    count: u64,
}

/// The state of a fixed window after a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindowHit {
    pub allowed: bool,
    pub remaining: u64,
    pub reset_at: Timestamp,
}

impl FixedWindow {
    pub fn new(length: WindowLength) -> Self {
        FixedWindow {
            length,
            window_start: i64::MIN,
            count: 0,
        }
    }

    fn roll(&mut self, now: Timestamp) {
        let len = self.length.seconds() as i64;
        let start = now.as_second().div_euclid(len) * len;
        if start != self.window_start {
            self.window_start = start;
            self.count = 0;
        }
    }

    fn reset_at(&self) -> Timestamp {
        Timestamp::from_second(self.window_start + self.length.seconds() as i64)
            .unwrap_or(Timestamp::MAX)
    }

    /// Whether nothing is counted in the window open at `now`: forgetting this counter then
    /// changes no decision (what an idle customer's eviction relies on).
    pub fn is_empty_at(&self, now: Timestamp) -> bool {
        self.count == 0 || now.as_second() >= self.reset_at().as_second()
    }

    /// Counts one request against `limit` if it fits; a refused request is not counted.
    pub fn hit(&mut self, now: Timestamp, limit: u64) -> FixedWindowHit {
        self.roll(now);
        let allowed = self.count < limit;
        if allowed {
            self.count += 1;
        }
        FixedWindowHit {
            allowed,
            remaining: limit.saturating_sub(self.count),
            reset_at: self.reset_at(),
        }
    }

    /// The state without counting anything.
    pub fn peek(&mut self, now: Timestamp, limit: u64) -> FixedWindowHit {
        self.roll(now);
        FixedWindowHit {
            allowed: self.count < limit,
            remaining: limit.saturating_sub(self.count),
            reset_at: self.reset_at(),
        }
    }
}

/// Whole seconds from `now` until `at`, rounded up, at least 1 when `at` is in the future.
pub fn seconds_until(now: Timestamp, at: Timestamp) -> u64 {
    let d: SignedDuration = at.duration_since(now);
    if d <= SignedDuration::ZERO {
        return 0;
    }
    let secs = d.as_secs() as u64;
    if d.subsec_nanos() > 0 { secs + 1 } else { secs }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn apex_three_runs_per_five_hours() {
        let mut w = RollingWindow::new("5h".parse().unwrap());
        let limit = Decimal::from(3);
        for t in [
            "2026-11-10T09:00:00Z",
            "2026-11-10T10:00:00Z",
            "2026-11-10T11:00:00Z",
        ] {
            assert!(w.used(ts(t)) + Decimal::ONE <= limit);
            w.record(ts(t), Decimal::ONE);
        }
        let noon = ts("2026-11-10T12:00:00Z");
        assert_eq!(w.used(noon), Decimal::from(3));
        assert_eq!(
            w.next_fit(noon, Decimal::ONE, limit),
            Some(ts("2026-11-10T14:00:00Z"))
        );
        assert_eq!(w.used(ts("2026-11-10T13:59:59Z")), Decimal::from(3));
        assert_eq!(w.used(ts("2026-11-10T14:00:00Z")), Decimal::from(2));
    }

    #[test]
    fn shorter_windows_read_the_same_history() {
        let mut w = RollingWindow::new("5h".parse().unwrap());
        w.record(ts("2026-11-10T09:00:00Z"), Decimal::ONE);
        w.record(ts("2026-11-10T10:30:00Z"), Decimal::ONE);
        let now = ts("2026-11-10T11:00:00Z");
        assert_eq!(w.used_in(now, "1h".parse().unwrap()), Decimal::ONE);
        assert_eq!(w.used_in(now, "5h".parse().unwrap()), Decimal::from(2));
        assert_eq!(
            w.next_fit_in(now, Decimal::ONE, Decimal::ONE, "1h".parse().unwrap()),
            Some(ts("2026-11-10T11:30:00Z"))
        );
        w.unrecord(ts("2026-11-10T10:30:00Z"), Decimal::ONE);
        assert_eq!(w.used_in(now, "1h".parse().unwrap()), Decimal::ZERO);
    }

    #[test]
    fn fixed_window_resets_on_the_boundary() {
        let mut w = FixedWindow::new(WindowLength::MINUTE);
        let t = ts("2026-11-10T09:00:10Z");
        for _ in 0..100 {
            assert!(w.hit(t, 100).allowed);
        }
        let refused = w.hit(t, 100);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_at, ts("2026-11-10T09:01:00Z"));
        assert!(w.hit(ts("2026-11-10T09:01:00Z"), 100).allowed);
    }

    proptest! {
        /// Admitting only what fits never puts more than `limit` into any window, whatever the
        /// arrival pattern: the property the customer reads in "3 per 5 hours".
        #[test]
        fn rolling_window_never_exceeds_limit_in_any_window(
            gaps in proptest::collection::vec(0i64..4000, 1..200),
            limit in 1u32..10,
        ) {
            let length = WindowLength::from_seconds(3600).unwrap();
            let mut w = RollingWindow::new(length);
            let limit = Decimal::from(limit);
            let mut now = 1_700_000_000i64;
            let mut admitted = Vec::new();
            for gap in gaps {
                now += gap;
                let t = Timestamp::from_second(now).unwrap();
                if w.used(t) + Decimal::ONE <= limit {
                    w.record(t, Decimal::ONE);
                    admitted.push(now);
                }
            }
            for (i, start) in admitted.iter().enumerate() {
                let in_window = admitted[i..].iter().take_while(|&&a| a < start + 3600).count();
                prop_assert!(Decimal::from(in_window) <= limit);
            }
        }
    }
}
