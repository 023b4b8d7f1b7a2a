//! Plans priced in several currencies: the catalog's view in a customer's currency, and what
//! the catalog refuses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::BTreeMap;

use jiff::Timestamp;
use rust_decimal::Decimal;
use tollgate_core::catalog::{parse_yaml, to_yaml};
use tollgate_core::money::{Currency, Money};
use tollgate_core::pricing::{
    BillingPeriod, InvoiceDiscount, InvoiceRequest, MeterUsage, assemble,
};

const TWO: &str = r#"
currency: USD
meters:
  calls: { event: api.call, aggregation: count }
addons:
  seat: { amount: 5, interval: month }
plans:
  pro:
    base: { amount: 100, interval: month }
    setup_fee: 20
    addons: [seat]
    prices:
      - { meter: calls, model: per_unit, unit_amount: "0.10" }
    currencies:
      EUR:
        base: 92
        setup_fee: 18
        prices:
          - { meter: calls, model: per_unit, unit_amount: "0.09" }
  usd_only:
    base: { amount: 10, interval: month }
"#;

fn period(start: &str, end: &str) -> BillingPeriod {
    BillingPeriod::new(start.parse::<Timestamp>().unwrap(), end.parse().unwrap()).unwrap()
}

#[test]
fn a_plan_is_invoiced_in_the_customers_currency() {
    let c = parse_yaml(TWO).unwrap();
    let eur: Currency = "EUR".parse().unwrap();
    assert!(c.plan_priced_in("pro", eur));
    assert!(c.plan_priced_in("usd_only", Currency::USD));
    assert!(!c.plan_priced_in("usd_only", eur));
    let request = InvoiceRequest {
        plan: Some("pro".into()),
        closing: Some(period("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")),
        opening: Some(period("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")),
        usage: BTreeMap::from([("calls".to_owned(), MeterUsage::total(Decimal::from(100)))]),
        ..InvoiceRequest::default()
    };
    let usd = assemble(&c, &request).unwrap();
    assert_eq!(usd.total, Money::from_minor(11_000, Currency::USD));
    let view = c.in_currency(eur);
    assert!(!view.plans.contains_key("usd_only"));
    assert!(view.addons.is_empty(), "add-ons have no EUR amount");
    let in_eur = assemble(&view, &request).unwrap();
    // 92.00 for December and 100 calls at 0.09.
    assert_eq!(in_eur.total, Money::from_minor(10_100, eur));
    assert_eq!(in_eur.currency, eur);
    // The view in the catalog's own currency is the catalog.
    assert_eq!(*c.in_currency(Currency::USD), c);
    // The stored form keeps the prices of every currency.
    assert_eq!(parse_yaml(&to_yaml(&c)).unwrap(), c);
}

#[test]
fn a_currency_prices_what_the_plan_prices() {
    let errors = |currencies: &str| -> Vec<String> {
        let yaml = format!(
            "currency: USD\nmeters:\n  calls: {{ event: api.call, aggregation: count }}\nplans:\n  pro:\n    base: {{ amount: 100, interval: month }}\n    prices:\n      - {{ meter: calls, model: per_unit, unit_amount: 1 }}\n    currencies:\n{currencies}\n"
        );
        match parse_yaml(&yaml) {
            Ok(_) => panic!("accepted:\n{yaml}"),
            Err(e) => e
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect(),
        }
    };
    let missing = errors("      EUR: { prices: [] }");
    assert!(
        missing.contains(
            &"plans.pro.currencies.EUR.base: required field is missing: the plan has a `base`"
                .to_owned()
        ),
        "{missing:?}"
    );
    assert!(
        missing.iter().any(|e| e
            .starts_with("plans.pro.currencies.EUR.prices: must price the plan's meters (calls)")),
        "{missing:?}"
    );
    let own = errors(
        "      USD: { base: 1, prices: [{ meter: calls, model: per_unit, unit_amount: 1 }] }",
    );
    assert!(
        own[0].starts_with("plans.pro.currencies.USD: USD is the catalog's currency"),
        "{own:?}"
    );
    let bad = errors("      EURO: { base: 1 }");
    assert!(bad[0].starts_with("plans.pro.currencies.EURO:"), "{bad:?}");
    let extra = errors(
        "      EUR: { base: 1, minimum: 5, prices: [{ meter: calls, model: per_unit, unit_amount: 1 }] }",
    );
    assert_eq!(
        extra,
        ["plans.pro.currencies.EUR.minimum: the plan has no `minimum` to price in EUR"]
    );
}

