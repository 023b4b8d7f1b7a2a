//! Progressive billing (`progressive_billing` of a plan, docs/INVOICES.md): the usage of a period
//! is invoiced as soon as its amount reaches a threshold, and later invoices of the same period
//! bill only what the earlier ones did not, so the period's usage is billed exactly once.
//!
//! Amounts per meter are the plan's usage lines as the period-end invoice rates them, each
//! rounded once; a charge's `minimum` is left to the period-end invoice (it is a commitment for
//! the whole period).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::format::price as money_text;
use super::invoice::{Charge, LineKind};
use super::{BillingPeriod, MeterUsage, PricingError, checked_add, checked_sub, rate};
use crate::catalog::{Catalog, Plan};
use crate::money::Money;

/// The plan's usage of a period so far, per meter: the sum of each usage line rated from
/// `usage` and rounded once, as the invoice that closes the period would round it.
pub fn usage_amounts(
    catalog: &Catalog,
    plan: &Plan,
    usage: &BTreeMap<String, MeterUsage>,
) -> Result<BTreeMap<String, Decimal>, PricingError> {
    let none = MeterUsage::default();
    let mut amounts = BTreeMap::new();
    for price in &plan.prices {
        let used = usage.get(&price.meter).unwrap_or(&none);
        for line in rate(price, used)? {
            let rounded = Money::round(line.amount, catalog.currency, catalog.rounding)?;
            let sum: &mut Decimal = amounts.entry(price.meter.clone()).or_default();
            *sum = checked_add(*sum, rounded.to_decimal())?;
        }
    }
    Ok(amounts)
}

/// The sum of `amounts`.
pub fn total_of(amounts: &BTreeMap<String, Decimal>) -> Result<Decimal, PricingError> {
    amounts
        .values()
        .try_fold(Decimal::ZERO, |sum, a| checked_add(sum, *a))
}

fn meter_name<'c>(catalog: &'c Catalog, meter: &'c str) -> &'c str {
    catalog
        .meters
        .get(meter)
        .and_then(|m| m.name.as_deref())
        .unwrap_or(meter)
}

/// The lines of a progressive invoice of `period`: per meter, the usage so far (`to_date`) less
/// what earlier invoices of the period billed (`billed`); meters with nothing new are left out.
pub fn progressive_charges(
    catalog: &Catalog,
    to_date: &BTreeMap<String, Decimal>,
    billed: &BTreeMap<String, Decimal>,
    period: &BillingPeriod,
) -> Result<Vec<Charge>, PricingError> {
    let mut charges = Vec::new();
    for (meter, amount) in to_date {
        let before = billed.get(meter).copied().unwrap_or_default();
        let new = checked_sub(*amount, before)?;
        if new.is_zero() {
            continue;
        }
        let description = if before.is_zero() {
            format!(
                "{}: usage of {period} so far: {}",
                meter_name(catalog, meter),
                money_text(*amount)
            )
        } else {
            format!(
                "{}: usage of {period} so far: {}, less {} billed before",
                meter_name(catalog, meter),
                money_text(*amount),
                money_text(before)
            )
        };
        charges.push(Charge {
            kind: LineKind::Usage {
                meter: meter.clone(),
            },
            description,
            quantity: Decimal::ONE,
            unit_price: Some(new),
            amount: new,
            period: Some(*period),
        });
    }
    Ok(charges)
}

/// What the invoice that closes `period` subtracts for the progressive invoices of the period:
/// one negative usage line per meter they billed.
pub fn already_billed(
    catalog: &Catalog,
    billed: &BTreeMap<String, Decimal>,
    period: &BillingPeriod,
) -> Vec<Charge> {
    billed
        .iter()
        .filter(|(_, amount)| !amount.is_zero())
        .map(|(meter, amount)| Charge {
            kind: LineKind::Usage {
                meter: meter.clone(),
            },
            description: format!(
                "{}: billed on progressive invoices of {period}",
                meter_name(catalog, meter)
            ),
            quantity: Decimal::ONE,
            unit_price: Some(-*amount),
            amount: -*amount,
            period: Some(*period),
        })
        .collect()
}
