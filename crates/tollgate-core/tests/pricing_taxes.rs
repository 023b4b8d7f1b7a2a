//! Taxes on invoices: the catalog's `taxes` section, per-line rates after discounts, inclusive and
//! exclusive rates, customer exemption, reverse charge and customer rates, and the properties that
//! hold for any invoice (the total is the sum of the lines, the taxes per rate sum to the tax
//! total).
#![allow(clippy::inconsistent_digit_grouping)] // minor units written as 150_00 for 150.00
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::BTreeMap;

use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tollgate_core::catalog::{Catalog, parse_yaml, to_yaml};
use tollgate_core::money::{Currency, Money, Rounding};
use tollgate_core::pricing::{
    AppliedRate, BillingPeriod, CustomerTax, InvoiceDiscount, InvoiceDraft, InvoiceRequest,
    LineKind, PricingError, TaxRates, TaxTreatment, assemble, assemble_with_taxes,
};

const CATALOG: &str = r#"
currency: EUR
products:
  ebook: { name: "E-book", amount: 50 }
  pack: { amount: 10 }
plans:
  pro:
    name: Pro
    base: { amount: 100, interval: month }
  gross:
    base: { amount: 120, interval: month }
coupons:
  tenoff: { name: "Ten off", percent_off: 10 }
taxes:
  rates:
    vat: { name: "VAT", percent: 20 }
    reduced: { name: "VAT reduced", percent: 5.5 }
    vat_incl: { name: "VAT", percent: 20, inclusive: true }
    de_vat: { name: "MwSt", percent: 19 }
  default: [vat]
  plans: { gross: [vat_incl] }
  products: { ebook: [reduced], pack: [] }
"#;

fn catalog() -> Catalog {
    parse_yaml(CATALOG).unwrap()
}

