//! `GET /v1/jobs`, `POST /v1/jobs/{id}/retry`, `POST /v1/jobs/{id}/cancel`: the scheduler's
//! jobs for operators (admin key).

use axum::Json;
use axum::extract::{Path, Query, State};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_store::jobs::JobRecord;

use crate::api::domain_events::parse_limit;
use crate::api::error::ApiResult;
use crate::app::jobs::{ListJobs, cancel, list, retry};
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct JobsQuery {
    /// `scheduled`, `running`, `succeeded`, `failed` or `canceled`.
    pub status: Option<String>,
    /// `subscription.period_end`, `subscription.trial_end`, `subscription.trial_reminder`.
    pub kind: Option<String>,
    pub customer: Option<String>,
    /// The id of the last job of the previous page.
    pub starting_after: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobOut {
    pub id: String,
    pub kind: String,
    pub key: String,
    pub customer: Option<String>,
    /// The test clock the job's time is on (`null`: the wall clock).
    pub test_clock: Option<String>,
    #[schema(value_type = String)]
    pub due_at: Timestamp,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// `scheduled`, `running`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub finished_at: Option<Timestamp>,
}

impl From<JobRecord> for JobOut {
    fn from(j: JobRecord) -> Self {
        JobOut {
            id: j.id,
            kind: j.kind,
            key: j.key,
            customer: j.customer,
            test_clock: j.test_clock,
            due_at: j.due_at,
            payload: j.payload,
            status: j.status.as_str().to_owned(),
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            last_error: j.last_error,
            result: j.result,
            created_at: j.created_at,
            finished_at: j.finished_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobList {
    pub data: Vec<JobOut>,
    /// More jobs follow the last one: ask again with `starting_after` set to its id.
    pub has_more: bool,
}

#[utoipa::path(get, path = "/v1/jobs", operation_id = "jobs_list", params(JobsQuery),
    summary = "List scheduled jobs",
    description = "The scheduler's jobs in creation order, with their status, attempts, last error and result. Admin key.",
    responses((status = 200, description = "OK", body = JobList),
        (status = 400, description = "Bad `limit` or `status` (problem+json, `invalid_limit`, `unknown_status`)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Principal,
    Query(query): Query<JobsQuery>,
) -> ApiResult<Json<JobList>> {
    let workspace = caller.require_admin()?;
    let (jobs, has_more) = list(
        &state.engine,
        ListJobs {
            workspace: workspace.to_owned(),
            status: query.status,
            kind: query.kind,
            customer: query.customer,
            starting_after: query.starting_after,
            limit: parse_limit(query.limit.as_deref())?,
        },
    )
    .await?;
    Ok(Json(JobList {
        data: jobs.into_iter().map(JobOut::from).collect(),
        has_more,
    }))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/retry", operation_id = "jobs_retry", params(("id" = String, Path)),
    summary = "Retry a failed or canceled job",
    description = "Schedules the job again at once with its attempts counted afresh. A job that succeeded is not run twice (409 `invalid_job_transition`). Admin key.",
    responses((status = 200, description = "OK", body = JobOut),
        (status = 404, description = "No such job", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not failed or canceled (`invalid_job_transition`)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn retry_job(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<JobOut>> {
    let workspace = caller.require_admin()?;
    Ok(Json(retry(&state.engine, workspace, &id).await?.into()))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", operation_id = "jobs_cancel", params(("id" = String, Path)),
    summary = "Cancel a scheduled job",
    description = "The job will not run. Only a scheduled job can be canceled (409 `invalid_job_transition` otherwise). Admin key.",
    responses((status = 200, description = "OK", body = JobOut),
        (status = 404, description = "No such job", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not scheduled (`invalid_job_transition`)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn cancel_job(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<JobOut>> {
    let workspace = caller.require_admin()?;
    Ok(Json(cancel(&state.engine, workspace, &id).await?.into()))
}
