//! Taxes: per line, after discounts, summed and rounded once per rate.
//!
//! Which rates apply to a line is asked of a [`TaxRates`] provider. [`CatalogTaxes`] answers from
//! the catalog's `taxes` section and the customer's own [`CustomerTax`]; a tax service can be
//! plugged in later by resolving its answer before assembly and implementing the same trait (no
//! network here: pricing is pure).
//!
//! How an invoice is taxed:
//! 1. each taxable line (everything but discounts, tax lines and a carried-forward credit) gets its
//!    rates from the provider;
//! 2. each discount is spread over the lines it targets in proportion to their amounts, so a line's
//!    taxable amount is what is left of it after discounts (exact, not rounded);
//! 3. per rate, the taxable amounts are summed (an exclusive rate taxes them; an inclusive rate
//!    taxes the net part of them, `amount / (1 + sum of the line's inclusive percents)`), a rate
//!    whose sum is not positive taxes nothing, and the tax is rounded once, with the catalog's
//!    rounding;
//! 4. an exclusive tax becomes a line of its own (so the total stays the sum of the lines); an
//!    inclusive tax is already inside the lines and is only reported.
//!
//! An exempt customer, or one under reverse charge, pays no tax; the invoice carries a note saying
//! which (an inclusive price is not reduced: it is the price).

use indexmap::IndexMap;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::discount::InvoiceDiscount;
use super::format::{percent, price as money_text};
use super::invoice::{InvoiceLine, LineKind};
use super::{PricingError, checked_add, checked_div, checked_mul};
use crate::catalog::{Catalog, TaxRate};
use crate::money::{Currency, Money, Rounding};

/// How a customer is taxed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxTreatment {
    /// The rates the catalog (or the customer's own `rates`) gives.
    #[default]
    Standard,
    /// No tax is charged (e.g. a charity or a public body).
    Exempt,
    /// No tax is charged; the customer accounts for it (B2B across EU borders).
    ReverseCharge,
}

/// A customer's tax settings, as the store keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerTax {
    #[serde(default)]
    pub treatment: TaxTreatment,
    /// Rates (catalog keys) that replace the catalog's for every line of this customer, e.g. the
    /// VAT of the customer's country. `None` follows the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<Vec<String>>,
}

/// A rate that applies to a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedRate {
    pub key: String,
    pub rate: TaxRate,
}

/// Answers which tax rates apply to an invoice line. The one interface a tax provider implements.
pub trait TaxRates {
    /// The rates of one line of an invoice for `plan`; all inclusive or all exclusive.
    fn rates_for(
        &self,
        plan: Option<&str>,
        kind: &LineKind,
    ) -> Result<Vec<AppliedRate>, PricingError>;
}

/// Rates from the catalog's `taxes` section, replaced by the customer's own rates when it has
/// some.
#[derive(Debug, Clone, Copy)]
pub struct CatalogTaxes<'a> {
    pub catalog: &'a Catalog,
    pub customer: &'a CustomerTax,
}

impl TaxRates for CatalogTaxes<'_> {
    fn rates_for(
        &self,
        plan: Option<&str>,
        kind: &LineKind,
    ) -> Result<Vec<AppliedRate>, PricingError> {
        let taxes = &self.catalog.taxes;
        let keys = match (&self.customer.rates, kind) {
            (Some(own), _) => own,
            (None, LineKind::Product { product }) => {
                taxes.products.get(product).unwrap_or(&taxes.default)
            }
            (None, _) => plan
                .and_then(|p| taxes.plans.get(p))
                .unwrap_or(&taxes.default),
        };
        let rates = keys
            .iter()
            .map(|key| {
                let rate = taxes
                    .rates
                    .get(key)
                    .ok_or_else(|| PricingError::UnknownTaxRate(key.clone()))?;
                Ok(AppliedRate {
                    key: key.clone(),
                    rate: rate.clone(),
                })
            })
            .collect::<Result<Vec<_>, PricingError>>()?;
        let inclusive = rates.iter().filter(|r| r.rate.inclusive).count();
        if inclusive != 0 && inclusive != rates.len() {
            return Err(PricingError::InvalidRequest(
                "rates on one line must be all inclusive or all exclusive",
            ));
        }
        Ok(rates)
    }
}

/// The tax of one rate on an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaxAmount {
    /// The rate's key in the catalog.
    pub tax: String,
    pub name: String,
    pub percent: Decimal,
    pub inclusive: bool,
    /// The amount taxed (net of the tax itself for an inclusive rate), exact.
    pub taxable: Decimal,
    /// The tax, rounded once.
    pub amount: Money,
}

