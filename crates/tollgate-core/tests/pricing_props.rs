//! Properties of the pricing engine that must hold for any catalog and any usage, not only the
//! scenarios' numbers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use indexmap::IndexMap;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use rust_decimal::Decimal;

use tollgate_core::catalog::{
    Addon, AddonTerms, Aggregation, BasePrice, Catalog, Discount, Interval, Meter, PackageRounding,
    Plan, PriceModel, Tier, Timing, UsagePrice,
};
use tollgate_core::money::{Currency, Money, Rounding};
use tollgate_core::pricing::{
    AppliesTo, BillingPeriod, InvoiceDiscount, InvoiceRequest, MeterUsage, assemble, prorate, rate,
};

/// Amounts in cents up to 100,000.00.
fn cents() -> impl Strategy<Value = Decimal> {
    (0i64..10_000_000).prop_map(|m| Decimal::new(m, 2))
}

/// Unit prices with up to 4 decimals.
fn unit_price() -> impl Strategy<Value = Decimal> {
    (0i64..100_000).prop_map(|m| Decimal::new(m, 4))
}

/// Usage quantities, sometimes fractional (GB-months, minutes).
fn quantity() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (0i64..5_000_000).prop_map(Decimal::from),
        (0i64..50_000_000).prop_map(|m| Decimal::new(m, 3))
    ]
}

fn price(model: PriceModel, included: Option<Decimal>) -> UsagePrice {
    UsagePrice {
        meter: "m".into(),
        description: None,
        included,
        model,
        minimum: None,
    }
}

fn amount_of(price: &UsagePrice, q: Decimal) -> Decimal {
    rate(price, &MeterUsage::total(q))
        .unwrap()
        .iter()
        .map(|l| l.amount)
        .sum()
}

fn model() -> impl Strategy<Value = PriceModel> {
    prop_oneof![
        unit_price().prop_map(|unit_amount| PriceModel::PerUnit { unit_amount }),
        (1i64..5000, cents()).prop_map(|(size, amount)| PriceModel::Package {
            size: Decimal::from(size),
            amount,
            rounding: PackageRounding::Up
        }),
        (0i64..10_000, proptest::option::of(cents())).prop_map(|(p, cap)| PriceModel::Percentage {
            percent: Decimal::new(p, 2),
            floor: None,
            cap,
            per_transaction: Default::default(),
        }),
        (1i64..100_000, unit_price(), unit_price(), cents()).prop_map(|(up, a, b, flat)| {
            PriceModel::Graduated {
                tiers: vec![
                    Tier {
                        up_to: Some(Decimal::from(up)),
                        unit_amount: a,
                        flat_amount: flat,
                    },
                    Tier {
                        up_to: None,
                        unit_amount: b,
                        flat_amount: Decimal::ZERO,
                    },
                ],
                flat_at_zero: false,
                above_last_tier: None,
            }
        }),
    ]
}

