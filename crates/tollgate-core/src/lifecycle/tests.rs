//! The transition tables in the module docs are the specification: these tests read them from
//! the source and check `apply` against them for every status and update, then walk random
//! sequences of updates from every status.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::invoice::{self, InvoiceStatus, InvoiceUpdate};
use super::subscription::{self, SubscriptionStatus, SubscriptionUpdate};
use super::*;

/// `(from, update, to)` rows of the Markdown table in a module's doc comment.
fn table(source: &str) -> Vec<(String, String, String)> {
    let rows: Vec<Vec<String>> = source
        .lines()
        .filter_map(|l| l.strip_prefix("//! |"))
        .map(|l| {
            l.trim_end_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(rows[0], ["from", "update", "to"], "the table's header");
    assert!(rows[1].iter().all(|c| c.chars().all(|ch| ch == '-')));
    rows[2..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), 3, "{r:?}");
            (r[0].clone(), r[1].clone(), r[2].clone())
        })
        .collect()
}

/// The table as a map `(from, update name) -> to`, refusing duplicate rows.
fn edges<S: std::str::FromStr + Ord + Copy>(source: &str) -> BTreeMap<(S, String), S>
where
    S::Err: std::fmt::Debug,
{
    let mut map = BTreeMap::new();
    for (from, update, to) in table(source) {
        let from: S = from.parse().unwrap();
        let to: S = to.parse().unwrap();
        assert!(
            map.insert((from, update.clone()), to).is_none(),
            "{update} twice"
        );
    }
    map
}

fn invoice_table() -> BTreeMap<(InvoiceStatus, String), InvoiceStatus> {
    edges(include_str!("invoice.rs"))
}

fn subscription_table() -> BTreeMap<(SubscriptionStatus, String), SubscriptionStatus> {
    edges(include_str!("subscription.rs"))
}

#[test]
fn invoice_transitions_are_exactly_the_table() {
    let table = invoice_table();
    let names: BTreeSet<&str> = InvoiceUpdate::ALL.iter().map(|u| u.as_str()).collect();
    assert!(table.keys().all(|(_, u)| names.contains(u.as_str())));
    for from in InvoiceStatus::ALL {
        for update in InvoiceUpdate::ALL {
            let want = table.get(&(from, update.as_str().to_owned()));
            match (invoice::apply(from, update), want) {
                (Ok(to), Some(want)) => assert_eq!(to, *want, "{from} {update}"),
                (Err(e), None) => {
                    assert_eq!(e, TransitionError::Invoice { from, update });
                    assert_eq!(e.code(), "invalid_invoice_transition");
                }
                (got, want) => panic!("{from} {update}: got {got:?}, the table says {want:?}"),
            }
        }
    }
}

#[test]
fn subscription_transitions_are_exactly_the_table() {
    let table = subscription_table();
    let names: BTreeSet<&str> = SubscriptionUpdate::ALL.iter().map(|u| u.as_str()).collect();
    assert!(table.keys().all(|(_, u)| names.contains(u.as_str())));
    for from in SubscriptionStatus::ALL {
        for update in SubscriptionUpdate::ALL {
            let want = table.get(&(from, update.as_str().to_owned()));
            match (subscription::apply(from, update), want) {
                (Ok(to), Some(want)) => assert_eq!(to, *want, "{from} {update:?}"),
                (Err(e), None) => {
                    assert_eq!(e, TransitionError::Subscription { from, update });
                    assert_eq!(e.code(), "invalid_subscription_transition");
                }
                (got, want) => panic!("{from} {update:?}: got {got:?}, the table says {want:?}"),
            }
        }
    }
}

