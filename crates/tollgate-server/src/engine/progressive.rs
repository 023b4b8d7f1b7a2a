//! Progressive billing's trigger: after usage is counted (next to the usage alerts), a customer
//! whose plan bills progressively gets a check job, due at the end of the current minute on its
//! clock. The scheduler runs it (`jobs::handlers`), which invoices the usage so far if it reached
//! a threshold (`app::billing::bill_progressive`). One job per customer and minute: its key names
//! the subscription and the due time, and the customer state remembers the last one enqueued,
//! so events within a minute cost no store write after the first.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tollgate_store::jobs::NewJob;

use super::Engine;
use crate::ids::new_id;

/// The kind of the check job (`app::jobs::kinds::PROGRESSIVE_CHECK`).
pub const PROGRESSIVE_CHECK_JOB: &str = "subscription.progressive_check";

/// Attempts before a check job is left `failed` (as the scheduler's other jobs).
const MAX_ATTEMPTS: i64 = 5;

/// The end of the minute `at` is in: when a check of usage counted at `at` is due.
pub(crate) fn check_due(at: Timestamp) -> Timestamp {
    let second = at.as_second();
    let next = second.div_euclid(60).saturating_add(1).saturating_mul(60);
    Timestamp::from_second(next)
        .or_else(|_| at.checked_add(SignedDuration::from_secs(60)))
        .unwrap_or(at)
}

impl Engine {
    /// Enqueues the customer's progressive-billing check if its plan bills progressively. Never
    /// fails the usage that was counted: a store error is logged, and the next usage retries.
    pub(crate) async fn schedule_progressive_check(&self, workspace: &str, customer: &str) {
        let wanted = self.with_state(workspace, customer, |state, now| {
            let (_, plan) = state.effective_plan(now)?;
            plan.progressive_billing.as_ref()?;
            let sub = state.subscription.as_ref()?;
            let due = check_due(now);
            if state.progressive_check_due == Some(due) {
                return None;
            }
            state.progressive_check_due = Some(due);
            Some((sub.id.clone(), state.record.test_clock.clone(), due))
        });
        let (sub, test_clock, due) = match wanted.await {
            Ok(Some(w)) => w,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(code = e.code.as_str(), detail = %e.detail, workspace, customer, "progressive billing check not scheduled");
                return;
            }
        };
        let job = NewJob {
            workspace: workspace.to_owned(),
            id: new_id("job"),
            kind: PROGRESSIVE_CHECK_JOB.to_owned(),
            key: format!("{sub}:{PROGRESSIVE_CHECK_JOB}:{due}"),
            customer: Some(customer.to_owned()),
            test_clock,
            due_at: due,
            payload: json!({"subscription": sub}),
            max_attempts: MAX_ATTEMPTS,
            created_at: self.now(),
        };
        if let Err(e) = self.store.enqueue_job(&job).await {
            tracing::error!(error = %e, workspace, customer, "progressive billing check not enqueued");
            // The next usage tries again.
            let _ = self
                .with_state(workspace, customer, move |state, _| {
                    if state.progressive_check_due == Some(due) {
                        state.progressive_check_due = None;
                    }
                })
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_due;

    #[test]
    fn a_check_is_due_at_the_end_of_the_minute() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(
            check_due(at("2026-11-02T00:00:00Z")),
            at("2026-11-02T00:01:00Z")
        );
        assert_eq!(
            check_due(at("2026-11-02T00:00:59.999Z")),
            at("2026-11-02T00:01:00Z")
        );
        assert_eq!(
            check_due(at("2026-11-02T10:17:30Z")),
            at("2026-11-02T10:18:00Z")
        );
    }
}
