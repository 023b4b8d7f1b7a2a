//! Retention (logo churn, revenue churn, net revenue retention) and invoiced revenue per plan and
//! per meter, by month (docs/DASHBOARD.md, "Retention and revenue"). Retention is read from the
//! MRR report; revenue from the lines of issued invoices. The arithmetic is core's
//! (`tollgate_core::revenue`).

// Money path: no `as` casts.
#![deny(clippy::as_conversions)]

use jiff::Timestamp;
use rust_decimal::Decimal;
use tollgate_core::analytics;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::lifecycle::InvoiceStatus;
use tollgate_core::money::{Currency, Money, Rounding};
use tollgate_core::revenue::{self, RetentionMonth, RevenueLine, RevenueMonth};
use tollgate_store::billing::InvoiceRecord;

use super::mrr::{MrrQuery, mrr};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

fn analytics_error(e: analytics::AnalyticsError) -> Error {
    Error::invalid(e.code(), e.to_string())
}

pub struct RetentionReport {
    pub currency: Currency,
    pub months: Vec<RetentionMonth>,
}

/// Retention of each month `from..=to` (`YYYY-MM`, at most 120).
pub async fn retention(
    engine: &Engine,
    workspace: &str,
    query: MrrQuery,
) -> AppResult<RetentionReport> {
    let report = mrr(engine, workspace, query).await?;
    let months = revenue::retention(&report.months).map_err(analytics_error)?;
    Ok(RetentionReport {
        currency: report.currency,
        months,
    })
}

pub struct RevenueReport {
    pub currency: Currency,
    pub months: Vec<RevenueMonth>,
}

/// Invoiced revenue of each month `from..=to` (`YYYY-MM`, at most 120), by plan and meter.
pub async fn revenue(
    engine: &Engine,
    workspace: &str,
    query: MrrQuery,
) -> AppResult<RevenueReport> {
    let from = analytics::parse_month(&query.from).map_err(analytics_error)?;
    let to = analytics::parse_month(&query.to).map_err(analytics_error)?;
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let currency = match store.latest_catalog(&ws).await? {
        Some(record) => record
            .catalog
            .get("currency")
            .and_then(|c| c.as_str())
            .and_then(|c| c.parse().ok())
            .unwrap_or(Currency::USD),
        None => Currency::USD,
    };
    let mut lines = Vec::new();
    for customer in store.list_customers(&ws).await? {
        for invoice in store
            .list_invoices(&ws, &CustomerId::from(customer.id.as_str()))
            .await?
        {
            if matches!(invoice.status, InvoiceStatus::Void | InvoiceStatus::Draft)
                || invoice.currency != currency.code()
            {
                continue;
            }
            lines.extend(invoice_lines(&invoice, currency)?);
        }
    }
    let months = revenue::revenue_by_month(&lines, from, to).map_err(analytics_error)?;
    Ok(RevenueReport { currency, months })
}

/// An invoice's revenue lines: every line but taxes and the carrying of a negative remainder
/// to the customer's credit (neither is the seller's revenue), each at the start of its period.
fn invoice_lines(invoice: &InvoiceRecord, currency: Currency) -> AppResult<Vec<RevenueLine>> {
    let doc = &invoice.document;
    let plan = doc.get("plan").and_then(|p| p.as_str()).map(str::to_owned);
    let fallback = invoice.period_start.unwrap_or(invoice.created_at);
    let mut out = Vec::new();
    for line in doc
        .get("lines")
        .and_then(|l| l.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let kind = line["kind"]["type"].as_str().unwrap_or_default();
        if matches!(kind, "tax" | "credit_carried_forward") {
            continue;
        }
        let Some(amount) = line["amount"].as_str() else {
            continue;
        };
        let amount: Decimal = amount
            .parse()
            .map_err(|e| Error::internal(format!("an invoice line amount: {e}")))?;
        let minor = Money::round(amount, currency, Rounding::HalfAwayFromZero)
            .map_err(|e| Error::internal(e.to_string()))?
            .minor();
        let at = line["period"]["start"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .unwrap_or(fallback);
        let meter = (kind == "usage")
            .then(|| line["kind"]["meter"].as_str().map(str::to_owned))
            .flatten();
        out.push(RevenueLine {
            at,
            plan: plan.clone(),
            meter,
            minor,
        });
    }
    Ok(out)
}
