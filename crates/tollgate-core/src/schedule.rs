//! Which invoices a subscription owes by a given time: an opening invoice when it becomes paid
//! (at start, or at the end of its free trial), then one invoice at each period end that closes
//! the period (usage and fees in arrears) and opens the next (fees in advance).
//!
//! Each due invoice has a key that names it for good; the store refuses a second invoice with the
//! same key, so a bill run can be re-run or resumed at will.

use jiff::Timestamp;

use crate::period::{Cadence, Period, subscription_period};

/// The terms of a subscription that decide its billing dates.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionTerms {
    pub id: String,
    pub anchor: Timestamp,
    pub cadence: Cadence,
    pub started_at: Timestamp,
    pub trial_end: Option<Timestamp>,
    /// When the subscription ends (a cancellation); no period opens at or after it.
    pub ends_at: Option<Timestamp>,
}

/// One invoice a subscription owes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueInvoice {
    /// The first invoice: fees in advance for the first paid period, and the setup fee.
    Opening { period: Period },
    /// At a period end: the closed period's usage and fees in arrears, and the next period's fees
    /// in advance unless the subscription ends.
    Closing {
        closing: Period,
        opening: Option<Period>,
    },
}

impl DueInvoice {
    /// The permanent name of this invoice.
    pub fn key(&self, subscription: &str) -> String {
        match self {
            DueInvoice::Opening { period } => format!("{subscription}:open:{}", period.start),
            DueInvoice::Closing { closing, .. } => {
                format!("{subscription}:close:{}", closing.start)
            }
        }
    }

    /// When it becomes due.
    pub fn due_at(&self) -> Timestamp {
        match self {
            DueInvoice::Opening { period } => period.start,
            DueInvoice::Closing { closing, .. } => closing.end,
        }
    }
}

/// Most periods walked in one call, so a subscription decades in the past cannot stall a run.
const MAX_PERIODS: usize = 1200;

impl SubscriptionTerms {
    /// When the subscription starts to be paid for.
    pub fn activation(&self) -> Timestamp {
        self.trial_end.unwrap_or(self.started_at)
    }

    /// The period that contains `at` (the trial, or a paid period).
    pub fn period_at(&self, at: Timestamp) -> Period {
        subscription_period(
            self.anchor,
            self.cadence,
            self.started_at,
            self.trial_end,
            at,
        )
    }

    /// The whole cadence period that `period` is the shorter first part of, when its fees are
    /// prorated: the first period of a subscription that started between two calendar
    /// boundaries. `None` for whole periods, and for the first paid period after a free trial,
    /// which is billed whole (the trial already gave the time before it for free).
    pub fn prorated_from(&self, period: Period) -> Option<Period> {
        if self.trial_end.is_some() {
            return None;
        }
        let full = Period::containing(self.anchor, self.cadence, period.start);
        (full != period && full.end == period.end).then_some(full)
    }

    /// The paid period that contains `at`, or the first one if `at` is earlier.
    pub fn paid_period_at(&self, at: Timestamp) -> Period {
        self.period_at(at.max(self.activation()))
    }

