//! Invoice assembly: from a plan, the periods an invoice closes and opens, usage, add-ons,
//! products, fees, discounts and prepaid credit to lines rounded once and a total that is their
//! sum.
//!
//! Order of operations, and why:
//! 1. charges (base, usage, add-ons, products, setup fee, adjustments) are computed exactly and each
//!    rounded once, to minor units, as it becomes a line;
//! 2. a minimum commitment tops up the plan's recurring charges (base, usage, add-ons) on an
//!    invoice that closes a period; the catalog defines it as "the invoice is topped up to it", so
//!    on an invoice that also opens the next period the next base fee counts towards it;
//! 3. discounts are applied in the order given, each on what is left after the previous ones, so no
//!    discount ever takes the invoice below zero;
//! 4. taxes are computed per line on what the discounts left, summed and rounded per rate, and
//!    each exclusive rate becomes a line (see [`super::tax`]);
//! 5. a negative sum (a plan-change credit larger than the charges) is moved to the credit balance
//!    by an explicit line, so the total is never negative and still the sum of the lines;
//! 6. the customer's balance (credit notes credited to it) pays the total, then prepaid credit
//!    pays what is left: both reduce the amount due, not the invoice (Lago's order: subtotal,
//!    coupons, tax, credit notes, prepaid credit).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::discount::{InvoiceDiscount, apply_discounts};
use super::format::{price as money_text, qty};
use super::parties::InvoiceParties;
use super::tax::{CatalogTaxes, CustomerTax, TaxAmount, TaxRates, TaxSummary, apply_taxes};
use super::{BillingPeriod, MeterUsage, PricingError, checked_mul, checked_sub, rate};
use crate::catalog::{Catalog, Interval, Plan, Timing, UsagePrice};
use crate::money::{Currency, Money, Rounding};
use crate::period::Cadence;

/// What a line is for; discounts target lines by it and reports group by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LineKind {
    Base {
        plan: String,
    },
    Usage {
        meter: String,
    },
    Addon {
        addon: String,
    },
    Product {
        product: String,
    },
    SetupFee {
        plan: String,
    },
    /// A prorated charge or credit for part of a period (seats added, plan changed).
    Proration,
    /// Brings the period's recurring charges up to the plan's minimum.
    MinimumTopUp,
    Discount {
        coupon: String,
    },
    /// Moves a negative remainder to the customer's credit balance.
    CreditCarriedForward,
    /// An exclusive tax rate's tax on the invoice's taxable lines.
    Tax {
        tax: String,
    },
}

/// An exact charge (or credit, when negative) that is not yet rounded: what proration returns,
/// and what callers pass as [`InvoiceRequest::adjustments`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub kind: LineKind,
    pub description: String,
    pub quantity: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Decimal>,
    pub amount: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<BillingPeriod>,
}

/// One invoice line: the exact amount it came from, and that amount rounded once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceLine {
    pub kind: LineKind,
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Option<Decimal>,
    pub period: Option<BillingPeriod>,
    /// Before rounding.
    pub exact: Decimal,
    /// Rounded to minor units: the amount that counts.
    pub amount: Money,
}

