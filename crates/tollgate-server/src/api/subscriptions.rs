//! Subscriptions: start one (with or without a trial), change its plan, cancel it.
//!
//! A subscription is pinned to the catalog version it was created on; a plan change moves it to
//! the latest version. Every change is pushed into the engine at once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use indexmap::IndexMap;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tollgate_core::catalog::Interval;
use tollgate_core::period::Period;
use tollgate_store::{SubscriptionRecord, SubscriptionStatus};

use super::new_id;
use crate::api::error::{ApiError, ApiResult};
use crate::auth::Principal;
use crate::engine::CompiledCatalog;
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
    /// `trialing`, `active` or `canceled`.
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
    #[schema(value_type = Option<String>)]
    pub ends_at: Option<Timestamp>,
    /// A downgrade waiting for the period end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub scheduled_at: Option<Timestamp>,
}

fn out(sub: SubscriptionRecord, catalog: &CompiledCatalog, now: Timestamp) -> SubscriptionOut {
    let interval = catalog
        .catalog
        .plans
        .get(&sub.plan)
        .map_or(Interval::Month, |p| p.interval());
    let trial = sub.trial_end.map(|end| (sub.started_at, end));
    let period =
        tollgate_core::period::subscription_period(sub.billing_anchor, interval, trial, now);
    SubscriptionOut {
        id: sub.id,
        customer: sub.customer,
        plan: sub.plan,
        catalog_version: sub.catalog_version,
        status: sub.status.as_str(),
        addons: sub.addons,
        started_at: sub.started_at,
        current_period_start: period.start,
        current_period_end: period.end,
        trial_end: sub.trial_end,
        ends_at: sub.ends_at,
        scheduled_plan: None,
        scheduled_at: None,
    }
}

pub(crate) async fn customer_now(
    state: &AppState,
    workspace: &str,
    customer: &str,
) -> ApiResult<Timestamp> {
    let record = state
        .engine
        .store()
        .get_customer(workspace, customer)
        .await?
        .ok_or_else(|| ApiError::not_found("customer", customer))?;
    Ok(state
        .engine
        .now_for(workspace, record.test_clock.as_deref())
        .await?)
}

async fn latest(state: &AppState, workspace: &str) -> ApiResult<std::sync::Arc<CompiledCatalog>> {
    state
        .engine
        .latest_catalog(workspace)
        .await?
        .ok_or_else(|| {
            ApiError::conflict("no_catalog", "apply a catalog before subscribing customers")
        })
}

fn check_plan_and_addons(
    catalog: &CompiledCatalog,
    plan: &str,
    addons: &IndexMap<String, u32>,
) -> ApiResult<()> {
    if !catalog.catalog.plans.contains_key(plan) {
        return Err(ApiError::bad_request(
            "unknown_plan",
            format!(
                "plan {plan:?} is not in catalog version {}",
                catalog.version
            ),
        ));
    }
    if let Some(bad) = addons
        .keys()
        .find(|a| !catalog.catalog.addons.contains_key(*a))
    {
        return Err(ApiError::bad_request(
            "unknown_addon",
            format!("add-on {bad:?} is not in the catalog"),
        ));
    }
    Ok(())
}

/// Monthly plans bill calendar months (anchor: the 1st of the start month, UTC); yearly plans
/// bill years from the start.
fn billing_anchor(interval: Interval, start: Timestamp) -> Timestamp {
    match interval {
        Interval::Month => Period::calendar_month(start).start,
        Interval::Year => start,
    }
}

fn live(sub: &SubscriptionRecord, now: Timestamp) -> bool {
    sub.status != SubscriptionStatus::Canceled || sub.ends_at.is_some_and(|e| e > now)
}

#[utoipa::path(post, path = "/v1/customers/{id}/subscriptions", params(("id" = String, Path)), request_body = SubscriptionIn,
    responses((status = 201, body = SubscriptionOut), (status = 409, body = crate::api::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    body: crate::api::body::JsonBody<SubscriptionIn>,
) -> ApiResult<(StatusCode, Json<SubscriptionOut>)> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(body) = body;
    let now = customer_now(&state, workspace, &customer).await?;
    let catalog = latest(&state, workspace).await?;
    check_plan_and_addons(&catalog, &body.plan, &body.addons)?;
    let store = state.engine.store();
    if store
        .list_subscriptions(workspace, &customer)
        .await?
        .iter()
        .any(|s| live(s, now))
    {
        return Err(ApiError::conflict(
            "subscription_exists",
            "the customer already has a live subscription; change its plan instead",
        ));
    }
    let plan = &catalog.catalog.plans[&body.plan];
    let trial_days = match (body.trial, plan.trial_days) {
        (Some(true), None) => {
            return Err(ApiError::bad_request(
                "no_trial",
                format!("plan {:?} has no trial", body.plan),
            ));
        }
        (Some(false), _) | (None, None) => None,
        (_, Some(days)) => Some(days),
    };
    let trial_end = trial_days.map(|d| now + SignedDuration::from_hours(24 * i64::from(d)));
    let record = SubscriptionRecord {
        workspace: workspace.to_owned(),
        id: new_id("sub"),
        customer: customer.clone(),
        plan: body.plan.clone(),
        catalog_version: catalog.version,
        status: if trial_end.is_some() {
            SubscriptionStatus::Trialing
        } else {
            SubscriptionStatus::Active
        },
        addons: serde_json::to_value(&body.addons).map_err(ApiError::internal)?,
        started_at: now,
        billing_anchor: billing_anchor(plan.interval(), now),
        trial_end,
        canceled_at: None,
        ends_at: None,
    };
    store.create_subscription(&record).await?;
    state.engine.refresh_customer(workspace, &customer).await?;
    Ok((StatusCode::CREATED, Json(out(record, &catalog, now))))
}

