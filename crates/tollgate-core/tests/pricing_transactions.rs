//! Transaction-fee prices: a percentage with a fixed fee per transaction, per-transaction
//! minimum and maximum, free transactions by count or by value (whichever runs out first), and
//! graduated percentage tiers with a flat fee charged once when a tier is first entered.
//!
//! The worked examples of Lago's documentation are reproduced with the same numbers (charge
//! models "Percentage" and "Graduated percentage").

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::collections::BTreeMap;
use tollgate_core::catalog::{Catalog, PriceModel, TransactionFees, UsagePrice, parse_yaml};
use tollgate_core::pricing::{BillingPeriod, InvoiceRequest, LineKind, MeterUsage, assemble, rate};

fn catalog(price: &str) -> Catalog {
    let yaml = format!(
        r#"
currency: USD
meters:
  payments: {{ event: payment.succeeded, aggregation: sum, property: amount }}
  levels: {{ event: level.set, aggregation: max, property: value }}
  adjusted: {{ event: adjusted, aggregation: sum, property: amount, corrections: true }}
plans:
  p:
    prices:
      - meter: payments
{price}
"#
    );
    parse_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn charge(catalog: &Catalog, transactions: &[Decimal]) -> (Decimal, String) {
    let price = &catalog.plans["p"].prices[0];
    let usage = MeterUsage::transactions(transactions.to_vec()).unwrap();
    let lines = rate(price, &usage).unwrap();
    assert_eq!(lines.len(), 1);
    (lines[0].amount, lines[0].description.clone())
}

fn errors(price: &str) -> Vec<(String, String)> {
    let yaml = format!(
        r#"
currency: USD
meters:
  payments: {{ event: payment.succeeded, aggregation: sum, property: amount }}
  levels: {{ event: level.set, aggregation: max, property: value }}
  adjusted: {{ event: adjusted, aggregation: sum, property: amount, corrections: true }}
plans:
  p:
    prices:
{price}
"#
    );
    match parse_yaml(&yaml) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(e) => e
            .iter()
            .map(|e| (e.path.clone(), e.message.clone()))
            .collect(),
    }
}

/// Lago, "Percentage": 1.2% and $0.10 per transaction, the first 3 transactions or $500 free.
/// Transactions of $200, $100 and $100 are free (3 of 3 free events used); the fourth, $50,
/// is charged in full although only $400 of the $500 were used: $0.10 + 1.2% of $50 = $0.70.
#[test]
fn lagos_percentage_example_free_units_or_free_amount_whichever_runs_out_first() {
    let c = catalog(
        r#"        model: percentage
        percent: "1.2"
        fixed_fee: "0.10"
        free_units: 3
        free_amount: 500"#,
    );
    let (amount, text) = charge(&c, &[dec!(200), dec!(100), dec!(100), dec!(50)]);
    assert_eq!(amount, dec!(0.70));
    assert_eq!(
        text,
        "payments: 1 transaction (3 free, 400.00 of value free): 1.2% of 50.00 + 1 x 0.10 fixed = 0.70"
    );
    // The free value runs out first: $450, then $100 of which $50 is still free.
    let (amount, _) = charge(&c, &[dec!(450), dec!(100), dec!(10)]);
    // 1.2% of 50 + 0.10, then 1.2% of 10 + 0.10
    assert_eq!(amount, dec!(0.60) + dec!(0.10) + dec!(0.12) + dec!(0.10));
}

/// The numbers of Lago's own tests of its percentage charge: transactions of 50, 100, 250 and
/// 400 (800 in all) at 1.3% + 2.00 each. With the first 3 transactions or 250.00 free, 250.00
/// of value is free (the third transaction is free for its first 100.00) and two transactions
/// pay the fixed fee: 550 x 1.3% + 2 x 2.00 = 11.15. With only the 3 free transactions:
/// 400 x 1.3% + 2.00 = 7.20; with 500.00 free value too, the free transactions run out first:
/// 7.20 again; with nothing free: 800 x 1.3% + 4 x 2.00 = 18.40; at 0%: the fixed fees, 8.00.
#[test]
fn lagos_percentage_test_numbers() {
    let values = [dec!(50), dec!(100), dec!(250), dec!(400)];
    let priced = |extra: &str, percent: &str| {
        let c = catalog(&format!(
            "        model: percentage\n        percent: \"{percent}\"\n        fixed_fee: 2{extra}"
        ));
        charge(&c, &values).0
    };
    assert_eq!(
        priced("\n        free_units: 3\n        free_amount: 250", "1.3"),
        dec!(11.15)
    );
    assert_eq!(priced("\n        free_amount: 250", "1.3"), dec!(11.15));
    assert_eq!(priced("\n        free_units: 3", "1.3"), dec!(7.20));
    assert_eq!(
        priced("\n        free_units: 3\n        free_amount: 500", "1.3"),
        dec!(7.20)
    );
    assert_eq!(priced("", "1.3"), dec!(18.40));
    assert_eq!(priced("", "0"), dec!(8));
}

