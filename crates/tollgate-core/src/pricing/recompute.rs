//! A customer recomputing the usage lines of its invoice from the events themselves (the ones
//! the ledger proves were recorded, `tollgate ledger recompute-invoice`): the same meters, the
//! same prices and the same [`assemble`](super::assemble) as the bill run, so a line that differs
//! is a line the events do not support.

use super::invoice::{InvoiceLine, InvoiceRequest, LineKind, assemble};
use super::{
    BillingPeriod, EventsUsageError, MeterUsage, PricingError, divide_by, usage_from_events,
};
use crate::catalog::Catalog;
use crate::event::Event;
use crate::meter::{Contribution, ContributionValue, contribution};

/// Why usage lines could not be recomputed.
#[derive(Debug, thiserror::Error)]
pub enum RecomputeError {
    #[error("the plan {0} is not in the catalog")]
    UnknownPlan(String),
    #[error(transparent)]
    Usage(#[from] EventsUsageError),
    #[error("meter {meter}: {message}")]
    Meter { meter: String, message: String },
    #[error(transparent)]
    Pricing(#[from] PricingError),
}

/// The usage lines (`LineKind::Usage`) an invoice closing `period` on `plan` has for these
/// events. `events` are in the bill run's order, time then event id: a price charged per
/// transaction rates each event in that order.
pub fn usage_lines(
    catalog: &Catalog,
    plan: &str,
    events: &[Event],
    period: &BillingPeriod,
) -> Result<Vec<InvoiceLine>, RecomputeError> {
    let plan_def = catalog
        .plans
        .get(plan)
        .ok_or_else(|| RecomputeError::UnknownPlan(plan.to_owned()))?;
    let mut usage = usage_from_events(catalog, events, period)?.usage;
    for price in plan_def.prices.iter().filter(|p| p.model.per_transaction()) {
        let Some(meter) = catalog.meters.get(&price.meter) else {
            continue;
        };
        let fail = |message: String| RecomputeError::Meter {
            meter: price.meter.clone(),
            message,
        };
        let mut values = Vec::new();
        for event in events
            .iter()
            .filter(|e| period.start <= e.timestamp && e.timestamp < period.end)
        {
            if let Some(Contribution {
                value: ContributionValue::Add(value),
                ..
            }) = contribution(&price.meter, meter, event).map_err(|e| fail(e.to_string()))?
            {
                values.push(divide_by(value, meter.divide_by)?);
            }
        }
        usage.insert(price.meter.clone(), MeterUsage::transactions(values)?);
    }
    let request = InvoiceRequest {
        plan: Some(plan.to_owned()),
        closing: Some(*period),
        usage,
        ..InvoiceRequest::default()
    };
    let draft = assemble(catalog, &request)?;
    Ok(draft
        .lines
        .into_iter()
        .filter(|l| matches!(l.kind, LineKind::Usage { .. }))
        .collect())
}

/// A usage line as text, the same from a stored invoice's JSON and from a recomputed
/// [`InvoiceLine`] (serialized), so the two compare field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageLineText {
    pub meter: String,
    pub description: String,
    pub quantity: String,
    pub amount: String,
}

impl UsageLineText {
    /// The line's text, or `None` when `line` is not a usage line.
    pub fn from_json(line: &serde_json::Value) -> Option<Self> {
        if line.pointer("/kind/type")?.as_str()? != "usage" {
            return None;
        }
        let text = |key: &str| match line.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        Some(UsageLineText {
            meter: line.pointer("/kind/meter")?.as_str()?.to_owned(),
            description: text("description"),
            quantity: text("quantity"),
            amount: text("amount"),
        })
    }
}