/// Everything one invoice is built from. `Default` gives an empty request: set what applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvoiceRequest {
    /// The plan; `None` for an invoice of one-time products only.
    pub plan: Option<String>,
    /// The period this invoice closes: its usage and its in-arrears fees are billed.
    pub closing: Option<BillingPeriod>,
    /// The period this invoice opens: its in-advance fees are billed (the next period, or the
    /// first one on a subscription's first invoice).
    pub opening: Option<BillingPeriod>,
    /// The closing period's usage per meter; meters not listed had none.
    pub usage: BTreeMap<String, MeterUsage>,
    /// Add-on quantities on the subscription (total units; the plan's included units are free).
    pub addons: BTreeMap<String, Decimal>,
    /// One-time products bought, with quantities.
    pub products: BTreeMap<String, Decimal>,
    /// Bills the plan's setup fee (a subscription's first invoice).
    pub first_invoice: bool,
    /// Exact charges computed elsewhere, e.g. by [`super::prorate`] or [`super::plan_change`].
    pub adjustments: Vec<Charge>,
    /// Discounts that apply to this invoice, applied in this order.
    pub discounts: Vec<InvoiceDiscount>,
    /// Prepaid credit available to pay this invoice.
    pub credit_balance: Option<Money>,
    /// The whole billing period that `opening` is a shorter part of (a first period started
    /// between two calendar boundaries): fees billed for `opening` are prorated to it, by seconds.
    pub opening_full: Option<BillingPeriod>,
    /// The same for `closing` (fees billed in arrears).
    pub closing_full: Option<BillingPeriod>,
    /// The whole period a plan minimum is for, when `closing` is a shorter part of it (a
    /// prorated first period, a subscription canceled mid-period): the minimum is prorated to
    /// `closing` by seconds, as a base fee is. `None`: `closing_full`, else the minimum whole.
    pub minimum_full: Option<BillingPeriod>,
    /// The customer's balance (credit notes credited to it): pays the total after taxes, before
    /// prepaid credit.
    pub customer_balance: Option<Money>,
    /// How the customer is taxed; the default follows the catalog's `taxes`.
    pub tax: CustomerTax,
    /// Who the invoice is from and to, and its terms: carried into the draft unchanged.
    pub parties: Option<InvoiceParties>,
}

/// An invoice before it is issued: lines, total, and how prepaid credit pays it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceDraft {
    pub currency: Currency,
    pub plan: Option<String>,
    pub closing: Option<BillingPeriod>,
    pub opening: Option<BillingPeriod>,
    pub lines: Vec<InvoiceLine>,
    /// Sum of the lines before discounts.
    pub subtotal: Money,
    /// Tax per rate, exclusive and inclusive, in the order the rates first apply.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub taxes: Vec<TaxAmount>,
    /// Sum of `taxes` (the exclusive ones are lines; the inclusive ones are inside the lines).
    #[serde(skip_serializing_if = "Money::is_zero")]
    pub tax_total: Money,
    /// Why no tax was charged (exemption, reverse charge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_note: Option<String>,
    /// Sum of all lines; never negative.
    pub total: Money,
    /// The customer's balance (credit notes credited to it) used to pay `total`, before
    /// prepaid credit.
    #[serde(skip_serializing_if = "Money::is_zero")]
    pub balance_applied: Money,
    /// Prepaid credit used to pay what the balance left of `total`.
    pub credit_applied: Money,
    /// What the customer owes: `total - balance_applied - credit_applied`.
    pub amount_due: Money,
    /// The credit balance after this invoice (what was left, plus any negative remainder).
    pub credit_balance: Money,
    /// Seller, buyer and terms, as the request gave them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parties: Option<InvoiceParties>,
}

/// Builds an invoice draft. See the module documentation for the order of operations.
pub fn assemble(catalog: &Catalog, request: &InvoiceRequest) -> Result<InvoiceDraft, PricingError> {
    assemble_in(catalog, request, None)
}

/// [`assemble`], with the tax rates of each line answered by `taxes` instead of the catalog.
pub fn assemble_with_taxes(
    catalog: &Catalog,
    request: &InvoiceRequest,
    taxes: &dyn TaxRates,
) -> Result<InvoiceDraft, PricingError> {
    assemble_taxed(catalog, request, None, taxes)
}

/// [`assemble`], with recurring fees converted to `interval` instead of the plan's own (a quote
/// comparing a yearly plan with monthly ones compares their monthly cost).
pub(crate) fn assemble_in(
    catalog: &Catalog,
    request: &InvoiceRequest,
    interval: Option<Interval>,
) -> Result<InvoiceDraft, PricingError> {
    let taxes = CatalogTaxes {
        catalog,
        customer: &request.tax,
    };
    assemble_taxed(catalog, request, interval, &taxes)
}