/// Lago's "Clone Stripe pricing" template: online card payments at 2.9% + $0.30 each.
#[test]
fn a_percentage_with_a_fixed_fee_per_transaction() {
    let c = catalog(
        r#"        model: percentage
        percent: "2.9"
        fixed_fee: "0.30""#,
    );
    let (amount, text) = charge(&c, &[dec!(100), dec!(20), dec!(1000)]);
    // 2.90 + 0.30, 0.58 + 0.30, 29.00 + 0.30
    assert_eq!(amount, dec!(33.38));
    assert_eq!(
        text,
        "payments: 3 transactions: 2.9% of 1,120.00 + 3 x 0.30 fixed = 33.38"
    );
    // No transactions, no fee.
    assert_eq!(charge(&c, &[]).0, dec!(0));
}

/// The bounds hold per transaction, not per period: 1% of each payment plus 0.25, at least 0.50
/// and at most 5.00 each.
#[test]
fn per_transaction_minimum_and_maximum_bound_each_transaction() {
    let c = catalog(
        r#"        model: percentage
        percent: 1
        fixed_fee: "0.25"
        per_transaction_min: "0.50"
        per_transaction_max: 5"#,
    );
    // 10.00 -> 0.35 raised to 0.50; 100.00 -> 1.25; 2,000.00 -> 20.25 capped at 5.00.
    let (amount, text) = charge(&c, &[dec!(10), dec!(100), dec!(2000)]);
    assert_eq!(amount, dec!(6.75));
    assert_eq!(
        text,
        "payments: 3 transactions: 1% of 2,110.00 + 3 x 0.25 fixed, 1 raised to the per-transaction minimum of 0.50, 1 capped at the per-transaction maximum of 5.00 = 6.75"
    );
    // A period-level cap or floor would have given another answer: the sum of the three
    // uncapped fees is 21.85.
    assert_ne!(amount, dec!(21.85));
}

/// Free transactions by count only, and free value only.
#[test]
fn free_units_alone_and_free_amount_alone() {
    let by_count = catalog(
        r#"        model: percentage
        percent: 2
        fixed_fee: 1
        free_units: 2"#,
    );
    // The first two are free whatever their value; the third pays 2% of 300 + 1.
    assert_eq!(
        charge(&by_count, &[dec!(1000), dec!(5000), dec!(300)]).0,
        dec!(7)
    );
    let by_value = catalog(
        r#"        model: percentage
        percent: 2
        fixed_fee: 1
        free_amount: 150"#,
    );
    // 100 free; 100 of which 50 is free: 2% of 50 + 1; 10: 2% of 10 + 1.
    assert_eq!(
        charge(&by_value, &[dec!(100), dec!(100), dec!(10)]).0,
        dec!(2) + dec!(1.2)
    );
}

/// Lago, "Graduated percentage": tiers 0-1,000 at 1% + $200 flat, 1,001-10,000 at 2% + $300
/// flat, above at 3% + $400 flat. Transactions of $500, $550 and $4,000 cost $205, $306 and
/// $80: $591 for the period. The flat fee is charged once, when the value enters the tier.
#[test]
fn lagos_graduated_percentage_example() {
    let c = catalog(
        r#"        model: graduated_percentage
        tiers:
          - { up_to: 1000, percent: 1, flat_amount: 200 }
          - { up_to: 10000, percent: 2, flat_amount: 300 }
          - { percent: 3, flat_amount: 400 }"#,
    );
    let price = &c.plans["p"].prices[0];
    let after = |value: Decimal| rate(price, &MeterUsage::total(value)).unwrap()[0].amount;
    assert_eq!(after(dec!(500)), dec!(205));
    assert_eq!(after(dec!(1050)) - after(dec!(500)), dec!(306));
    assert_eq!(after(dec!(5050)) - after(dec!(1050)), dec!(80));
    let lines = rate(price, &MeterUsage::total(dec!(5050))).unwrap();
    assert_eq!(lines[0].amount, dec!(591));
    assert_eq!(
        lines[0].description,
        "payments: 1% of 1,000.00 (up to 1,000) + 200.00 flat + 2% of 4,050.00 (over 1,000 up to 10,000) + 300.00 flat = 591.00"
    );
    assert_eq!(after(dec!(0)), dec!(0), "no value enters no tier");
    // The third tier: 10 + 200, 180 + 300, 150 + 400.
    assert_eq!(after(dec!(15000)), dec!(1240));
}

