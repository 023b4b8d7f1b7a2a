//! Webhook endpoints and their delivery log (docs/WEBHOOKS.md): thin handlers over
//! `app::webhooks`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::webhooks::{
    WebhookAttemptRecord, WebhookDeliveryRecord, WebhookEndpointRecord,
};

use crate::api::error::{ApiError, ApiResult};
use crate::app::webhooks::{self as uc, EndpointChanges, NewEndpoint};
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointIn {
    /// Where deliveries are POSTed: an absolute `http`/`https` URL.
    pub url: String,
    /// Event types to receive; empty or absent: every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Deliver each customer's events in order: a later event waits while an earlier one of the
    /// same customer is pending (retrying). Default false.
    pub ordered: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// An empty string clears it.
    pub description: Option<String>,
    /// Enabling a disabled endpoint clears its failure record; its waiting deliveries resume.
    pub enabled: Option<bool>,
    pub ordered: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// How long the old secret keeps signing, in seconds (default: the server's overlap, 24 h).
    pub overlap_seconds: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    /// RFC 3339: every delivery whose event occurred at or after it is sent again.
    pub since: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointOut {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub ordered: bool,
    /// Why Tollgate disabled it (after failing for days).
    pub disabled_reason: Option<String>,
    #[schema(value_type = Option<String>)]
    pub failing_since: Option<Timestamp>,
    /// The signing secret: only in the answers of create and rotate_secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Until when the previous secret still signs (after a rotation).
    #[schema(value_type = Option<String>)]
    pub previous_secret_until: Option<Timestamp>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

impl EndpointOut {
    fn of(r: WebhookEndpointRecord, with_secret: bool) -> Self {
        EndpointOut {
            id: r.id,
            url: r.url,
            event_types: r.event_types,
            description: r.description,
            enabled: r.enabled,
            ordered: r.ordered,
            disabled_reason: r.disabled_reason,
            failing_since: r.failing_since,
            secret: with_secret.then_some(r.secret),
            previous_secret_until: r.previous_secret_until,
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    pub attempt: i64,
    pub url: String,
    pub webhook_timestamp: i64,
    /// The body sent.
    pub request_body: String,
    pub response_status: Option<i64>,
    /// At most 1 KB of the answer.
    pub response_excerpt: Option<String>,
    pub duration_ms: i64,
    pub error: Option<String>,
    #[schema(value_type = String)]
    pub attempted_at: Timestamp,
}

impl From<WebhookAttemptRecord> for AttemptOut {
    fn from(a: WebhookAttemptRecord) -> Self {
        AttemptOut {
            attempt: a.attempt,
            url: a.url,
            webhook_timestamp: a.webhook_timestamp,
            request_body: a.request_body,
            response_status: a.response_status,
            response_excerpt: a.response_excerpt,
            duration_ms: a.duration_ms,
            error: a.error,
            attempted_at: a.attempted_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryOut {
    pub id: String,
    /// The outbox event: the `webhook-id` of every attempt.
    pub event: String,
    pub event_type: String,
    pub customer: Option<String>,
    /// `pending`, `succeeded` or `failed` (retries exhausted).
    pub status: String,
    pub attempts: i64,
    /// On the customer's clock (its test clock, if it has one).
    #[schema(value_type = String)]
    pub next_attempt_at: Timestamp,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// The log, oldest first (lines older than the retention are dropped).
    pub log: Vec<AttemptOut>,
}

fn out(d: WebhookDeliveryRecord, log: Vec<WebhookAttemptRecord>) -> DeliveryOut {
    DeliveryOut {
        id: d.id,
        event: d.event,
        event_type: d.event_type,
        customer: d.customer,
        status: d.status.as_str().to_owned(),
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        last_status: d.last_status,
        last_error: d.last_error,
        log: log.into_iter().map(Into::into).collect(),
    }
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Whether the workspace's endpoints may name private, loopback, link-local and
    /// unique-local addresses (the SSRF rule; false by default).
    pub allow_private_addresses: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReplayOut {
    /// Deliveries scheduled again.
    pub replayed: u64,
}

/// Register a webhook endpoint
///
/// Its signing secret (`whsec_...`) is in this answer only. URLs naming private, loopback,
/// link-local or unspecified addresses are refused unless the workspace is allowed them.
#[utoipa::path(post, path = "/v1/webhook_endpoints", operation_id = "webhook_endpoints_create", request_body = EndpointIn,
    responses((status = 201, description = "Created, with its secret", body = EndpointOut), (status = 400, description = "Bad URL or event type (problem+json with a stable code)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::JsonBody<EndpointIn>,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(body) = body;
    let input = NewEndpoint {
        url: body.url,
        event_types: body.event_types,
        description: body.description,
        enabled: body.enabled.unwrap_or(true),
        ordered: body.ordered.unwrap_or(false),
    };
    let record = uc::create(&state.engine, &state.notify, workspace, input).await?;
    Ok((StatusCode::CREATED, Json(EndpointOut::of(record, true))))
}

/// List webhook endpoints
///
/// Every endpoint of the workspace, without secrets.
#[utoipa::path(get, path = "/v1/webhook_endpoints", operation_id = "webhook_endpoints_list", responses((status = 200, description = "OK", body = Vec<EndpointOut>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<Json<Vec<EndpointOut>>> {
    let workspace = caller.require_admin()?;
    let all = state
        .engine
        .store()
        .list_webhook_endpoints(&WorkspaceId::from(workspace))
        .await?;
    Ok(Json(
        all.into_iter().map(|r| EndpointOut::of(r, false)).collect(),
    ))
}

/// Get a webhook endpoint
///
/// Without its secret.
#[utoipa::path(get, path = "/v1/webhook_endpoints/{id}", operation_id = "webhook_endpoints_get", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = EndpointOut), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointOut>> {
    let workspace = caller.require_admin()?;
    let record = state
        .engine
        .store()
        .get_webhook_endpoint(&WorkspaceId::from(workspace), &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint", &id))?;
    Ok(Json(EndpointOut::of(record, false)))
}

/// Change a webhook endpoint
///
/// URL, event types, description, enabled. Enabling a disabled endpoint resumes its deliveries.
#[utoipa::path(patch, path = "/v1/webhook_endpoints/{id}", operation_id = "webhook_endpoints_update", params(("id" = String, Path)), request_body = EndpointPatch,
    responses((status = 200, description = "OK", body = EndpointOut), (status = 400, description = "Bad URL or event type (problem+json with a stable code)", body = crate::api::error::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    body: crate::api::body::JsonBody<EndpointPatch>,
) -> ApiResult<Json<EndpointOut>> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(body) = body;
    let changes = EndpointChanges {
        url: body.url,
        event_types: body.event_types,
        description: body.description,
        enabled: body.enabled,
        ordered: body.ordered,
    };
    let record = uc::update(&state.engine, &state.notify, workspace, &id, changes).await?;
    Ok(Json(EndpointOut::of(record, false)))
}

/// Delete a webhook endpoint
///
/// With its deliveries and their log.
#[utoipa::path(delete, path = "/v1/webhook_endpoints/{id}", operation_id = "webhook_endpoints_delete", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let workspace = caller.require_admin()?;
    let deleted = state
        .engine
        .store()
        .delete_webhook_endpoint(&WorkspaceId::from(workspace), &id)
        .await?;
    if !deleted {
        return Err(ApiError::not_found("webhook endpoint", &id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate an endpoint's signing secret
///
/// The answer holds the new secret; the old one keeps signing beside it (two `v1,` signatures)
/// for the overlap.
#[utoipa::path(post, path = "/v1/webhook_endpoints/{id}/rotate_secret", operation_id = "webhook_endpoints_rotate_secret", params(("id" = String, Path)), request_body = RotateIn,
    responses((status = 200, description = "OK, with the new secret", body = EndpointOut), (status = 400, description = "Bad input (problem+json with a stable code)", body = crate::api::error::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    body: crate::api::body::JsonBody<RotateIn>,
) -> ApiResult<Json<EndpointOut>> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(body) = body;
    let overlap = body.overlap_seconds.map(jiff::SignedDuration::from_secs);
    let record = uc::rotate_secret(&state.engine, &state.notify, workspace, &id, overlap).await?;
    Ok(Json(EndpointOut::of(record, true)))
}

/// List an endpoint's deliveries
///
/// Oldest event first (at most 1000), each with its attempt log.
#[utoipa::path(get, path = "/v1/webhook_endpoints/{id}/deliveries", operation_id = "webhook_endpoints_deliveries", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = Vec<DeliveryOut>), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<DeliveryOut>>> {
    let workspace = caller.require_admin()?;
    let ws = WorkspaceId::from(workspace);
    let store = state.engine.store();
    store
        .get_webhook_endpoint(&ws, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint", &id))?;
    let mut all = Vec::new();
    for d in store.list_webhook_deliveries(&ws, &id, 1000).await? {
        let log = store.list_webhook_attempts(&ws, &d.id).await?;
        all.push(out(d, log));
    }
    Ok(Json(all))
}

/// Replay one delivery
///
/// Sent again at once with the same `webhook-id`, whatever its status.
#[utoipa::path(post, path = "/v1/webhook_endpoints/{id}/deliveries/{delivery}/replay", operation_id = "webhook_endpoints_replay_delivery", params(("id" = String, Path), ("delivery" = String, Path)),
    responses((status = 202, description = "Scheduled", body = ReplayOut), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn replay_delivery(
    State(state): State<AppState>,
    caller: Principal,
    Path((id, delivery)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<ReplayOut>)> {
    let workspace = caller.require_admin()?;
    uc::replay_one(&state.engine, workspace, &id, &delivery).await?;
    Ok((StatusCode::ACCEPTED, Json(ReplayOut { replayed: 1 })))
}

/// Replay every delivery since a time
///
/// Every delivery of the endpoint whose event occurred at or after `since` is sent again.
#[utoipa::path(post, path = "/v1/webhook_endpoints/{id}/replay", operation_id = "webhook_endpoints_replay", params(("id" = String, Path)), request_body = ReplayIn,
    responses((status = 202, description = "Scheduled", body = ReplayOut), (status = 400, description = "Bad input (problem+json with a stable code)", body = crate::api::error::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    body: crate::api::body::JsonBody<ReplayIn>,
) -> ApiResult<(StatusCode, Json<ReplayOut>)> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(body) = body;
    let since: Timestamp = body.since.parse().map_err(|e| {
        ApiError::bad_request(
            Code::InvalidTimestamp,
            format!("`since` {:?} is not RFC 3339: {e}", body.since),
        )
    })?;
    let replayed = uc::replay_since(&state.engine, workspace, &id, since).await?;
    Ok((StatusCode::ACCEPTED, Json(ReplayOut { replayed })))
}

/// Set a workspace's webhook settings
///
/// The server operator (the default workspace's admin key) allows or forbids the workspace's
/// endpoints private, loopback and link-local addresses (the SSRF rule, docs/WEBHOOKS.md).
#[utoipa::path(put, path = "/v1/workspaces/{id}/webhook_settings", operation_id = "workspaces_set_webhook_settings", params(("id" = String, Path)), request_body = WebhookSettings,
    responses((status = 200, description = "OK", body = WebhookSettings), (status = 403, description = "Not the default workspace's admin", body = crate::api::error::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn set_settings(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    body: crate::api::body::JsonBody<WebhookSettings>,
) -> ApiResult<Json<WebhookSettings>> {
    let admin = caller.require_admin()?;
    let crate::api::body::JsonBody(body) = body;
    uc::set_private_addresses_allowed(&state.engine, admin, &id, body.allow_private_addresses)
        .await?;
    Ok(Json(body))
}