/// docs/LIFECYCLE-RULES.md draws both tables as Mermaid diagrams: each row is an edge there, and
/// the diagrams have no edge the tables lack.
#[test]
fn the_diagrams_draw_the_tables() {
    let doc = include_str!("../../../../docs/LIFECYCLE-RULES.md");
    let edges: BTreeSet<(String, String, String)> = doc
        .lines()
        .filter_map(|l| {
            let (arrow, update) = l.trim().split_once(": ")?;
            let (from, to) = arrow.split_once(" --> ")?;
            Some((from.to_owned(), update.to_owned(), to.to_owned()))
        })
        .collect();
    let mut rows: BTreeSet<(String, String, String)> =
        table(include_str!("invoice.rs")).into_iter().collect();
    rows.extend(table(include_str!("subscription.rs")));
    assert_eq!(edges, rows);
}

#[test]
fn errors_say_what_was_refused() {
    let e = InvoiceStatus::Paid.apply(InvoiceUpdate::Void).unwrap_err();
    assert_eq!(e.to_string(), "an invoice that is paid cannot become void");
    let e = SubscriptionStatus::Expired
        .apply(SubscriptionUpdate::Resume)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "a subscription that is expired cannot be resumed"
    );
}

#[test]
fn statuses_round_trip_as_text_and_json() {
    for s in InvoiceStatus::ALL {
        assert_eq!(s.as_str().parse::<InvoiceStatus>(), Ok(s));
        assert_eq!(s.to_string(), s.as_str());
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, format!("\"{}\"", s.as_str()));
        assert_eq!(serde_json::from_str::<InvoiceStatus>(&json).unwrap(), s);
    }
    for s in SubscriptionStatus::ALL {
        assert_eq!(s.as_str().parse::<SubscriptionStatus>(), Ok(s));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, format!("\"{}\"", s.as_str()));
        assert_eq!(
            serde_json::from_str::<SubscriptionStatus>(&json).unwrap(),
            s
        );
    }
    let e = "PastDue".parse::<SubscriptionStatus>().unwrap_err();
    assert_eq!(e.to_string(), "unknown subscription status \"PastDue\"");
    assert_eq!(
        "refunded".parse::<InvoiceStatus>().unwrap_err().to_string(),
        "unknown invoice status \"refunded\""
    );
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn liveness_is_the_status_and_the_end() {
    use SubscriptionStatus as S;
    let now = t("2026-11-15T12:00:00Z");
    let later = Some(now + SignedDuration::from_secs(1));
    let earlier = Some(now - SignedDuration::from_secs(1));
    for s in [S::Trialing, S::Active, S::PastDue, S::Paused] {
        assert!(is_live(s, None, now), "{s}");
        assert!(is_live(s, later, now), "{s}");
        assert!(!is_live(s, earlier, now), "{s}");
        assert!(
            !should_expire(s, earlier, now),
            "only a canceled one expires"
        );
    }
    // Canceled at period end: live until then, not a second more.
    assert!(is_live(S::Canceled, later, now));
    assert!(!is_live(S::Canceled, Some(now), now));
    assert!(!is_live(S::Canceled, None, now));
    assert!(should_expire(S::Canceled, Some(now), now));
    assert!(!should_expire(S::Canceled, later, now));
    for end in [None, earlier, later] {
        assert!(!is_live(S::Expired, end, now));
        assert!(!should_expire(S::Expired, end, now));
    }
}

#[test]
fn trials_end_at_their_end() {
    use SubscriptionStatus as S;
    let end = t("2026-11-09T08:00:00Z");
    let before = end - SignedDuration::from_secs(1);
    assert!(in_trial(S::Trialing, Some(end), before));
    assert!(!in_trial(S::Trialing, Some(end), end));
    assert!(!trial_is_over(S::Trialing, Some(end), before));
    assert!(
        trial_is_over(S::Trialing, Some(end), end),
        "from that second"
    );
    assert!(!trial_is_over(S::Active, Some(end), end));
    assert!(!in_trial(S::Trialing, None, before));
    assert_eq!(trial_outcome(true, true), TrialOutcome::Convert);
    assert_eq!(trial_outcome(true, false), TrialOutcome::Convert);
    assert_eq!(trial_outcome(false, true), TrialOutcome::Fallback);
    assert_eq!(trial_outcome(false, false), TrialOutcome::Convert);
    assert_eq!(SubscriptionStatus::at_start(true), S::Trialing);
    assert_eq!(SubscriptionStatus::at_start(false), S::Active);
}