#[test]
fn transaction_prices_are_validated_with_paths() {
    let found = errors(
        r#"      - meter: levels
        model: percentage
        percent: 1
        fixed_fee: "0.10"
      - meter: adjusted
        model: percentage
        percent: 1
        free_units: 2
      - meter: payments
        model: percentage
        percent: 1
        included: 100
        per_transaction_min: 5
        per_transaction_max: 2
        free_units: 0
      - meter: payments
        model: graduated_percentage
        tiers:
          - { up_to: 100, percent: 1 }
          - { up_to: 50, percent: 101, flat_amount: -1 }"#,
    );
    let at = |path: &str| {
        found
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
    };
    assert!(
        at("plans.p.prices[0].meter")[0].contains("needs a `sum` or `count` meter"),
        "{found:?}"
    );
    assert!(
        at("plans.p.prices[1].meter")[0].contains("takes corrections"),
        "{found:?}"
    );
    assert!(!at("plans.p.prices[2].included").is_empty(), "{found:?}");
    assert!(!at("plans.p.prices[2].free_units").is_empty(), "{found:?}");
    assert!(
        !at("plans.p.prices[3].tiers[1].percent").is_empty(),
        "{found:?}"
    );
    assert!(
        !at("plans.p.prices[3].tiers[1].flat_amount").is_empty(),
        "{found:?}"
    );
    assert!(
        !at("plans.p.prices[3].tiers[1].up_to").is_empty(),
        "{found:?}"
    );
    let minmax = errors(
        r#"      - meter: payments
        model: percentage
        percent: 1
        per_transaction_min: 5
        per_transaction_max: 2"#,
    );
    assert_eq!(
        minmax,
        [(
            "plans.p.prices[0].per_transaction_max".to_owned(),
            "must not be below `per_transaction_min` (5)".to_owned()
        )]
    );
}

#[test]
fn a_quote_without_transactions_rates_the_total_as_one() {
    let c = catalog(
        r#"        model: percentage
        percent: "2.9"
        fixed_fee: "0.30""#,
    );
    let price = &c.plans["p"].prices[0];
    let line = &rate(price, &MeterUsage::total(dec!(100))).unwrap()[0];
    assert_eq!(line.amount, dec!(3.20));
    assert!(line.description.starts_with("payments: 1 transaction:"));
}

fn fees_price(percent: Decimal, fees: TransactionFees) -> UsagePrice {
    UsagePrice {
        meter: "m".into(),
        description: None,
        included: None,
        model: PriceModel::Percentage {
            percent,
            floor: None,
            cap: None,
            per_transaction: fees,
        },
        minimum: None,
    }
}

fn cents(max: i64) -> impl Strategy<Value = Decimal> {
    (0i64..max).prop_map(|m| Decimal::new(m, 2))
}

