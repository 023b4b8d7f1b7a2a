//! The scheduler's durable jobs: a table of our own on the pattern of Oban and River, over the
//! same two backends as everything else.
//!
//! A job is due at `due_at` on its clock (a test clock's, or the wall clock's), is claimed by
//! one worker at a time under a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so several nodes
//! claim disjoint jobs without waiting on each other; SQLite: its single writer), and is
//! finished only by the worker holding it. A worker that dies leaves a `running` job whose lease
//! runs out: it is claimed again, with its attempt counted. A failure goes back to `scheduled`
//! after a backoff, until `max_attempts`. The effects of a job are idempotent by key (the
//! invoice keys), or written in the same transaction as its completion
//! ([`JobStore::complete_job`]'s events), so a job retried after a crash has its effect once.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use tollgate_core::ids::WorkspaceId;

use crate::backend::{Backend, Conn, args, run_all, run_optional};
use crate::codec::Columns;
use crate::outbox::OutboxEvent;
use crate::{StoreError, StoreResult, sql};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Scheduled,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Scheduled,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Scheduled => "scheduled",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> StoreResult<JobStatus> {
        JobStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown job status {s:?}")))
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    pub workspace: String,
    pub id: String,
    /// What runs it (`subscription.period_end`, ...).
    pub kind: String,
    /// Unique per workspace: a second job with the same key is not made.
    pub key: String,
    pub customer: Option<String>,
    /// The customer's test clock: the job is due on that clock and runs when it is advanced.
    pub test_clock: Option<String>,
    pub due_at: Timestamp,
    pub payload: serde_json::Value,
    pub max_attempts: i64,
    /// Wall time.
    pub created_at: Timestamp,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub workspace: String,
    pub id: String,
    pub kind: String,
    pub key: String,
    pub customer: Option<String>,
    pub test_clock: Option<String>,
    pub due_at: Timestamp,
    pub payload: serde_json::Value,
    pub status: JobStatus,
    /// Claims so far (a claim after a crash counts).
    pub attempts: i64,
    pub max_attempts: i64,
    /// Not claimed before this wall time (the backoff after a failure).
    pub available_at: Timestamp,
    pub locked_by: Option<String>,
    pub locked_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub result: Option<serde_json::Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// Who claims and until when: `now` and `until` are wall time; a claim whose `until` has passed
/// is over, and the job may be claimed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub worker: String,
    pub now: Timestamp,
    pub until: Timestamp,
}

/// Which jobs to list: in creation order, after `starting_after` (a job id), at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub kind: Option<String>,
    pub customer: Option<String>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

fn decode(r: &impl Columns) -> StoreResult<JobRecord> {
    let result = r.opt_text("result")?;
    Ok(JobRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        kind: r.text("kind")?,
        key: r.text("key")?,
        customer: r.opt_text("customer")?,
        test_clock: r.opt_text("test_clock")?,
        due_at: r.time("due_at")?,
        payload: r.json("payload")?,
        status: r.text("status")?.parse()?,
        attempts: r.int("attempts")?,
        max_attempts: r.int("max_attempts")?,
        available_at: r.time("available_at")?,
        locked_by: r.opt_text("locked_by")?,
        locked_until: r.opt_time("locked_until")?,
        last_error: r.opt_text("last_error")?,
        result: result.as_deref().map(crate::codec::json).transpose()?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        finished_at: r.opt_time("finished_at")?,
    })
}

fn sorted(mut jobs: Vec<JobRecord>) -> Vec<JobRecord> {
    jobs.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
    jobs
}

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Enqueues a job; with its key taken, the job already there. `true` when this call made it.
    async fn enqueue_job(&self, job: &NewJob) -> StoreResult<(JobRecord, bool)>;
    async fn get_job(&self, workspace: &WorkspaceId, id: &str) -> StoreResult<Option<JobRecord>>;
    async fn list_jobs(
        &self,
        workspace: &WorkspaceId,
        filter: &JobFilter,
    ) -> StoreResult<Vec<JobRecord>>;
    /// Claims up to `limit` due wall-clock jobs of every workspace, earliest due first (jobs of
    /// test clocks run when their clock is advanced, see [`JobStore::claim_clock_job`]).
    async fn claim_due_jobs(&self, lease: &Lease, limit: i64) -> StoreResult<Vec<JobRecord>>;
    /// Claims the earliest job of test clock `clock` due at or before `due_before` (its new time).
    async fn claim_clock_job(
        &self,
        workspace: &WorkspaceId,
        clock: &str,
        due_before: Timestamp,
        lease: &Lease,
    ) -> StoreResult<Option<JobRecord>>;
    /// Marks a claimed job succeeded and writes `events` in the same transaction. `Conflict`
    /// when `worker` no longer holds it (its lease ran out and another worker claimed it):
    /// nothing is written.
    async fn complete_job(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        worker: &str,
        result: &serde_json::Value,
        events: &[OutboxEvent],
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Records a failed attempt: scheduled again from `retry_at`, or failed after its last one.
    async fn fail_job(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        worker: &str,
        error: &str,
        retry_at: Timestamp,
        at: Timestamp,
    ) -> StoreResult<JobRecord>;
    /// A failed or canceled job scheduled again; `Conflict` in any other status.
    async fn retry_job(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        at: Timestamp,
    ) -> StoreResult<JobRecord>;
    /// A scheduled job canceled; `Conflict` in any other status.
    async fn cancel_job(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        at: Timestamp,
    ) -> StoreResult<JobRecord>;
}