#[test]
fn invoices_with_nothing_due_are_paid_on_issue() {
    assert_eq!(InvoiceStatus::on_issue(0), InvoiceStatus::Paid);
    assert_eq!(InvoiceStatus::on_issue(1), InvoiceStatus::Open);
}

#[test]
fn credit_notes_only_on_paid_invoices_within_the_total() {
    use InvoiceStatus as S;
    for s in [S::Draft, S::Open, S::Void, S::Uncollectible] {
        let e = credit_note_allowed(s, 1_000, 0, 1).unwrap_err();
        assert_eq!(e.code(), "invoice_not_paid");
        assert_eq!(
            credit_note_remaining(s, 1_000, 0).unwrap_err().code(),
            "invoice_not_paid"
        );
    }
    assert_eq!(credit_note_allowed(S::Paid, 1_000, 600, 400), Ok(()));
    let e = credit_note_allowed(S::Paid, 1_000, 600, 401).unwrap_err();
    assert_eq!(e.code(), "refund_exceeds_invoice");
    for bad in [0, -1, i64::MIN] {
        let e = credit_note_allowed(S::Paid, 1_000, 0, bad).unwrap_err();
        assert_eq!(e.code(), "invalid_amount");
    }
    // The sum would wrap around i64: refused, never let through.
    for amount in [i64::MAX, i64::MAX - 50] {
        let e = credit_note_allowed(S::Paid, 1_000, 100, amount).unwrap_err();
        assert_eq!(e.code(), "refund_exceeds_invoice");
    }
    assert_eq!(credit_note_remaining(S::Paid, 1_000, 600), Ok(400));
    assert_eq!(
        credit_note_remaining(S::Paid, 1_000, 1_000)
            .unwrap_err()
            .code(),
        "refund_exceeds_invoice"
    );
    assert_eq!(
        credit_note_remaining(S::Paid, i64::MAX, -1)
            .unwrap_err()
            .code(),
        "refund_exceeds_invoice"
    );
}

fn invoice_status() -> impl Strategy<Value = InvoiceStatus> {
    proptest::sample::select(InvoiceStatus::ALL.to_vec())
}

fn invoice_update() -> impl Strategy<Value = InvoiceUpdate> {
    proptest::sample::select(InvoiceUpdate::ALL.to_vec())
}

fn subscription_status() -> impl Strategy<Value = SubscriptionStatus> {
    proptest::sample::select(SubscriptionStatus::ALL.to_vec())
}

fn subscription_update() -> impl Strategy<Value = SubscriptionUpdate> {
    proptest::sample::select(SubscriptionUpdate::ALL.to_vec())
}

/// Every status reachable from `from` by following the table's rows.
fn reachable<S: Ord + Copy>(table: &BTreeMap<(S, String), S>, from: S) -> BTreeSet<S> {
    let mut seen = BTreeSet::from([from]);
    let mut todo = vec![from];
    while let Some(s) = todo.pop() {
        for ((f, _), to) in table {
            if *f == s && seen.insert(*to) {
                todo.push(*to);
            }
        }
    }
    seen
}

