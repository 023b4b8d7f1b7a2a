//! `/v1/customers/{id}/subscriptions`: the HTTP face of `app::subscriptions`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use indexmap::IndexMap;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::error::ApiResult;
use crate::app::subscriptions as app;
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionIn {
    pub plan: String,
    /// Start with the plan's free trial; default: when the plan has one.
    pub trial: Option<bool>,
    /// Add-on quantities, e.g. `{"seat": 3}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub addons: IndexMap<String, u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionOut {
    pub id: String,
    pub customer: String,
    pub plan: String,
    pub catalog_version: i64,
    /// `trialing`, `active`, `past_due`, `paused`, `canceled` or `expired`.
    pub status: &'static str,
    #[schema(value_type = Object)]
    pub addons: serde_json::Value,
    #[schema(value_type = String)]
    pub started_at: Timestamp,
    #[schema(value_type = String)]
    pub current_period_start: Timestamp,
    #[schema(value_type = String)]
    pub current_period_end: Timestamp,
    #[schema(value_type = Option<String>)]
    pub trial_end: Option<Timestamp>,
    /// When it ends (canceled), or, for an `active` one, when it pauses (`pause` asked).
    #[schema(value_type = Option<String>)]
    pub ends_at: Option<Timestamp>,
    /// A downgrade waiting for the period end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub scheduled_at: Option<Timestamp>,
}

/// A subscription as answered (the signup answers one too).
pub fn subscription_out(view: app::SubscriptionView) -> SubscriptionOut {
    out(view)
}

fn out(view: app::SubscriptionView) -> SubscriptionOut {
    let sub = view.record;
    let (scheduled_plan, scheduled_at) = view.scheduled.unzip();
    SubscriptionOut {
        id: sub.id,
        customer: sub.customer,
        plan: sub.plan,
        catalog_version: sub.catalog_version,
        status: sub.status.as_str(),
        addons: sub.addons,
        started_at: sub.started_at,
        current_period_start: view.current_period.start,
        current_period_end: view.current_period.end,
        trial_end: sub.trial_end,
        ends_at: sub.ends_at,
        scheduled_plan,
        scheduled_at,
    }
}

/// Now on the customer's clock.
pub(crate) async fn customer_now(
    state: &AppState,
    workspace: &str,
    customer: &str,
) -> ApiResult<Timestamp> {
    Ok(app::customer_now(&state.engine, workspace, customer).await?)
}