/// `NotFound` or `Conflict` for a compare-and-set on a job that found no row.
async fn refused<C: Conn>(tx: &mut C, workspace: &str, id: &str, wanted: &str) -> StoreError {
    match tx
        .fetch_optional(sql::JOB_BY_ID, args![workspace, id])
        .await
    {
        Ok(Some(row)) => match decode(&row) {
            Ok(job) => StoreError::Conflict(format!("job {id:?} is {}, not {wanted}", job.status)),
            Err(e) => e,
        },
        Ok(None) => StoreError::NotFound {
            kind: "job",
            id: id.to_owned(),
        },
        Err(e) => e.into(),
    }
}

#[async_trait]
impl<B: Backend> JobStore for B {
    async fn enqueue_job(&self, j: &NewJob) -> StoreResult<(JobRecord, bool)> {
        let mut tx = self.write(&j.workspace).await?;
        let values = args![
            &j.workspace,
            &j.id,
            &j.kind,
            &j.key,
            &j.customer,
            &j.test_clock,
            j.due_at,
            &j.payload,
            j.max_attempts,
            j.created_at,
        ];
        let made = tx.execute(sql::INSERT_JOB, values).await? == 1;
        let row = tx
            .fetch_optional(sql::JOB_BY_KEY, args![&j.workspace, &j.key])
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("job {:?} vanished", j.key)))?;
        let job = decode(&row)?;
        tx.commit().await?;
        Ok((job, made))
    }

    async fn get_job(&self, workspace: &WorkspaceId, id: &str) -> StoreResult<Option<JobRecord>> {
        run_optional(
            self.read(workspace),
            sql::JOB_BY_ID,
            args![workspace, id],
            decode,
        )
        .await
    }

    async fn list_jobs(
        &self,
        workspace: &WorkspaceId,
        f: &JobFilter,
    ) -> StoreResult<Vec<JobRecord>> {
        let status = crate::backend::Arg::OptText(f.status.map(JobStatus::as_str));
        let values = args![
            workspace,
            status,
            &f.kind,
            &f.customer,
            &f.starting_after,
            f.limit
        ];
        run_all(self.read(workspace), sql::LIST_JOBS, values, decode).await
    }

    async fn claim_due_jobs(&self, lease: &Lease, limit: i64) -> StoreResult<Vec<JobRecord>> {
        let claim = if B::NAME == "postgres" {
            sql::CLAIM_JOBS_SKIP_LOCKED
        } else {
            sql::CLAIM_JOBS
        };
        let mut tx = self.job_claiming().await?;
        tx.execute(sql::FAIL_ABANDONED_JOBS, args![lease.now])
            .await?;
        let values = args![lease.now, &lease.worker, lease.until, limit];
        let rows = tx.fetch_all(claim, values).await?;
        let jobs = rows.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
        tx.commit().await?;
        Ok(sorted(jobs))
    }

    async fn claim_clock_job(
        &self,
        workspace: &WorkspaceId,
        clock: &str,
        due_before: Timestamp,
        lease: &Lease,
    ) -> StoreResult<Option<JobRecord>> {
        let claim = if B::NAME == "postgres" {
            sql::CLAIM_CLOCK_JOB_SKIP_LOCKED
        } else {
            sql::CLAIM_CLOCK_JOB
        };
        let values = args![
            lease.now,
            &lease.worker,
            lease.until,
            workspace,
            clock,
            due_before
        ];
        run_optional(self.write(workspace), claim, values, decode).await
    }

    async fn complete_job(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        worker: &str,
        result: &serde_json::Value,
        events: &[OutboxEvent],
        at: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.write(workspace).await?;
        let values = args![workspace, id, worker, result, at];
        if tx.execute(sql::COMPLETE_JOB, values).await? == 0 {
            return Err(refused(&mut tx, workspace, id, "running under this worker").await);
        }
        crate::outbox::append(&mut tx, events).await?;
        Ok(tx.commit().await?)
    }

    async fn fail_job(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        worker: &str,
        error: &str,
        retry_at: Timestamp,
        at: Timestamp,
    ) -> StoreResult<JobRecord> {
        let mut tx = self.write(workspace).await?;
        let values = args![workspace, id, worker, error, retry_at, at];
        let Some(row) = tx.fetch_optional(sql::FAIL_JOB, values).await? else {
            return Err(refused(&mut tx, workspace, id, "running under this worker").await);
        };
        let job = decode(&row)?;
        tx.commit().await?;
        Ok(job)
    }

    async fn retry_job(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        at: Timestamp,
    ) -> StoreResult<JobRecord> {
        let mut tx = self.write(workspace).await?;
        let Some(row) = tx
            .fetch_optional(sql::RETRY_JOB, args![workspace, id, at])
            .await?
        else {
            return Err(refused(&mut tx, workspace, id, "failed or canceled").await);
        };
        let job = decode(&row)?;
        tx.commit().await?;
        Ok(job)
    }

    async fn cancel_job(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        at: Timestamp,
    ) -> StoreResult<JobRecord> {
        let mut tx = self.write(workspace).await?;
        let Some(row) = tx
            .fetch_optional(sql::CANCEL_JOB, args![workspace, id, at])
            .await?
        else {
            return Err(refused(&mut tx, workspace, id, "scheduled").await);
        };
        let job = decode(&row)?;
        tx.commit().await?;
        Ok(job)
    }
}
