//! Analytics: MRR by month with its movements, as JSON or CSV (docs/DASHBOARD.md).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tollgate_core::analytics::MrrMonth;

use crate::api::error::ApiResult;
use crate::app::analytics::mrr as app;
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MrrQuery {
    /// First month, `YYYY-MM`.
    pub from: String,
    /// Last month, `YYYY-MM` (at most 120 months after `from`).
    pub to: String,
    /// `csv` for CSV (as `Accept: text/csv` does); JSON otherwise.
    pub format: Option<String>,
}

/// One month; amounts in minor units of `currency`, decreases as positive numbers, and
/// `start + new + expansion + reactivation - contraction - churn = end`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MrrMonthOut {
    pub month: String,
    pub start_minor: i64,
    pub new_minor: i64,
    pub expansion_minor: i64,
    pub contraction_minor: i64,
    pub churn_minor: i64,
    pub reactivation_minor: i64,
    pub end_minor: i64,
    pub arr_minor: i64,
    pub customers_start: u64,
    pub customers_end: u64,
    pub new_customers: u64,
    pub churned_customers: u64,
    pub reactivated_customers: u64,
    pub arpu_minor: i64,
}

/// The months of one currency.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CurrencyMrrOut {
    pub currency: String,
    pub months: Vec<MrrMonthOut>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MrrOut {
    /// The catalog's currency; `months` are in it.
    pub currency: String,
    pub months: Vec<MrrMonthOut>,
    /// Every currency with recurring revenue (each subscription counts in its customer's
    /// currency), the catalog's first: amounts of different currencies are never added.
    pub currencies: Vec<CurrencyMrrOut>,
}

pub fn month_out(m: &MrrMonth) -> MrrMonthOut {
    MrrMonthOut {
        month: m.month.clone(),
        start_minor: m.start_minor,
        new_minor: m.new_minor,
        expansion_minor: m.expansion_minor,
        contraction_minor: m.contraction_minor,
        churn_minor: m.churn_minor,
        reactivation_minor: m.reactivation_minor,
        end_minor: m.end_minor,
        arr_minor: m.arr_minor,
        customers_start: m.customers_start,
        customers_end: m.customers_end,
        new_customers: m.new_customers,
        churned_customers: m.churned_customers,
        reactivated_customers: m.reactivated_customers,
        arpu_minor: m.arpu_minor,
    }
}

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "month,start_minor,new_minor,expansion_minor,contraction_minor,\
churn_minor,reactivation_minor,end_minor,arr_minor,customers_start,customers_end,new_customers,\
churned_customers,reactivated_customers,arpu_minor";

/// The report as CSV, one line per currency and month (the catalog's currency first).
pub fn csv(report: &app::MrrReport) -> String {
    let mut out = format!("currency,{CSV_HEADER}\n");
    for (currency, m) in report
        .currencies
        .iter()
        .flat_map(|(c, months)| months.iter().map(move |m| (c, m)))
    {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            currency.code(),
            m.month,
            m.start_minor,
            m.new_minor,
            m.expansion_minor,
            m.contraction_minor,
            m.churn_minor,
            m.reactivation_minor,
            m.end_minor,
            m.arr_minor,
            m.customers_start,
            m.customers_end,
            m.new_customers,
            m.churned_customers,
            m.reactivated_customers,
            m.arpu_minor
        ));
    }
    out
}