#[utoipa::path(get, path = "/v1/customers/{id}/subscriptions", params(("id" = String, Path)),
    responses((status = 200, body = Vec<SubscriptionOut>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
) -> ApiResult<Json<Vec<SubscriptionOut>>> {
    let workspace = caller.require_customer(&customer)?;
    super::customers::must_exist(&state, workspace, &customer).await?;
    let now = customer_now(&state, workspace, &customer).await?;
    let mut result = Vec::new();
    for sub in state
        .engine
        .store()
        .list_subscriptions(workspace, &customer)
        .await?
    {
        let catalog = state.engine.catalog(workspace, sub.catalog_version).await?;
        let scheduled = state
            .engine
            .store()
            .scheduled_change(workspace, &sub.id)
            .await?;
        let mut answer = out(sub, &catalog, now);
        if let Some(change) = scheduled {
            answer.scheduled_plan = Some(change.plan);
            answer.scheduled_at = Some(change.effective_at);
        }
        result.push(answer);
    }
    Ok(Json(result))
}

async fn owned_subscription(
    state: &AppState,
    workspace: &str,
    customer: &str,
    id: &str,
) -> ApiResult<SubscriptionRecord> {
    state
        .engine
        .store()
        .get_subscription(workspace, id)
        .await?
        .filter(|s| s.customer == customer)
        .ok_or_else(|| ApiError::not_found("subscription", id))
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

/// Moves the subscription to another plan of the latest catalog, at once.
#[utoipa::path(post, path = "/v1/customers/{id}/subscriptions/{sub}/change", params(("id" = String, Path), ("sub" = String, Path)),
    request_body = PlanChangeIn, responses((status = 200, body = SubscriptionOut)))]
pub async fn change_plan(
    State(state): State<AppState>,
    caller: Principal,
    Path((customer, id)): Path<(String, String)>,
    body: crate::api::body::JsonBody<PlanChangeIn>,
) -> ApiResult<Json<SubscriptionOut>> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(body) = body;
    let now = customer_now(&state, workspace, &customer).await?;
    let mut sub = owned_subscription(&state, workspace, &customer, &id).await?;
    if !live(&sub, now) {
        return Err(ApiError::conflict(
            "subscription_ended",
            "the subscription has ended",
        ));
    }
    let catalog = latest(&state, workspace).await?;
    let addons = body
        .addons
        .unwrap_or_else(|| serde_json::from_value(sub.addons.clone()).unwrap_or_default());
    check_plan_and_addons(&catalog, &body.plan, &addons)?;
    if let Some(effective_at) = downgrade_at(&state, &sub, &catalog, &body.plan, now)
        .await?
        .filter(|_| !body.immediately)
    {
        state
            .engine
            .store()
            .schedule_change(&tollgate_store::billing::ScheduledChangeRecord {
                workspace: workspace.to_owned(),
                id: new_id("sch"),
                subscription: sub.id.clone(),
                customer: customer.clone(),
                plan: body.plan.clone(),
                addons: serde_json::to_value(&addons).map_err(ApiError::internal)?,
                effective_at,
                created_at: now,
                applied_at: None,
            })
            .await?;
        let mut answer = out(sub, &catalog, now);
        answer.scheduled_plan = Some(body.plan);
        answer.scheduled_at = Some(effective_at);
        return Ok(Json(answer));
    }
    let prorations = prorations(&state, &sub, &catalog, &body.plan, &addons, now).await?;
    let new_interval = catalog.catalog.plans[&body.plan].interval();
    let old_interval = state
        .engine
        .catalog(workspace, sub.catalog_version)
        .await?
        .catalog
        .plans
        .get(&sub.plan)
        .map(|p| p.interval());
    if old_interval != Some(new_interval) {
        sub.billing_anchor = billing_anchor(new_interval, now);
    }
    sub.plan = body.plan;
    sub.catalog_version = catalog.version;
    sub.addons = serde_json::to_value(&addons).map_err(ApiError::internal)?;
    let store = state.engine.store();
    store.update_subscription(&sub).await?;
    for charge in prorations {
        store
            .add_pending_charge(&tollgate_store::billing::PendingChargeRecord {
                workspace: workspace.to_owned(),
                id: new_id("pc"),
                customer: customer.clone(),
                subscription: Some(sub.id.clone()),
                charge: serde_json::to_value(&charge).map_err(ApiError::internal)?,
                created_at: now,
                invoice: None,
            })
            .await?;
    }
    state.engine.refresh_customer(workspace, &customer).await?;
    Ok(Json(out(sub, &catalog, now)))
}

