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

const CHARGE_MINIMUM: &str = r#"
currency: USD
meters:
  calls: { name: "API calls", event: api.call, aggregation: count }
  storage: { event: stored, aggregation: sum, property: gb }
plans:
  pro:
    base: { amount: 10, interval: month }
    prices:
      - { meter: calls, model: per_unit, unit_amount: "0.50", minimum: 20 }
      - { meter: storage, model: per_unit, unit_amount: 1 }
"#;

fn with_usage(calls: u32, storage: u32) -> InvoiceRequest {
    let usage = [("calls", calls), ("storage", storage)]
        .into_iter()
        .map(|(m, q)| {
            (
                m.to_owned(),
                tollgate_core::pricing::MeterUsage::total(rust_decimal::Decimal::from(q)),
            )
        })
        .collect();
    InvoiceRequest {
        plan: Some("pro".into()),
        closing: Some(period("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")),
        usage,
        ..InvoiceRequest::default()
    }
}

/// A usage price's `minimum` tops that charge up with its own line (a usage line of its meter);
/// other charges never count towards it, and a charge at or above it is left alone.
#[test]
fn a_charge_minimum_tops_up_its_own_charge() {
    let c = parse_yaml(CHARGE_MINIMUM).unwrap();
    let draft = assemble(&c, &with_usage(10, 30)).unwrap();
    let calls: Vec<_> = draft
        .lines
        .iter()
        .filter(|l| {
            l.kind
                == LineKind::Usage {
                    meter: "calls".into(),
                }
        })
        .map(|l| (l.amount, l.description.as_str()))
        .collect();
    assert_eq!(calls.len(), 2, "{:#?}", draft.lines);
    assert_eq!(calls[0].0, usd(500));
    assert_eq!(calls[1].0, usd(1_500));
    assert_eq!(
        calls[1].1,
        "API calls: minimum of 20.00 for 2026-11-01 to 2026-11-30: charged 5.00 topped up by 15.00"
    );
    // 5.00 + 15.00 of calls, 30.00 of storage: the storage never counts towards it.
    assert_eq!(draft.total, usd(5_000));
    let sum = draft
        .lines
        .iter()
        .try_fold(usd(0), |a, l| a.checked_add(l.amount))
        .unwrap();
    assert_eq!(sum, draft.total);
    let enough = assemble(&c, &with_usage(40, 0)).unwrap();
    assert!(
        enough
            .lines
            .iter()
            .all(|l| !l.description.contains("minimum")),
        "{:#?}",
        enough.lines
    );
    assert_eq!(enough.total, usd(2_000));
    // A partial period commits to its share, rounded toward zero: 20.00 x 15 / 30.
    let partial = InvoiceRequest {
        closing: Some(period("2026-11-16T00:00:00Z", "2026-12-01T00:00:00Z")),
        closing_full: Some(period("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")),
        ..with_usage(0, 0)
    };
    let draft = assemble(&c, &partial).unwrap();
    let top_up = draft
        .lines
        .iter()
        .find(|l| l.description.contains("minimum"))
        .unwrap();
    assert_eq!(top_up.amount, usd(1_000));
    assert!(
        top_up.description.contains(
            "minimum of 10.00 for 2026-11-16 to 2026-11-30 (prorated: 20.00 x 15 of 30 days)"
        ),
        "{}",
        top_up.description
    );
}

/// The catalog refuses a minimum that is not a positive amount, and a percentage price with both
/// a `floor` and a `minimum`.
#[test]
fn a_charge_minimum_is_validated_with_its_path() {
    let errors = |price: &str| -> Vec<(String, String)> {
        let yaml = format!(
            "currency: USD\nmeters:\n  calls: {{ event: api.call, aggregation: count }}\nplans:\n  p:\n    prices:\n      - {price}\n"
        );
        match parse_yaml(&yaml) {
            Ok(_) => panic!("accepted:\n{yaml}"),
            Err(e) => e
                .iter()
                .map(|e| (e.path.clone(), e.message.clone()))
                .collect(),
        }
    };
    let negative = errors("{ meter: calls, model: per_unit, unit_amount: 1, minimum: -5 }");
    assert_eq!(negative[0].0, "plans.p.prices[0].minimum", "{negative:?}");
    let zero = errors("{ meter: calls, model: per_unit, unit_amount: 1, minimum: 0 }");
    assert_eq!(zero[0].0, "plans.p.prices[0].minimum", "{zero:?}");
    let both = errors("{ meter: calls, model: percentage, percent: 1, floor: 5, minimum: 5 }");
    assert_eq!(both[0].0, "plans.p.prices[0].minimum", "{both:?}");
    assert!(both[0].1.contains("`floor` or `minimum`"), "{both:?}");
}

/// The thresholds of progressive billing: the highest one reached, then every `every` above the
/// last; validated with their paths.
#[test]
fn progressive_billing_thresholds() {
    use rust_decimal::Decimal;
    let c = parse_yaml(
        "currency: USD\nplans:\n  p:\n    progressive_billing: { thresholds: [20, 50], every: 100 }\n  q:\n    progressive_billing: { every: 30 }\n",
    )
    .unwrap();
    let p = c.plans["p"].progressive_billing.clone().unwrap();
    let at = |a: i64| p.reached(Decimal::from(a));
    assert_eq!(at(19), None);
    assert_eq!(at(20), Some(Decimal::from(20)));
    assert_eq!(at(149), Some(Decimal::from(50)));
    assert_eq!(at(150), Some(Decimal::from(150)));
    assert_eq!(at(420), Some(Decimal::from(350)));
    let q = c.plans["q"].progressive_billing.clone().unwrap();
    assert_eq!(q.reached(Decimal::from(29)), None);
    assert_eq!(q.reached(Decimal::from(61)), Some(Decimal::from(60)));
    let errors = |body: &str| -> Vec<String> {
        let yaml = format!("currency: USD\nplans:\n  p:\n    progressive_billing: {body}\n");
        match parse_yaml(&yaml) {
            Ok(_) => panic!("accepted:\n{yaml}"),
            Err(e) => e
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect(),
        }
    };
    assert_eq!(
        errors("{ thresholds: [50, 20] }"),
        ["plans.p.progressive_billing.thresholds[1]: thresholds must ascend: 20 is not above 50"]
    );
    assert_eq!(
        errors("{}"),
        ["plans.p.progressive_billing: give `thresholds`, `every` or both"]
    );
    assert!(errors("{ every: 0 }")[0].starts_with("plans.p.progressive_billing.every"));
}
