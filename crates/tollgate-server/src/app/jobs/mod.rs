//! The scheduler's use cases: which jobs a subscription needs next (enqueued when it is
//! created, changed or renewed), and what operators do with jobs (list, retry, cancel). The
//! worker that runs them is `crate::jobs`.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
pub use tollgate_store::jobs::JobRecord;
use tollgate_store::jobs::{JobFilter, JobStatus, NewJob};
use tollgate_store::{StoreError, SubscriptionRecord};

use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;

/// The kinds of jobs, as stored.
pub mod kinds {
    /// A trial's end: convert (or move to the fallback plan), bill the opening invoice.
    pub const TRIAL_END: &str = "subscription.trial_end";
    /// A period's end: the closing invoice and the next period (a renewal), a downgrade
    /// scheduled for it.
    pub const PERIOD_END: &str = "subscription.period_end";
    /// `policies.trial_reminder_days` before a trial ends: a `subscription.trial_will_end` event.
    pub const TRIAL_REMINDER: &str = "subscription.trial_reminder";
    /// After usage is counted on a plan with `progressive_billing` (enqueued by the engine, due
    /// at the end of the minute): invoice the usage so far if it reached a threshold.
    pub const PROGRESSIVE_CHECK: &str = crate::engine::PROGRESSIVE_CHECK_JOB;
    pub const ALL: [&str; 4] = [TRIAL_END, PERIOD_END, TRIAL_REMINDER, PROGRESSIVE_CHECK];
}

/// Attempts before a job is left `failed` for an operator.
pub const MAX_ATTEMPTS: i64 = 5;

/// The job of `kind` for subscription `sub` due at `due_at` (on its customer's clock), made
/// once: its key names the subscription, the kind and the time.
fn subscription_job(
    engine: &Engine,
    sub: &SubscriptionRecord,
    test_clock: Option<&str>,
    kind: &str,
    due_at: Timestamp,
) -> NewJob {
    NewJob {
        workspace: sub.workspace.clone(),
        id: new_id("job"),
        kind: kind.to_owned(),
        key: format!("{}:{kind}:{due_at}", sub.id),
        customer: Some(sub.customer.clone()),
        test_clock: test_clock.map(str::to_owned),
        due_at,
        payload: json!({"subscription": sub.id}),
        max_attempts: MAX_ATTEMPTS,
        created_at: engine.now(),
    }
}

/// Enqueues what subscription `sub` needs next after `now` (its customer's time): while it is
/// in trial, its reminder and its end; then the end of its current paid period. Enqueuing is
/// idempotent (job keys), so calling this after every change is safe.
pub async fn schedule_subscription(
    engine: &Engine,
    sub: &SubscriptionRecord,
    now: Timestamp,
) -> AppResult<Vec<JobRecord>> {
    let store = engine.store();
    // An ended subscription needs nothing but to expire (its last invoice, at once); a paused
    // one nothing until it is resumed.
    let expiring = tollgate_core::lifecycle::should_expire(sub.status, sub.ends_at, now);
    if (!crate::app::subscriptions::is_live(sub, now) && !expiring)
        || sub.status == tollgate_store::SubscriptionStatus::Paused
    {
        return Ok(Vec::new());
    }
    let customer = store
        .get_customer(&WorkspaceId::from(&sub.workspace), &sub.customer)
        .await?
        .ok_or_else(|| Error::not_found("customer", &sub.customer))?;
    let clock = customer.test_clock.as_deref();
    let catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
    let terms = crate::billing::invoices::terms(sub, &catalog.catalog);
    let mut jobs = Vec::new();
    let in_trial = sub.status == tollgate_store::SubscriptionStatus::Trialing;
    match sub.trial_end {
        Some(end) if in_trial && end > now => {
            if let Some(days) = catalog.catalog.policies.trial_reminder_days {
                let remind_at = end - SignedDuration::from_hours(24 * i64::from(days));
                if remind_at > now {
                    jobs.push(subscription_job(
                        engine,
                        sub,
                        clock,
                        kinds::TRIAL_REMINDER,
                        remind_at,
                    ));
                }
            }
            jobs.push(subscription_job(engine, sub, clock, kinds::TRIAL_END, end));
        }
        Some(end) if in_trial => {
            jobs.push(subscription_job(engine, sub, clock, kinds::TRIAL_END, end));
        }
        _ => {
            let mut due = terms.paid_period_at(now).end;
            if let Some(ends) = sub.ends_at {
                due = due.min(ends.max(now));
            }
            jobs.push(subscription_job(engine, sub, clock, kinds::PERIOD_END, due));
        }
    }
    let mut stored = Vec::with_capacity(jobs.len());
    for job in &jobs {
        stored.push(store.enqueue_job(job).await?.0);
    }
    Ok(stored)
}

/// The largest page of [`list`].
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Clone, Default)]
pub struct ListJobs {
    pub workspace: String,
    /// `scheduled`, `running`, `succeeded`, `failed` or `canceled`.
    pub status: Option<String>,
    pub kind: Option<String>,
    pub customer: Option<String>,
    pub starting_after: Option<String>,
    /// 1..=100; `None`: 20.
    pub limit: Option<i64>,
}

/// A page of jobs in creation order, and whether more follow.
pub async fn list(engine: &Engine, input: ListJobs) -> AppResult<(Vec<JobRecord>, bool)> {
    let limit = input.limit.unwrap_or(20);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(
            Code::InvalidLimit,
            format!("`limit` must be between 1 and {MAX_LIMIT}, not {limit}"),
        ));
    }
    let status = input
        .status
        .map(|s| {
            JobStatus::ALL
                .into_iter()
                .find(|v| v.as_str() == s)
                .ok_or_else(|| {
                    Error::invalid(
                        Code::UnknownStatus,
                        format!(
                            "`status` {s:?} is none of scheduled, running, succeeded, failed, canceled"
                        ),
                    )
                })
        })
        .transpose()?;
    let filter = JobFilter {
        status,
        kind: input.kind,
        customer: input.customer,
        starting_after: input.starting_after,
        limit: limit + 1,
    };
    let mut jobs = engine
        .store()
        .list_jobs(&WorkspaceId::from(&input.workspace), &filter)
        .await?;
    let page = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_more = jobs.len() > page;
    jobs.truncate(page);
    Ok((jobs, has_more))
}

fn moved(e: StoreError) -> Error {
    match e {
        StoreError::Conflict(detail) => Error::conflict(Code::InvalidJobTransition, detail),
        other => other.into(),
    }
}

/// Runs a failed (or canceled) job again, with its attempts counted afresh. A job that
/// succeeded is not run twice: `invalid_job_transition`.
pub async fn retry(engine: &Engine, workspace: &str, id: &str) -> AppResult<JobRecord> {
    engine
        .store()
        .retry_job(&WorkspaceId::from(workspace), id, engine.now())
        .await
        .map_err(moved)
}

/// Cancels a scheduled job; one running or finished is `invalid_job_transition`.
pub async fn cancel(engine: &Engine, workspace: &str, id: &str) -> AppResult<JobRecord> {
    engine
        .store()
        .cancel_job(&WorkspaceId::from(workspace), id, engine.now())
        .await
        .map_err(moved)
}