proptest! {
    /// Any sequence of updates from any status: each step applies as the table says or is
    /// refused and changes nothing, so no path leaves the statuses the table reaches.
    #[test]
    fn invoice_paths_follow_the_table(
        start in invoice_status(),
        updates in proptest::collection::vec(invoice_update(), 0..24),
    ) {
        let table = invoice_table();
        let allowed = reachable(&table, start);
        let mut status = start;
        let mut was_paid = false;
        for update in updates {
            match status.apply(update) {
                Ok(next) => {
                    prop_assert_eq!(table.get(&(status, update.as_str().to_owned())), Some(&next));
                    prop_assert!(!status.is_terminal(), "{} moved from a terminal status", status);
                    status = next;
                }
                Err(e) => {
                    prop_assert_eq!(e, TransitionError::Invoice { from: status, update });
                    prop_assert!(!table.contains_key(&(status, update.as_str().to_owned())));
                }
            }
            prop_assert!(allowed.contains(&status));
            was_paid |= status == InvoiceStatus::Paid;
            // Paid and void are for ever: paid never goes back to open.
            prop_assert!(!was_paid || status == InvoiceStatus::Paid);
        }
        if start.is_terminal() {
            prop_assert_eq!(status, start);
        }
    }

    #[test]
    fn subscription_paths_follow_the_table(
        start in subscription_status(),
        updates in proptest::collection::vec(subscription_update(), 0..32),
    ) {
        let table = subscription_table();
        let allowed = reachable(&table, start);
        let mut status = start;
        for update in updates {
            let before = status;
            match status.apply(update) {
                Ok(next) => {
                    prop_assert_eq!(table.get(&(status, update.as_str().to_owned())), Some(&next));
                    status = next;
                }
                Err(e) => {
                    prop_assert_eq!(e, TransitionError::Subscription { from: status, update });
                    prop_assert!(!table.contains_key(&(status, update.as_str().to_owned())));
                }
            }
            prop_assert!(allowed.contains(&status));
            // Nothing revives an ending subscription, and nothing moves an expired one.
            prop_assert!(!before.is_ending() || status.is_ending(), "{} -> {}", before, status);
            prop_assert!(!before.is_terminal() || status == before);
        }
    }

    /// A live subscription is never turned live again once it stopped being live at a given
    /// moment, whatever updates follow (the end only ever comes closer).
    #[test]
    fn an_ended_subscription_stays_ended(
        start in subscription_status(),
        updates in proptest::collection::vec(subscription_update(), 0..32),
        offset in -3_600i64..3_600,
    ) {
        let now = t("2026-11-15T12:00:00Z");
        let mut status = start;
        let mut ends_at = Some(now + SignedDuration::from_secs(offset));
        let mut was_live = is_live(status, ends_at, now);
        for update in updates {
            if let Ok(next) = status.apply(update) {
                match update {
                    SubscriptionUpdate::CancelNow => ends_at = Some(now),
                    SubscriptionUpdate::CancelAtPeriodEnd => {
                        ends_at = Some(ends_at.map_or(now, |e| e.min(now + SignedDuration::from_hours(24))))
                    }
                    _ => {}
                }
                status = next;
            }
            let live = is_live(status, ends_at, now);
            prop_assert!(was_live || !live, "{:?} came back to life", status);
            was_live = live;
        }
    }

    #[test]
    fn credit_notes_never_exceed_the_total(
        total in 0i64..=i64::MAX,
        notes in proptest::collection::vec(prop_oneof![any::<i64>(), 1i64..1_000_000], 0..12),
    ) {
        let mut credited: i64 = 0;
        for amount in notes {
            if credit_note_allowed(InvoiceStatus::Paid, total, credited, amount).is_ok() {
                prop_assert!(amount > 0);
                credited = credited.checked_add(amount).expect("checked by the rule");
            }
            prop_assert!(credited <= total);
        }
    }
}

#[test]
fn a_credit_lowers_what_an_unpaid_invoice_still_owes() {
    use invoice::amount_due_after_credit as after;
    assert_eq!(after(InvoiceStatus::Open, 9_150, 3_000), Some(6_150));
    assert_eq!(
        after(InvoiceStatus::Uncollectible, 9_150, 3_000),
        Some(6_150)
    );
    // Beyond the amount due: zero, the rest goes to the balance.
    assert_eq!(after(InvoiceStatus::Open, 9_150, 12_150), Some(0));
    // A paid invoice owes nothing: all of it goes to the balance.
    assert_eq!(after(InvoiceStatus::Paid, 9_150, 3_000), None);
    assert_eq!(after(InvoiceStatus::Open, 0, 3_000), None);
    assert_eq!(after(InvoiceStatus::Void, 9_150, 3_000), None);
}
