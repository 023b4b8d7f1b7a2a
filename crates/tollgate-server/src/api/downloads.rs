//! Signed download links for one-time products (`docs/TRUST.md`, "Download links"): issued for
//! a paid purchase of a product that grants `download`, opened without an API key (the link is
//! the credential).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Serialize;

use crate::api::error::{ApiResult, Problem};
use crate::app::downloads as app;
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct DownloadLinkOut {
    /// The link, relative to this server: `/v1/downloads/{token}`. Whoever holds it can use it
    /// until `expires_at`.
    pub url: String,
    pub token: String,
    pub customer: String,
    pub product: String,
    /// The paid invoice of the purchase.
    pub invoice: String,
    /// The link works before this instant (the customer's clock).
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
}

/// Issue a download link.
///
/// For a product whose catalog entry `grants: [download]` and that the customer bought and
/// paid for; valid for the catalog's `policies.download_link_ttl` (24 hours by default).
#[utoipa::path(post, path = "/v1/customers/{id}/downloads/{product}", operation_id = "downloads_issue",
    params(("id" = String, Path), ("product" = String, Path)),
    responses((status = 201, description = "The link", body = DownloadLinkOut),
        (status = 404, description = "No such customer, or product in the catalog (`unknown_product`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The product grants no download (`not_downloadable`), the customer has not bought it (`not_purchased`) or not paid for it (`purchase_not_paid`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No master key configured (`master_key_missing`)", body = Problem, content_type = "application/problem+json")))]
pub async fn issue(
    State(state): State<AppState>,
    caller: Principal,
    Path((customer, product)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<DownloadLinkOut>)> {
    let workspace = caller.require_customer(&customer)?;
    super::customers::must_exist(&state, workspace, &customer).await?;
    let link = app::issue(
        &state.engine,
        app::IssueLink {
            workspace: workspace.to_owned(),
            customer,
            product,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(DownloadLinkOut {
            url: format!("/v1/downloads/{}", link.token),
            token: link.token,
            customer: link.customer,
            product: link.product,
            invoice: link.invoice,
            expires_at: link.expires_at,
        }),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DownloadOut {
    pub customer: String,
    pub product: String,
    /// The product's name in the catalog.
    pub name: Option<String>,
    pub invoice: String,
    /// What the purchase grants.
    pub grants: Vec<String>,
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
}

/// Open a download link.
///
/// No API key: the signed link is the credential. A valid link redirects (302) to the
/// product's `download_url` when the catalog gives one, else answers what it grants. An
/// altered link is refused (403 `invalid_download_link`), so is one whose purchase was voided;
/// an expired one answers 410 `download_link_expired`.
#[utoipa::path(get, path = "/v1/downloads/{token}", operation_id = "downloads_open",
    params(("token" = String, Path)), security(()),
    responses((status = 200, description = "Valid: what it grants", body = DownloadOut),
        (status = 302, description = "Valid: to the product's `download_url`"),
        (status = 403, description = "Altered, malformed, or its purchase is no longer paid (`invalid_download_link`)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`download_link_expired`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No master key configured (`master_key_missing`)", body = Problem, content_type = "application/problem+json")))]
pub async fn open(State(state): State<AppState>, Path(token): Path<String>) -> ApiResult<Response> {
    let opened = app::open(&state.engine, &token).await?;
    if let Some(url) = &opened.download_url
        && let Ok(location) = HeaderValue::from_str(url)
    {
        return Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response());
    }
    Ok(Json(DownloadOut {
        customer: opened.customer,
        product: opened.product,
        name: opened.name,
        invoice: opened.invoice,
        grants: vec![app::DOWNLOAD.to_owned()],
        expires_at: opened.expires_at,
    })
    .into_response())
}
