//! Tiered prices beyond the basics: the first tier's flat fee charged at zero usage
//! (`flat_at_zero`, as Lago's graduated and volume charges do), and bounded last tiers with a rule
//! for the units above them (`above_last_tier: last_rate | free`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tollgate_core::catalog::{Catalog, parse_yaml, to_yaml};
use tollgate_core::pricing::{MeterUsage, rate};

fn catalog(model: &str, extra: &str, tiers: &str) -> Catalog {
    let yaml = format!(
        r#"
currency: USD
meters:
  calls: {{ event: api.call, aggregation: count }}
plans:
  p:
    prices:
      - meter: calls
        model: {model}
{extra}
        tiers:
{tiers}
"#
    );
    parse_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn amount(catalog: &Catalog, usage: Decimal) -> (Decimal, String) {
    let price = &catalog.plans["p"].prices[0];
    let lines = rate(price, &MeterUsage::total(usage)).unwrap();
    assert_eq!(lines.len(), 1);
    (lines[0].amount, lines[0].description.clone())
}

const FLAT_FIRST: &str = "          - { up_to: 100, unit_amount: \"0.50\", flat_amount: 10 }
          - { unit_amount: \"0.25\" }";

#[test]
fn the_first_tiers_flat_fee_is_charged_at_zero_when_the_catalog_says_so() {
    for model in ["graduated", "volume"] {
        let on = catalog(model, "        flat_at_zero: true", FLAT_FIRST);
        let (zero, text) = amount(&on, dec!(0));
        assert_eq!(zero, dec!(10), "{model}");
        assert_eq!(
            text,
            "calls: no billable usage; the first tier's 10.00 flat fee = 10.00"
        );
        let off = catalog(model, "", FLAT_FIRST);
        assert_eq!(
            amount(&off, dec!(0)).0,
            dec!(0),
            "{model}: no usage, no fee"
        );
        // With usage, the flag changes nothing.
        assert_eq!(amount(&on, dec!(150)), amount(&off, dec!(150)), "{model}");
    }
    let graduated = catalog("graduated", "        flat_at_zero: true", FLAT_FIRST);
    assert_eq!(
        amount(&graduated, dec!(150)).0,
        dec!(10) + dec!(50) + dec!(12.5)
    );
    let volume = catalog("volume", "        flat_at_zero: true", FLAT_FIRST);
    assert_eq!(amount(&volume, dec!(150)).0, dec!(37.5));
}

const BOUNDED: &str = "          - { up_to: 100, unit_amount: 1 }
          - { up_to: 200, unit_amount: \"0.50\", flat_amount: 5 }";

#[test]
fn units_above_a_bounded_last_tier_follow_its_rule() {
    let graduated = |rule| {
        catalog(
            "graduated",
            &format!("        above_last_tier: {rule}"),
            BOUNDED,
        )
    };
    // 100 x 1 + 100 x 0.50 + 5 flat, then 50 more.
    let (last_rate, text) = amount(&graduated("last_rate"), dec!(250));
    assert_eq!(last_rate, dec!(100) + dec!(50) + dec!(5) + dec!(25));
    assert!(
        text.contains("50 x 0.50 (over 200, at the last tier's rate)"),
        "{text}"
    );
    let (free, text) = amount(&graduated("free"), dec!(250));
    assert_eq!(free, dec!(155));
    assert!(text.contains("50 free (over 200)"), "{text}");
    // Within the tiers the rule changes nothing.
    assert_eq!(
        amount(&graduated("free"), dec!(150)),
        amount(&graduated("last_rate"), dec!(150))
    );

    let volume = |rule| {
        catalog(
            "volume",
            &format!("        above_last_tier: {rule}"),
            BOUNDED,
        )
    };
    assert_eq!(
        amount(&volume("last_rate"), dec!(250)).0,
        dec!(250) * dec!(0.5) + dec!(5)
    );
    let (free, text) = amount(&volume("free"), dec!(250));
    assert_eq!(
        free,
        dec!(200) * dec!(0.5) + dec!(5),
        "charged as at the bound"
    );
    assert!(text.contains("50 more free above the last tier"), "{text}");
}

#[test]
fn tier_rules_that_would_do_nothing_are_refused() {
    let errors = |model: &str, extra: &str, tiers: &str| {
        let yaml = format!(
            "currency: USD\nmeters:\n  calls: {{ event: api.call, aggregation: count }}\nplans:\n  p:\n    prices:\n      - meter: calls\n        model: {model}\n{extra}\n        tiers:\n{tiers}\n"
        );
        parse_yaml(&yaml).unwrap_err().to_string()
    };
    let no_flat = "          - { up_to: 100, unit_amount: 1 }\n          - { unit_amount: 2 }";
    assert!(
        errors("graduated", "        flat_at_zero: true", no_flat)
            .contains("plans.p.prices[0].flat_at_zero: the first tier has no `flat_amount`")
    );
    assert!(
        errors("volume", "        above_last_tier: free", no_flat)
            .contains("plans.p.prices[0].above_last_tier: only for a bounded last tier")
    );
    assert!(
        errors("graduated", "", BOUNDED)
            .contains("tiers[1].up_to: the last tier must be open-ended")
    );
    assert!(
        errors("graduated", "        above_last_tier: sometimes", BOUNDED)
            .contains("above_last_tier")
    );
    assert!(
        errors("per_unit", "        flat_at_zero: true", "")
            .contains("unknown field `flat_at_zero`")
    );
}

#[test]
fn tier_rules_round_trip_through_yaml() {
    for c in [
        catalog(
            "graduated",
            "        flat_at_zero: true\n        above_last_tier: last_rate",
            "          - { up_to: 100, unit_amount: 1, flat_amount: 3 }\n          - { up_to: 200, unit_amount: 2 }",
        ),
        catalog("volume", "        above_last_tier: free", BOUNDED),
    ] {
        assert_eq!(parse_yaml(&to_yaml(&c)).unwrap(), c);
        let stored: Catalog = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(stored, c);
    }
}
