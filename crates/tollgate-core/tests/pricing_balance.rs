//! The customer's balance (credit notes credited to it) pays an invoice after taxes and before
//! prepaid credit; a plan minimum is prorated on a partial period.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use jiff::Timestamp;
use proptest::prelude::*;
use tollgate_core::catalog::{Catalog, parse_yaml};
use tollgate_core::money::{Currency, Money};
use tollgate_core::pricing::{BillingPeriod, InvoiceRequest, LineKind, assemble};

fn catalog() -> Catalog {
    parse_yaml(
        r#"
currency: USD
plans:
  pro:
    base: { amount: 100, interval: month }
    minimum: 300
taxes:
  rates:
    vat: { name: VAT, percent: 20 }
  default: [vat]
"#,
    )
    .unwrap()
}

fn period(start: &str, end: &str) -> BillingPeriod {
    BillingPeriod::new(start.parse::<Timestamp>().unwrap(), end.parse().unwrap()).unwrap()
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

/// Opening December only: 100.00 + VAT 20.00 = 120.00.
fn opening() -> InvoiceRequest {
    InvoiceRequest {
        plan: Some("pro".into()),
        opening: Some(period("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")),
        ..InvoiceRequest::default()
    }
}

#[test]
fn the_balance_pays_after_tax_and_before_prepaid_credit() {
    let draft = assemble(
        &catalog(),
        &InvoiceRequest {
            customer_balance: Some(usd(3_000)),
            credit_balance: Some(usd(5_000)),
            ..opening()
        },
    )
    .unwrap();
    assert_eq!(draft.total, usd(12_000), "the tax is on what was charged");
    assert_eq!(draft.balance_applied, usd(3_000));
    assert_eq!(draft.credit_applied, usd(5_000));
    assert_eq!(draft.amount_due, usd(4_000));
    assert_eq!(draft.credit_balance, usd(0));
    // A balance larger than the total pays it whole and leaves prepaid credit untouched.
    let covered = assemble(
        &catalog(),
        &InvoiceRequest {
            customer_balance: Some(usd(20_000)),
            credit_balance: Some(usd(5_000)),
            ..opening()
        },
    )
    .unwrap();
    assert_eq!(covered.balance_applied, usd(12_000));
    assert_eq!(covered.credit_applied, usd(0));
    assert_eq!(covered.amount_due, usd(0));
    assert_eq!(covered.credit_balance, usd(5_000));
    // A negative or foreign balance is refused, not applied.
    for bad in [
        usd(-1),
        Money::from_minor(100, "EUR".parse::<Currency>().unwrap()),
    ] {
        assert!(
            assemble(
                &catalog(),
                &InvoiceRequest {
                    customer_balance: Some(bad),
                    ..opening()
                }
            )
            .is_err()
        );
    }
}

/// A subscription canceled on November 16th: its last period is 15 of November's 30 days, and
/// its commitment of 300.00 a month is 150.00 for it.
#[test]
fn a_minimum_is_prorated_on_a_period_cut_short() {
    let short = period("2026-11-01T00:00:00Z", "2026-11-16T00:00:00Z");
    let whole = period("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
    let request = InvoiceRequest {
        plan: Some("pro".into()),
        closing: Some(short),
        minimum_full: Some(whole),
        ..InvoiceRequest::default()
    };
    let draft = assemble(&catalog(), &request).unwrap();
    let top_up = draft
        .lines
        .iter()
        .find(|l| l.kind == LineKind::MinimumTopUp)
        .unwrap();
    assert_eq!(top_up.amount, usd(15_000));
    assert_eq!(
        top_up.description,
        "minimum commitment of 150.00 for 2026-11-01 to 2026-11-15 (prorated: 300.00 x 15 of 30 days): charges 0.00 topped up by 150.00"
    );
    // The whole period commits to the whole minimum.
    let draft = assemble(
        &catalog(),
        &InvoiceRequest {
            closing: Some(whole),
            minimum_full: None,
            ..request
        },
    )
    .unwrap();
    let top_up = draft
        .lines
        .iter()
        .find(|l| l.kind == LineKind::MinimumTopUp)
        .unwrap();
    assert_eq!(top_up.amount, usd(30_000));
}

proptest! {
    /// Whatever the balance and the prepaid credit, the total is the sum of the lines, and the
    /// amount due plus what paid it is the total.
    #[test]
    fn amounts_add_up(balance in 0i64..50_000, credit in 0i64..50_000) {
        let draft = assemble(
            &catalog(),
            &InvoiceRequest {
                customer_balance: Some(usd(balance)),
                credit_balance: Some(usd(credit)),
                ..opening()
            },
        )
        .unwrap();
        let lines: i64 = draft.lines.iter().map(|l| l.amount.minor()).sum();
        prop_assert_eq!(lines, draft.total.minor());
        prop_assert_eq!(
            draft.amount_due.minor() + draft.balance_applied.minor() + draft.credit_applied.minor(),
            draft.total.minor()
        );
        prop_assert!(draft.balance_applied.minor() <= balance);
        prop_assert!(draft.amount_due.minor() >= 0);
        prop_assert_eq!(draft.balance_applied.minor(), balance.min(draft.total.minor()));
    }
}