fn opening() -> BillingPeriod {
    BillingPeriod::new(
        "2026-11-01T00:00:00Z".parse().unwrap(),
        "2026-12-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap()
}

fn euro() -> Currency {
    "EUR".parse().unwrap()
}

fn eur(minor: i64) -> Money {
    Money::from_minor(minor, euro())
}

fn request(plan: &str, products: &[(&str, i64)]) -> InvoiceRequest {
    InvoiceRequest {
        plan: Some(plan.to_owned()),
        opening: Some(opening()),
        products: products
            .iter()
            .map(|(k, q)| ((*k).to_owned(), Decimal::from(*q)))
            .collect::<BTreeMap<_, _>>(),
        ..Default::default()
    }
}

fn tax_lines(draft: &InvoiceDraft) -> Vec<(String, Money)> {
    draft
        .lines
        .iter()
        .filter_map(|l| match &l.kind {
            LineKind::Tax { tax } => Some((tax.clone(), l.amount)),
            _ => None,
        })
        .collect()
}

#[test]
fn two_rates_and_a_coupon_tax_each_line_after_the_discount() {
    let catalog = catalog();
    let coupon = InvoiceDiscount::from_coupon("tenoff", &catalog.coupons["tenoff"]);
    let draft = assemble(
        &catalog,
        &InvoiceRequest {
            discounts: vec![coupon],
            ..request("pro", &[("ebook", 1)])
        },
    )
    .unwrap();
    // 100 base + 50 e-book - 15 coupon; the coupon is spread 10 / 5, so VAT is 20% of 90 and the
    // reduced VAT 5.5% of 45 = 2.475, rounded half away from zero to 2.48.
    assert_eq!(
        tax_lines(&draft),
        vec![
            ("vat".to_owned(), eur(18_00)),
            ("reduced".to_owned(), eur(2_48))
        ]
    );
    assert_eq!(draft.taxes.len(), 2);
    assert_eq!(draft.taxes[0].taxable, dec!(90));
    assert_eq!(draft.taxes[1].taxable, dec!(45));
    assert_eq!(draft.tax_total, eur(20_48));
    assert_eq!(draft.subtotal, eur(150_00));
    assert_eq!(draft.total, eur(155_48));
    assert_eq!(draft.amount_due, eur(155_48));
    let vat_line = draft
        .lines
        .iter()
        .find(|l| l.kind == LineKind::Tax { tax: "vat".into() })
        .unwrap();
    assert_eq!(vat_line.description, "VAT (20%) on 90.00");
}

#[test]
fn a_product_can_be_untaxed_and_prepaid_credit_pays_after_tax() {
    let catalog = catalog();
    let draft = assemble(
        &catalog,
        &InvoiceRequest {
            credit_balance: Some(eur(200_00)),
            ..request("pro", &[("pack", 2)])
        },
    )
    .unwrap();
    assert_eq!(tax_lines(&draft), vec![("vat".to_owned(), eur(20_00))]);
    assert_eq!(draft.total, eur(140_00), "100 + 20 VAT + 20 untaxed packs");
    assert_eq!(draft.credit_applied, eur(140_00));
    assert_eq!(draft.amount_due, eur(0));
    assert_eq!(draft.credit_balance, eur(60_00));
}

#[test]
fn an_inclusive_rate_is_reported_not_added() {
    let draft = assemble(&catalog(), &request("gross", &[])).unwrap();
    assert!(tax_lines(&draft).is_empty());
    assert_eq!(draft.total, eur(120_00));
    assert_eq!(draft.taxes.len(), 1);
    assert!(draft.taxes[0].inclusive);
    assert_eq!(draft.taxes[0].taxable, dec!(100));
    assert_eq!(draft.taxes[0].amount, eur(20_00));
    assert_eq!(draft.tax_total, eur(20_00));
}

#[test]
fn exemption_and_reverse_charge_charge_no_tax_and_say_why() {
    let catalog = catalog();
    for (treatment, note) in [
        (TaxTreatment::Exempt, "Tax exempt"),
        (TaxTreatment::ReverseCharge, "Reverse charge"),
    ] {
        let draft = assemble(
            &catalog,
            &InvoiceRequest {
                tax: CustomerTax {
                    treatment,
                    rates: None,
                },
                ..request("pro", &[("ebook", 1)])
            },
        )
        .unwrap();
        assert!(draft.taxes.is_empty());
        assert_eq!(draft.total, eur(150_00));
        assert!(draft.tax_note.as_deref().unwrap().starts_with(note));
    }
}

#[test]
fn a_customers_own_rates_replace_the_catalogs() {
    let draft = assemble(
        &catalog(),
        &InvoiceRequest {
            tax: CustomerTax {
                treatment: TaxTreatment::Standard,
                rates: Some(vec!["de_vat".into()]),
            },
            ..request("pro", &[("ebook", 1)])
        },
    )
    .unwrap();
    assert_eq!(tax_lines(&draft), vec![("de_vat".to_owned(), eur(28_50))]);
    let unknown = assemble(
        &catalog(),
        &InvoiceRequest {
            tax: CustomerTax {
                treatment: TaxTreatment::Standard,
                rates: Some(vec!["nope".into()]),
            },
            ..request("pro", &[])
        },
    );
    assert_eq!(unknown, Err(PricingError::UnknownTaxRate("nope".into())));
}

/// A provider other than the catalog: the interface a tax service implements.
struct Flat(Decimal);

impl TaxRates for Flat {
    fn rates_for(
        &self,
        _plan: Option<&str>,
        _kind: &LineKind,
    ) -> Result<Vec<AppliedRate>, PricingError> {
        Ok(vec![AppliedRate {
            key: "service".into(),
            rate: tollgate_core::catalog::TaxRate {
                name: "Sales tax".into(),
                percent: self.0,
                inclusive: false,
            },
        }])
    }
}

#[test]
fn another_provider_can_answer_the_rates() {
    let draft = assemble_with_taxes(
        &catalog(),
        &request("pro", &[("pack", 1)]),
        &Flat(dec!(8.875)),
    )
    .unwrap();
    // 8.875% of 110 = 9.7625 -> 9.76.
    assert_eq!(tax_lines(&draft), vec![("service".to_owned(), eur(9_76))]);
    assert_eq!(draft.total, eur(119_76));
}

#[test]
fn a_credit_larger_than_the_charges_is_not_taxed_below_zero() {
    let catalog = catalog();
    let credit = tollgate_core::pricing::Charge {
        kind: LineKind::Proration,
        description: "unused time".into(),
        quantity: Decimal::ONE,
        unit_price: None,
        amount: dec!(-150),
        period: None,
    };
    let draft = assemble(
        &catalog,
        &InvoiceRequest {
            adjustments: vec![credit],
            ..request("pro", &[])
        },
    )
    .unwrap();
    assert!(draft.taxes.is_empty(), "{:?}", draft.taxes);
    assert_eq!(draft.total, eur(0));
    assert_eq!(draft.credit_balance, eur(50_00));
}

#[test]
fn the_taxes_section_is_validated_with_paths() {
    let bad = r#"
currency: EUR
plans: { pro: { base: { amount: 1, interval: month } } }
taxes:
  rates:
    vat: { name: VAT, percent: 120 }
    incl: { name: GST, percent: 5, inclusive: true }
    excl: { name: PST, percent: 7 }
  default: [nope]
  plans: { pro: [incl, excl], ghost: [excl] }
  products: { ghost: [] }
"#;
    let errors = parse_yaml(bad).unwrap_err().to_string();
    for expected in [
        "taxes.rates.vat.percent",
        "taxes.default[0]",
        "unknown tax rate `nope`",
        "taxes.plans.pro",
        "all inclusive or all exclusive",
        "unknown plan `ghost`",
        "unknown product `ghost`",
    ] {
        assert!(errors.contains(expected), "{expected} in {errors}");
    }
}

#[test]
fn the_taxes_section_round_trips_through_yaml() {
    let catalog = catalog();
    let again = parse_yaml(&to_yaml(&catalog)).unwrap();
    assert_eq!(again, catalog);
    let stored: Catalog = serde_json::from_value(serde_json::to_value(&catalog).unwrap()).unwrap();
    assert_eq!(stored, catalog);
}

fn property_catalog(vat: Decimal, reduced: Decimal) -> Catalog {
    let mut catalog = catalog();
    catalog.taxes.rates["vat"].percent = vat;
    catalog.taxes.rates["reduced"].percent = reduced;
    catalog.rounding = Rounding::HalfEven;
    catalog
}

proptest! {
    /// Any mix of a base fee, two differently taxed products, an untaxed one and a coupon: the
    /// total is the sum of the lines, the taxes per rate sum to the tax total, each exclusive rate
    /// is one line, and each rate's tax is its percentage of its taxable amount rounded once.
    #[test]
    fn totals_are_the_sum_of_lines_and_taxes_sum_per_rate(
        ebooks in 0i64..20,
        packs in 0i64..20,
        vat_bp in 0i64..3000,
        reduced_bp in 0i64..3000,
        coupon in proptest::option::of(0i64..=100),
    ) {
        let catalog = property_catalog(Decimal::new(vat_bp, 2), Decimal::new(reduced_bp, 2));
        let mut req = request("pro", &[("ebook", ebooks), ("pack", packs)]);
        if let Some(percent) = coupon {
            let mut c = catalog.coupons["tenoff"].clone();
            c.discount = tollgate_core::catalog::Discount::PercentOff(Decimal::from(percent));
            req.discounts.push(InvoiceDiscount::from_coupon("c", &c));
        }
        let draft = assemble(&catalog, &req).unwrap();
        let lines = draft
            .lines
            .iter()
            .try_fold(eur(0), |acc, l| acc.checked_add(l.amount))
            .unwrap();
        prop_assert_eq!(lines, draft.total);
        let per_rate = draft
            .taxes
            .iter()
            .try_fold(eur(0), |acc, t| acc.checked_add(t.amount))
            .unwrap();
        prop_assert_eq!(per_rate, draft.tax_total);
        let tax_lines: Money = tax_lines(&draft)
            .into_iter()
            .try_fold(eur(0), |acc, (_, m)| acc.checked_add(m))
            .unwrap();
        prop_assert_eq!(tax_lines, draft.tax_total, "every rate here is exclusive");
        for t in &draft.taxes {
            let exact = t.taxable * t.percent / Decimal::ONE_HUNDRED;
            prop_assert_eq!(t.amount, Money::round(exact, euro(), Rounding::HalfEven).unwrap());
        }
        // Taxable amounts add up to what the lines are after the discount.
        let before_tax = draft.total.checked_sub(draft.tax_total).unwrap().to_decimal();
        let taxable: Decimal = draft.taxes.iter().map(|t| t.taxable).sum();
        // The packs are untaxed: their amount less their share of the (rounded) discount.
        let discount: Decimal = draft
            .lines
            .iter()
            .filter(|l| matches!(l.kind, LineKind::Discount { .. }))
            .map(|l| l.amount.to_decimal())
            .sum();
        let packs_amount = Decimal::from(packs * 10);
        let charged = Decimal::from(100 + ebooks * 50 + packs * 10);
        let untaxed = packs_amount + discount * packs_amount / charged;
        let spread = (taxable + untaxed - before_tax).abs();
        prop_assert!(spread < dec!(0.0000001), "taxable {taxable} + untaxed {untaxed} vs {before_tax}");
    }
}
