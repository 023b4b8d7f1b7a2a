//! `POST /v1/customers/{id}/portal_sessions`: the operator's app gets a single-use URL that opens
//! the customer portal for one customer (like Stripe's billing portal sessions).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use jiff::Timestamp;
use serde::Serialize;

use crate::api::error::ApiResult;
use crate::app::users::portal as app;
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct PortalSessionOut {
    /// Opens the portal once, before `expires_at`; send the customer there.
    pub url: String,
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
}

/// Creates a portal session
///
/// A single-use link to the customer portal for this customer, valid 15 minutes; opening it
/// starts a portal session of one hour in a cookie. The URL is on the host the request was sent
/// to (a white-label partner's own domain keeps its own host).
#[utoipa::path(post, path = "/v1/customers/{id}/portal_sessions", operation_id = "customers_portal_session", params(("id" = String, Path)),
    responses(
        (status = 201, description = "Created", body = PortalSessionOut),
        (status = 404, description = "No such customer", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    Path(customer): Path<String>,
) -> ApiResult<(StatusCode, Json<PortalSessionOut>)> {
    let workspace = caller.require_admin()?;
    let link = app::create_link(&state.engine, workspace, &customer).await?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    Ok((
        StatusCode::CREATED,
        Json(PortalSessionOut {
            url: format!("{scheme}://{host}/portal/enter/{}", link.token),
            expires_at: link.expires_at,
        }),
    ))
}
