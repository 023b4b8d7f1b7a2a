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
