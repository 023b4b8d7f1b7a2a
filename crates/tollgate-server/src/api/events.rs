//! Usage events in batches: each accepted, counted as a duplicate, or rejected on its own.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tollgate_core::code::Code;

use crate::api::error::{ApiError, ApiResult};
use crate::auth::Principal;
use crate::engine::{EventIn, IngestReport};
use crate::state::AppState;

/// Largest batch accepted in one request.
pub const MAX_BATCH: usize = 10_000;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EventsIn {
    pub events: Vec<EventIn>,
}

/// Ingests a batch. `200` when every event was accepted or a duplicate, `207` when some were
/// rejected (the others are stored all the same); after either, accepted events are durable.
#[utoipa::path(post, path = "/v1/events", operation_id = "events_ingest", request_body = EventsIn,
    responses((status = 200, description = "OK", body = IngestReport), (status = 207, description = "Some items were rejected; the others are stored", body = IngestReport), (status = 400, description = "Bad input (problem+json with a stable code)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn ingest(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::JsonBody<EventsIn>,
) -> ApiResult<(StatusCode, Json<IngestReport>)> {
    let crate::api::body::JsonBody(body) = body;
    if body.events.len() > MAX_BATCH {
        return Err(ApiError::bad_request(
            Code::BatchTooLarge,
            format!("send at most {MAX_BATCH} events per request"),
        ));
    }
    let report = state.engine.ingest(&caller, body.events).await?;
    let status = if report.rejected > 0 {
        StatusCode::MULTI_STATUS
    } else {
        StatusCode::OK
    };
    Ok((status, Json(report)))
}