fn assemble_taxed(
    catalog: &Catalog,
    request: &InvoiceRequest,
    interval: Option<Interval>,
    taxes: &dyn TaxRates,
) -> Result<InvoiceDraft, PricingError> {
    let currency = catalog.currency;
    let round = |charge: Charge| round_line(charge, currency, catalog.rounding);
    if let Some(meter) = request
        .usage
        .keys()
        .find(|m| !catalog.meters.contains_key(*m))
    {
        return Err(PricingError::UnknownMeter(meter.clone()));
    }
    let has_usage = request
        .usage
        .values()
        .any(|u| !u.total.is_zero() || !u.groups.is_empty());
    if request.closing.is_none() && has_usage {
        return Err(PricingError::InvalidRequest(
            "usage needs the period it closes",
        ));
    }
    let plan = match &request.plan {
        Some(key) => {
            let plan = catalog
                .plans
                .get(key)
                .ok_or_else(|| PricingError::UnknownPlan(key.clone()))?;
            Some((key.as_str(), plan))
        }
        None if request.addons.values().any(|q| !q.is_zero()) => {
            return Err(PricingError::InvalidRequest("add-ons need a plan"));
        }
        None => None,
    };

    let recurring = match plan {
        Some((key, plan)) => plan_charges(catalog, key, plan, request, interval)?
            .into_iter()
            .map(round)
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let mut lines = recurring.clone();
    for charge in product_charges(catalog, &request.products)? {
        lines.push(round(charge)?);
    }
    if let Some((key, plan)) = plan
        && request.first_invoice
        && let Some(fee) = plan.setup_fee
    {
        lines.push(round(Charge {
            kind: LineKind::SetupFee {
                plan: key.to_owned(),
            },
            description: format!("{}: one-time setup fee", label(key, plan)),
            quantity: Decimal::ONE,
            unit_price: Some(fee),
            amount: fee,
            period: None,
        })?);
    }
    for adjustment in &request.adjustments {
        lines.push(round(adjustment.clone())?);
    }
    if let Some((_, plan)) = plan
        && let (Some(minimum), Some(period)) = (plan.minimum, request.closing)
    {
        let so_far = sum(currency, &recurring)?.to_decimal();
        let (minimum_here, share) = super::proration::part_of_period(
            minimum,
            &period,
            request.minimum_full.or(request.closing_full),
            currency.minor_digits(),
        )?;
        let commitment = match &share {
            Some(share) => format!(
                "minimum commitment of {} for {period} (prorated: {} x {share})",
                money_text(minimum_here),
                money_text(minimum)
            ),
            None => format!("minimum commitment of {} for {period}", money_text(minimum)),
        };
        if so_far < minimum_here {
            let top_up = checked_sub(minimum_here, so_far)?;
            lines.push(round(Charge {
                kind: LineKind::MinimumTopUp,
                description: format!(
                    "{commitment}: charges {} topped up by {}",
                    money_text(so_far),
                    money_text(top_up)
                ),
                quantity: Decimal::ONE,
                unit_price: Some(top_up),
                amount: top_up,
                period: Some(period),
            })?);
        }
    }

    let subtotal = sum(currency, &lines)?;
    apply_discounts(&mut lines, &request.discounts, currency, catalog.rounding)?;
    let tax = apply_taxes(
        &mut lines,
        request.plan.as_deref(),
        &request.discounts,
        request.tax.treatment,
        taxes,
        currency,
        catalog.rounding,
    )?;
    let carried = carry_negative_remainder(&mut lines, currency)?;
    settle(request, currency, lines, subtotal, carried, tax)
}

/// The plan's recurring charges: the base fee and add-ons for the period their timing bills
/// (`opening` in advance, `closing` in arrears), and the closing period's usage.
fn plan_charges(
    catalog: &Catalog,
    key: &str,
    plan: &Plan,
    request: &InvoiceRequest,
    interval: Option<Interval>,
) -> Result<Vec<Charge>, PricingError> {
    let billing = interval.map_or(plan.cadence(), Cadence::from);
    let (fee_period, fee_full) = match plan.base.as_ref().map_or(Timing::InAdvance, |b| b.timing) {
        Timing::InAdvance => (request.opening, request.opening_full),
        Timing::InArrears => (request.closing, request.closing_full),
    };
    let mut charges = Vec::new();
    if let (Some(base), Some(period)) = (&plan.base, fee_period) {
        let whole = per_interval(base.amount, Cadence::of(base), billing)?;
        let (amount, share) = super::proration::part_of_period(
            whole,
            &period,
            fee_full,
            catalog.currency.minor_digits(),
        )?;
        let mut description = format!("{}: base fee for {period}", label(key, plan));
        if Cadence::of(base) != billing {
            description.push_str(&format!(
                " ({})",
                share_note(base.amount, Cadence::of(base), billing)
            ));
        }
        if let Some(share) = share {
            description.push_str(&format!(" (prorated: {} x {share})", money_text(whole)));
        }
        charges.push(Charge {
            kind: LineKind::Base {
                plan: key.to_owned(),
            },
            description,
            quantity: Decimal::ONE,
            unit_price: Some(amount),
            amount,
            period: Some(period),
        });
    }
    if let Some(period) = request.closing {
        let none = MeterUsage::default();
        for price in &plan.prices {
            if !catalog.meters.contains_key(&price.meter) {
                return Err(PricingError::UnknownMeter(price.meter.clone()));
            }
            let usage = request.usage.get(&price.meter).unwrap_or(&none);
            // A line says the meter's display name unless the price has a description.
            let display = catalog
                .meters
                .get(&price.meter)
                .and_then(|m| m.name.clone());
            let named = match (&price.description, display) {
                (None, Some(name)) => Some(UsagePrice {
                    description: Some(name),
                    ..price.clone()
                }),
                _ => None,
            };
            let priced = named.as_ref().unwrap_or(price);
            let mut charged = Decimal::ZERO;
            for rated in rate(priced, usage)? {
                // What the line will be, rounded once, is what counts towards a minimum.
                let line = Money::round(rated.amount, catalog.currency, catalog.rounding)?;
                charged = super::checked_add(charged, line.to_decimal())?;
                charges.push(Charge {
                    kind: LineKind::Usage { meter: rated.meter },
                    description: rated.description,
                    quantity: rated.quantity,
                    unit_price: rated.unit_price,
                    amount: rated.amount,
                    period: Some(period),
                });
            }
            if let Some(minimum) = price.minimum {
                charges.extend(charge_minimum(
                    priced,
                    minimum,
                    charged,
                    &period,
                    request.minimum_full.or(request.closing_full),
                    catalog.currency,
                )?);
            }
        }
    }
    charges.extend(addon_charges(
        catalog,
        key,
        plan,
        &request.addons,
        fee_period,
        billing,
        fee_full,
    )?);
    Ok(charges)
}

/// The true-up of a usage price with a `minimum` on an invoice that closes `period`: the
/// minimum (prorated to a partial period, as a plan minimum is) less what the price's lines
/// charged, when they charged less. A usage line of the price's meter, so it is discounted and
/// taxed as the usage it tops up.
fn charge_minimum(
    price: &UsagePrice,
    minimum: Decimal,
    charged: Decimal,
    period: &BillingPeriod,
    full: Option<BillingPeriod>,
    currency: Currency,
) -> Result<Option<Charge>, PricingError> {
    let (minimum_here, share) =
        super::proration::part_of_period(minimum, period, full, currency.minor_digits())?;
    if charged >= minimum_here {
        return Ok(None);
    }
    let top_up = checked_sub(minimum_here, charged)?;
    let name = price.description.as_deref().unwrap_or(&price.meter);
    let commitment = match &share {
        Some(share) => format!(
            "{name}: minimum of {} for {period} (prorated: {} x {share})",
            money_text(minimum_here),
            money_text(minimum)
        ),
        None => format!("{name}: minimum of {} for {period}", money_text(minimum)),
    };
    Ok(Some(Charge {
        kind: LineKind::Usage {
            meter: price.meter.clone(),
        },
        description: format!(
            "{commitment}: charged {} topped up by {}",
            money_text(charged),
            money_text(top_up)
        ),
        quantity: Decimal::ONE,
        unit_price: Some(top_up),
        amount: top_up,
        period: Some(*period),
    }))
}

/// One-time products, in the catalog's order.
fn product_charges(
    catalog: &Catalog,
    quantities: &BTreeMap<String, Decimal>,
) -> Result<Vec<Charge>, PricingError> {
    if let Some(unknown) = quantities
        .keys()
        .find(|k| !catalog.products.contains_key(*k))
    {
        return Err(PricingError::UnknownProduct(unknown.clone()));
    }
    let mut charges = Vec::new();
    for (key, product) in &catalog.products {
        let Some(quantity) = quantities.get(key).copied() else {
            continue;
        };
        non_negative(quantity, key)?;
        if quantity.is_zero() {
            continue;
        }
        charges.push(Charge {
            kind: LineKind::Product {
                product: key.clone(),
            },
            description: format!(
                "{}: {} x {}",
                product.name.as_deref().unwrap_or(key),
                qty(quantity),
                money_text(product.amount)
            ),
            quantity,
            unit_price: Some(product.amount),
            amount: checked_mul(quantity, product.amount)?,
            period: None,
        });
    }
    Ok(charges)
}

/// A negative sum (credits larger than charges) goes to the credit balance through an explicit
/// line, so the total is zero rather than negative and still the sum of the lines. Returns the
/// amount carried.
fn carry_negative_remainder(
    lines: &mut Vec<InvoiceLine>,
    currency: Currency,
) -> Result<Money, PricingError> {
    let remainder = sum(currency, lines)?;
    if remainder.minor() >= 0 {
        return Ok(Money::zero(currency));
    }
    let carried = Money::zero(currency).checked_sub(remainder)?;
    lines.push(InvoiceLine {
        kind: LineKind::CreditCarriedForward,
        description: format!(
            "{} credited to your balance",
            money_text(carried.to_decimal())
        ),
        quantity: Decimal::ONE,
        unit_price: None,
        period: None,
        exact: carried.to_decimal(),
        amount: carried,
    });
    Ok(carried)
}

/// Totals the lines and lets prepaid credit pay them, last.
fn settle(
    request: &InvoiceRequest,
    currency: Currency,
    lines: Vec<InvoiceLine>,
    subtotal: Money,
    carried: Money,
    tax: TaxSummary,
) -> Result<InvoiceDraft, PricingError> {
    let tax_total = tax
        .taxes
        .iter()
        .try_fold(Money::zero(currency), |acc, t| acc.checked_add(t.amount))?;
    let total = sum(currency, &lines)?;
    debug_assert!(total.minor() >= 0, "an invoice total is never negative");
    let balance = request.credit_balance.unwrap_or(Money::zero(currency));
    if balance.currency() != currency {
        return Err(PricingError::CurrencyMismatch(currency, balance.currency()));
    }
    if balance.minor() < 0 {
        return Err(PricingError::NegativeQuantity {
            what: "credit balance".to_owned(),
            quantity: balance.to_decimal(),
        });
    }
    let customer_balance = request.customer_balance.unwrap_or(Money::zero(currency));
    if customer_balance.currency() != currency {
        return Err(PricingError::CurrencyMismatch(
            currency,
            customer_balance.currency(),
        ));
    }
    if customer_balance.minor() < 0 {
        return Err(PricingError::NegativeQuantity {
            what: "customer balance".to_owned(),
            quantity: customer_balance.to_decimal(),
        });
    }
    // Lago's order: credit notes (the customer's balance) before prepaid credit.
    let balance_applied = customer_balance.min(total);
    let after_balance = total.checked_sub(balance_applied)?;
    let credit_applied = balance.min(after_balance);
    let amount_due = after_balance.checked_sub(credit_applied)?;
    debug_assert_eq!(
        amount_due
            .checked_add(credit_applied)
            .and_then(|m| m.checked_add(balance_applied)),
        Ok(total)
    );
    Ok(InvoiceDraft {
        currency,
        plan: request.plan.clone(),
        closing: request.closing,
        opening: request.opening,
        lines,
        subtotal,
        taxes: tax.taxes,
        tax_total,
        tax_note: tax.note,
        total,
        balance_applied,
        credit_applied,
        amount_due,
        credit_balance: balance.checked_sub(credit_applied)?.checked_add(carried)?,
        parties: request.parties.clone(),
    })
}

/// Add-on lines, in the catalog's order, for the period their fees are billed in.
fn addon_charges(
    catalog: &Catalog,
    plan_key: &str,
    plan: &Plan,
    quantities: &BTreeMap<String, Decimal>,
    period: Option<BillingPeriod>,
    billing: Cadence,
    full: Option<BillingPeriod>,
) -> Result<Vec<Charge>, PricingError> {
    for (key, quantity) in quantities {
        if !catalog.addons.contains_key(key) {
            return Err(PricingError::UnknownAddon(key.clone()));
        }
        non_negative(*quantity, key)?;
        if !quantity.is_zero() && !plan.addons.contains_key(key) {
            return Err(PricingError::AddonNotOnPlan {
                plan: plan_key.to_owned(),
                addon: key.clone(),
            });
        }
    }
    let Some(period) = period else {
        return Ok(Vec::new());
    };
    let mut charges = Vec::new();
    for (key, addon) in &catalog.addons {
        let Some(quantity) = quantities.get(key).copied().filter(|q| !q.is_zero()) else {
            continue;
        };
        let included = plan.addons.get(key).map_or(Decimal::ZERO, |t| t.included);
        let charged = checked_sub(quantity, included)?.max(Decimal::ZERO);
        let unit = per_interval(addon.amount, Cadence::from(addon.interval), billing)?;
        let mut description = format!(
            "{}: {} x {}",
            addon.name.as_deref().unwrap_or(key),
            qty(charged),
            money_text(unit)
        );
        if !included.is_zero() {
            description.push_str(&format!(
                " ({} on the subscription, {} included)",
                qty(quantity),
                qty(included)
            ));
        }
        if Cadence::from(addon.interval) != billing {
            description.push_str(&format!(
                " ({})",
                share_note(addon.amount, Cadence::from(addon.interval), billing)
            ));
        }
        let (amount, share) = super::proration::part_of_period(
            checked_mul(charged, unit)?,
            &period,
            full,
            catalog.currency.minor_digits(),
        )?;
        if let Some(share) = share {
            description.push_str(&format!(" (prorated: {share})"));
        }
        charges.push(Charge {
            kind: LineKind::Addon { addon: key.clone() },
            description,
            quantity: charged,
            unit_price: Some(unit),
            amount,
            period: Some(period),
        });
    }
    Ok(charges)
}

/// The one place an invoice line is rounded.
pub(crate) fn round_line(
    charge: Charge,
    currency: Currency,
    rounding: Rounding,
) -> Result<InvoiceLine, PricingError> {
    Ok(InvoiceLine {
        amount: Money::round(charge.amount, currency, rounding)?,
        kind: charge.kind,
        description: charge.description,
        quantity: charge.quantity,
        unit_price: charge.unit_price,
        period: charge.period,
        exact: charge.amount,
    })
}

pub(crate) fn sum(currency: Currency, lines: &[InvoiceLine]) -> Result<Money, PricingError> {
    sum_refs(currency, lines.iter())
}

pub(crate) fn sum_refs<'a>(
    currency: Currency,
    lines: impl Iterator<Item = &'a InvoiceLine>,
) -> Result<Money, PricingError> {
    lines.into_iter().try_fold(Money::zero(currency), |acc, l| {
        Ok(acc.checked_add(l.amount)?)
    })
}