const OFFERS: &str = r#"
currency: USD
addons:
  seat: { amount: 5, interval: month, currencies: { EUR: "4.50" } }
  usd_seat: { amount: 7, interval: month }
products:
  pack: { amount: 99, currencies: { EUR: 90 } }
  usd_pack: { amount: 10 }
coupons:
  launch: { amount_off: 10, duration: forever, currencies: { EUR: 9 } }
  usd_launch: { amount_off: 10 }
  tenth: { percent_off: 10 }
plans:
  pro:
    base: { amount: 100, interval: month }
    addons: [seat, usd_seat]
    currencies:
      EUR: { base: 92 }
"#;

#[test]
fn add_ons_products_and_coupons_are_priced_per_currency() {
    let c = parse_yaml(OFFERS).unwrap();
    let eur: Currency = "EUR".parse().unwrap();
    assert!(c.addon_priced_in("seat", eur) && !c.addon_priced_in("usd_seat", eur));
    assert!(c.addon_priced_in("usd_seat", Currency::USD));
    assert!(c.product_priced_in("pack", eur) && !c.product_priced_in("usd_pack", eur));
    assert!(c.coupon_priced_in("launch", eur) && !c.coupon_priced_in("usd_launch", eur));
    assert!(
        c.coupon_priced_in("tenth", eur),
        "a percentage is priced in every currency"
    );
    let view = c.in_currency(eur);
    assert_eq!(view.addons.keys().collect::<Vec<_>>(), ["seat"]);
    assert_eq!(view.addons["seat"].amount, Decimal::new(450, 2));
    assert_eq!(
        view.plans["pro"].addons.keys().collect::<Vec<_>>(),
        ["seat"]
    );
    assert_eq!(view.products.keys().collect::<Vec<_>>(), ["pack"]);
    assert_eq!(view.products["pack"].amount, Decimal::from(90));
    assert_eq!(view.coupons.keys().collect::<Vec<_>>(), ["launch", "tenth"]);
    // December's base and 3 seats in EUR: 92.00 + 3 x 4.50, less the 9.00 coupon.
    let request = InvoiceRequest {
        plan: Some("pro".into()),
        opening: Some(period("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")),
        addons: BTreeMap::from([("seat".to_owned(), Decimal::from(3))]),
        discounts: vec![InvoiceDiscount::from_coupon(
            "launch",
            &view.coupons["launch"],
        )],
        ..InvoiceRequest::default()
    };
    let invoice = assemble(&view, &request).unwrap();
    assert_eq!(invoice.total, Money::from_minor(9_650, eur));
    assert_eq!(parse_yaml(&to_yaml(&c)).unwrap(), c);

    let refused = |yaml: &str| -> Vec<String> {
        match parse_yaml(yaml) {
            Ok(_) => panic!("accepted:\n{yaml}"),
            Err(e) => e
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect(),
        }
    };
    let own = refused(&OFFERS.replace("currencies: { EUR: 90 }", "currencies: { USD: 90 }"));
    assert!(
        own.iter()
            .any(|e| e.starts_with("products.pack.currencies.USD: USD is the catalog's currency")),
        "{own:?}"
    );
    let percent = refused(&OFFERS.replace(
        "tenth: { percent_off: 10 }",
        "tenth: { percent_off: 10, currencies: { EUR: 1 } }",
    ));
    assert!(
        percent
            .iter()
            .any(|e| e.starts_with("coupons.tenth.currencies: a percentage")),
        "{percent:?}"
    );
    let bad = refused(&OFFERS.replace("currencies: { EUR: \"4.50\" }", "currencies: { EURO: 1 }"));
    assert!(
        bad.iter()
            .any(|e| e.starts_with("addons.seat.currencies.EURO")),
        "{bad:?}"
    );
}