/// What [`apply_taxes`] adds to an invoice beyond its tax lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaxSummary {
    pub taxes: Vec<TaxAmount>,
    pub note: Option<String>,
}

fn taxable(kind: &LineKind) -> bool {
    !matches!(
        kind,
        LineKind::Discount { .. } | LineKind::CreditCarriedForward | LineKind::Tax { .. }
    )
}

/// Taxes the lines (see the module documentation) and appends a line per exclusive rate.
pub(crate) fn apply_taxes(
    lines: &mut Vec<InvoiceLine>,
    plan: Option<&str>,
    discounts: &[InvoiceDiscount],
    treatment: TaxTreatment,
    provider: &dyn TaxRates,
    currency: Currency,
    rounding: Rounding,
) -> Result<TaxSummary, PricingError> {
    let note = match treatment {
        TaxTreatment::Standard => None,
        TaxTreatment::Exempt => Some("Tax exempt: no tax charged.".to_owned()),
        TaxTreatment::ReverseCharge => {
            Some("Reverse charge: no tax charged; the customer accounts for the tax.".to_owned())
        }
    };
    if treatment != TaxTreatment::Standard {
        return Ok(TaxSummary {
            taxes: Vec::new(),
            note,
        });
    }
    // The taxable amount of each line after the discounts spread over it.
    let mut bases: Vec<Option<Decimal>> = lines
        .iter()
        .map(|l| taxable(&l.kind).then(|| l.amount.to_decimal()))
        .collect();
    for line in lines.iter() {
        let LineKind::Discount { coupon } = &line.kind else {
            continue;
        };
        let Some(discount) = discounts.iter().find(|d| &d.code == coupon) else {
            continue;
        };
        let targets: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                taxable(&l.kind) && l.amount.minor() > 0 && discount.applies_to.matches(&l.kind)
            })
            .map(|(i, _)| i)
            .collect();
        let weight = targets.iter().try_fold(Decimal::ZERO, |acc, i| {
            checked_add(acc, lines[*i].amount.to_decimal())
        })?;
        if weight.is_zero() {
            continue;
        }
        let off = line.amount.to_decimal();
        for i in targets {
            let share = checked_div(checked_mul(off, lines[i].amount.to_decimal())?, weight)?;
            if let Some(base) = bases[i].as_mut() {
                *base = checked_add(*base, share)?;
            }
        }
    }
    // Per rate: the taxable sum and the exact tax.
    let mut per_rate: IndexMap<String, (TaxRate, Decimal, Decimal)> = IndexMap::new();
    for (line, base) in lines.iter().zip(&bases) {
        let Some(base) = *base else { continue };
        let rates = provider.rates_for(plan, &line.kind)?;
        let inclusive_sum = rates
            .iter()
            .filter(|r| r.rate.inclusive)
            .try_fold(Decimal::ZERO, |acc, r| checked_add(acc, r.rate.percent))?;
        let net = checked_div(
            checked_mul(base, Decimal::ONE_HUNDRED)?,
            checked_add(Decimal::ONE_HUNDRED, inclusive_sum)?,
        )?;
        for applied in rates {
            let tax = checked_div(
                checked_mul(net, applied.rate.percent)?,
                Decimal::ONE_HUNDRED,
            )?;
            let entry =
                per_rate
                    .entry(applied.key)
                    .or_insert((applied.rate, Decimal::ZERO, Decimal::ZERO));
            entry.1 = checked_add(entry.1, net)?;
            entry.2 = checked_add(entry.2, tax)?;
        }
    }
    let mut taxes = Vec::new();
    for (key, (rate, taxable, exact)) in per_rate {
        if taxable <= Decimal::ZERO {
            continue;
        }
        let amount = Money::round(exact, currency, rounding)?;
        if !rate.inclusive {
            lines.push(InvoiceLine {
                kind: LineKind::Tax { tax: key.clone() },
                description: format!(
                    "{} ({}) on {}",
                    rate.name,
                    percent(rate.percent),
                    money_text(Money::round(taxable, currency, rounding)?.to_decimal())
                ),
                quantity: Decimal::ONE,
                unit_price: None,
                period: None,
                exact,
                amount,
            });
        }
        taxes.push(TaxAmount {
            tax: key,
            name: rate.name,
            percent: rate.percent,
            inclusive: rate.inclusive,
            taxable,
            amount,
        });
    }
    Ok(TaxSummary { taxes, note })
}
