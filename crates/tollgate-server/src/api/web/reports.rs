//! The dashboard's reports beyond MRR (docs/DASHBOARD.md): margins per meter. Each page reads the
//! same use case as its API endpoint, so both show the same numbers.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::admin::{AnalyticsQuery, base, error_page, merge, signed_in};
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
    let (from, to) = query.months(state.engine.now());
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
    let (from, to) = query.months(state.engine.now());
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

// ---- price simulation ----

use crate::app::analytics::simulation as simulation_app;
use axum::Form;

#[derive(serde::Deserialize)]
pub struct SimulationForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    yaml: String,
}

fn simulation_page(
    operator: &crate::app::users::sessions::Operator,
    status: StatusCode,
    yaml: &str,
    extra: Value,
) -> Response {
    page(
        status,
        "simulation.html",
        merge(
            merge(base(operator, "simulation"), json!({"yaml": yaml})),
            extra,
        ),
    )
}

/// `GET /admin/simulation`: the form, holding the current catalog to edit.
pub async fn simulation_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let yaml = match state.engine.latest_catalog(&operator.user.workspace).await {
        Ok(Some(c)) => tollgate_core::catalog::to_yaml(&c.catalog),
        Ok(None) => String::new(),
        Err(e) => return error_page(&e),
    };
    simulation_page(&operator, StatusCode::OK, &yaml, json!({}))
}

/// `POST /admin/simulation`: the draft simulated (nothing applied), shown under the form.
pub async fn simulation_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SimulationForm>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Some(refused) = super::admin::refuse_csrf(&operator, &form.csrf) {
        return refused;
    }
    let text = form.yaml.clone();
    let parsed = match tokio::task::spawn_blocking(move || {
        tollgate_core::catalog::parse_yaml(&text)
    })
    .await
    {
        Ok(parsed) => parsed,
        Err(e) => return error_page(&crate::error::Error::internal(e.to_string())),
    };
    let draft = match parsed {
        Ok(draft) => draft,
        Err(errors) => {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return simulation_page(
                &operator,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form.yaml,
                json!({"errors": list}),
            );
        }
    };
    let simulation =
        match simulation_app::simulate(&state.engine, &operator.user.workspace, &draft).await {
            Ok(s) => s,
            Err(e) if e.kind == crate::error::Kind::Validation => {
                let list: Vec<String> = e
                    .errors
                    .iter()
                    .map(|f| format!("{}: {}", f.path, f.message))
                    .collect();
                return simulation_page(
                    &operator,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &form.yaml,
                    json!({"errors": list}),
                );
            }
            Err(e) => return error_page(&e),
        };
    let currency = simulation.currency;
    let signed = |minor: i64| {
        let shown = money(minor, currency);
        if minor > 0 {
            format!("+{shown}")
        } else {
            shown
        }
    };
    let plan_row = |p: &simulation_app::SimulatedPlan| {
        json!({
            "plan": p.plan,
            "subscriptions": p.subscriptions.to_string(),
            "current": money(p.current_minor, currency),
            "draft": money(p.draft_minor, currency),
            "difference": signed(p.difference_minor),
        })
    };
    let plans: Vec<Value> = simulation.plans.iter().map(plan_row).collect();
    let rows: Vec<Value> = simulation
        .subscriptions
        .iter()
        .map(|s| {
            json!({
                "customer": s.customer,
                "plan": s.plan,
                "period": format!(
                    "{} – {}",
                    s.period.start.strftime("%Y-%m-%d"),
                    s.period.end.strftime("%Y-%m-%d")
                ),
                "current": money(s.current_minor, currency),
                "draft": money(s.draft_minor, currency),
                "difference": signed(s.difference_minor),
            })
        })
        .collect();
    let skipped: Vec<Value> = simulation
        .skipped
        .iter()
        .map(|k| json!({"customer": k.customer, "reason": k.reason}))
        .collect();
    simulation_page(
        &operator,
        StatusCode::OK,
        &form.yaml,
        json!({
            "result": true,
            "plans": plans,
            "total": plan_row(&simulation.total),
            "rows": rows,
            "skipped": skipped,
        }),
    )
}