    /// Every invoice due at or before `now`, oldest first.
    pub fn due_invoices(&self, now: Timestamp) -> Vec<DueInvoice> {
        let activation = self.activation();
        let ended = |t: Timestamp| self.ends_at.is_some_and(|end| end <= t);
        if activation > now || ended(activation) {
            return Vec::new();
        }
        let mut due = Vec::new();
        let mut period = self.period_at(activation);
        due.push(DueInvoice::Opening { period });
        for _ in 0..MAX_PERIODS {
            // A subscription that ends inside a period (canceled at once) is closed at its end,
            // not at the period's: its last invoice is due when it ends.
            let close_at = match self.ends_at {
                Some(end) if end > period.start && end < period.end => end,
                _ => period.end,
            };
            if close_at > now {
                break;
            }
            let next = self.period_at(period.end);
            let opening = (!ended(period.end)).then_some(next);
            due.push(DueInvoice::Closing {
                closing: Period {
                    start: period.start,
                    end: close_at,
                },
                opening,
            });
            if opening.is_none() {
                break;
            }
            period = next;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn monthly(started: &str, trial_end: Option<&str>) -> SubscriptionTerms {
        SubscriptionTerms {
            id: "sub_1".into(),
            anchor: Period::calendar_month(ts(started)).start,
            cadence: Cadence::MONTH,
            started_at: ts(started),
            trial_end: trial_end.map(ts),
            ends_at: None,
        }
    }

    #[test]
    fn opening_then_one_closing_per_period() {
        let terms = monthly("2026-11-01T00:00:00Z", None);
        let due = terms.due_invoices(ts("2027-01-01T00:00:00Z"));
        assert_eq!(due.len(), 3);
        assert_eq!(due[0].key("sub_1"), "sub_1:open:2026-11-01T00:00:00Z");
        assert_eq!(due[1].key("sub_1"), "sub_1:close:2026-11-01T00:00:00Z");
        assert_eq!(due[2].due_at(), ts("2027-01-01T00:00:00Z"));
        assert!(terms.due_invoices(ts("2026-10-31T00:00:00Z")).is_empty());
    }

    #[test]
    fn a_trial_bills_nothing_until_it_ends() {
        let terms = monthly("2026-11-03T10:00:00Z", Some("2026-11-17T10:00:00Z"));
        assert!(terms.due_invoices(ts("2026-11-17T09:59:59Z")).is_empty());
        let due = terms.due_invoices(ts("2026-12-01T00:00:00Z"));
        assert_eq!(
            due,
            vec![
                DueInvoice::Opening {
                    period: Period {
                        start: ts("2026-11-17T10:00:00Z"),
                        end: ts("2026-12-01T00:00:00Z")
                    }
                },
                DueInvoice::Closing {
                    closing: Period {
                        start: ts("2026-11-17T10:00:00Z"),
                        end: ts("2026-12-01T00:00:00Z")
                    },
                    opening: Some(Period {
                        start: ts("2026-12-01T00:00:00Z"),
                        end: ts("2027-01-01T00:00:00Z")
                    }),
                },
            ]
        );
    }

    #[test]
    fn a_cancellation_opens_no_further_period() {
        let mut terms = monthly("2026-11-01T00:00:00Z", None);
        terms.ends_at = Some(ts("2026-12-01T00:00:00Z"));
        let due = terms.due_invoices(ts("2027-03-01T00:00:00Z"));
        assert_eq!(due.len(), 2);
        assert!(matches!(due[1], DueInvoice::Closing { opening: None, .. }));
    }

    #[test]
    fn a_cancellation_at_once_closes_its_period_when_it_ends() {
        let mut terms = monthly("2026-11-01T00:00:00Z", None);
        terms.ends_at = Some(ts("2026-11-20T12:00:00Z"));
        assert_eq!(terms.due_invoices(ts("2026-11-20T11:59:59Z")).len(), 1);
        let due = terms.due_invoices(ts("2026-11-20T12:00:00Z"));
        assert_eq!(
            due[1],
            DueInvoice::Closing {
                closing: Period {
                    start: ts("2026-11-01T00:00:00Z"),
                    end: ts("2026-11-20T12:00:00Z"),
                },
                opening: None,
            }
        );
        assert_eq!(due[1].due_at(), ts("2026-11-20T12:00:00Z"));
        // Nothing more, however late.
        assert_eq!(terms.due_invoices(ts("2027-06-01T00:00:00Z")), due);
    }
}

#[cfg(test)]
mod period_tests {
    use super::*;
    use crate::catalog::{Anchor, Interval};
    use jiff::SignedDuration;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn terms(start: &str, cadence: Cadence, anchor: Anchor) -> SubscriptionTerms {
        SubscriptionTerms {
            id: "sub_1".into(),
            anchor: cadence.anchor(anchor, ts(start)),
            cadence,
            started_at: ts(start),
            trial_end: None,
            ends_at: None,
        }
    }

    #[test]
    fn a_calendar_start_mid_month_bills_from_the_start_prorated() {
        let t = terms("2026-04-15T00:00:00Z", Cadence::MONTH, Anchor::Calendar);
        let due = t.due_invoices(ts("2026-05-01T00:00:00Z"));
        let first = Period {
            start: ts("2026-04-15T00:00:00Z"),
            end: ts("2026-05-01T00:00:00Z"),
        };
        assert_eq!(due[0], DueInvoice::Opening { period: first });
        assert_eq!(
            t.prorated_from(first),
            Some(Period {
                start: ts("2026-04-01T00:00:00Z"),
                end: ts("2026-05-01T00:00:00Z")
            })
        );
        let DueInvoice::Closing {
            opening: Some(may), ..
        } = due[1]
        else {
            panic!("{due:?}")
        };
        assert_eq!(t.prorated_from(may), None, "whole periods are not prorated");
        let anniversary = terms("2026-04-15T00:00:00Z", Cadence::MONTH, Anchor::Anniversary);
        let p = anniversary.paid_period_at(ts("2026-04-20T00:00:00Z"));
        assert_eq!(p.end, ts("2026-05-15T00:00:00Z"));
        assert_eq!(anniversary.prorated_from(p), None);
    }

    proptest! {
        /// The invoices of any subscription close consecutive periods: each closing period
        /// starts where the previous one ended, the first at the start, none before it.
        #[test]
        fn due_invoices_tile_from_the_start(
            start in 0i64..4_000_000_000,
            unit in prop_oneof![
                Just(Interval::Day), Just(Interval::Week), Just(Interval::Month),
                Just(Interval::Quarter), Just(Interval::Year)
            ],
            count in 1u32..5,
            calendar in any::<bool>(),
            days in 1i64..800,
        ) {
            let start = Timestamp::from_second(start).unwrap();
            let anchor = if calendar { Anchor::Calendar } else { Anchor::Anniversary };
            let t = terms(&start.to_string(), Cadence::new(unit, count), anchor);
            let due = t.due_invoices(start + SignedDuration::from_hours(24 * days));
            let mut expected_start = start;
            for d in &due {
                if let DueInvoice::Closing { closing, opening } = d {
                    prop_assert_eq!(closing.start, expected_start);
                    prop_assert!(closing.start < closing.end);
                    if let Some(next) = opening {
                        prop_assert_eq!(next.start, closing.end);
                    }
                    expected_start = closing.end;
                }
            }
            let DueInvoice::Opening { period } = due[0] else { panic!("{due:?}") };
            prop_assert_eq!(period.start, start);
        }
    }
}
