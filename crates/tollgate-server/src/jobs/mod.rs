//! The scheduler: runs the durable jobs of the store (`tollgate_store::jobs`) through the
//! use cases of `app/`, never HTTP.
//!
//! - [`spawn`] starts the worker loop of `tollgate serve`: every `poll_interval` it claims the
//!   due wall-clock jobs of every workspace (earliest due first, several nodes claiming disjoint
//!   jobs on PostgreSQL) and runs them. After downtime the first polls catch up in due order.
//! - [`advance_clock`] runs the jobs of a test clock when it is advanced: one at a time in due
//!   order, the clock stepped to each job's due time first, so a job sees the time it was due
//!   at (as Stripe's test clocks do) and the advance returns once they have run.
//!
//! A job that fails is retried with exponential backoff up to its `max_attempts`; a worker that
//! dies mid-job leaves it `running` until its lease runs out, then it is claimed again. Effects
//! are idempotent by key (invoice keys, job keys) or committed with the job's completion (the
//! events a job announces), so a retried job has its effect once.

mod handlers;
pub mod ledger;

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tollgate_core::ids::WorkspaceId;
use tollgate_store::jobs::{JobRecord, Lease};

use crate::engine::Engine;
use crate::error::AppResult;

/// How the worker loop runs.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// How often to look for due jobs when the last look found none.
    pub poll_interval: Duration,
    /// Jobs claimed per look.
    pub batch: i64,
    /// How long a claim holds: a job still running after it may be claimed by another worker.
    pub lease: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            poll_interval: Duration::from_secs(1),
            batch: 50,
            lease: Duration::from_secs(300),
        }
    }
}

/// A name for this worker, unique per process (the lease's owner).
pub fn worker_name() -> String {
    crate::ids::new_id(&format!("worker_{}", std::process::id()))
}

fn lease(engine: &Engine, worker: &str, length: Duration) -> Lease {
    let now = engine.now();
    let length = SignedDuration::try_from(length).unwrap_or(SignedDuration::from_secs(300));
    Lease {
        worker: worker.to_owned(),
        now,
        until: now.checked_add(length).unwrap_or(now),
    }
}

/// How often the worker makes sure the partitions of `events` for this month and the next exist
/// (PostgreSQL; `app::partitions::prepare`): an hour leaves weeks of tries before a month starts.
pub const PARTITIONS_EVERY: Duration = Duration::from_secs(60 * 60);
/// How soon a failed preparation (a lock not granted within its timeout) is tried again.
pub const PARTITIONS_RETRY: Duration = Duration::from_secs(60);

/// Prepares the partitions ahead if `next` has come; when to do it again.
async fn prepare_partitions(engine: &Engine, next: tokio::time::Instant) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    if now < next {
        return next;
    }
    match crate::app::partitions::prepare(engine).await {
        Ok(created) => {
            for month in created {
                tracing::info!(%month, table = %month.table(), "events partition created ahead");
            }
            now + PARTITIONS_EVERY
        }
        Err(error) => {
            tracing::warn!(error = %error.describe(), "preparing events partitions failed");
            now + PARTITIONS_RETRY
        }
    }
}

/// Starts the worker loop in the background. Its first step, and one every
/// [`PARTITIONS_EVERY`], creates the coming partitions of `events`.
pub fn spawn(engine: Arc<Engine>, config: JobsConfig) -> tokio::task::JoinHandle<()> {
    let worker = worker_name();
    tracing::info!(%worker, poll = ?config.poll_interval, "job worker started");
    tokio::spawn(async move {
        let mut partitions_due = tokio::time::Instant::now();
        loop {
            partitions_due = prepare_partitions(&engine, partitions_due).await;
            let ran = match run_due(&engine, &worker, &config).await {
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(error = %error.describe(), "claiming due jobs failed");
                    0
                }
            };
            // A full batch: more may be due at once (catching up), so look again now.
            if usize::try_from(config.batch).is_ok_and(|b| ran < b) {
                tokio::time::sleep(config.poll_interval).await;
            }
        }
    })
}

/// Claims the due wall-clock jobs (one batch) and runs them in due order; how many ran.
pub async fn run_due(engine: &Engine, worker: &str, config: &JobsConfig) -> AppResult<usize> {
    let claim = lease(engine, worker, config.lease);
    let jobs = engine.store().claim_due_jobs(&claim, config.batch).await?;
    let count = jobs.len();
    for job in jobs {
        run(engine, job, worker).await;
    }
    Ok(count)
}

/// Moves test clock `clock` to `to`, running every job of its customers due by then, in due
/// order, each with the clock at its due time. How many jobs ran.
pub async fn advance_clock(
    engine: &Engine,
    workspace: &str,
    clock: &str,
    to: Timestamp,
) -> AppResult<usize> {
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let worker = worker_name();
    let mut ran = 0;
    while let Some(job) = store
        .claim_clock_job(
            &ws,
            clock,
            to,
            &lease(engine, &worker, JobsConfig::default().lease),
        )
        .await?
    {
        let current = engine.now_for(workspace, Some(clock)).await?;
        if job.due_at > current {
            set_clock(engine, workspace, clock, job.due_at).await?;
        }
        run(engine, job, &worker).await;
        ran += 1;
    }
    set_clock(engine, workspace, clock, to).await?;
    Ok(ran)
}

async fn set_clock(engine: &Engine, workspace: &str, clock: &str, at: Timestamp) -> AppResult<()> {
    engine
        .store()
        .set_test_clock_time(&WorkspaceId::from(workspace), clock, at)
        .await?;
    engine.set_test_clock(workspace, clock, at);
    engine.refresh_clock_customers(workspace, clock).await
}

/// The wait before attempt `attempts + 1`: 10 s, 20 s, 40 s, ... at most an hour.
fn backoff(attempts: i64) -> SignedDuration {
    let exponent = u32::try_from(attempts.clamp(1, 10) - 1).unwrap_or(0);
    SignedDuration::from_secs(10 * 2_i64.pow(exponent)).min(SignedDuration::from_hours(1))
}

/// Runs one claimed job and records how it went.
pub async fn run(engine: &Engine, job: JobRecord, worker: &str) {
    let ws = WorkspaceId::from(&job.workspace);
    let store = engine.store();
    let outcome = handlers::handle(engine, &job).await;
    let now = engine.now();
    let recorded = match outcome {
        Ok(mut done) => {
            metrics::counter!("tollgate_jobs_succeeded_total").increment(1);
            if let Some(fields) = done.result.as_object_mut() {
                fields.insert("worker".into(), serde_json::Value::from(worker));
            }
            store
                .complete_job(&ws, &job.id, worker, &done.result, &done.events, now)
                .await
        }
        Err(error) => {
            metrics::counter!("tollgate_jobs_failed_total").increment(1);
            let detail = error.describe();
            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %detail, "job failed");
            let retry_at = now.checked_add(backoff(job.attempts)).unwrap_or(now);
            store
                .fail_job(&ws, &job.id, worker, &detail, retry_at, now)
                .await
                .map(|_| ())
        }
    };
    if let Err(error) = recorded {
        // The lease ran out and another worker holds the job now: it finishes it.
        tracing::warn!(job = %job.id, %error, "a job's outcome was not recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), SignedDuration::from_secs(10));
        assert_eq!(backoff(2), SignedDuration::from_secs(20));
        assert_eq!(backoff(4), SignedDuration::from_secs(80));
        assert_eq!(backoff(40), SignedDuration::from_hours(1));
    }
}
