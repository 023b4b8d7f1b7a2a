//! `Idempotency-Key` on every mutating request, with Stripe's rules: the first request with a
//! key runs and its answer is kept for 24 hours; a retry with the same key and the same request
//! gets that answer again (`Idempotent-Replayed: true`) without running anything twice; the
//! same key with a different request is `422 idempotency_key_reused`; a retry while the first
//! still runs is `409 idempotency_key_in_use`. Answers of 5xx are not kept (the retry runs).
//!
//! Keys are scoped to the caller (its workspace, and the customer for a customer key), so two
//! callers never see each other's answers.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;

use crate::api::auth::presented_secret;
use crate::api::error::ApiError;
use crate::auth::Principal;
use crate::state::AppState;

/// How long an answer is kept for retries.
const KEEP_FOR: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);
/// The largest request and response bodies buffered (the API's own body limit is 2 MiB).
const MAX_BODY: usize = 16 << 20;

pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mutating = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let key = request
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::trim).map(str::to_owned));
    let key = match (mutating, key) {
        (false, _) | (_, None) => return next.run(request).await,
        (true, Some(Ok(k))) if !k.is_empty() && k.len() <= 255 => k,
        (true, Some(_)) => {
            return ApiError::bad_request(
                Code::InvalidIdempotencyKey,
                "`Idempotency-Key` must be 1 to 255 visible characters",
            )
            .into_response();
        }
    };
    // Unauthenticated requests run as they are: the handler answers 401.
    let Some(secret) = presented_secret(request.headers()).map(str::to_owned) else {
        return next.run(request).await;
    };
    let Ok(caller) = state.engine.authenticate(&secret).await else {
        return next.run(request).await;
    };
    let (workspace, scoped) = match &caller {
        Principal::Admin { workspace } => (workspace.clone(), format!("admin:{key}")),
        Principal::Customer {
            workspace,
            customer,
            ..
        } => (workspace.clone(), format!("customer:{customer}:{key}")),
    };
    let workspace = WorkspaceId::from(workspace);
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::BodyTooLarge,
            "the body is too large",
        )
        .into_response();
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b" ");
    hasher.update(parts.uri.to_string());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let request_hash = hex::encode(hasher.finalize());
    let store = state.engine.store();
    let now = state.engine.now();
    let expired_before = now.checked_sub(KEEP_FOR).unwrap_or(now);
    let claimed = store
        .claim_idempotency_key(&workspace, &scoped, &request_hash, now, expired_before)
        .await;
    match claimed {
        Err(e) => ApiError::from(e).into_response(),
        Ok(Some(stored)) if stored.request_hash != request_hash => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            Code::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different request; use a new key",
        )
        .into_response(),
        Ok(Some(stored)) => match (stored.status, stored.body) {
            (Some(status), Some(body)) => replay(status, body),
            _ => ApiError::conflict(
                Code::IdempotencyKeyInUse,
                "a request with this Idempotency-Key is still running; retry later",
            )
            .into_response(),
        },
        Ok(None) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let (parts, body) = response.into_parts();
            let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
            let kept = match std::str::from_utf8(&bytes) {
                Ok(text) if !parts.status.is_server_error() => {
                    let text = without_secrets(text);
                    store
                        .complete_idempotency_key(&workspace, &scoped, parts.status.as_u16(), &text)
                        .await
                }
                _ => store.release_idempotency_key(&workspace, &scoped).await,
            };
            if let Err(error) = kept {
                tracing::error!(%error, "an idempotency key could not be settled");
            }
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}

/// The answer as kept for replays: secrets (a new key's `secret`, anywhere in the JSON) are
/// shown once, in the first answer, and stored nowhere, so the kept copy goes without them.
fn without_secrets(text: &str) -> String {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("secret");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut value) if text.contains("\"secret\"") => {
            strip(&mut value);
            value.to_string()
        }
        _ => text.to_owned(),
    }
}

/// The stored answer, again.
fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
