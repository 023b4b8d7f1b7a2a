//! `POST /v1/signups`: self-serve signup in one call, the HTTP face of `app::customers::signup`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;

use super::{new_id, valid_id};
use crate::api::customers::CustomerOut;
use crate::api::error::{ApiError, ApiResult};
use crate::api::keys::{KeyOut, key_out};
use crate::api::subscriptions::{SubscriptionOut, subscription_out};
use crate::app::customers::profile::{Address, TaxId};
use crate::app::customers::{Signup, signup as run_signup};
use crate::app::subscriptions::view;
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupIn {
    /// The plan to subscribe to, from the latest catalog; its free trial starts when it has one.
    pub plan: String,
    /// Your id for the customer; generated (`cus_...`) if absent.
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub address: Option<Address>,
    #[serde(default)]
    pub tax_ids: Vec<TaxId>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub has_payment_method: bool,
    /// A test clock the customer follows instead of the wall clock.
    pub test_clock: Option<String>,
    /// A name for the first API key.
    pub key_name: Option<String>,
    /// The referral code of the customer who referred this one (`GET
    /// /v1/customers/{id}/referral_code`): the catalog's referral coupon is applied at once.
    pub referral_code: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SignupOut {
    pub customer: CustomerOut,
    pub subscription: SubscriptionOut,
    /// The first API key; its `secret` is in this answer only (a replay under the same
    /// `Idempotency-Key` answers the key without it).
    pub key: KeyOut,
}

/// Signs a customer up: customer, subscription (trial when the plan has one) and first API key.
#[utoipa::path(post, path = "/v1/signups", operation_id = "signups_create", request_body = SignupIn,
    description = "One store transaction makes the customer, its subscription to `plan` (trialing when the plan has a trial, else active) and its first API key. The key's secret is shown in this answer only and stored as a hash.",
    responses((status = 201, description = "Signed up", body = SignupOut),
        (status = 400, description = "A field is invalid (`invalid_id`, `unknown_plan`, `invalid_email`, `unknown_referral_code`, `no_referral_program`, ...)", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The test clock does not exist", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The customer id is taken (`already_exists`), or no catalog is applied (`no_catalog`)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::JsonBody<SignupIn>,
) -> ApiResult<(StatusCode, Json<SignupOut>)> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(body) = body;
    let id = body.id.unwrap_or_else(|| new_id("cus"));
    if !valid_id(&id) {
        return Err(ApiError::bad_request(
            Code::InvalidId,
            format!("customer id {id:?}: use 1-128 letters, digits, `_-.:`"),
        ));
    }
    let input = Signup {
        workspace: workspace.to_owned(),
        customer: id,
        name: body.name,
        email: body.email,
        address: body.address,
        tax_ids: body.tax_ids,
        metadata: body.metadata.unwrap_or_default(),
        has_payment_method: body.has_payment_method,
        test_clock: body.test_clock,
        plan: body.plan,
        key_name: body.key_name,
        referral_code: body.referral_code,
    };
    let done = run_signup(&state.engine, input).await?;
    let now = done.customer.created_at;
    let subscription = subscription_out(view(done.subscription, &done.catalog, now));
    Ok((
        StatusCode::CREATED,
        Json(SignupOut {
            customer: done.customer.into(),
            subscription,
            key: key_out(done.key.record, Some(done.key.secret)),
        }),
    ))
}