/// A recurring amount per `to` period: a monthly price is 12 times that per year; a yearly one
/// is a twelfth of that per month; months convert to months and days to days
/// ([`Cadence::convert`]); a month-based amount has no exact day-based equivalent and is refused.
pub(crate) fn per_interval(
    amount: Decimal,
    from: Cadence,
    to: Cadence,
) -> Result<Decimal, PricingError> {
    from.convert(amount, to).ok_or(PricingError::InvalidRequest(
        "a monthly or yearly amount cannot be billed per day or week (or the reverse)",
    ))
}

fn share_note(amount: Decimal, from: Cadence, to: Cadence) -> String {
    match (from, to) {
        (f, t) if f == Cadence::from(Interval::Year) && t == Cadence::MONTH => {
            format!("a twelfth of {} per year", money_text(amount))
        }
        (f, t) if f == Cadence::MONTH && t == Cadence::from(Interval::Year) => {
            format!("12 x {} per month", money_text(amount))
        }
        _ => format!("{} per {from}, billed per {to}", money_text(amount)),
    }
}

pub(crate) fn label<'a>(key: &'a str, plan: &'a Plan) -> &'a str {
    plan.name.as_deref().unwrap_or(key)
}

pub(crate) fn non_negative(quantity: Decimal, what: &str) -> Result<(), PricingError> {
    if quantity < Decimal::ZERO {
        return Err(PricingError::NegativeQuantity {
            what: what.to_owned(),
            quantity,
        });
    }
    Ok(())
}