fn period() -> BillingPeriod {
    BillingPeriod::new(
        "2026-11-01T00:00:00Z".parse().unwrap(),
        "2026-12-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever goes on an invoice, its total is the sum of its rounded lines, it is never
    /// negative, and credit only ever pays it, never more.
    #[test]
    fn invoice_total_is_the_sum_of_its_lines(
        base in proptest::option::of(cents()),
        model in model(),
        included in proptest::option::of(quantity()),
        used in quantity(),
        seats in 0i64..20,
        seat_price in cents(),
        percent_off in proptest::option::of(0i64..=100),
        amount_off in proptest::option::of(cents()),
        adjustment in (-1_000_000i64..1_000_000).prop_map(|m| Decimal::new(m, 3)),
        credit in 0i64..10_000_000,
        minimum in proptest::option::of(cents()),
        rounding in prop_oneof![Just(Rounding::HalfAwayFromZero), Just(Rounding::HalfEven), Just(Rounding::Up), Just(Rounding::Down)],
    ) {
        let mut catalog = Catalog { rounding, ..Catalog::default() };
        catalog.meters.insert("m".into(), Meter {
            name: None,
            event: "e".into(),
            aggregation: Aggregation::Count,
            property: None,
            filter: IndexMap::new(),
            group_by: Vec::new(),
            divide_by: None,
            per: None,
            corrections: false,
            on_duplicate: Default::default(),
        });
        catalog.addons.insert("seat".into(), Addon {
            name: None,
            amount: seat_price,
            interval: Interval::Month,
            grants: IndexMap::new(),
            sets: IndexMap::new(),
            currencies: IndexMap::new(),
        });
        catalog.plans.insert("p".into(), Plan {
            base: base.map(|amount| BasePrice { amount, interval: Interval::Month, timing: Timing::InAdvance, every: 1 }),
            prices: vec![price(model, included)],
            addons: [("seat".to_owned(), AddonTerms { included: Decimal::ONE })].into_iter().collect(),
            minimum,
            ..Plan::default()
        });
        let mut discounts = Vec::new();
        if let Some(p) = percent_off {
            discounts.push(InvoiceDiscount {
                code: "pct".into(),
                name: None,
                discount: Discount::PercentOff(Decimal::from(p)),
                applies_to: AppliesTo::Meter("m".into()),
            });
        }
        if let Some(a) = amount_off {
            discounts.push(InvoiceDiscount { code: "amt".into(), name: None, discount: Discount::AmountOff(a), applies_to: AppliesTo::Invoice });
        }
        let request = InvoiceRequest {
            plan: Some("p".into()),
            closing: Some(period()),
            opening: Some(period()),
            usage: [("m".to_owned(), MeterUsage::total(used))].into_iter().collect(),
            addons: [("seat".to_owned(), Decimal::from(seats))].into_iter().collect(),
            adjustments: vec![tollgate_core::pricing::Charge {
                kind: tollgate_core::pricing::LineKind::Proration,
                description: "adjustment".into(),
                quantity: Decimal::ONE,
                unit_price: None,
                amount: adjustment,
                period: None,
            }],
            discounts,
            credit_balance: Some(Money::from_minor(credit, Currency::USD)),
            ..InvoiceRequest::default()
        };
        let draft = assemble(&catalog, &request).unwrap();
        let sum: i64 = draft.lines.iter().map(|l| l.amount.minor()).sum();
        prop_assert_eq!(sum, draft.total.minor());
        prop_assert!(draft.total.minor() >= 0);
        for line in &draft.lines {
            prop_assert_eq!(line.amount, Money::round(line.exact, Currency::USD, rounding).unwrap(), "rounded once, from the exact amount");
        }
        prop_assert_eq!(draft.amount_due.minor() + draft.credit_applied.minor(), draft.total.minor());
        prop_assert!(draft.amount_due.minor() >= 0 && draft.credit_balance.minor() >= 0);
        prop_assert!(draft.credit_applied.minor() <= credit);
    }

    /// When all usage stays in the first tier, graduated and volume pricing are the same thing.
    #[test]
    fn graduated_and_volume_agree_within_the_first_tier(
        first_up_to in 1i64..1_000_000,
        fraction in 0u32..=1000,
        unit in unit_price(),
        flat in cents(),
        later in unit_price(),
        single_tier in any::<bool>(),
    ) {
        let up_to = Decimal::from(first_up_to);
        let q = up_to * Decimal::from(fraction) / Decimal::from(1000);
        let mut tiers = vec![Tier { up_to: Some(up_to), unit_amount: unit, flat_amount: flat }];
        if single_tier {
            tiers[0].up_to = None;
        } else {
            tiers.push(Tier { up_to: None, unit_amount: later, flat_amount: flat });
        }
        let graduated = price(PriceModel::Graduated { tiers: tiers.clone(), flat_at_zero: false, above_last_tier: None }, None);
        let volume = price(PriceModel::Volume { tiers, flat_at_zero: false, above_last_tier: None }, None);
        prop_assert_eq!(amount_of(&graduated, q), amount_of(&volume, q));
    }

    /// More usage never costs less under package pricing, whatever the allowance.
    #[test]
    fn package_price_never_decreases_with_usage(
        size in 1i64..10_000,
        amount in cents(),
        included in proptest::option::of(0i64..100_000),
        a in quantity(),
        b in quantity(),
        up in any::<bool>(),
    ) {
        let rounding = if up { PackageRounding::Up } else { PackageRounding::Down };
        let p = price(PriceModel::Package { size: Decimal::from(size), amount, rounding }, included.map(Decimal::from));
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(amount_of(&p, low) <= amount_of(&p, high));
    }

    /// Prorating the pieces of a period and rounding each adds up to the whole fee, within one
    /// minor unit per piece.
    #[test]
    fn proration_of_the_pieces_adds_up_to_the_whole(
        amount in cents(),
        start in 1_700_000_000i64..1_900_000_000,
        length in 1i64..40_000_000,
        mut cuts in proptest::collection::vec(0.0f64..1.0, 0..8),
    ) {
        let start = Timestamp::from_second(start).unwrap();
        let end = start + SignedDuration::from_secs(length);
        cuts.sort_by(f64::total_cmp);
        let mut points = vec![start];
        // The cut points are test inputs only; the engine sees whole-second timestamps.
        points.extend(cuts.iter().map(|c| start + SignedDuration::from_secs((c * length as f64) as i64)));
        points.push(end);
        let pieces = points.len() - 1;
        let mut sum = 0i64;
        for w in points.windows(2) {
            let part = prorate(amount, w[0], w[1], start, end).unwrap();
            sum += Money::round(part, Currency::USD, Rounding::default()).unwrap().minor();
        }
        let whole = Money::round(amount, Currency::USD, Rounding::default()).unwrap().minor();
        prop_assert!((sum - whole).abs() <= pieces as i64, "{} pieces: {} vs {}", pieces, sum, whole);
        prop_assert_eq!(prorate(amount, start, end, start, end).unwrap(), amount);
    }

    /// A capped percentage never exceeds its cap, even with a floor above it.
    #[test]
    fn capped_percentage_never_exceeds_the_cap(
        percent in (0i64..100_000).prop_map(|p| Decimal::new(p, 3)),
        value in cents(),
        cap in cents(),
        floor in proptest::option::of(cents()),
        included in proptest::option::of(cents()),
    ) {
        let p = price(PriceModel::Percentage { percent, floor, cap: Some(cap), per_transaction: Default::default() }, included);
        let amount = amount_of(&p, value);
        prop_assert!(amount <= cap);
        prop_assert!(amount >= Decimal::ZERO);
    }
}
