//! Discounts: what part of an invoice a coupon takes off, and how several combine.
//!
//! A coupon (its value and duration) is catalog data, [`crate::catalog::Coupon`]. Whether one
//! applies to a given invoice is state the caller holds (when it was redeemed, how many invoices
//! it has discounted); [`CouponDuration::covers`] is the rule it asks. Here a discount only
//! becomes lines: each is computed on what is left of its target after the discounts before it,
//! so stacked discounts never take an invoice, or a line, below zero.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::PricingError;
use super::checked_mul;
use super::format::{percent, price as money_text};
use super::invoice::{Charge, InvoiceLine, LineKind, non_negative, round_line, sum, sum_refs};
use crate::catalog::{Coupon, CouponDuration, Discount};
use crate::money::{Currency, Rounding};

impl CouponDuration {
    /// Whether a coupon still applies to an invoice, given how many invoices it has already
    /// discounted. The caller tracks that count (it is state); this is the rule.
    pub fn covers(self, invoices_already_discounted: u32) -> bool {
        match self {
            CouponDuration::Once => invoices_already_discounted == 0,
            CouponDuration::Invoices(n) => invoices_already_discounted < n,
            CouponDuration::Forever => true,
        }
    }
}

/// The part of an invoice a coupon discounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "key", rename_all = "snake_case")]
pub enum AppliesTo {
    /// Everything on the invoice before the coupon.
    Invoice,
    /// The plan's base fee lines.
    Base,
    /// The usage lines of one meter.
    Meter(String),
    Addon(String),
    Product(String),
}

impl AppliesTo {
    pub(crate) fn matches(&self, kind: &LineKind) -> bool {
        match (self, kind) {
            (
                AppliesTo::Invoice,
                LineKind::Discount { .. } | LineKind::CreditCarriedForward | LineKind::Tax { .. },
            ) => false,
            (AppliesTo::Invoice, _) => true,
            (AppliesTo::Base, LineKind::Base { .. }) => true,
            (AppliesTo::Meter(m), LineKind::Usage { meter }) => m == meter,
            (AppliesTo::Addon(a), LineKind::Addon { addon }) => a == addon,
            (AppliesTo::Product(p), LineKind::Product { product }) => p == product,
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            AppliesTo::Invoice => "the invoice".to_owned(),
            AppliesTo::Base => "the base fee".to_owned(),
            AppliesTo::Meter(m) | AppliesTo::Addon(m) | AppliesTo::Product(m) => m.clone(),
        }
    }
}

/// A discount on one invoice: a catalog coupon's [`Discount`] and what part of the invoice it
/// takes it off. Whether it applies to a given invoice (redeemed, not expired, within its
/// [`CouponDuration`]) is the caller's decision: it passes the discounts that apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDiscount {
    /// The coupon's key in the catalog (or any code the caller gives a one-off discount).
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub discount: Discount,
    pub applies_to: AppliesTo,
}

impl InvoiceDiscount {
    /// A catalog coupon, on the whole invoice.
    pub fn from_coupon(code: &str, coupon: &Coupon) -> Self {
        InvoiceDiscount {
            code: code.to_owned(),
            name: coupon.name.clone(),
            discount: coupon.discount,
            applies_to: AppliesTo::Invoice,
        }
    }
}

/// Discounts in order, each on what is left of its target after the earlier ones.
pub(crate) fn apply_discounts(
    lines: &mut Vec<InvoiceLine>,
    coupons: &[InvoiceDiscount],
    currency: Currency,
    rounding: Rounding,
) -> Result<(), PricingError> {
    for coupon in coupons {
        let running = sum(currency, lines)?;
        let target: Vec<&InvoiceLine> = lines
            .iter()
            .filter(|l| coupon.applies_to.matches(&l.kind))
            .collect();
        let earlier = lines.iter().filter(|l| match &l.kind {
            LineKind::Discount { coupon: c } => coupons
                .iter()
                .any(|p| &p.code == c && p.applies_to == coupon.applies_to),
            _ => false,
        });
        let target_left = sum_refs(currency, target.into_iter().chain(earlier))?;
        let base = target_left.min(running).to_decimal().max(Decimal::ZERO);
        let (off, how) = match coupon.discount {
            Discount::PercentOff(p) => {
                if !(Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&p) {
                    return Err(PricingError::InvalidRequest(
                        "a discount percent must be between 0 and 100",
                    ));
                }
                (checked_mul(base, p)? / Decimal::ONE_HUNDRED, percent(p))
            }
            Discount::AmountOff(a) => {
                non_negative(a, &coupon.code)?;
                (a.min(base), money_text(a))
            }
        };
        let name = coupon.name.as_deref().unwrap_or(&coupon.code);
        lines.push(round_line(
            Charge {
                kind: LineKind::Discount {
                    coupon: coupon.code.clone(),
                },
                description: format!("{name}: {how} off {}", coupon.applies_to.describe()),
                quantity: Decimal::ONE,
                unit_price: None,
                amount: -off,
                period: None,
            },
            currency,
            rounding,
        )?);
    }
    Ok(())
}