/// MRR by month
///
/// Monthly recurring revenue at the close of each month from `from` to `to`, with its
/// movements (new, expansion, contraction, churn, reactivation), ARR, paying customers and ARPU,
/// read from subscriptions, their catalog versions and credit notes (docs/DASHBOARD.md says
/// exactly how). `?format=csv` or `Accept: text/csv` answers CSV.
#[utoipa::path(get, path = "/v1/analytics/mrr", operation_id = "analytics_mrr", params(MrrQuery),
    responses(
        (status = 200, description = "The report (JSON, or CSV when asked)", content(
            (MrrOut = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A month not written `YYYY-MM`, `from` after `to`, or more than 120 months (`invalid_month`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn mrr(
    State(state): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    Query(query): Query<MrrQuery>,
) -> ApiResult<Response> {
    let workspace = caller.require_admin()?;
    let wants_csv = query.format.as_deref() == Some("csv")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv"));
    let report = app::mrr(
        &state.engine,
        workspace,
        app::MrrQuery {
            from: query.from,
            to: query.to,
        },
    )
    .await?;
    if wants_csv {
        let mut response = csv(&report).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        return Ok(response);
    }
    Ok(Json(MrrOut {
        currency: report.currency.code().to_owned(),
        months: report.months.iter().map(month_out).collect(),
        currencies: report
            .currencies
            .iter()
            .map(|(c, months)| CurrencyMrrOut {
                currency: c.code().to_owned(),
                months: months.iter().map(month_out).collect(),
            })
            .collect(),
    })
    .into_response())
}

// ---- margins ----

use crate::app::analytics::margins as margin_app;

/// One meter's margin; amounts in minor units of `currency`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MeterMarginOut {
    /// The meter's key (`total` for the sum of the rows).
    pub meter: String,
    /// Units used in the invoiced periods (included units too), exact.
    #[schema(value_type = String)]
    pub units: String,
    pub revenue_minor: i64,
    pub cost_minor: i64,
    pub margin_minor: i64,
    /// `margin / revenue x 100`, two decimals; null without revenue.
    #[schema(value_type = Option<String>)]
    pub margin_percent: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MarginsOut {
    pub currency: String,
    /// Invoices read.
    pub invoices: u64,
    pub meters: Vec<MeterMarginOut>,
    pub total: MeterMarginOut,
}

pub fn margin_out(m: &tollgate_core::margins::MeterMargin) -> MeterMarginOut {
    MeterMarginOut {
        meter: m.meter.clone(),
        units: m.units.normalize().to_string(),
        revenue_minor: m.revenue_minor,
        cost_minor: m.cost_minor,
        margin_minor: m.margin_minor,
        margin_percent: m.margin_percent.map(|p| p.to_string()),
    }
}

/// The margin report as CSV: one line per meter, then `total`.
pub fn margins_csv(report: &margin_app::MarginReport) -> String {
    let mut out =
        String::from("currency,meter,units,revenue_minor,cost_minor,margin_minor,margin_percent\n");
    for m in report.meters.iter().chain(std::iter::once(&report.total)) {
        let o = margin_out(m);
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            report.currency.code(),
            o.meter,
            if m.meter == "total" {
                String::new()
            } else {
                o.units
            },
            o.revenue_minor,
            o.cost_minor,
            o.margin_minor,
            o.margin_percent.unwrap_or_default()
        ));
    }
    out
}

fn wants_csv(format: Option<&str>, headers: &HeaderMap) -> bool {
    format == Some("csv")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv"))
}

fn csv_response(text: String) -> Response {
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    response
}

/// Gross margin per meter
///
/// Invoiced revenue, cost and gross margin per meter for the invoices that closed a period
/// starting in the months `from` to `to`: revenue is the invoices' usage lines, cost the usage
/// of those periods (included units too) times the catalog's `costs` (docs/CATALOG.md), rounded
/// once per meter (docs/DASHBOARD.md, "Margins"). `?format=csv` or `Accept: text/csv` answers CSV.
#[utoipa::path(get, path = "/v1/analytics/margins", operation_id = "analytics_margins", params(MrrQuery),
    responses(
        (status = 200, description = "The report (JSON, or CSV when asked)", content(
            (MarginsOut = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A month not written `YYYY-MM`, `from` after `to`, or more than 120 months (`invalid_month`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn margins(
    State(state): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    Query(query): Query<MrrQuery>,
) -> ApiResult<Response> {
    let workspace = caller.require_admin()?;
    let csv = wants_csv(query.format.as_deref(), &headers);
    let report = margin_app::margins(
        &state.engine,
        workspace,
        margin_app::MarginQuery {
            from: query.from,
            to: query.to,
        },
    )
    .await?;
    if csv {
        return Ok(csv_response(margins_csv(&report)));
    }
    Ok(Json(MarginsOut {
        currency: report.currency.code().to_owned(),
        invoices: report.invoices,
        meters: report.meters.iter().map(margin_out).collect(),
        total: margin_out(&report.total),
    })
    .into_response())
}

// ---- retention and revenue ----

use crate::app::analytics::revenue as revenue_app;

/// One month's retention; percentages to two decimals, null when the month starts without
/// customers (or MRR).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RetentionMonthOut {
    pub month: String,
    pub customers_start: u64,
    pub churned_customers: u64,
    /// `churned_customers / customers_start x 100`.
    #[schema(value_type = Option<String>)]
    pub logo_churn_percent: Option<String>,
    pub start_minor: i64,
    /// MRR lost to churn and contraction.
    pub lost_minor: i64,
    /// `lost / start x 100`.
    #[schema(value_type = Option<String>)]
    pub revenue_churn_percent: Option<String>,
    /// `start + expansion - contraction - churn`.
    pub retained_minor: i64,
    /// `retained / start x 100`.
    #[schema(value_type = Option<String>)]
    pub net_revenue_retention_percent: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RetentionOut {
    pub currency: String,
    pub months: Vec<RetentionMonthOut>,
}

pub fn retention_out(m: &tollgate_core::revenue::RetentionMonth) -> RetentionMonthOut {
    let text = |p: Option<rust_decimal::Decimal>| p.map(|p| p.to_string());
    RetentionMonthOut {
        month: m.month.clone(),
        customers_start: m.customers_start,
        churned_customers: m.churned_customers,
        logo_churn_percent: text(m.logo_churn_percent),
        start_minor: m.start_minor,
        lost_minor: m.lost_minor,
        revenue_churn_percent: text(m.revenue_churn_percent),
        retained_minor: m.retained_minor,
        net_revenue_retention_percent: text(m.net_revenue_retention_percent),
    }
}

/// The retention report as CSV, one line per month (empty cells for no rate).
pub fn retention_csv(report: &revenue_app::RetentionReport) -> String {
    let mut out = String::from(
        "currency,month,customers_start,churned_customers,logo_churn_percent,start_minor,\
lost_minor,revenue_churn_percent,retained_minor,net_revenue_retention_percent\n",
    );
    for m in &report.months {
        let o = retention_out(m);
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            report.currency.code(),
            o.month,
            o.customers_start,
            o.churned_customers,
            o.logo_churn_percent.unwrap_or_default(),
            o.start_minor,
            o.lost_minor,
            o.revenue_churn_percent.unwrap_or_default(),
            o.retained_minor,
            o.net_revenue_retention_percent.unwrap_or_default()
        ));
    }
    out
}

/// Retention by month
///
/// Logo churn, revenue churn and net revenue retention of each month from `from` to `to`, read
/// from the MRR report's movements (docs/DASHBOARD.md, "Retention and revenue"). `?format=csv`
/// or `Accept: text/csv` answers CSV.
#[utoipa::path(get, path = "/v1/analytics/retention", operation_id = "analytics_retention", params(MrrQuery),
    responses(
        (status = 200, description = "The report (JSON, or CSV when asked)", content(
            (RetentionOut = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A month not written `YYYY-MM`, `from` after `to`, or more than 120 months (`invalid_month`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn retention(
    State(state): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    Query(query): Query<MrrQuery>,
) -> ApiResult<Response> {
    let workspace = caller.require_admin()?;
    let csv = wants_csv(query.format.as_deref(), &headers);
    let report = revenue_app::retention(
        &state.engine,
        workspace,
        app::MrrQuery {
            from: query.from,
            to: query.to,
        },
    )
    .await?;
    if csv {
        return Ok(csv_response(retention_csv(&report)));
    }
    Ok(Json(RetentionOut {
        currency: report.currency.code().to_owned(),
        months: report.months.iter().map(retention_out).collect(),
    })
    .into_response())
}

/// One month's invoiced revenue, in minor units.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RevenueMonthOut {
    pub month: String,
    pub total_minor: i64,
    /// By the invoice's plan (`(none)` for invoices of one-time products).
    pub by_plan: std::collections::BTreeMap<String, i64>,
    /// Usage lines by meter.
    pub by_meter: std::collections::BTreeMap<String, i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RevenueOut {
    pub currency: String,
    pub months: Vec<RevenueMonthOut>,
}

/// The revenue report as CSV, long form: per month a `total` line, then one per plan and one
/// per meter.
pub fn revenue_csv(report: &revenue_app::RevenueReport) -> String {
    let mut out = String::from("currency,month,group,key,revenue_minor\n");
    let code = report.currency.code();
    for m in &report.months {
        out.push_str(&format!("{code},{},total,,{}\n", m.month, m.total_minor));
        for (plan, minor) in &m.by_plan {
            out.push_str(&format!("{code},{},plan,{plan},{minor}\n", m.month));
        }
        for (meter, minor) in &m.by_meter {
            out.push_str(&format!("{code},{},meter,{meter},{minor}\n", m.month));
        }
    }
    out
}

/// Invoiced revenue by month
///
/// What the issued invoices (not drafts, not void) charged for each month from `from` to `to`
/// (a line counts in the month its period starts), in total, per plan and per meter; taxes are
/// left out and credit notes are not subtracted (docs/DASHBOARD.md, "Retention and revenue").
/// `?format=csv` or `Accept: text/csv` answers CSV.
#[utoipa::path(get, path = "/v1/analytics/revenue", operation_id = "analytics_revenue", params(MrrQuery),
    responses(
        (status = 200, description = "The report (JSON, or CSV when asked)", content(
            (RevenueOut = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A month not written `YYYY-MM`, `from` after `to`, or more than 120 months (`invalid_month`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn revenue(
    State(state): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    Query(query): Query<MrrQuery>,
) -> ApiResult<Response> {
    let workspace = caller.require_admin()?;
    let csv = wants_csv(query.format.as_deref(), &headers);
    let report = revenue_app::revenue(
        &state.engine,
        workspace,
        app::MrrQuery {
            from: query.from,
            to: query.to,
        },
    )
    .await?;
    if csv {
        return Ok(csv_response(revenue_csv(&report)));
    }
    Ok(Json(RevenueOut {
        currency: report.currency.code().to_owned(),
        months: report
            .months
            .iter()
            .map(|m| RevenueMonthOut {
                month: m.month.clone(),
                total_minor: m.total_minor,
                by_plan: m.by_plan.clone(),
                by_meter: m.by_meter.clone(),
            })
            .collect(),
    })
    .into_response())
}

// ---- price simulation ----

use crate::app::analytics::simulation as simulation_app;

/// One subscription's last closed period on the current and the draft catalog.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SimulatedPeriodOut {
    pub customer: String,
    pub subscription: String,
    pub plan: String,
    pub period_start: String,
    pub period_end: String,
    pub current_minor: i64,
    pub draft_minor: i64,
    /// `draft - current`.
    pub difference_minor: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SimulatedPlanOut {
    /// The plan (`total` for the sum of all).
    pub plan: String,
    pub subscriptions: u64,
    pub current_minor: i64,
    pub draft_minor: i64,
    pub difference_minor: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SkippedOut {
    pub customer: String,
    pub subscription: String,
    pub reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SimulationOut {
    pub currency: String,
    pub subscriptions: Vec<SimulatedPeriodOut>,
    pub plans: Vec<SimulatedPlanOut>,
    pub total: SimulatedPlanOut,
    /// Subscriptions without a closed period, or whose plan the draft lacks.
    pub skipped: Vec<SkippedOut>,
}

fn plan_out(p: &simulation_app::SimulatedPlan) -> SimulatedPlanOut {
    SimulatedPlanOut {
        plan: p.plan.clone(),
        subscriptions: p.subscriptions,
        current_minor: p.current_minor,
        draft_minor: p.draft_minor,
        difference_minor: p.difference_minor,
    }
}

pub fn simulation_out(s: &simulation_app::Simulation) -> SimulationOut {
    SimulationOut {
        currency: s.currency.code().to_owned(),
        subscriptions: s
            .subscriptions
            .iter()
            .map(|p| SimulatedPeriodOut {
                customer: p.customer.clone(),
                subscription: p.subscription.clone(),
                plan: p.plan.clone(),
                period_start: p.period.start.to_string(),
                period_end: p.period.end.to_string(),
                current_minor: p.current_minor,
                draft_minor: p.draft_minor,
                difference_minor: p.difference_minor,
            })
            .collect(),
        plans: s.plans.iter().map(plan_out).collect(),
        total: plan_out(&s.total),
        skipped: s
            .skipped
            .iter()
            .map(|k| SkippedOut {
                customer: k.customer.clone(),
                subscription: k.subscription.clone(),
                reason: k.reason.clone(),
            })
            .collect(),
    }
}

/// Parses a draft catalog as `PUT /v1/catalog` does, off the async workers.
pub async fn parse_draft(
    body: crate::api::body::CatalogBody,
) -> Result<tollgate_core::catalog::Catalog, crate::api::error::ApiError> {
    use tollgate_core::catalog;
    tokio::task::spawn_blocking(move || match body {
        crate::api::body::CatalogBody::Yaml(text) => catalog::parse_yaml(&text),
        crate::api::body::CatalogBody::Json(body) => {
            match body.get("yaml").and_then(|y| y.as_str()) {
                Some(text) if body.as_object().is_some_and(|o| o.len() == 1) => {
                    catalog::parse_yaml(text)
                }
                _ => catalog::from_json_value(body),
            }
        }
    })
    .await
    .map_err(crate::api::error::ApiError::internal)?
    .map_err(crate::api::catalog::invalid)
}

/// Simulate a draft catalog
///
/// Prices every subscription's last closed period on a draft catalog (the body, as for
/// `PUT /v1/catalog`; nothing is applied or stored) and on the catalog version it is on, and
/// answers the difference per subscription, per plan and in total (docs/DASHBOARD.md, "Price
/// simulation").
#[utoipa::path(post, path = "/v1/analytics/simulations", operation_id = "analytics_simulate", request_body(description = "The draft catalog: JSON in the file's shape, or {\"yaml\": text}, or the YAML file itself with Content-Type: application/yaml", content(
        (Object = "application/json"),
        (String = "application/yaml"),
    )),
    responses(
        (status = 200, description = "The simulation", body = SimulationOut),
        (status = 404, description = "The workspace has no catalog yet (`no_catalog`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The draft has mistakes, each with its path, or another currency (`invalid_catalog`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn simulate(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::CatalogBody,
) -> ApiResult<Json<SimulationOut>> {
    let workspace = caller.require_admin()?;
    let draft = parse_draft(body).await?;
    let simulation = simulation_app::simulate(&state.engine, workspace, &draft).await?;
    Ok(Json(simulation_out(&simulation)))
}
