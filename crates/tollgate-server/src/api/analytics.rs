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

#[derive(Serialize, utoipa::ToSchema)]
pub struct MrrOut {
    pub currency: String,
    pub months: Vec<MrrMonthOut>,
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

/// The report as CSV, one line per month (`currency` is the first line's comment-free column).
pub fn csv(report: &app::MrrReport) -> String {
    let mut out = format!("currency,{CSV_HEADER}\n");
    for m in &report.months {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            report.currency.code(),
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
    })
    .into_response())
}