/// When a change to `new_plan` is a downgrade (a lower monthly base on the same interval) of a
/// paid subscription: the end of the current period, when it takes effect.
async fn downgrade_at(
    state: &AppState,
    sub: &SubscriptionRecord,
    catalog: &CompiledCatalog,
    new_plan: &str,
    now: Timestamp,
) -> ApiResult<Option<Timestamp>> {
    let old_catalog = state
        .engine
        .catalog(&sub.workspace, sub.catalog_version)
        .await?;
    let (Some(old), Some(new)) = (
        old_catalog.catalog.plans.get(&sub.plan),
        catalog.catalog.plans.get(new_plan),
    ) else {
        return Ok(None);
    };
    let terms = crate::billing::invoices::terms(sub, &old_catalog.catalog);
    let paid = terms.activation() <= now;
    let downgrade = new.monthly_base() < old.monthly_base() && new.interval() == old.interval();
    Ok((paid && downgrade).then(|| terms.paid_period_at(now).end))
}

/// Charges (or credits) for the rest of the current paid period when the plan or add-on
/// quantities change mid-period, to the second; billed on the next invoice. Nothing during a
/// trial (nothing was billed), and nothing across a change of billing interval.
async fn prorations(
    state: &AppState,
    sub: &SubscriptionRecord,
    catalog: &CompiledCatalog,
    new_plan: &str,
    new_addons: &IndexMap<String, u32>,
    now: Timestamp,
) -> ApiResult<Vec<tollgate_core::pricing::Charge>> {
    use rust_decimal::Decimal;
    use tollgate_core::pricing::{BillingPeriod, addon_quantity_change, plan_change};
    let old_catalog = state
        .engine
        .catalog(&sub.workspace, sub.catalog_version)
        .await?;
    let terms = crate::billing::invoices::terms(sub, &old_catalog.catalog);
    if terms.activation() > now || !catalog.catalog.plans.contains_key(&sub.plan) {
        return Ok(Vec::new());
    }
    let period = terms.paid_period_at(now);
    let period = BillingPeriod::new(period.start, period.end)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let pricing_error =
        |e: tollgate_core::pricing::PricingError| ApiError::bad_request(e.code(), e.to_string());
    let mut charges = Vec::new();
    if sub.plan != new_plan
        && catalog.catalog.plans[&sub.plan].interval() == catalog.catalog.plans[new_plan].interval()
    {
        match plan_change(&catalog.catalog, &sub.plan, new_plan, now, &period) {
            Ok(c) => charges.extend(c),
            Err(tollgate_core::pricing::PricingError::ArrearsProration) => {}
            Err(e) => return Err(pricing_error(e)),
        }
    }
    let old_addons: IndexMap<String, u32> =
        serde_json::from_value(sub.addons.clone()).unwrap_or_default();
    let keys: std::collections::BTreeSet<&String> =
        old_addons.keys().chain(new_addons.keys()).collect();
    for key in keys {
        let from = old_addons.get(key).copied().unwrap_or(0);
        let to = new_addons.get(key).copied().unwrap_or(0);
        if from != to {
            let charge = addon_quantity_change(
                &catalog.catalog,
                new_plan,
                key,
                Decimal::from(from),
                Decimal::from(to),
                now,
                &period,
            )
            .map_err(pricing_error)?;
            charges.push(charge);
        }
    }
    Ok(charges)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelIn {
    /// End at once instead of at the end of the current period.
    #[serde(default)]
    pub immediately: bool,
}

#[utoipa::path(post, path = "/v1/customers/{id}/subscriptions/{sub}/cancel", params(("id" = String, Path), ("sub" = String, Path)),
    request_body = CancelIn, responses((status = 200, body = SubscriptionOut)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Principal,
    Path((customer, id)): Path<(String, String)>,
    body: crate::api::body::OptionalJsonBody<CancelIn>,
) -> ApiResult<Json<SubscriptionOut>> {
    let workspace = caller.require_admin()?;
    let immediately = body.0.is_some_and(|b| b.immediately);
    let now = customer_now(&state, workspace, &customer).await?;
    let mut sub = owned_subscription(&state, workspace, &customer, &id).await?;
    let catalog = state.engine.catalog(workspace, sub.catalog_version).await?;
    let interval = catalog
        .catalog
        .plans
        .get(&sub.plan)
        .map_or(Interval::Month, |p| p.interval());
    sub.status = SubscriptionStatus::Canceled;
    sub.canceled_at = Some(now);
    let trial = sub.trial_end.map(|end| (sub.started_at, end));
    let period_end =
        tollgate_core::period::subscription_period(sub.billing_anchor, interval, trial, now).end;
    sub.ends_at = Some(if immediately { now } else { period_end });
    state.engine.store().update_subscription(&sub).await?;
    state.engine.refresh_customer(workspace, &customer).await?;
    Ok(Json(out(sub, &catalog, now)))
}