#[utoipa::path(post, path = "/v1/customers/{id}/subscriptions", operation_id = "subscriptions_create", params(("id" = String, Path)), request_body = SubscriptionIn,
    responses((status = 201, description = "Created", body = SubscriptionOut), (status = 409, description = "Conflicts with the stored state", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    body: crate::api::body::JsonBody<SubscriptionIn>,
) -> ApiResult<(StatusCode, Json<SubscriptionOut>)> {
    let workspace = caller.require_admin()?.to_owned();
    let crate::api::body::JsonBody(body) = body;
    let view = app::create(
        &state.engine,
        app::CreateSubscription {
            workspace,
            customer,
            plan: body.plan,
            trial: body.trial,
            addons: body.addons,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(out(view))))
}

#[utoipa::path(get, path = "/v1/customers/{id}/subscriptions", operation_id = "subscriptions_list", params(("id" = String, Path), crate::api::page::PageQuery),
    responses((status = 200, description = "A page of the customer's subscriptions, newest first", body = crate::api::page::Page<SubscriptionOut>), (status = 400, description = "Bad `limit` or `starting_after`", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    crate::api::page::Params(page): crate::api::page::Params<crate::api::page::PageQuery>,
) -> ApiResult<Json<crate::api::page::Page<SubscriptionOut>>> {
    let workspace = caller.require_customer(&customer)?;
    super::customers::must_exist(&state, workspace, &customer).await?;
    let views = app::list(&state.engine, workspace, &customer).await?;
    let views = crate::api::page::page_of(views, |v| v.record.id.as_str(), &page)?;
    Ok(Json(views.map(out)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanChangeIn {
    pub plan: String,
    /// New add-on quantities; default: keep the current ones.
    #[schema(value_type = Option<Object>)]
    pub addons: Option<IndexMap<String, u32>>,
    /// Apply a downgrade at once instead of at the end of the current period.
    #[serde(default)]
    pub immediately: bool,
}

/// Moves the subscription to another plan of the latest catalog: an upgrade at once (with
/// prorations, in one transaction), a downgrade at the period end unless `immediately`.
#[utoipa::path(post, path = "/v1/customers/{id}/subscriptions/{sub}/change", operation_id = "subscriptions_change_plan", params(("id" = String, Path), ("sub" = String, Path)),
    request_body = PlanChangeIn, responses((status = 200, description = "OK", body = SubscriptionOut)))]
pub async fn change_plan(
    State(state): State<AppState>,
    caller: Principal,
    Path((customer, id)): Path<(String, String)>,
    body: crate::api::body::JsonBody<PlanChangeIn>,
) -> ApiResult<Json<SubscriptionOut>> {
    let workspace = caller.require_admin()?.to_owned();
    let crate::api::body::JsonBody(body) = body;
    let view = app::change_plan(
        &state.engine,
        app::ChangePlan {
            workspace,
            customer,
            subscription: id,
            plan: body.plan,
            addons: body.addons,
            immediately: body.immediately,
        },
    )
    .await?;
    Ok(Json(out(view)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelIn {
    /// End at once instead of at the end of the current period. At once, the catalog's
    /// `policies.refund_window_days` refunds each invoice paid inside the window by a credit note.
    #[serde(default)]
    pub immediately: bool,
}

#[utoipa::path(post, path = "/v1/customers/{id}/subscriptions/{sub}/cancel", operation_id = "subscriptions_cancel", params(("id" = String, Path), ("sub" = String, Path)),
    request_body = CancelIn, responses((status = 200, description = "OK", body = SubscriptionOut)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Principal,
    Path((customer, id)): Path<(String, String)>,
    body: crate::api::body::OptionalJsonBody<CancelIn>,
) -> ApiResult<Json<SubscriptionOut>> {
    let workspace = caller.require_admin()?.to_owned();
    let view = app::cancel(
        &state.engine,
        app::Cancel {
            workspace,
            customer,
            subscription: id,
            immediately: body.0.is_some_and(|b| b.immediately),
        },
    )
    .await?;
    Ok(Json(out(view)))
}

/// Pauses the subscription at the end of its current period (docs/LIFECYCLE.md).
#[utoipa::path(post, path = "/v1/customers/{id}/subscriptions/{sub}/pause", operation_id = "subscriptions_pause", params(("id" = String, Path), ("sub" = String, Path)),
    description = "The pause takes effect at the end of the current period, which is billed whole; from then on the subscription is `paused`: no invoices, and checks are denied with `subscription_paused`. Until then `ends_at` says when it pauses.",
    responses((status = 200, description = "OK", body = SubscriptionOut),
        (status = 404, description = "No such subscription", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Only an active subscription pauses (`invalid_subscription_transition`)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn pause(
    State(state): State<AppState>,
    caller: Principal,
    Path((customer, id)): Path<(String, String)>,
) -> ApiResult<Json<SubscriptionOut>> {
    let workspace = caller.require_admin()?.to_owned();
    let view = app::pause(
        &state.engine,
        app::PauseOrResume {
            workspace,
            customer,
            subscription: id,
        },
    )
    .await?;
    Ok(Json(out(view)))
}

/// Resumes a paused subscription from now, or withdraws a pause not yet in effect.
#[utoipa::path(post, path = "/v1/customers/{id}/subscriptions/{sub}/resume", operation_id = "subscriptions_resume", params(("id" = String, Path), ("sub" = String, Path)),
    description = "A paused subscription restarts its billing from now as a new start would (its periods count from now; the opening invoice is billed at once). One still waiting for its pause just keeps running.",
    responses((status = 200, description = "OK", body = SubscriptionOut),
        (status = 404, description = "No such subscription", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Neither paused nor pausing (`invalid_subscription_transition`)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn resume(
    State(state): State<AppState>,
    caller: Principal,
    Path((customer, id)): Path<(String, String)>,
) -> ApiResult<Json<SubscriptionOut>> {
    let workspace = caller.require_admin()?.to_owned();
    let view = app::resume(
        &state.engine,
        app::PauseOrResume {
            workspace,
            customer,
            subscription: id,
        },
    )
    .await?;
    Ok(Json(out(view)))
}
