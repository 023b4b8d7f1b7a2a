//! Billing operations: bill runs, quotes and plan recommendations, prepaid credit, coupons and
//! one-time purchases.

use std::collections::BTreeMap;
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use indexmap::IndexMap;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tollgate_core::money::Money;
use tollgate_core::pricing::{self, BillingPeriod, MeterUsage, PlanCost, Quote};

use super::new_id;
use crate::api::error::{ApiError, ApiResult};
use crate::app::bill_run::{BillRunReport, bill_run};
use crate::app::billing as app;
use crate::auth::Principal;
use crate::billing::InvoiceOut;
use crate::state::AppState;

/// A bill run as the API shows it: its progress while it runs, its report once it is done.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BillRunOut {
    /// `br_...`: poll `GET /v1/bill_runs/{id}` while `status` is `running`.
    pub id: String,
    /// `running`, `completed` or `failed`.
    pub status: &'static str,
    /// Subscriptions looked at so far, of `total`.
    pub done: usize,
    pub total: usize,
    /// Why a `failed` run stopped (each subscription's own errors are in `errors`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub report: Option<BillRunReport>,
    #[serde(skip)]
    workspace: String,
}

/// How long `POST /v1/bill_runs` waits for the run before answering 202 with the run to poll.
const BILL_RUN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Finalizes every invoice the workspace's subscriptions owe up to now. Safe to re-run.
///
/// A run that finishes within two seconds answers 200 with its report; a longer one answers
/// 202 at once with its id and goes on in the background (a dropped connection does not stop
/// it): poll `GET /v1/bill_runs/{id}`. Runs are kept in this node's memory; the invoices they
/// write are durable whatever happens to the run record.
#[utoipa::path(post, path = "/v1/bill_runs", operation_id = "billing_run", responses((status = 200, description = "OK", body = BillRunOut), (status = 202, description = "Accepted: still running; poll it", body = BillRunOut)))]
pub async fn run(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<(StatusCode, Json<BillRunOut>)> {
    let workspace = caller.require_admin()?.to_owned();
    let id = new_id("br");
    let record = std::sync::Arc::new(std::sync::Mutex::new(BillRunOut {
        id: id.clone(),
        status: "running",
        done: 0,
        total: 0,
        failure: None,
        report: None,
        workspace: workspace.clone(),
    }));
    state.bill_runs.insert(id.clone(), record.clone());
    let (finished, wait) = tokio::sync::oneshot::channel::<()>();
    let engine = state.engine.clone();
    let options = state.bill_run;
    let progress_record = record.clone();
    tokio::spawn(async move {
        let progress = move |done: usize, total: usize, _: &BillRunReport| {
            let mut r = progress_record
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            r.done = done;
            r.total = total;
        };
        let result = bill_run(&engine, &workspace, options, &progress).await;
        {
            let mut r = record
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match result {
                Ok(report) => {
                    r.status = "completed";
                    r.done = report.subscriptions;
                    r.total = report.subscriptions;
                    r.report = Some(report);
                }
                Err(e) => {
                    tracing::error!(run = %r.id, code = e.code.as_str(), detail = %e.detail, "bill run failed");
                    r.status = "failed";
                    r.failure = Some(e.detail);
                }
            }
            tracing::info!(run = %r.id, status = r.status, done = r.done, "bill run ended");
        }
        let _ = finished.send(());
    });
    let _ = tokio::time::timeout(BILL_RUN_WAIT, wait).await;
    let current = snapshot(&state, &id)?;
    let status = if current.status == "running" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(current)))
}

/// A bill run's progress, or its report once done.
#[utoipa::path(get, path = "/v1/bill_runs/{id}", operation_id = "billing_get_run", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = BillRunOut), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn get_run(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<BillRunOut>> {
    let workspace = caller.require_admin()?;
    let run = snapshot(&state, &id)?;
    if run.workspace != workspace {
        return Err(ApiError::not_found("bill run", &id));
    }
    Ok(Json(run))
}

