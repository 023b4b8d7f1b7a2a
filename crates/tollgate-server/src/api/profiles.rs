//! Billing profiles: what invoices say about the buyer, and how a customer is taxed.

use axum::Json;
use axum::extract::{Path, State};

use crate::api::body::JsonBody;
use crate::api::error::ApiResult;
use crate::app::invoices as app;
use crate::auth::Principal;
use crate::billing::profiles::{CustomerProfile, SellerProfile};
use crate::state::AppState;

/// Sets a customer's billing profile
///
/// Replaces the customer's billing profile: the legal name, address and tax ids printed as the
/// buyer on its invoices, and how it is taxed (`standard`, `exempt`, `reverse_charge`, and
/// optionally its own catalog tax rates). Applies to invoices built from now on; finalized
/// invoices keep what they were built with. See docs/INVOICES.md.
#[utoipa::path(put, path = "/v1/customers/{id}/billing_profile", operation_id = "customers_set_billing_profile",
    params(("id" = String, Path)), request_body = CustomerProfile,
    responses(
        (status = 200, description = "The stored profile", body = CustomerProfile),
        (status = 400, description = "A tax rate the catalog does not define (`unknown_tax_rate`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field too long or empty (`validation_failed`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn set(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    body: JsonBody<CustomerProfile>,
) -> ApiResult<Json<CustomerProfile>> {
    let workspace = caller.require_admin()?.to_owned();
    let JsonBody(profile) = body;
    let stored = app::set_customer_profile(
        &state.engine,
        app::SetCustomerProfile {
            workspace,
            customer,
            profile,
        },
    )
    .await?;
    Ok(Json(stored))
}

/// Gets a customer's billing profile
///
/// The customer's billing profile; a customer without one has the default (no legal name,
/// `standard` taxes).
#[utoipa::path(get, path = "/v1/customers/{id}/billing_profile", operation_id = "customers_get_billing_profile",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "OK", body = CustomerProfile),
        (status = 404, description = "No such customer", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
) -> ApiResult<Json<CustomerProfile>> {
    let workspace = caller.require_customer(&customer)?;
    Ok(Json(
        app::get_customer_profile(&state.engine, workspace, &customer).await?,
    ))
}

/// Sets the workspace's seller profile
///
/// Replaces the workspace's seller profile: the legal name, address and tax ids printed as the
/// seller on its invoices and credit notes, net terms (the due date), payment instructions (bank
/// details), the invoice numbering prefix (`LEX` gives `LEX-2026-000123`) and a footer.
/// Applies to invoices issued from now on; issued invoices keep what they were issued with.
#[utoipa::path(put, path = "/v1/billing_profile", operation_id = "workspace_set_billing_profile",
    request_body = SellerProfile,
    responses(
        (status = 200, description = "The stored profile", body = SellerProfile),
        (status = 422, description = "A field out of bounds (`validation_failed`, with `errors[]`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_seller(
    State(state): State<AppState>,
    caller: Principal,
    body: JsonBody<SellerProfile>,
) -> ApiResult<Json<SellerProfile>> {
    let workspace = caller.require_admin()?.to_owned();
    let JsonBody(profile) = body;
    Ok(Json(
        app::set_seller_profile(&state.engine, &workspace, profile).await?,
    ))
}

/// Gets the workspace's seller profile
///
/// The workspace's seller profile; 404 when none was set (invoices then show the workspace's
/// name as the seller).
#[utoipa::path(get, path = "/v1/billing_profile", operation_id = "workspace_get_billing_profile",
    responses(
        (status = 200, description = "OK", body = SellerProfile),
        (status = 404, description = "No seller profile yet", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_seller(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<Json<SellerProfile>> {
    let workspace = caller.require_admin()?;
    Ok(Json(
        app::get_seller_profile(&state.engine, workspace).await?,
    ))
}
