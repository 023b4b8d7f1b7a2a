//! The dashboard's reports beyond MRR (docs/DASHBOARD.md): margins per meter. Each page reads the
//! same use case as its API endpoint, so both show the same numbers.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::admin::{AnalyticsQuery, base, error_page, merge, recent_months, signed_in};
use super::{money, page};
use crate::app::analytics::margins as app;
use crate::state::AppState;

fn margin_row(
    m: &tollgate_core::margins::MeterMargin,
    currency: tollgate_core::money::Currency,
) -> Value {
    json!({
        "meter": m.meter,
        "units": m.units.normalize().to_string(),
        "revenue": money(m.revenue_minor, currency),
        "cost": money(m.cost_minor, currency),
        "margin": money(m.margin_minor, currency),
        "percent": m.margin_percent.map_or_else(|| "–".to_owned(), |p| format!("{p} %")),
    })
}

/// `GET /admin/margins?from=YYYY-MM&to=YYYY-MM` (the last 12 months by default).
pub async fn margins_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AnalyticsQuery>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let (default_from, default_to) = recent_months(state.engine.now(), 12);
    let from = query.from.filter(|f| !f.is_empty()).unwrap_or(default_from);
    let to = query.to.filter(|t| !t.is_empty()).unwrap_or(default_to);
    let report = match app::margins(
        &state.engine,
        &operator.user.workspace,
        app::MarginQuery {
            from: from.clone(),
            to: to.clone(),
        },
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let rows: Vec<Value> = report
        .meters
        .iter()
        .map(|m| margin_row(m, report.currency))
        .collect();
    page(
        StatusCode::OK,
        "margins.html",
        merge(
            base(&operator, "margins"),
            json!({
                "from": from,
                "to": to,
                "meters": rows,
                "total": margin_row(&report.total, report.currency),
                "invoices": report.invoices.to_string(),
                "csv": format!("/admin/margins.csv?from={from}&to={to}"),
            }),
        ),
    )
}

/// `GET /admin/margins.csv`: the same CSV as the API's.
pub async fn margins_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AnalyticsQuery>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let report = app::margins(
        &state.engine,
        &operator.user.workspace,
        app::MarginQuery {
            from: query.from.unwrap_or_default(),
            to: query.to.unwrap_or_default(),
        },
    )
    .await;
    match report {
        Ok(report) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"margins.csv\"",
                ),
            ],
            crate::api::analytics::margins_csv(&report),
        )
            .into_response(),
        Err(e) => error_page(&e),
    }
}

// ---- retention and revenue ----

use crate::app::analytics::mrr::MrrQuery;
use crate::app::analytics::revenue as revenue_app;

fn rate(p: Option<rust_decimal::Decimal>) -> String {
    p.map_or_else(|| "–".to_owned(), |p| format!("{p} %"))
}

/// A table of months x keys (plans or meters), amounts formatted.
fn grid(
    report: &revenue_app::RevenueReport,
    pick: fn(&tollgate_core::revenue::RevenueMonth) -> &std::collections::BTreeMap<String, i64>,
) -> (Vec<String>, Vec<Value>) {
    let keys: std::collections::BTreeSet<String> = report
        .months
        .iter()
        .flat_map(|m| pick(m).keys().cloned())
        .collect();
    let rows = report
        .months
        .iter()
        .map(|m| {
            let cells: Vec<String> = keys
                .iter()
                .map(|k| money(pick(m).get(k).copied().unwrap_or(0), report.currency))
                .collect();
            json!({"month": m.month, "cells": cells, "total": money(m.total_minor, report.currency)})
        })
        .collect();
    (keys.into_iter().collect(), rows)
}

/// `GET /admin/revenue?from=YYYY-MM&to=YYYY-MM` (the last 12 months by default): retention
/// (logo churn, revenue churn, NRR) and invoiced revenue by plan and by meter.
pub async fn revenue_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AnalyticsQuery>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let (default_from, default_to) = recent_months(state.engine.now(), 12);
    let from = query.from.filter(|f| !f.is_empty()).unwrap_or(default_from);
    let to = query.to.filter(|t| !t.is_empty()).unwrap_or(default_to);
    let months = || MrrQuery {
        from: from.clone(),
        to: to.clone(),
    };
    let workspace = &operator.user.workspace;
    let retention = match revenue_app::retention(&state.engine, workspace, months()).await {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let revenue = match revenue_app::revenue(&state.engine, workspace, months()).await {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let currency = retention.currency;
    let retention_rows: Vec<Value> = retention
        .months
        .iter()
        .map(|m| {
            json!({
                "month": m.month,
                "customers": m.customers_start.to_string(),
                "churned": m.churned_customers.to_string(),
                "logo_churn": rate(m.logo_churn_percent),
                "start": money(m.start_minor, currency),
                "lost": money(m.lost_minor, currency),
                "revenue_churn": rate(m.revenue_churn_percent),
                "retained": money(m.retained_minor, currency),
                "nrr": rate(m.net_revenue_retention_percent),
            })
        })
        .collect();
    let (plans, plan_rows) = grid(&revenue, |m| &m.by_plan);
    let (meters, meter_rows) = grid(&revenue, |m| &m.by_meter);
    page(
        StatusCode::OK,
        "revenue.html",
        merge(
            base(&operator, "revenue"),
            json!({
                "from": from,
                "to": to,
                "retention": retention_rows,
                "plans": plans,
                "plan_rows": plan_rows,
                "meters": meters,
                "meter_rows": meter_rows,
                "retention_csv": format!("/admin/retention.csv?from={from}&to={to}"),
                "revenue_csv": format!("/admin/revenue.csv?from={from}&to={to}"),
            }),
        ),
    )
}

fn csv_file(name: &'static str, text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, name),
        ],
        text,
    )
        .into_response()
}

/// `GET /admin/retention.csv`: the same CSV as the API's.
pub async fn retention_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AnalyticsQuery>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let query = MrrQuery {
        from: query.from.unwrap_or_default(),
        to: query.to.unwrap_or_default(),
    };
    match revenue_app::retention(&state.engine, &operator.user.workspace, query).await {
        Ok(report) => csv_file(
            "attachment; filename=\"retention.csv\"",
            crate::api::analytics::retention_csv(&report),
        ),
        Err(e) => error_page(&e),
    }
}

/// `GET /admin/revenue.csv`: the same CSV as the API's.
pub async fn revenue_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AnalyticsQuery>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let query = MrrQuery {
        from: query.from.unwrap_or_default(),
        to: query.to.unwrap_or_default(),
    };
    match revenue_app::revenue(&state.engine, &operator.user.workspace, query).await {
        Ok(report) => csv_file(
            "attachment; filename=\"revenue.csv\"",
            crate::api::analytics::revenue_csv(&report),
        ),
        Err(e) => error_page(&e),
    }
}
