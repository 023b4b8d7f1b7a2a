//! `GET /v1/domain_events`: the outbox as operators and tests read it.

use axum::Json;
use axum::extract::{Query, State};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;
use tollgate_store::outbox::OutboxEvent;

use crate::api::error::{ApiError, ApiResult};
use crate::app::outbox::{ListDomainEvents, list};
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct DomainEventsQuery {
    /// Only events of this type (`subscription.trial_will_end`).
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Only events about this customer.
    pub customer: Option<String>,
    /// The id of the last event of the previous page.
    pub starting_after: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DomainEventOut {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub customer: Option<String>,
    /// On the customer's clock (its test clock's time, if it has one).
    #[schema(value_type = String)]
    pub occurred_at: Timestamp,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// When it was written (wall clock).
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub delivered_at: Option<Timestamp>,
}

impl From<OutboxEvent> for DomainEventOut {
    fn from(e: OutboxEvent) -> Self {
        DomainEventOut {
            id: e.id,
            event_type: e.event_type,
            customer: e.customer,
            occurred_at: e.occurred_at,
            data: e.data,
            created_at: e.created_at,
            delivered_at: e.delivered_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DomainEventList {
    pub data: Vec<DomainEventOut>,
    /// More events follow the last one: ask again with `starting_after` set to its id.
    pub has_more: bool,
}

/// `limit` as a number, or a problem+json answer.
pub fn parse_limit(limit: Option<&str>) -> ApiResult<Option<i64>> {
    limit
        .map(|text| {
            text.parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    Code::InvalidLimit,
                    format!("`limit` {text:?} is not a whole number"),
                )
            })
        })
        .transpose()
}

#[utoipa::path(get, path = "/v1/domain_events", operation_id = "domain_events_list", params(DomainEventsQuery),
    summary = "List domain events (the outbox)",
    description = "Events written in the same transaction as the change they announce, oldest first. Admin key.",
    responses((status = 200, description = "OK", body = DomainEventList),
        (status = 400, description = "Bad `limit` (problem+json, `invalid_limit`)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Principal,
    Query(query): Query<DomainEventsQuery>,
) -> ApiResult<Json<DomainEventList>> {
    let workspace = caller.require_admin()?;
    let (events, has_more) = list(
        &state.engine,
        ListDomainEvents {
            workspace: workspace.to_owned(),
            event_type: query.event_type,
            customer: query.customer,
            starting_after: query.starting_after,
            limit: parse_limit(query.limit.as_deref())?,
        },
    )
    .await?;
    Ok(Json(DomainEventList {
        data: events.into_iter().map(DomainEventOut::from).collect(),
        has_more,
    }))
}