proptest! {
    /// Each transaction's fee stays within its bounds, so the period's charge stays within the
    /// bounds times the number of charged transactions; the fee of a transaction never depends
    /// on the ones after it (a prefix never costs more than the whole).
    #[test]
    fn per_transaction_bounds_hold(
        percent in (0i64..1000).prop_map(|p| Decimal::new(p, 2)),
        fixed in proptest::option::of(cents(200)),
        min in proptest::option::of(cents(100)),
        extra in proptest::option::of(cents(1000)),
        values in proptest::collection::vec(cents(1_000_000), 0..30),
    ) {
        let max = match (min, extra) {
            (Some(m), Some(e)) => Some(m + e),
            (None, e) => e,
            (Some(_), None) => None,
        };
        let p = fees_price(percent, TransactionFees { fixed_fee: fixed, min, max, ..Default::default() });
        let whole = rate(&p, &MeterUsage::transactions(values.clone()).unwrap()).unwrap()[0].amount;
        let n = Decimal::from(values.len());
        if let Some(min) = min { prop_assert!(whole >= min * n); }
        if let Some(max) = max { prop_assert!(whole <= max * n); }
        let mut sum = Decimal::ZERO;
        for v in &values {
            sum += rate(&p, &MeterUsage::transactions(vec![*v]).unwrap()).unwrap()[0].amount;
        }
        prop_assert_eq!(whole, sum, "without free allowances each transaction is priced alone");
        if let Some(last) = values.len().checked_sub(1) {
            let prefix = rate(&p, &MeterUsage::transactions(values[..last].to_vec()).unwrap()).unwrap()[0].amount;
            prop_assert!(prefix <= whole);
        }
    }

    /// Free allowances never make a period cost more, and `free_units: n` leaves exactly the
    /// first n transactions free.
    #[test]
    fn free_allowances_only_take_off(
        free_units in proptest::option::of(1u64..10),
        free_amount in proptest::option::of(cents(100_000).prop_filter("positive", |d| !d.is_zero())),
        values in proptest::collection::vec(cents(100_000), 0..20),
    ) {
        let fees = TransactionFees { fixed_fee: Some(dec!(0.30)), ..Default::default() };
        let plain = fees_price(dec!(2.9), fees.clone());
        let free = fees_price(dec!(2.9), TransactionFees { free_units, free_amount, ..fees });
        let usage = MeterUsage::transactions(values.clone()).unwrap();
        let with = rate(&free, &usage).unwrap()[0].amount;
        let without = rate(&plain, &usage).unwrap()[0].amount;
        prop_assert!(with <= without);
        if let (Some(n), None) = (free_units, free_amount) {
            let n = usize::try_from(n).unwrap().min(values.len());
            let rest = MeterUsage::transactions(values[n..].to_vec()).unwrap();
            prop_assert_eq!(with, rate(&plain, &rest).unwrap()[0].amount);
        }
    }

    /// On an invoice, a transaction-fee line and a graduated percentage line are rounded once
    /// and the total is the sum of the lines.
    #[test]
    fn invoice_totals_are_the_sum_of_their_lines(
        values in proptest::collection::vec((0i64..10_000_000).prop_map(|m| Decimal::new(m, 3)), 0..25),
    ) {
        let c = parse_yaml(
            r#"
currency: USD
meters:
  payments: { event: payment.succeeded, aggregation: sum, property: amount }
  payouts: { event: payout.sent, aggregation: sum, property: amount }
plans:
  p:
    base: { amount: "9.99", interval: month }
    prices:
      - { meter: payments, model: percentage, percent: "2.9", fixed_fee: "0.30", free_units: 2, per_transaction_min: "0.35", per_transaction_max: 7 }
      - meter: payouts
        model: graduated_percentage
        tiers:
          - { up_to: 1000, percent: "0.5", flat_amount: 2 }
          - { percent: "0.25", flat_amount: 3 }
"#,
        )
        .unwrap();
        let november = BillingPeriod::new(
            "2026-11-01T00:00:00Z".parse().unwrap(),
            "2026-12-01T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
        let total: Decimal = values.iter().sum();
        let usage = BTreeMap::from([
            ("payments".to_owned(), MeterUsage::transactions(values.clone()).unwrap()),
            ("payouts".to_owned(), MeterUsage::total(total)),
        ]);
        let draft = assemble(
            &c,
            &InvoiceRequest {
                plan: Some("p".into()),
                closing: Some(november),
                usage,
                ..InvoiceRequest::default()
            },
        )
        .unwrap();
        let lines: i64 = draft.lines.iter().map(|l| l.amount.minor()).sum();
        prop_assert_eq!(lines, draft.total.minor());
        let fees = draft
            .lines
            .iter()
            .find(|l| l.kind == LineKind::Usage { meter: "payments".into() })
            .unwrap();
        let charged = u32::try_from(values.len().saturating_sub(2)).unwrap();
        prop_assert!(fees.exact >= dec!(0.35) * Decimal::from(charged));
        prop_assert!(fees.exact <= dec!(7) * Decimal::from(charged));
    }

    /// Graduated percentage: the charge grows with the value, and is the sum of what each
    /// increment adds (Lago's per-transaction reading of the tiers).
    #[test]
    fn graduated_percentage_is_monotonic(a in cents(2_000_000), b in cents(2_000_000)) {
        let c = catalog(
            r#"        model: graduated_percentage
        tiers:
          - { up_to: 1000, percent: 1, flat_amount: 200 }
          - { up_to: 10000, percent: 2, flat_amount: 300 }
          - { percent: 3, flat_amount: 400 }"#,
        );
        let price = &c.plans["p"].prices[0];
        let at = |v: Decimal| rate(price, &MeterUsage::total(v)).unwrap()[0].amount;
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(at(lo) <= at(hi));
    }
}