fn snapshot(state: &AppState, id: &str) -> ApiResult<BillRunOut> {
    let record = state
        .bill_runs
        .get(id)
        .map(|r| r.clone())
        .ok_or_else(|| ApiError::not_found("bill run", id))?;
    let run = record
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(run)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteIn {
    pub plan: String,
    /// Meter to quantity for the period, e.g. `{"requests": "130000"}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub usage: IndexMap<String, Decimal>,
    /// Add-on quantities, e.g. `{"seat": 3}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub addons: IndexMap<String, Decimal>,
}

/// The same shape as `tollgate quote --json`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QuoteOut {
    pub plan: String,
    pub currency: String,
    pub period: QuotePeriod,
    pub total: String,
    pub lines: Vec<QuoteLine>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QuotePeriod {
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QuoteLine {
    pub description: String,
    pub quantity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<String>,
    pub amount: String,
}

/// A representative month for quotes: the period does not change a monthly price.
fn quote_period() -> ApiResult<BillingPeriod> {
    let start = "2026-11-01T00:00:00Z".parse().map_err(ApiError::internal)?;
    let end = "2026-12-01T00:00:00Z".parse().map_err(ApiError::internal)?;
    BillingPeriod::new(start, end).map_err(|e| ApiError::internal(e.to_string()))
}

pub fn quote_out(q: &Quote) -> ApiResult<QuoteOut> {
    Ok(QuoteOut {
        plan: q.plan.clone(),
        currency: q.currency.to_string(),
        period: QuotePeriod {
            start: q.period.start,
            end: q.period.end,
        },
        total: q.total.to_decimal().to_string(),
        lines: q
            .lines
            .iter()
            .map(|l| QuoteLine {
                description: l.description.clone(),
                quantity: l.quantity.normalize().to_string(),
                unit_price: l.unit_price.map(|p| p.normalize().to_string()),
                amount: l.amount.to_decimal().to_string(),
            })
            .collect(),
    })
}

/// Prices one period of a plan for hypothetical usage; no customer needed. Admin keys only, as
/// for the catalog itself: a customer key sees its own plan, not the price list.
#[utoipa::path(post, path = "/v1/quotes", operation_id = "billing_quote", request_body = QuoteIn, responses((status = 200, description = "OK", body = QuoteOut), (status = 400, description = "Bad input (problem+json with a stable code)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn quote(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::JsonBody<QuoteIn>,
) -> ApiResult<Json<QuoteOut>> {
    let crate::api::body::JsonBody(body) = body;
    caller.require_admin()?;
    let catalog = state
        .engine
        .latest_catalog(caller.workspace())
        .await?
        .ok_or_else(|| {
            ApiError::not_found("catalog", caller.workspace()).with_code(Code::NoCatalog)
        })?;
    let usage: BTreeMap<String, MeterUsage> = body
        .usage
        .into_iter()
        .map(|(k, v)| (k, MeterUsage::total(v)))
        .collect();
    let addons: BTreeMap<String, Decimal> = body.addons.into_iter().collect();
    let q = pricing::quote(
        &catalog.catalog,
        &body.plan,
        &usage,
        &addons,
        &quote_period()?,
    )
    .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    Ok(Json(quote_out(&q)?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RecommendationOut {
    /// The customer's current plan.
    pub current_plan: Option<String>,
    /// What the last closed period would have cost on the current plan.
    pub current_cost: Option<String>,
    /// The cheapest plan for that usage.
    pub recommended_plan: String,
    pub recommended_cost: String,
    /// What moving would have saved (zero when the current plan is the cheapest).
    pub saving: String,
    /// Every plan that fits, cheapest first.
    pub plans: Vec<PlanCostOut>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanCostOut {
    pub plan: String,
    pub total: String,
}

/// Which plan would have cost the customer least for its last closed period's usage.
#[utoipa::path(get, path = "/v1/customers/{id}/recommendation", operation_id = "billing_recommendation", params(("id" = String, Path)), responses((status = 200, description = "OK", body = RecommendationOut)))]
pub async fn recommendation(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
) -> ApiResult<Json<RecommendationOut>> {
    let workspace = caller.require_customer(&customer)?;
    let store = state.engine.store();
    let (now, sub) = super::invoices::customer_subscription(&state, workspace, &customer).await?;
    let catalog = state.engine.catalog(workspace, sub.catalog_version).await?;
    let terms = crate::billing::invoices::terms(&sub, &catalog.catalog);
    let current = terms.paid_period_at(now);
    let last = if current.start > terms.activation() {
        terms.paid_period_at(current.start - jiff::SignedDuration::from_secs(1))
    } else {
        current
    };
    let usage = crate::billing::usage::period_usage(
        store.as_ref(),
        workspace,
        &customer,
        &catalog.catalog,
        last,
    )
    .await?;
    let addons: BTreeMap<String, Decimal> = sub
        .addons
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), Decimal::from(v.as_u64()?))))
                .collect()
        })
        .unwrap_or_default();
    let period =
        BillingPeriod::new(last.start, last.end).map_err(|e| ApiError::internal(e.to_string()))?;
    let plans: Vec<PlanCost> = pricing::recommend(&catalog.catalog, &usage, &addons, &period)
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    let best = plans
        .first()
        .ok_or_else(|| ApiError::conflict(Code::NoPlanFits, "no plan fits this usage"))?;
    let current_cost = pricing::quote(&catalog.catalog, &sub.plan, &usage, &addons, &period)
        .ok()
        .map(|q| q.total);
    let saving = current_cost.map_or(Decimal::ZERO, |c| {
        c.to_decimal()
            .checked_sub(best.total.to_decimal())
            .unwrap_or_default()
            .max(Decimal::ZERO)
    });
    Ok(Json(RecommendationOut {
        current_plan: Some(sub.plan.clone()),
        current_cost: current_cost.map(|c| c.to_decimal().to_string()),
        recommended_plan: best.plan.clone(),
        recommended_cost: best.total.to_decimal().to_string(),
        saving: Money::round(saving, catalog.catalog.currency, catalog.catalog.rounding)
            .map_err(ApiError::internal)?
            .to_decimal()
            .to_string(),
        plans: plans
            .iter()
            .map(|p| PlanCostOut {
                plan: p.plan.clone(),
                total: p.total.to_decimal().to_string(),
            })
            .collect(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditIn {
    /// A decimal string in major units, e.g. `"50.00"`.
    #[schema(value_type = String)]
    pub amount: Decimal,
    pub reason: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreditBalanceOut {
    pub customer: String,
    pub balance: String,
    pub currency: String,
}

async fn balance_out(
    state: &AppState,
    workspace: &str,
    customer: &str,
) -> ApiResult<CreditBalanceOut> {
    let catalog = state
        .engine
        .latest_catalog(workspace)
        .await?
        .ok_or_else(|| ApiError::conflict(Code::NoCatalog, "apply a catalog first"))?;
    let minor = state
        .engine
        .store()
        .credit_balance(&WorkspaceId::from(workspace), &CustomerId::from(customer))
        .await?;
    // In the customer's currency, which its credit is granted in.
    let currency = crate::billing::profiles::customer_profile(
        state.engine.store().as_ref(),
        workspace,
        customer,
    )
    .await?
    .currency(&catalog.catalog)?;
    Ok(CreditBalanceOut {
        customer: customer.to_owned(),
        balance: Money::from_minor(minor, currency).to_decimal().to_string(),
        currency: currency.to_string(),
    })
}

/// Grants prepaid credit; invoices use it before anything is charged.
#[utoipa::path(post, path = "/v1/customers/{id}/credits", operation_id = "billing_grant_credit", params(("id" = String, Path)), request_body = CreditIn,
    responses((status = 201, description = "Created", body = CreditBalanceOut)))]
pub async fn grant_credit(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    body: crate::api::body::JsonBody<CreditIn>,
) -> ApiResult<(StatusCode, Json<CreditBalanceOut>)> {
    let workspace = caller.require_admin()?.to_owned();
    let crate::api::body::JsonBody(body) = body;
    let entry = app::grant_credit(
        &state.engine,
        app::GrantCredit {
            workspace,
            customer,
            amount: body.amount,
            reason: body.reason,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(balance_out(&state, &entry.workspace, &entry.customer).await?),
    ))
}

#[utoipa::path(get, path = "/v1/customers/{id}/credits", operation_id = "billing_credit_balance", params(("id" = String, Path)), responses((status = 200, description = "OK", body = CreditBalanceOut)))]
pub async fn credit_balance(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
) -> ApiResult<Json<CreditBalanceOut>> {
    let workspace = caller.require_customer(&customer)?;
    super::customers::must_exist(&state, workspace, &customer).await?;
    Ok(Json(balance_out(&state, workspace, &customer).await?))
}

/// A customer's balance: credit notes credited to it, less what invoices used.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerBalanceOut {
    pub customer: String,
    /// A decimal string in major units, e.g. `"30.00"`.
    pub balance: String,
    pub currency: String,
    /// Its movements, oldest first.
    pub movements: Vec<BalanceMovementOut>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BalanceMovementOut {
    pub id: String,
    /// `credit_note` (credited to the balance) or `invoice` (used by an invoice).
    pub kind: String,
    /// Signed: positive when credited, negative when used.
    pub amount: String,
    pub credit_note: Option<String>,
    pub invoice: Option<String>,
    pub created_at: jiff::Timestamp,
}

/// Gets the customer's balance and its movements.
///
/// The balance credit notes credited (`method: credit`), less what invoices used of it; the
/// next invoices use it after taxes and before prepaid credit.
#[utoipa::path(get, path = "/v1/customers/{id}/balance", operation_id = "billing_customer_balance", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = CustomerBalanceOut), (status = 404, description = "No such customer", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn customer_balance(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
) -> ApiResult<Json<CustomerBalanceOut>> {
    let workspace = caller.require_customer(&customer)?;
    let balance = app::customer_balance(&state.engine, workspace, &customer).await?;
    let digits = balance.currency.minor_digits();
    let text = |minor: i64| Decimal::new(minor, digits).to_string();
    Ok(Json(CustomerBalanceOut {
        customer,
        balance: text(balance.minor),
        currency: balance.currency.to_string(),
        movements: balance
            .movements
            .into_iter()
            .map(|m| BalanceMovementOut {
                amount: text(m.amount_minor),
                id: m.id,
                kind: m.kind,
                credit_note: m.credit_note,
                invoice: m.invoice,
                created_at: m.created_at,
            })
            .collect(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponIn {
    pub coupon: String,
}

/// Applies a catalog coupon to the customer's next invoices (for its duration).
#[utoipa::path(post, path = "/v1/customers/{id}/coupons", operation_id = "billing_apply_coupon", params(("id" = String, Path)), request_body = CouponIn, responses((status = 201, description = "Created")))]
pub async fn apply_coupon(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    body: crate::api::body::JsonBody<CouponIn>,
) -> ApiResult<StatusCode> {
    let workspace = caller.require_admin()?.to_owned();
    let crate::api::body::JsonBody(body) = body;
    app::apply_coupon(
        &state.engine,
        app::ApplyCoupon {
            workspace,
            customer,
            coupon: body.coupon,
        },
    )
    .await?;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseIn {
    pub product: String,
    #[serde(default = "one")]
    pub quantity: u32,
}

fn one() -> u32 {
    1
}

/// Buys a one-time product: an invoice of its own, finalized at once. Send an
/// `Idempotency-Key` header to make retries safe.
#[utoipa::path(post, path = "/v1/customers/{id}/purchases", operation_id = "billing_purchase", params(("id" = String, Path)), request_body = PurchaseIn,
    responses((status = 201, description = "Created", body = InvoiceOut), (status = 200, body = InvoiceOut, description = "A retry with the same Idempotency-Key")))]
pub async fn purchase(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    headers: HeaderMap,
    body: crate::api::body::JsonBody<PurchaseIn>,
) -> ApiResult<(StatusCode, Json<InvoiceOut>)> {
    let workspace = caller.require_admin()?.to_owned();
    let crate::api::body::JsonBody(body) = body;
    let bought = app::purchase(
        &state.engine,
        app::Purchase {
            workspace,
            customer,
            product: body.product,
            quantity: body.quantity,
            idempotency_key: headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        },
    )
    .await?;
    let status = if bought.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(InvoiceOut::from_record(&bought.invoice, 0))))
}
