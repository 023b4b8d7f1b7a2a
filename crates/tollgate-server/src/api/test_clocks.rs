//! Test clocks: a frozen time that customers created on the clock follow, moved by hand, so
//! trials, periods and windows run without waiting.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::TestClockRecord;

use super::new_id;
use crate::api::error::{ApiError, ApiResult};
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestClockIn {
    /// RFC 3339.
    pub frozen_time: String,
    pub name: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceIn {
    /// The new time, RFC 3339; never earlier than the current one.
    pub frozen_time: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TestClockOut {
    pub id: String,
    pub name: Option<String>,
    #[schema(value_type = String)]
    pub frozen_time: Timestamp,
}

fn parse_time(text: &str) -> ApiResult<Timestamp> {
    text.parse().map_err(|e| {
        ApiError::bad_request(
            Code::InvalidTimestamp,
            format!("`frozen_time` {text:?} is not RFC 3339: {e}"),
        )
    })
}

#[utoipa::path(post, path = "/v1/test_clocks", operation_id = "test_clocks_create", request_body = TestClockIn, responses((status = 201, description = "Created", body = TestClockOut)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::JsonBody<TestClockIn>,
) -> ApiResult<(StatusCode, Json<TestClockOut>)> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(body) = body;
    let record = TestClockRecord {
        workspace: workspace.to_owned(),
        id: new_id("clock"),
        name: body.name,
        frozen_time: parse_time(&body.frozen_time)?,
        created_at: state.engine.now(),
    };
    state.engine.store().create_test_clock(&record).await?;
    state
        .engine
        .set_test_clock(workspace, &record.id, record.frozen_time);
    Ok((
        StatusCode::CREATED,
        Json(TestClockOut {
            id: record.id,
            name: record.name,
            frozen_time: record.frozen_time,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/test_clocks/{id}", operation_id = "test_clocks_get", params(("id" = String, Path)), responses((status = 200, description = "OK", body = TestClockOut)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TestClockOut>> {
    let workspace = caller.require_admin()?;
    let record = state
        .engine
        .store()
        .get_test_clock(&WorkspaceId::from(workspace), &id)
        .await?
        .ok_or_else(|| ApiError::not_found("test clock", &id))?;
    Ok(Json(TestClockOut {
        id: record.id,
        name: record.name,
        frozen_time: record.frozen_time,
    }))
}

#[utoipa::path(post, path = "/v1/test_clocks/{id}/advance", operation_id = "test_clocks_advance", params(("id" = String, Path)), request_body = AdvanceIn,
    summary = "Advance a test clock",
    description = "Moves the clock forward and runs the jobs of its customers due by the new time (renewals, trial ends, reminders) in due order, each at its due time; answers once they have run.",
    responses((status = 200, description = "OK", body = TestClockOut), (status = 400, description = "Bad input (problem+json with a stable code)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn advance(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    body: crate::api::body::JsonBody<AdvanceIn>,
) -> ApiResult<Json<TestClockOut>> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(body) = body;
    let store = state.engine.store();
    let record = store
        .get_test_clock(&WorkspaceId::from(workspace), &id)
        .await?
        .ok_or_else(|| ApiError::not_found("test clock", &id))?;
    let to = parse_time(&body.frozen_time)?;
    if to < record.frozen_time {
        return Err(ApiError::bad_request(
            Code::ClockBackwards,
            "a test clock only moves forward",
        ));
    }
    // The jobs of the clock's customers due by `to` run first, in due order, each at its due
    // time; the answer comes once they have run (as Stripe's test clocks do).
    crate::jobs::advance_clock(&state.engine, workspace, &id, to).await?;
    Ok(Json(TestClockOut {
        id: record.id,
        name: record.name,
        frozen_time: to,
    }))
}
