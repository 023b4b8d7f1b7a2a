//! Gross margin per meter for one workspace (QLP case 6; docs/DASHBOARD.md, "Margins").
//!
//! Every invoice that closed a period starting in the report's months (void ones and drafts
//! left out) brings its usage lines as revenue, per meter; the usage of the period it closed (the
//! aggregates the bill run rated, included units too) times the latest catalog's `costs` is the
//! cost. The arithmetic is core's (`tollgate_core::margins`).

// Money path: no `as` casts.
#![deny(clippy::as_conversions)]

use indexmap::IndexMap;
use jiff::Timestamp;
use rust_decimal::Decimal;
use tollgate_core::analytics::{self, month_of};
use tollgate_core::catalog::Catalog;
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::lifecycle::InvoiceStatus;
use tollgate_core::margins::{self, MeterMargin, MeterTotals};
use tollgate_core::money::{Currency, Money, Rounding};
use tollgate_core::period::Period;
use tollgate_store::billing::InvoiceRecord;

use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The months (`YYYY-MM`) of the invoiced periods' starts: the same range every analytics
/// report takes.
pub type MarginQuery = super::mrr::MrrQuery;

pub struct MarginReport {
    pub currency: Currency,
    /// Meters in the catalog's order: every meter invoiced or with a cost and usage.
    pub meters: Vec<MeterMargin>,
    /// The sum of the meters (its percentage of the summed revenue).
    pub total: MeterMargin,
    /// Invoices read.
    pub invoices: u64,
}

fn overflow(_: margins::MarginError) -> Error {
    Error::invalid(Code::AmountOutOfRange, "an amount is out of range")
}

pub async fn margins(
    engine: &Engine,
    workspace: &str,
    query: MarginQuery,
) -> AppResult<MarginReport> {
    let invalid = |e: analytics::AnalyticsError| Error::invalid(e.code(), e.to_string());
    let from = analytics::parse_month(&query.from).map_err(invalid)?;
    let to = analytics::parse_month(&query.to).map_err(invalid)?;
    if from > to {
        return Err(invalid(analytics::AnalyticsError::Reversed {
            from: query.from,
            to: query.to,
        }));
    }
    // At most 120 months, as every report.
    let months = (i32::from(to.year()) - i32::from(from.year())) * 12 + i32::from(to.month())
        - i32::from(from.month())
        + 1;
    if usize::try_from(months).unwrap_or(usize::MAX) > analytics::MAX_MONTHS {
        return Err(invalid(analytics::AnalyticsError::TooManyMonths));
    }
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let Some(latest) = store.latest_catalog(&ws).await? else {
        return Ok(MarginReport {
            currency: Currency::USD,
            meters: Vec::new(),
            total: empty_total(),
            invoices: 0,
        });
    };
    let catalog: Catalog = serde_json::from_value(latest.catalog.clone())
        .map_err(|e| Error::internal(format!("a stored catalog does not read back: {e}")))?;
    let currency = catalog.currency;
    let mut totals: IndexMap<String, MeterTotals> = catalog
        .meters
        .keys()
        .map(|k| (k.clone(), MeterTotals::default()))
        .collect();
    let mut seen: std::collections::BTreeSet<String> = Default::default();
    let mut invoices = 0u64;
    for customer in store.list_customers(&ws).await? {
        for invoice in store
            .list_invoices(&ws, &CustomerId::from(customer.id.as_str()))
            .await?
        {
            let Some(closing) = counted(&invoice, currency, from, to) else {
                continue;
            };
            invoices += 1;
            let revenue = usage_revenue(&invoice, currency)?;
            let usage = crate::billing::usage::period_usage(
                store.as_ref(),
                workspace,
                &invoice.customer,
                &catalog,
                closing,
            )
            .await?;
            for (meter, slot) in totals.iter_mut() {
                let minor = revenue.get(meter).copied().unwrap_or(0);
                let cost = catalog.costs.get(meter);
                let used = usage.get(meter);
                if !revenue.contains_key(meter) && (cost.is_none() || used.is_none()) {
                    continue;
                }
                let units = used.map_or(Decimal::ZERO, |u| u.total.max(Decimal::ZERO));
                let exact = match (cost, used) {
                    (Some(cost), Some(used)) => margins::cost_of(cost, used).map_err(overflow)?,
                    _ => Decimal::ZERO,
                };
                slot.add(minor, units, exact).map_err(overflow)?;
                seen.insert(meter.clone());
            }
        }
    }
    totals.retain(|meter, _| seen.contains(meter));
    let meters = margins::margins(&totals, currency).map_err(overflow)?;
    // The total adds the rows as shown (each cost rounded once), so its columns add up.
    let add = |f: fn(&MeterMargin) -> i64| {
        meters
            .iter()
            .try_fold(0i64, |t, m| t.checked_add(f(m)))
            .ok_or_else(|| overflow(margins::MarginError::Overflow))
    };
    let (revenue_minor, cost_minor) = (add(|m| m.revenue_minor)?, add(|m| m.cost_minor)?);
    let margin_minor = revenue_minor
        .checked_sub(cost_minor)
        .ok_or_else(|| overflow(margins::MarginError::Overflow))?;
    let total = MeterMargin {
        meter: "total".into(),
        units: Decimal::ZERO,
        revenue_minor,
        cost_minor,
        margin_minor,
        margin_percent: margins::percent_of(margin_minor, revenue_minor).map_err(overflow)?,
    };
    Ok(MarginReport {
        currency,
        meters,
        total,
        invoices,
    })
}

fn empty_total() -> MeterMargin {
    MeterMargin {
        meter: "total".into(),
        units: Decimal::ZERO,
        revenue_minor: 0,
        cost_minor: 0,
        margin_minor: 0,
        margin_percent: None,
    }
}

/// The period an invoice closed, when it counts in the report: issued (not a draft, not void),
/// in the report's currency, closing a period that starts in the report's months.
fn counted(
    invoice: &InvoiceRecord,
    currency: Currency,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
) -> Option<Period> {
    if matches!(invoice.status, InvoiceStatus::Void | InvoiceStatus::Draft)
        || invoice.currency != currency.code()
    {
        return None;
    }
    let closing = invoice.document.get("closing")?;
    let at = |key: &str| -> Option<Timestamp> { closing.get(key)?.as_str()?.parse().ok() };
    let (start, end) = (at("start")?, at("end")?);
    let month = month_of(start);
    (from <= month && month <= to).then_some(Period { start, end })
}

/// The invoice's usage lines by meter, in minor units.
fn usage_revenue(invoice: &InvoiceRecord, currency: Currency) -> AppResult<IndexMap<String, i64>> {
    let mut out: IndexMap<String, i64> = IndexMap::new();
    let lines = invoice
        .document
        .get("lines")
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default();
    for line in lines {
        let kind = &line["kind"];
        if kind["type"].as_str() != Some("usage") {
            continue;
        }
        let (Some(meter), Some(amount)) = (kind["meter"].as_str(), line["amount"].as_str()) else {
            continue;
        };
        let amount: Decimal = amount
            .parse()
            .map_err(|e| Error::internal(format!("an invoice line amount: {e}")))?;
        let minor = Money::round(amount, currency, Rounding::HalfAwayFromZero)
            .map_err(|e| Error::internal(e.to_string()))?
            .minor();
        let slot = out.entry(meter.to_owned()).or_insert(0);
        *slot = slot
            .checked_add(minor)
            .ok_or_else(|| overflow(margins::MarginError::Overflow))?;
    }
    Ok(out)
}
