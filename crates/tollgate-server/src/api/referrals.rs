//! `GET /v1/customers/{id}/referral`: the customer's referral code (made on first asking), who
//! referred it, and whom it referred. The HTTP face of `app::referrals`.

use axum::Json;
use axum::extract::{Path, State};
use jiff::Timestamp;
use serde::Serialize;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use crate::api::error::ApiResult;
use crate::app::referrals::referral_code;
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReferredOut {
    pub customer: String,
    pub created_at: Timestamp,
    /// When this customer became paying and the referrer was rewarded; `null` until then.
    pub rewarded_at: Option<Timestamp>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReferralOut {
    /// The code to share: a customer who signs up with it (`POST /v1/signups`,
    /// `referral_code`) gets the catalog's referral coupon.
    pub code: String,
    /// The customer whose code this customer signed up with.
    pub referred_by: Option<String>,
    /// The customers who signed up with this customer's code, oldest first.
    pub referred: Vec<ReferredOut>,
}

/// The customer's referral code and referrals (a customer key reads its own).
#[utoipa::path(get, path = "/v1/customers/{id}/referral", operation_id = "customers_referral", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = ReferralOut),
        (status = 404, description = "No such customer", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ReferralOut>> {
    let workspace = caller.require_customer(&id)?;
    let code = referral_code(&state.engine, workspace, &id).await?;
    let store = state.engine.store();
    let ws = WorkspaceId::from(workspace);
    let customer = CustomerId::from(&id);
    let referred_by = store.referral_of(&ws, &customer).await?.map(|r| r.referrer);
    let referred = store
        .referrals_by(&ws, &customer)
        .await?
        .into_iter()
        .map(|r| ReferredOut {
            customer: r.referred,
            created_at: r.created_at,
            rewarded_at: r.rewarded_at,
        })
        .collect();
    Ok(Json(ReferralOut {
        code,
        referred_by,
        referred,
    }))
}
