//! Pricing: turns a period's usage into exact invoice lines.
//!
//! The engine is split the way an invoice is read:
//! - [`rate`] prices one meter's usage under one [`UsagePrice`](crate::catalog::UsagePrice) and
//!   returns exact, self-explaining [`RatedLine`]s (no rounding yet);
//! - [`assemble`] builds an [`InvoiceDraft`] from a plan, the periods it closes and opens, usage,
//!   add-ons, one-time products, a setup fee, a minimum, discounts and prepaid credit. Every line is
//!   rounded exactly once, there, and the total is the sum of the rounded lines;
//! - [`prorate`], [`addon_quantity_change`] and [`plan_change`] price partial periods to the second;
//! - [`time_weighted`] and [`divide_by`] turn raw levels and sums into billable units;
//! - [`usage_from_events`] recomputes a period's usage from raw events (quotes from a file,
//!   evidence reports, recomputing an invoice), never used by the bill run;
//! - [`quote`] and [`recommend`] answer "what would this cost" without any customer.
//!
//! Everything here is pure: no I/O, no clock. Time comes in as `jiff::Timestamp` arguments.

// Money paths: no `as` casts (they truncate or wrap silently); use checked conversions.
#![deny(clippy::as_conversions)]

mod discount;
mod events;
mod format;
mod invoice;
mod parties;
mod progressive;
mod proration;
mod quote;
mod rate;
mod recompute;
mod tax;
mod usage;

use crate::code::Code;
use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, MoneyError};

pub use discount::{AppliesTo, InvoiceDiscount};
pub use events::{EventsUsage, EventsUsageError, usage_from_events};
pub use invoice::{
    Charge, InvoiceDraft, InvoiceLine, InvoiceRequest, LineKind, assemble, assemble_with_taxes,
};
pub use parties::{InvoiceParties, Party, document_number};
pub use progressive::{already_billed, progressive_charges, total_of, usage_amounts};
pub use proration::{
    addon_quantity_change, part_of_period, plan_change, plan_change_within, prorate,
    proration_fraction,
};
pub use quote::{PlanCost, Quote, quote, recommend};
pub use rate::{RatedLine, rate};
pub use recompute::{RecomputeError, UsageLineText, usage_lines};
pub use tax::{AppliedRate, CatalogTaxes, CustomerTax, TaxAmount, TaxRates, TaxTreatment};
pub use usage::{divide_by, time_weighted};

/// The values of a meter's group-by dimensions for one group, e.g. `{tier: T2, model: gpt-4}`.
pub type Group = BTreeMap<String, String>;

/// A meter's aggregated value over one period: the total, and the same value split by the meter's
/// group-by dimensions when it has any.
///
/// The meter layer produces this from its incremental aggregates; pricing never sees raw events.
/// `total` is what non-dimensional prices rate; `groups` is what [`PriceModel::Dimensional`]
/// rates. When both are given they are expected to agree (the total is the sum of the groups).
///
/// [`PriceModel::Dimensional`]: crate::catalog::PriceModel::Dimensional
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterUsage {
    pub total: Decimal,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupUsage>,
    /// Each event's value, in time order, for prices that charge per transaction
    /// ([`PriceModel::per_transaction`](crate::catalog::PriceModel::per_transaction)); `None`
    /// when only the total is known (a quote): the total is then rated as one transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<Vec<Decimal>>,
}

/// The value of one group of a meter over the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupUsage {
    pub group: Group,
    pub value: Decimal,
}

impl MeterUsage {
    /// Usage without groups.
    pub fn total(total: Decimal) -> Self {
        MeterUsage {
            total,
            groups: Vec::new(),
            transactions: None,
        }
    }

    /// Usage as transactions, in time order; the total is their sum.
    pub fn transactions(values: Vec<Decimal>) -> Result<Self, PricingError> {
        let total = values
            .iter()
            .try_fold(Decimal::ZERO, |sum, v| checked_add(sum, *v))?;
        Ok(MeterUsage {
            total,
            groups: Vec::new(),
            transactions: Some(values),
        })
    }

    /// Usage split into groups; the total is their sum.
    pub fn grouped<I: IntoIterator<Item = (Group, Decimal)>>(
        groups: I,
    ) -> Result<Self, PricingError> {
        let mut usage = MeterUsage::default();
        for (group, value) in groups {
            usage.total = checked_add(usage.total, value)?;
            usage.groups.push(GroupUsage { group, value });
        }
        Ok(usage)
    }
}

/// A group from `(dimension, value)` pairs: `group(&[("tier", "T2"), ("model", "gpt-4")])`.
pub fn group(pairs: &[(&str, &str)]) -> Group {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A half-open span of time `[start, end)` that a fee or a usage total belongs to: a billing
/// period (a calendar month or year in UTC) or any part of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BillingPeriod {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl BillingPeriod {
    /// A period; `end` must be after `start`.
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Self, PricingError> {
        if end <= start {
            return Err(PricingError::InvalidPeriod { start, end });
        }
        Ok(BillingPeriod { start, end })
    }

    /// Length in whole seconds, the unit of proration.
    pub fn seconds(&self) -> i64 {
        self.end.as_second() - self.start.as_second()
    }
}

