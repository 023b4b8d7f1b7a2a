//! The public pages' settings (docs/DASHBOARD.md, "Public pages"): the opt-in that shows a
//! workspace's pricing table and hosted signup, and its custom domains (Host routing).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_store::public::CustomDomainRecord;

use crate::api::body::JsonBody;
use crate::api::error::ApiResult;
use crate::app::public::{domains, settings};
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicPagesIn {
    /// Shows the pricing table (`/pricing/{workspace}`), its embed and the hosted signup.
    pub enabled: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PublicPagesOut {
    pub enabled: bool,
    /// The pricing page's path on this server (a custom domain serves it at `/pricing`).
    pub pricing_path: String,
    /// The framable table: paste `<iframe src="{this}">` into a page of your site.
    pub embed_path: String,
    pub signup_path: String,
    pub portal_sign_in_path: String,
}

fn pages_out(workspace: &str, enabled: bool) -> PublicPagesOut {
    let w = crate::api::web::urlencode(workspace);
    PublicPagesOut {
        enabled,
        pricing_path: format!("/pricing/{w}"),
        embed_path: format!("/pricing/{w}/embed"),
        signup_path: format!("/signup/{w}"),
        portal_sign_in_path: format!("/portal/signin/{w}"),
    }
}

/// Reads the public pages' setting
#[utoipa::path(get, path = "/v1/public_pages", operation_id = "public_pages_get",
    responses((status = 200, description = "The setting (off until turned on)", body = PublicPagesOut)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<Json<PublicPagesOut>> {
    let workspace = caller.require_admin()?;
    let enabled = settings::enabled(&state.engine, workspace).await?;
    Ok(Json(pages_out(workspace, enabled)))
}

/// Turns the public pages on or off
///
/// Off by default. On: anyone may see the latest catalog's plans and prices at the pricing
/// page and its embed, and sign up through the hosted form (a customer, its trial and its
/// first key), bounded per client and per workspace.
#[utoipa::path(put, path = "/v1/public_pages", operation_id = "public_pages_set", request_body = PublicPagesIn,
    responses((status = 200, description = "Stored", body = PublicPagesOut)))]
pub async fn put(
    State(state): State<AppState>,
    caller: Principal,
    body: JsonBody<PublicPagesIn>,
) -> ApiResult<Json<PublicPagesOut>> {
    let workspace = caller.require_admin()?;
    let JsonBody(input) = body;
    let stored = settings::set(&state.engine, workspace, input.enabled).await?;
    Ok(Json(pages_out(workspace, stored.enabled)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainIn {
    /// `billing.example.com`: a host you point at this server (DNS and TLS are yours).
    pub hostname: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DomainOut {
    pub hostname: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DomainList {
    pub data: Vec<DomainOut>,
}

fn domain_out(d: CustomDomainRecord) -> DomainOut {
    DomainOut {
        hostname: d.hostname,
        created_at: d.created_at,
    }
}

/// Adds a custom domain
///
/// Requests whose `Host` is this hostname are served this workspace's pricing page, signup and
/// customer portal at `/pricing`, `/signup` and `/portal` (no workspace in the path), with the
/// workspace's brand only.
#[utoipa::path(post, path = "/v1/domains", operation_id = "domains_create", request_body = DomainIn,
    responses(
        (status = 201, description = "Added", body = DomainOut),
        (status = 400, description = "Not a hostname (`invalid_hostname`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A workspace has this hostname (`already_exists`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_domain(
    State(state): State<AppState>,
    caller: Principal,
    body: JsonBody<DomainIn>,
) -> ApiResult<(StatusCode, Json<DomainOut>)> {
    let workspace = caller.require_admin()?;
    let JsonBody(input) = body;
    let added = domains::add(&state.engine, workspace, &input.hostname).await?;
    Ok((StatusCode::CREATED, Json(domain_out(added))))
}

/// Lists the custom domains
#[utoipa::path(get, path = "/v1/domains", operation_id = "domains_list",
    responses((status = 200, description = "By hostname", body = DomainList)))]
pub async fn list_domains(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<Json<DomainList>> {
    let workspace = caller.require_admin()?;
    let data = domains::list(&state.engine, workspace)
        .await?
        .into_iter()
        .map(domain_out)
        .collect();
    Ok(Json(DomainList { data }))
}

/// Removes a custom domain
#[utoipa::path(delete, path = "/v1/domains/{hostname}", operation_id = "domains_delete", params(("hostname" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "The workspace has no such domain", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_domain(
    State(state): State<AppState>,
    caller: Principal,
    Path(hostname): Path<String>,
) -> ApiResult<StatusCode> {
    let workspace = caller.require_admin()?;
    domains::remove(&state.engine, workspace, &hostname).await?;
    Ok(StatusCode::NO_CONTENT)
}
