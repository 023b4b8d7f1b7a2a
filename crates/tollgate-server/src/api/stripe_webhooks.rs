//! `POST /v1/stripe/webhooks/{workspace}`: Stripe's events for a workspace. No API key: the
//! `Stripe-Signature` header, checked against the workspace's webhook secret, is the proof.
//! A bad or stale signature is answered 400 (`invalid_webhook_signature`), so Stripe shows the
//! failure; an event id seen before is answered 200 and changes nothing.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use bytes::Bytes;

use crate::api::error::{ApiResult, Problem};
use crate::app::payments as app;
use crate::state::AppState;

/// Receive a Stripe webhook event
#[utoipa::path(post, path = "/v1/stripe/webhooks/{workspace}", operation_id = "stripe_webhook", params(("workspace" = String, Path)),
    security(()), request_body(content = String, content_type = "application/json", description = "The Stripe event, signed"),
    responses((status = 200, description = "Handled, a duplicate, or ignored", body = app::WebhookOutcome),
        (status = 400, description = "Bad or stale signature (`invalid_webhook_signature`), or not an event", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No webhook secret for this workspace (`payment_provider_missing`)", body = Problem, content_type = "application/problem+json")))]
pub async fn receive(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<app::WebhookOutcome>> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let outcome = app::handle_stripe_webhook(
        &state.engine,
        app::StripeWebhook {
            workspace,
            payload: body.to_vec(),
            signature,
        },
    )
    .await?;
    Ok(Json(outcome))
}