impl fmt::Display for BillingPeriod {
    /// `2026-11-01 to 2026-11-30` for whole days (the last day shown is the last one included),
    /// full timestamps otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole_days = self.start.as_second() % 86_400 == 0 && self.end.as_second() % 86_400 == 0;
        if whole_days {
            let last = self.end - jiff::SignedDuration::from_secs(1);
            write!(
                f,
                "{} to {}",
                self.start.strftime("%Y-%m-%d"),
                last.strftime("%Y-%m-%d")
            )
        } else {
            write!(f, "{} to {}", self.start, self.end)
        }
    }
}

/// Why a price, an invoice or a quote could not be computed.
///
/// Messages are lowercase and stable; [`PricingError::code`] gives a machine-readable code for the
/// HTTP edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("unknown plan {0:?}")]
    UnknownPlan(String),
    #[error("unknown meter {0:?}")]
    UnknownMeter(String),
    #[error("unknown add-on {0:?}")]
    UnknownAddon(String),
    #[error("unknown product {0:?}")]
    UnknownProduct(String),
    #[error("add-on {addon:?} is not available on plan {plan:?}")]
    AddonNotOnPlan { plan: String, addon: String },
    #[error("meter {meter:?} has no rate for {dimension} {value:?}")]
    UnpricedDimension {
        meter: String,
        dimension: String,
        value: String,
    },
    #[error("quantity of {what} must not be negative, got {quantity}")]
    NegativeQuantity { what: String, quantity: Decimal },
    #[error("invalid price for meter {meter:?}: {reason}")]
    InvalidPrice { meter: String, reason: String },
    #[error("invalid period: end {end} is not after start {start}")]
    InvalidPeriod { start: Timestamp, end: Timestamp },
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("plan change proration is only defined for base fees billed in advance")]
    ArrearsProration,
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    #[error("cannot divide by zero")]
    DivisionByZero,
    #[error("amount out of range")]
    Overflow,
    #[error("unknown tax rate {0:?}")]
    UnknownTaxRate(String),
}

impl PricingError {
    /// A stable snake_case code, for problem+json responses and logs.
    pub fn code(&self) -> Code {
        match self {
            PricingError::UnknownPlan(_) => Code::UnknownPlan,
            PricingError::UnknownMeter(_) => Code::UnknownMeter,
            PricingError::UnknownAddon(_) => Code::UnknownAddon,
            PricingError::UnknownProduct(_) => Code::UnknownProduct,
            PricingError::AddonNotOnPlan { .. } => Code::AddonNotOnPlan,
            PricingError::UnpricedDimension { .. } => Code::UnpricedDimension,
            PricingError::NegativeQuantity { .. } => Code::NegativeQuantity,
            PricingError::InvalidPrice { .. } => Code::InvalidPrice,
            PricingError::InvalidPeriod { .. } => Code::InvalidPeriod,
            PricingError::CurrencyMismatch(..) => Code::CurrencyMismatch,
            PricingError::ArrearsProration => Code::ArrearsProration,
            PricingError::InvalidRequest(_) => Code::InvalidRequest,
            PricingError::DivisionByZero => Code::DivisionByZero,
            PricingError::Overflow => Code::Overflow,
            PricingError::UnknownTaxRate(_) => Code::UnknownTaxRate,
        }
    }
}

impl From<MoneyError> for PricingError {
    fn from(e: MoneyError) -> Self {
        match e {
            MoneyError::CurrencyMismatch(a, b) => PricingError::CurrencyMismatch(a, b),
            MoneyError::Overflow | MoneyError::TooPrecise(..) => PricingError::Overflow,
        }
    }
}

// Checked decimal arithmetic. `Decimal`'s operators panic on overflow; a price times an absurd
// usage value must become an error the caller can report, never a crashed bill run.

pub(crate) fn checked_add(a: Decimal, b: Decimal) -> Result<Decimal, PricingError> {
    a.checked_add(b).ok_or(PricingError::Overflow)
}

pub(crate) fn checked_sub(a: Decimal, b: Decimal) -> Result<Decimal, PricingError> {
    a.checked_sub(b).ok_or(PricingError::Overflow)
}

pub(crate) fn checked_mul(a: Decimal, b: Decimal) -> Result<Decimal, PricingError> {
    a.checked_mul(b).ok_or(PricingError::Overflow)
}

pub(crate) fn checked_div(a: Decimal, b: Decimal) -> Result<Decimal, PricingError> {
    a.checked_div(b).ok_or(PricingError::Overflow)
}
