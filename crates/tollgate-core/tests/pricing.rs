//! The pricing cases of the five field scenarios (`scenarios/*.md`), to the cent, on catalogs
//! built here as structs so that they test the engine, not the catalog file format.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::BTreeMap;

use indexmap::IndexMap;
use jiff::Timestamp;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use tollgate_core::catalog::{
    Addon, AddonTerms, Aggregation, BasePrice, Catalog, Collection, Coupon, CouponDuration,
    Discount, Enforcement, Interval, Limit, Meter, Multiplier, PackageRounding, Plan, PriceModel,
    Product, Quota, QuotaReset, Scope, Tier, TimeUnit, Timing, UsagePrice,
};
use tollgate_core::money::{Currency, Money};
use tollgate_core::pricing::{
    AppliesTo, BillingPeriod, InvoiceDiscount, InvoiceDraft, InvoiceRequest, LineKind, MeterUsage,
    PricingError, addon_quantity_change, assemble, divide_by, group, plan_change, prorate,
    proration_fraction, quote, rate, recommend, time_weighted,
};

// ---------------------------------------------------------------------------------------------
// Helpers

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn period(start: &str, end: &str) -> BillingPeriod {
    BillingPeriod::new(ts(start), ts(end)).unwrap()
}

fn november() -> BillingPeriod {
    period("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
}

fn december() -> BillingPeriod {
    period("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
}

fn usd(amount: Decimal) -> Money {
    Money::round(amount, Currency::USD, Default::default()).unwrap()
}

fn meter(event: &str, aggregation: Aggregation) -> Meter {
    Meter {
        name: None,
        event: event.to_owned(),
        aggregation,
        property: None,
        filter: IndexMap::new(),
        group_by: Vec::new(),
        divide_by: None,
        per: None,
        corrections: false,
        on_duplicate: Default::default(),
    }
}

fn base(amount: Decimal, interval: Interval) -> Option<BasePrice> {
    Some(BasePrice {
        amount,
        interval,
        timing: Timing::InAdvance,
        every: 1,
    })
}

fn price(meter: &str, included: Option<Decimal>, model: PriceModel) -> UsagePrice {
    UsagePrice {
        meter: meter.to_owned(),
        description: None,
        included,
        model,
        minimum: None,
    }
}

fn per_started_1000(amount: Decimal) -> PriceModel {
    PriceModel::Package {
        size: dec!(1000),
        amount,
        rounding: PackageRounding::Up,
    }
}

fn usage(entries: &[(&str, Decimal)]) -> BTreeMap<String, MeterUsage> {
    entries
        .iter()
        .map(|(m, v)| ((*m).to_owned(), MeterUsage::total(*v)))
        .collect()
}

fn quantities(entries: &[(&str, Decimal)]) -> BTreeMap<String, Decimal> {
    entries.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// The usual monthly invoice: closes November (usage), opens December (fees in advance).
fn closing_november(plan: &str, usage: BTreeMap<String, MeterUsage>) -> InvoiceRequest {
    InvoiceRequest {
        plan: Some(plan.to_owned()),
        closing: Some(november()),
        opening: Some(december()),
        usage,
        ..InvoiceRequest::default()
    }
}

fn amounts(draft: &InvoiceDraft) -> Vec<String> {
    draft
        .lines
        .iter()
        .map(|l| l.amount.to_decimal().to_string())
        .collect()
}

fn assert_total(draft: &InvoiceDraft, expected: Decimal) {
    assert_eq!(draft.total, usd(expected), "lines: {:#?}", draft.lines);
    let sum: i64 = draft.lines.iter().map(|l| l.amount.minor()).sum();
    assert_eq!(
        sum,
        draft.total.minor(),
        "the total is the sum of the rounded lines"
    );
}

// ---------------------------------------------------------------------------------------------
// Lexecon

fn lexecon() -> Catalog {
    let mut catalog = Catalog::default();
    catalog.meters.insert(
        "decisions".into(),
        meter("decision.evaluated", Aggregation::Count),
    );
    catalog
        .meters
        .insert("api_calls".into(), meter("api.call", Aggregation::Count));
    catalog.plans.insert(
        "startup".into(),
        Plan {
            base: base(dec!(99.00), Interval::Month),
            trial_days: Some(14),
            prices: vec![price("decisions", None, per_started_1000(dec!(5.00)))],
            ..Plan::default()
        },
    );
    catalog.plans.insert(
        "enterprise_starter".into(),
        Plan {
            base: base(dec!(10000.00), Interval::Year),
            collection: Collection::SendInvoice,
            ..Plan::default()
        },
    );
    catalog.plans.insert(
        "enterprise_platform".into(),
        Plan {
            base: base(dec!(50000.00), Interval::Year),
            ..Plan::default()
        },
    );
    catalog
}

#[test]
fn lexecon_2_package_pricing_with_next_months_base_in_advance() {
    let catalog = lexecon();
    let draft = assemble(
        &catalog,
        &closing_november("startup", usage(&[("decisions", dec!(12345))])),
    )
    .unwrap();
    assert_total(&draft, dec!(164.00));
    assert_eq!(amounts(&draft), ["99.00", "65.00"]);
    assert_eq!(
        draft.lines[0].kind,
        LineKind::Base {
            plan: "startup".into()
        }
    );
    assert_eq!(
        draft.lines[0].period,
        Some(december()),
        "the base fee is December's, in advance"
    );
    assert_eq!(
        draft.lines[0].description,
        "startup: base fee for 2026-12-01 to 2026-12-31"
    );
    let decisions = &draft.lines[1];
    assert_eq!(
        decisions.description,
        "decisions: 13 x 5.00 per started 1,000 (12,345 units)"
    );
    assert_eq!(
        (decisions.quantity, decisions.unit_price),
        (dec!(13), Some(dec!(5.00)))
    );
    assert_eq!(
        decisions.period,
        Some(november()),
        "usage is November's, in arrears"
    );

    for (decisions, line) in [(dec!(12000), dec!(60.00)), (dec!(0), dec!(0.00))] {
        let draft = assemble(
            &catalog,
            &closing_november("startup", usage(&[("decisions", decisions)])),
        )
        .unwrap();
        assert_eq!(draft.lines[1].amount, usd(line), "{decisions} decisions");
        assert_total(&draft, dec!(99.00) + line);
    }
    let twelve = rate(
        &catalog.plans["startup"].prices[0],
        &MeterUsage::total(dec!(12000)),
    )
    .unwrap();
    assert_eq!(
        twelve[0].description,
        "decisions: 12 x 5.00 per started 1,000 (12,000 units)"
    );
}

#[test]
fn lexecon_7_annual_plan_is_one_invoice_for_the_year() {
    let catalog = lexecon();
    let year = period("2026-11-01T00:00:00Z", "2027-11-01T00:00:00Z");
    let request = InvoiceRequest {
        plan: Some("enterprise_starter".into()),
        opening: Some(year),
        first_invoice: true,
        ..InvoiceRequest::default()
    };
    let draft = assemble(&catalog, &request).unwrap();
    assert_total(&draft, dec!(10000.00));
    assert_eq!(draft.lines.len(), 1);
    assert_eq!(draft.lines[0].period, Some(year));
    assert_eq!(
        draft.lines[0].description,
        "enterprise_starter: base fee for 2026-11-01 to 2027-10-31"
    );
    assert_eq!(draft.amount_due, usd(dec!(10000.00)));
}

// ---------------------------------------------------------------------------------------------
// Apex

fn apex() -> Catalog {
    let mut catalog = Catalog::default();
    let mut spend = meter("cloud.cost", Aggregation::Sum);
    spend.property = Some("amount_usd".into());
    catalog.meters.insert("ai_spend".into(), spend);
    let share = |percent, cap| Plan {
        prices: vec![price(
            "ai_spend",
            None,
            PriceModel::Percentage {
                percent,
                floor: None,
                cap,
                per_transaction: Default::default(),
            },
        )],
        ..Plan::default()
    };
    catalog.plans.insert("free".into(), Plan::default());
    catalog.plans.insert(
        "early".into(),
        Plan {
            trial_days: Some(7),
            trial_fallback: Some("free".into()),
            ..share(dec!(2), Some(dec!(99.00)))
        },
    );
    catalog
        .plans
        .insert("mid".into(), share(dec!(5), Some(dec!(499.00))));
    catalog
        .plans
        .insert("enterprise".into(), share(dec!(10), None));
    catalog.coupons.insert(
        "referred".into(),
        Coupon {
            name: Some("referral".into()),
            discount: Discount::PercentOff(dec!(20)),
            duration: CouponDuration::Invoices(3),
            currencies: IndexMap::new(),
        },
    );
    catalog.coupons.insert(
        "referrer".into(),
        Coupon {
            name: Some("referral reward".into()),
            discount: Discount::PercentOff(dec!(100)),
            duration: CouponDuration::Once,
            currencies: IndexMap::new(),
        },
    );
    catalog
}

#[test]
fn apex_1_two_percent_below_the_cap() {
    let draft = assemble(
        &apex(),
        &closing_november("early", usage(&[("ai_spend", dec!(3000.00))])),
    )
    .unwrap();
    assert_total(&draft, dec!(60.00));
    assert_eq!(
        draft.lines[0].description,
        "ai_spend: 2% of 3,000.00 = 60.00"
    );
    assert_eq!(draft.lines[0].unit_price, Some(dec!(0.02)));
}

#[test]
fn apex_2_two_percent_capped_at_99() {
    let draft = assemble(
        &apex(),
        &closing_november("early", usage(&[("ai_spend", dec!(10000.00))])),
    )
    .unwrap();
    assert_total(&draft, dec!(99.00));
    assert_eq!(
        draft.lines[0].description,
        "ai_spend: 2% of 10,000.00 = 200.00, capped at 99.00"
    );
    assert_eq!(
        draft.lines[0].unit_price, None,
        "a capped amount is not quantity x unit price"
    );
}

#[test]
fn apex_3_mid_and_enterprise_shares() {
    let catalog = apex();
    let mid = assemble(
        &catalog,
        &closing_november("mid", usage(&[("ai_spend", dec!(7500.00))])),
    )
    .unwrap();
    assert_total(&mid, dec!(375.00));
    let ent = assemble(
        &catalog,
        &closing_november("enterprise", usage(&[("ai_spend", dec!(123456.78))])),
    )
    .unwrap();
    assert_eq!(ent.lines[0].exact, dec!(12345.678), "exact before rounding");
    assert_total(&ent, dec!(12345.68));
}

#[test]
fn apex_7_referral_twenty_percent_off_the_first_three_invoices() {
    let catalog = apex();
    let coupon = &catalog.coupons["referred"];
    let mut paid = Vec::new();
    for already_discounted in 0..4 {
        let mut request = closing_november("early", usage(&[("ai_spend", dec!(10000.00))]));
        if coupon.duration.covers(already_discounted) {
            request
                .discounts
                .push(InvoiceDiscount::from_coupon("referred", coupon));
        }
        let draft = assemble(&catalog, &request).unwrap();
        assert_eq!(draft.subtotal, usd(dec!(99.00)));
        paid.push(draft.total.to_decimal().to_string());
        if already_discounted == 0 {
            assert_eq!(amounts(&draft), ["99.00", "-19.80"]);
            assert_eq!(draft.lines[1].description, "referral: 20% off the invoice");
            assert_eq!(
                draft.lines[1].kind,
                LineKind::Discount {
                    coupon: "referred".into()
                }
            );
        }
    }
    assert_eq!(paid, ["79.20", "79.20", "79.20", "99.00"]);

    // The referrer's reward: its next invoice free, once.
    let reward = InvoiceDiscount::from_coupon("referrer", &catalog.coupons["referrer"]);
    let mut request = closing_november("early", usage(&[("ai_spend", dec!(3000.00))]));
    request.discounts.push(reward);
    assert_total(&assemble(&catalog, &request).unwrap(), dec!(0.00));
    assert!(!catalog.coupons["referrer"].duration.covers(1));
}

// ---------------------------------------------------------------------------------------------
// AI Control Plane

fn control_plane() -> Catalog {
    let mut catalog = Catalog::default();
    catalog
        .meters
        .insert("requests".into(), meter("ai.request", Aggregation::Count));
    for (key, amount) in [
        ("policy_pack", dec!(49.00)),
        ("compliance_module", dec!(99.00)),
        ("seat", dec!(29.00)),
        ("audit_retention_1y", dec!(299.00)),
        ("audit_retention_7y", dec!(999.00)),
    ] {
        catalog.addons.insert(
            key.into(),
            Addon {
                name: None,
                amount,
                interval: Interval::Month,
                grants: IndexMap::new(),
                sets: IndexMap::new(),
                currencies: IndexMap::new(),
            },
        );
    }
    let addons = |keys: &[&str]| {
        keys.iter()
            .map(|k| ((*k).to_owned(), AddonTerms::default()))
            .collect()
    };
    let packs = [
        "policy_pack",
        "compliance_module",
        "audit_retention_1y",
        "audit_retention_7y",
    ];
    catalog.plans.insert(
        "open_source".into(),
        Plan {
            quotas: vec![Quota {
                meter: "requests".into(),
                limit: Limit::Finite(dec!(10000)),
                reset: QuotaReset::Period,
                per: Scope::Customer,
                enforcement: Enforcement::Hard,
            }],
            ..Plan::default()
        },
    );
    catalog.plans.insert(
        "starter".into(),
        Plan {
            base: base(dec!(299.00), Interval::Month),
            prices: vec![price(
                "requests",
                Some(dec!(100000)),
                PriceModel::PerUnit {
                    unit_amount: dec!(0.001),
                },
            )],
            addons: addons(&[
                "policy_pack",
                "compliance_module",
                "seat",
                "audit_retention_1y",
                "audit_retention_7y",
            ]),
            ..Plan::default()
        },
    );
    catalog.plans.insert(
        "professional".into(),
        Plan {
            base: base(dec!(999.00), Interval::Month),
            prices: vec![price(
                "requests",
                Some(dec!(1000000)),
                PriceModel::PerUnit {
                    unit_amount: dec!(0.0005),
                },
            )],
            addons: addons(&packs),
            ..Plan::default()
        },
    );
    catalog.plans.insert(
        "enterprise".into(),
        Plan {
            base: base(dec!(4999.00), Interval::Month),
            addons: addons(&packs),
            ..Plan::default()
        },
    );
    catalog
}

fn case_1_addons() -> BTreeMap<String, Decimal> {
    quantities(&[("seat", dec!(3)), ("policy_pack", dec!(1))])
}

#[test]
fn control_plane_1_allowance_overage_and_add_ons() {
    let catalog = control_plane();
    let mut request = closing_november("starter", usage(&[("requests", dec!(130000))]));
    request.addons = case_1_addons();
    let draft = assemble(&catalog, &request).unwrap();
    assert_total(&draft, dec!(465.00));
    assert_eq!(amounts(&draft), ["299.00", "30.00", "49.00", "87.00"]);
    let descriptions: Vec<&str> = draft.lines.iter().map(|l| l.description.as_str()).collect();
    assert_eq!(
        descriptions,
        [
            "starter: base fee for 2026-12-01 to 2026-12-31",
            "requests: 30,000 x 0.001 (130,000 units, 100,000 included: 30,000 over)",
            "policy_pack: 1 x 49.00",
            "seat: 3 x 29.00",
        ]
    );
}

#[test]
fn control_plane_2_professional_overage() {
    let draft = assemble(
        &control_plane(),
        &closing_november("professional", usage(&[("requests", dec!(1250000))])),
    )
    .unwrap();
    assert_total(&draft, dec!(1124.00));
    assert_eq!(amounts(&draft), ["999.00", "125.00"]);
}

#[test]
fn control_plane_4_recommends_professional_at_900k_requests() {
    let catalog = control_plane();
    let usage = usage(&[("requests", dec!(900000))]);
    let ranked = recommend(&catalog, &usage, &BTreeMap::new(), &november()).unwrap();
    let ranked: Vec<(&str, Money)> = ranked.iter().map(|c| (c.plan.as_str(), c.total)).collect();
    assert_eq!(
        ranked,
        [
            ("professional", usd(dec!(999.00))),
            ("starter", usd(dec!(1099.00))),
            ("enterprise", usd(dec!(4999.00)))
        ],
        "open_source cannot serve 900,000 requests (hard limit 10,000)"
    );
    assert_eq!(
        ranked[1].1.checked_sub(ranked[0].1).unwrap(),
        usd(dec!(100.00)),
        "the saving"
    );

    let within_free = recommend(
        &catalog,
        &usage_of_requests(dec!(9000)),
        &BTreeMap::new(),
        &november(),
    )
    .unwrap();
    assert_eq!(within_free[0].plan, "open_source");
    assert_eq!(within_free[0].total, usd(dec!(0)));

    // Seats are sold only on starter: a customer with seats is not offered professional.
    let with_seats = recommend(
        &catalog,
        &usage,
        &quantities(&[("seat", dec!(1))]),
        &november(),
    )
    .unwrap();
    assert_eq!(
        with_seats
            .iter()
            .map(|c| c.plan.as_str())
            .collect::<Vec<_>>(),
        ["starter"]
    );
}

fn usage_of_requests(n: Decimal) -> BTreeMap<String, MeterUsage> {
    usage(&[("requests", n)])
}

#[test]
fn control_plane_5_quote_without_a_customer_matches_the_invoice() {
    let catalog = control_plane();
    let usage = usage_of_requests(dec!(130000));
    let q = quote(&catalog, "starter", &usage, &case_1_addons(), &november()).unwrap();
    assert_eq!(q.total, usd(dec!(465.00)));
    assert_eq!(q.currency, Currency::USD);

    let mut request = closing_november("starter", usage);
    request.addons = case_1_addons();
    let invoice = assemble(&catalog, &request).unwrap();
    let shape = |lines: &[tollgate_core::pricing::InvoiceLine]| {
        lines
            .iter()
            .map(|l| (l.kind.clone(), l.quantity, l.amount))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        shape(&q.lines),
        shape(&invoice.lines),
        "the same line items as case 1"
    );
    assert!(
        q.lines
            .iter()
            .all(|l| l.period.is_none_or(|p| p == november()))
    );
}

#[test]
fn control_plane_7_two_seats_added_halfway_through_a_30_day_period() {
    let catalog = control_plane();
    let halfway = ts("2026-11-16T00:00:00Z");
    let charge = addon_quantity_change(
        &catalog,
        "starter",
        "seat",
        dec!(3),
        dec!(5),
        halfway,
        &november(),
    )
    .unwrap();
    assert_eq!(charge.amount, dec!(29.00));
    assert_eq!(
        charge.description,
        "seat: 2 more x 29.00 x 15 of 30 days (3 to 5)"
    );
    assert_eq!(
        prorate(
            dec!(58.00),
            halfway,
            november().end,
            november().start,
            november().end
        )
        .unwrap(),
        dec!(29.00)
    );

    // On the invoice, as an adjustment next to the period's charges.
    let mut request = closing_november("starter", usage_of_requests(dec!(0)));
    request.opening = None;
    request.adjustments.push(charge);
    let draft = assemble(&catalog, &request).unwrap();
    assert_eq!(amounts(&draft), ["0.00", "29.00"]);
    assert_total(&draft, dec!(29.00));

    // Removing them credits the rest of the period; to the second, not the day.
    let credit = addon_quantity_change(
        &catalog,
        "starter",
        "seat",
        dec!(5),
        dec!(3),
        ts("2026-11-16T00:00:01Z"),
        &november(),
    )
    .unwrap();
    assert_eq!(
        credit.amount,
        dec!(-58.00) * Decimal::from(1_295_999) / Decimal::from(2_592_000)
    );
    assert!(
        credit
            .description
            .starts_with("seat: 2 fewer x 29.00 x 1,295,999 of 2,592,000 seconds")
    );
}

#[test]
fn control_plane_upgrade_mid_period_credits_unused_time() {
    let catalog = control_plane();
    let lines = plan_change(
        &catalog,
        "starter",
        "professional",
        ts("2026-11-16T00:00:00Z"),
        &november(),
    )
    .unwrap();
    let exact: Vec<Decimal> = lines.iter().map(|c| c.amount).collect();
    assert_eq!(exact, [dec!(-149.50), dec!(499.50)]);
    assert_eq!(
        lines[0].description,
        "starter: unused time, 299.00 x 15 of 30 days, credited"
    );
    assert_eq!(
        lines[1].description,
        "professional: remaining time, 999.00 x 15 of 30 days"
    );

    // A downgrade nets a credit; the invoice is never negative and the rest goes to the balance.
    let request = InvoiceRequest {
        adjustments: plan_change(
            &catalog,
            "professional",
            "starter",
            ts("2026-11-16T00:00:00Z"),
            &november(),
        )
        .unwrap(),
        credit_balance: Some(usd(dec!(10.00))),
        ..InvoiceRequest::default()
    };
    let draft = assemble(&catalog, &request).unwrap();
    assert_eq!(amounts(&draft), ["-499.50", "149.50", "350.00"]);
    assert_eq!(draft.lines[2].kind, LineKind::CreditCarriedForward);
    assert_total(&draft, dec!(0.00));
    assert_eq!(draft.credit_balance, usd(dec!(360.00)));
}

// ---------------------------------------------------------------------------------------------
// Levqor

fn levqor() -> Catalog {
    let mut catalog = Catalog::default();
    catalog
        .meters
        .insert("api_calls".into(), meter("api.call", Aggregation::Count));
    for (key, amount) in [
        ("integrity_pack", dec!(49.00)),
        ("starter_pack", dec!(0)),
        ("automation_pro", dec!(99.00)),
        ("enterprise_pack", dec!(299.00)),
    ] {
        catalog.products.insert(
            key.into(),
            Product {
                name: None,
                amount,
                grants: vec!["download".into()],
                download_url: None,
                currencies: IndexMap::new(),
            },
        );
    }
    catalog.plans.insert(
        "integrity_monthly".into(),
        Plan {
            base: base(dec!(19.00), Interval::Month),
            ..Plan::default()
        },
    );
    for (key, fee, included, block) in [
        ("developer", dec!(29.00), dec!(10000), dec!(3.00)),
        ("professional", dec!(99.00), dec!(50000), dec!(2.00)),
        ("enterprise_api", dec!(299.00), dec!(250000), dec!(1.50)),
    ] {
        catalog.plans.insert(
            key.into(),
            Plan {
                base: base(fee, Interval::Month),
                prices: vec![price("api_calls", Some(included), per_started_1000(block))],
                ..Plan::default()
            },
        );
    }
    catalog.plans.insert(
        "white_label_basic".into(),
        Plan {
            base: base(dec!(499.00), Interval::Month),
            setup_fee: Some(dec!(2000.00)),
            ..Plan::default()
        },
    );
    catalog
}

#[test]
fn levqor_1_developer_package_overage() {
    let draft = assemble(
        &levqor(),
        &closing_november("developer", usage(&[("api_calls", dec!(12500))])),
    )
    .unwrap();
    assert_total(&draft, dec!(38.00));
    assert_eq!(amounts(&draft), ["29.00", "9.00"]);
    assert_eq!(
        draft.lines[1].description,
        "api_calls: 3 x 3.00 per started 1,000 (12,500 units, 10,000 included: 2,500 over)"
    );
}

#[test]
fn levqor_2_allowance_boundary() {
    let catalog = levqor();
    let exactly = assemble(
        &catalog,
        &closing_november("professional", usage(&[("api_calls", dec!(50000))])),
    )
    .unwrap();
    assert_total(&exactly, dec!(99.00));
    let one_more = assemble(
        &catalog,
        &closing_november("professional", usage(&[("api_calls", dec!(50001))])),
    )
    .unwrap();
    assert_total(&one_more, dec!(101.00));
}

#[test]
fn levqor_5_prepaid_credits_pay_first() {
    let mut request = closing_november("developer", usage(&[("api_calls", dec!(12500))]));
    request.credit_balance = Some(usd(dec!(50.00)));
    let draft = assemble(&levqor(), &request).unwrap();
    assert_total(&draft, dec!(38.00));
    assert_eq!(draft.credit_applied, usd(dec!(38.00)));
    assert_eq!(draft.amount_due, usd(dec!(0.00)));
    assert_eq!(draft.credit_balance, usd(dec!(12.00)));

    request.credit_balance = Some(usd(dec!(10.00)));
    let partly = assemble(&levqor(), &request).unwrap();
    assert_eq!(
        (partly.amount_due, partly.credit_balance),
        (usd(dec!(28.00)), usd(dec!(0)))
    );
}

#[test]
fn levqor_6_one_time_pack_without_a_plan() {
    let request = InvoiceRequest {
        products: quantities(&[("automation_pro", dec!(1))]),
        ..InvoiceRequest::default()
    };
    let draft = assemble(&levqor(), &request).unwrap();
    assert_total(&draft, dec!(99.00));
    assert_eq!(
        draft.lines[0].kind,
        LineKind::Product {
            product: "automation_pro".into()
        }
    );
    assert_eq!(draft.lines[0].description, "automation_pro: 1 x 99.00");
}

#[test]
fn levqor_white_label_setup_fee_on_the_first_invoice_only() {
    let catalog = levqor();
    let first = InvoiceRequest {
        plan: Some("white_label_basic".into()),
        opening: Some(november()),
        first_invoice: true,
        ..InvoiceRequest::default()
    };
    let draft = assemble(&catalog, &first).unwrap();
    assert_total(&draft, dec!(2499.00));
    assert_eq!(amounts(&draft), ["499.00", "2000.00"]);
    assert_eq!(
        draft.lines[1].description,
        "white_label_basic: one-time setup fee"
    );

    let next = assemble(
        &catalog,
        &closing_november("white_label_basic", BTreeMap::new()),
    )
    .unwrap();
    assert_total(&next, dec!(499.00));
}

// ---------------------------------------------------------------------------------------------
// QLP

fn qlp() -> Catalog {
    let mut catalog = Catalog::default();
    let mut generations = meter("codegen.completed", Aggregation::Count);
    generations.group_by = vec!["tier".into(), "model".into()];
    catalog.meters.insert("generations".into(), generations);
    catalog
        .meters
        .insert("api_calls".into(), meter("api.call", Aggregation::Count));
    let mut storage = meter("storage.snapshot", Aggregation::TimeWeighted);
    storage.property = Some("gb".into());
    storage.per = Some(TimeUnit::Month);
    catalog.meters.insert("storage_gb".into(), storage);
    let mut compute = meter("job.finished", Aggregation::Sum);
    compute.property = Some("duration_ms".into());
    compute.divide_by = Some(dec!(60000));
    catalog.meters.insert("compute_minutes".into(), compute);

    let per_generation = PriceModel::Dimensional {
        dimension: "tier".into(),
        rates: [
            ("T0", dec!(0.10)),
            ("T1", dec!(0.25)),
            ("T2", dec!(0.50)),
            ("T3", dec!(1.00)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        multiplier: Some(Multiplier {
            dimension: "model".into(),
            values: [
                ("gpt-4".to_owned(), dec!(2)),
                ("claude-3".to_owned(), dec!(2)),
            ]
            .into_iter()
            .collect(),
        }),
    };
    let prices = |generations: Option<Decimal>, storage: Option<Decimal>| {
        vec![
            price("generations", generations, per_generation.clone()),
            price(
                "api_calls",
                None,
                PriceModel::PerUnit {
                    unit_amount: dec!(0.001),
                },
            ),
            price(
                "storage_gb",
                storage,
                PriceModel::PerUnit {
                    unit_amount: dec!(0.10),
                },
            ),
            price(
                "compute_minutes",
                None,
                PriceModel::PerUnit {
                    unit_amount: dec!(0.05),
                },
            ),
        ]
    };
    catalog.plans.insert(
        "payg".into(),
        Plan {
            prices: prices(None, None),
            upgrade_target: false,
            ..Plan::default()
        },
    );
    catalog.plans.insert(
        "starter".into(),
        Plan {
            base: base(dec!(99.00), Interval::Month),
            prices: prices(Some(dec!(100)), Some(dec!(10))),
            ..Plan::default()
        },
    );
    catalog
}

fn qlp_case_1_generations() -> MeterUsage {
    MeterUsage::grouped([
        (group(&[("tier", "T0"), ("model", "standard")]), dec!(10)),
        (group(&[("tier", "T2"), ("model", "standard")]), dec!(4)),
        (group(&[("tier", "T3"), ("model", "gpt-4")]), dec!(2)),
    ])
    .unwrap()
}

#[test]
fn qlp_1_dimensional_generations_with_premium_multiplier() {
    let catalog = qlp();
    let mut usage = BTreeMap::new();
    usage.insert("generations".to_owned(), qlp_case_1_generations());
    let draft = assemble(&catalog, &closing_november("payg", usage)).unwrap();
    assert_total(&draft, dec!(7.00));
    let generations: Vec<(&str, String)> = draft
        .lines
        .iter()
        .filter(|l| {
            l.kind
                == LineKind::Usage {
                    meter: "generations".into(),
                }
        })
        .map(|l| (l.description.as_str(), l.amount.to_decimal().to_string()))
        .collect();
    assert_eq!(
        generations,
        [
            (
                "generations, tier T0, model standard: 10 x 0.10 = 1.00",
                "1.00".to_owned()
            ),
            (
                "generations, tier T2, model standard: 4 x 0.50 = 2.00",
                "2.00".to_owned()
            ),
            (
                "generations, tier T3, model gpt-4: 2 x 1.00 x 2 = 4.00",
                "4.00".to_owned()
            ),
        ]
    );
    let rated = rate(&catalog.plans["payg"].prices[0], &qlp_case_1_generations()).unwrap();
    assert_eq!(rated[2].group, group(&[("tier", "T3"), ("model", "gpt-4")]));
    assert_eq!(rated[2].unit_price, Some(dec!(2.00)));
}

#[test]
fn qlp_1_allowance_covers_the_most_expensive_generations_first() {
    let catalog = qlp();
    let mut priced = catalog.plans["payg"].prices[0].clone();
    priced.included = Some(dec!(3));
    let rated = rate(&priced, &qlp_case_1_generations()).unwrap();
    let amounts: Vec<Decimal> = rated.iter().map(|l| l.amount).collect();
    assert_eq!(amounts, [dec!(1.00), dec!(1.50), dec!(0)]);
    assert_eq!(
        rated[1].description,
        "generations, tier T2, model standard: 3 x 0.50 = 1.50 (4 units, 1 included)"
    );
}

#[test]
fn qlp_2_storage_is_time_weighted_in_gb_months() {
    let catalog = qlp();
    let changes = [
        (ts("2026-11-01T00:00:00Z"), dec!(50)),
        (ts("2026-11-16T00:00:00Z"), dec!(100)),
    ];
    let gb_months = time_weighted(&changes, &november(), TimeUnit::Month).unwrap();
    assert_eq!(gb_months, dec!(75));
    let draft = assemble(
        &catalog,
        &closing_november("starter", usage(&[("storage_gb", gb_months)])),
    )
    .unwrap();
    let storage = draft
        .lines
        .iter()
        .find(|l| {
            l.kind
                == LineKind::Usage {
                    meter: "storage_gb".into(),
                }
        })
        .unwrap();
    assert_eq!(storage.amount, usd(dec!(6.50)));
    assert_eq!(
        storage.description,
        "storage_gb: 65 x 0.10 (75 units, 10 included: 65 over)"
    );
    assert_total(&draft, dec!(105.50));
}

#[test]
fn time_weighted_levels_span_months_and_start_before_the_period() {
    // 10 GB since October, 40 GB from December 16 at noon, given out of order.
    let changes = [
        (ts("2026-12-16T12:00:00Z"), dec!(40)),
        (ts("2026-10-10T00:00:00Z"), dec!(10)),
    ];
    let two_months = period("2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z");
    // November: 10 x 1 month; December (31 days): 10 x 15.5/31 + 40 x 15.5/31 = 5 + 20.
    assert_eq!(
        time_weighted(&changes, &two_months, TimeUnit::Month).unwrap(),
        dec!(35)
    );
    assert_eq!(
        time_weighted(&changes, &november(), TimeUnit::Day).unwrap(),
        dec!(300)
    );
    assert_eq!(
        time_weighted(&[], &november(), TimeUnit::Month).unwrap(),
        dec!(0)
    );
    // Two changes at the same instant: the one given last holds.
    let same = [(november().start, dec!(1)), (november().start, dec!(2))];
    assert_eq!(
        time_weighted(&same, &november(), TimeUnit::Month).unwrap(),
        dec!(2)
    );
    assert_eq!(
        proration_fraction(
            ts("2026-11-16T00:00:00Z"),
            ts("2027-01-01T00:00:00Z"),
            &november()
        )
        .unwrap(),
        dec!(0.5),
        "clamped to the period"
    );
}

#[test]
fn qlp_3_compute_minutes_from_milliseconds() {
    let catalog = qlp();
    let minutes = divide_by(dec!(5400000), catalog.meters["compute_minutes"].divide_by).unwrap();
    assert_eq!(minutes, dec!(90));
    let draft = assemble(
        &catalog,
        &closing_november("payg", usage(&[("compute_minutes", minutes)])),
    )
    .unwrap();
    assert_total(&draft, dec!(4.50));
}

#[test]
fn qlp_payg_is_not_recommended() {
    let catalog = qlp();
    let ranked = recommend(
        &catalog,
        &usage(&[("api_calls", dec!(10))]),
        &BTreeMap::new(),
        &november(),
    )
    .unwrap();
    assert_eq!(
        ranked.iter().map(|c| c.plan.as_str()).collect::<Vec<_>>(),
        ["starter"]
    );
}

// ---------------------------------------------------------------------------------------------
// Models and rules not covered by a scenario case

#[test]
fn graduated_and_volume_tiers_explain_themselves() {
    let tiers = vec![
        Tier {
            up_to: Some(dec!(1000)),
            unit_amount: dec!(0),
            flat_amount: dec!(0),
        },
        Tier {
            up_to: Some(dec!(10000)),
            unit_amount: dec!(0.002),
            flat_amount: dec!(5),
        },
        Tier {
            up_to: None,
            unit_amount: dec!(0.001),
            flat_amount: dec!(0),
        },
    ];
    let graduated = price(
        "api_calls",
        None,
        PriceModel::Graduated {
            tiers: tiers.clone(),
            flat_at_zero: false,
            above_last_tier: None,
        },
    );
    let line = &rate(&graduated, &MeterUsage::total(dec!(12500))).unwrap()[0];
    assert_eq!(line.amount, dec!(0) + dec!(18) + dec!(5) + dec!(2.5));
    assert_eq!(
        line.description,
        "api_calls: 1,000 x 0.00 (up to 1,000) + 9,000 x 0.002 (over 1,000 up to 10,000) + 5.00 flat \
         + 2,500 x 0.001 (over 10,000) = 25.50"
    );
    let volume = price(
        "api_calls",
        None,
        PriceModel::Volume {
            tiers,
            flat_at_zero: false,
            above_last_tier: None,
        },
    );
    let line = &rate(&volume, &MeterUsage::total(dec!(5000))).unwrap()[0];
    assert_eq!(line.amount, dec!(15));
    assert_eq!(
        line.description,
        "api_calls: 5,000 x 0.002 (all units at the tier over 1,000 up to 10,000) + 5.00 flat = 15.00"
    );
    let zero = &rate(&volume, &MeterUsage::total(dec!(0))).unwrap()[0];
    assert_eq!(
        (zero.amount, zero.description.as_str()),
        (dec!(0), "api_calls: no billable usage")
    );
}

#[test]
fn percentage_floor_raises_small_charges() {
    let p = price(
        "ai_spend",
        None,
        PriceModel::Percentage {
            percent: dec!(2),
            floor: Some(dec!(10)),
            cap: Some(dec!(99)),
            per_transaction: Default::default(),
        },
    );
    let line = &rate(&p, &MeterUsage::total(dec!(100))).unwrap()[0];
    assert_eq!(line.amount, dec!(10));
    assert_eq!(
        line.description,
        "ai_spend: 2% of 100.00 = 2.00, raised to the minimum of 10.00"
    );
}

#[test]
fn minimum_commitment_tops_up_the_closing_period() {
    let mut catalog = levqor();
    catalog.plans.get_mut("developer").unwrap().minimum = Some(dec!(50.00));
    let draft = assemble(
        &catalog,
        &closing_november("developer", usage(&[("api_calls", dec!(12500))])),
    )
    .unwrap();
    assert_eq!(amounts(&draft), ["29.00", "9.00", "12.00"]);
    assert_eq!(draft.lines[2].kind, LineKind::MinimumTopUp);
    assert_total(&draft, dec!(50.00));
}

#[test]
fn fixed_and_line_discounts_never_go_below_zero() {
    let catalog = levqor();
    let mut request = closing_november("developer", usage(&[("api_calls", dec!(12500))]));
    request.discounts = vec![
        InvoiceDiscount {
            code: "overage".into(),
            name: None,
            discount: Discount::PercentOff(dec!(50)),
            applies_to: AppliesTo::Meter("api_calls".into()),
        },
        InvoiceDiscount {
            code: "big".into(),
            name: None,
            discount: Discount::AmountOff(dec!(100)),
            applies_to: AppliesTo::Invoice,
        },
    ];
    let draft = assemble(&catalog, &request).unwrap();
    assert_eq!(amounts(&draft), ["29.00", "9.00", "-4.50", "-33.50"]);
    assert_eq!(draft.lines[2].description, "overage: 50% off api_calls");
    assert_eq!(draft.lines[3].description, "big: 100.00 off the invoice");
    assert_total(&draft, dec!(0));
    assert_eq!(draft.subtotal, usd(dec!(38.00)));
}

#[test]
fn included_add_on_units_are_free_and_yearly_add_ons_are_converted() {
    let mut catalog = control_plane();
    catalog
        .plans
        .get_mut("starter")
        .unwrap()
        .addons
        .insert("seat".into(), AddonTerms { included: dec!(2) });
    catalog
        .addons
        .get_mut("audit_retention_1y")
        .unwrap()
        .interval = Interval::Year;
    let mut request = closing_november("starter", usage_of_requests(dec!(0)));
    request.addons = quantities(&[("seat", dec!(3)), ("audit_retention_1y", dec!(1))]);
    let draft = assemble(&catalog, &request).unwrap();
    let seat = draft
        .lines
        .iter()
        .find(|l| {
            l.kind
                == LineKind::Addon {
                    addon: "seat".into(),
                }
        })
        .unwrap();
    assert_eq!(
        seat.description,
        "seat: 1 x 29.00 (3 on the subscription, 2 included)"
    );
    let audit = draft
        .lines
        .iter()
        .find(|l| {
            l.kind
                == LineKind::Addon {
                    addon: "audit_retention_1y".into(),
                }
        })
        .unwrap();
    assert_eq!(audit.exact, dec!(299.00) / dec!(12));
    assert_eq!(audit.amount, usd(dec!(24.92)));
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn errors_are_typed_stable_and_lowercase() {
    let catalog = control_plane();
    let none: BTreeMap<String, MeterUsage> = BTreeMap::new();
    let no_addons: BTreeMap<String, Decimal> = BTreeMap::new();
    let cases: Vec<(PricingError, &str)> = vec![
        (
            quote(&catalog, "gold", &none, &no_addons, &november()).unwrap_err(),
            "unknown_plan",
        ),
        (
            quote(
                &catalog,
                "starter",
                &usage(&[("reqests", dec!(1))]),
                &no_addons,
                &november(),
            )
            .unwrap_err(),
            "unknown_meter",
        ),
        (
            quote(
                &catalog,
                "starter",
                &none,
                &quantities(&[("sso", dec!(1))]),
                &november(),
            )
            .unwrap_err(),
            "unknown_addon",
        ),
        (
            quote(
                &catalog,
                "professional",
                &none,
                &quantities(&[("seat", dec!(1))]),
                &november(),
            )
            .unwrap_err(),
            "addon_not_on_plan",
        ),
        (
            quote(
                &catalog,
                "starter",
                &none,
                &quantities(&[("seat", dec!(-1))]),
                &november(),
            )
            .unwrap_err(),
            "negative_quantity",
        ),
        (
            quote(
                &catalog,
                "starter",
                &usage_of_requests(Decimal::MAX),
                &no_addons,
                &november(),
            )
            .unwrap_err(),
            "overflow",
        ),
        (
            BillingPeriod::new(november().end, november().start).unwrap_err(),
            "invalid_period",
        ),
    ];
    for (err, code) in cases {
        assert_eq!(err.code().as_str(), code, "{err}");
        let message = err.to_string();
        assert!(message.chars().next().unwrap().is_lowercase(), "{message}");
    }
    assert_eq!(
        quote(&catalog, "gold", &none, &no_addons, &november())
            .unwrap_err()
            .to_string(),
        "unknown plan \"gold\""
    );

    let eur: Currency = "EUR".parse().unwrap();
    let request = InvoiceRequest {
        credit_balance: Some(Money::zero(eur)),
        ..InvoiceRequest::default()
    };
    assert_eq!(
        assemble(&catalog, &request).unwrap_err(),
        PricingError::CurrencyMismatch(Currency::USD, eur)
    );

    let qlp = qlp();
    let unpriced =
        MeterUsage::grouped([(group(&[("tier", "T9"), ("model", "standard")]), dec!(1))]).unwrap();
    let err = rate(&qlp.plans["payg"].prices[0], &unpriced).unwrap_err();
    assert_eq!(
        err.to_string(),
        "meter \"generations\" has no rate for tier \"T9\""
    );
}

// ---------------------------------------------------------------------------------------------
// The same cases on the example catalog files (`examples/catalogs/*.yaml`), read by the real
// parser: the files must price exactly like the structs above.

fn example(name: &str) -> Catalog {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/catalogs")
        .join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    tollgate_core::catalog::parse_yaml(&text).unwrap_or_else(|e| panic!("{name}.yaml:\n{e}"))
}

#[test]
fn lexecon_yaml_cases_2_and_7() {
    let catalog = example("lexecon");
    for (decisions, total) in [
        (dec!(12345), dec!(164.00)),
        (dec!(12000), dec!(159.00)),
        (dec!(0), dec!(99.00)),
    ] {
        let draft = assemble(
            &catalog,
            &closing_november("startup", usage(&[("decisions", decisions)])),
        )
        .unwrap();
        assert_total(&draft, total);
    }
    let draft = assemble(
        &catalog,
        &closing_november("startup", usage(&[("decisions", dec!(12345))])),
    )
    .unwrap();
    assert_eq!(
        draft.lines[1].description,
        "decisions: 13 x 5.00 per started 1,000 (12,345 units)"
    );

    let year = period("2026-11-01T00:00:00Z", "2027-11-01T00:00:00Z");
    let request = InvoiceRequest {
        plan: Some("enterprise_starter".into()),
        opening: Some(year),
        first_invoice: true,
        ..InvoiceRequest::default()
    };
    assert_total(&assemble(&catalog, &request).unwrap(), dec!(10000.00));
}

#[test]
fn apex_yaml_cases_1_2_3_and_7() {
    let catalog = example("apex");
    for (plan, spend, total) in [
        ("early", dec!(3000.00), dec!(60.00)),
        ("early", dec!(10000.00), dec!(99.00)),
        ("mid", dec!(7500.00), dec!(375.00)),
        ("enterprise", dec!(123456.78), dec!(12345.68)),
        ("free", dec!(5000.00), dec!(0)),
    ] {
        let draft = assemble(
            &catalog,
            &closing_november(plan, usage(&[("ai_spend", spend)])),
        )
        .unwrap();
        assert_total(&draft, total);
    }

    let program = catalog
        .referrals
        .as_ref()
        .expect("apex runs a referral program");
    let welcome = &catalog.coupons[&program.referred];
    let paid: Vec<String> = (0..4)
        .map(|already_discounted| {
            let mut request = closing_november("early", usage(&[("ai_spend", dec!(10000.00))]));
            if welcome.duration.covers(already_discounted) {
                request
                    .discounts
                    .push(InvoiceDiscount::from_coupon(&program.referred, welcome));
            }
            assemble(&catalog, &request)
                .unwrap()
                .total
                .to_decimal()
                .to_string()
        })
        .collect();
    assert_eq!(paid, ["79.20", "79.20", "79.20", "99.00"]);

    let reward =
        InvoiceDiscount::from_coupon(&program.referrer, &catalog.coupons[&program.referrer]);
    let mut request = closing_november("early", usage(&[("ai_spend", dec!(3000.00))]));
    request.discounts.push(reward);
    assert_total(&assemble(&catalog, &request).unwrap(), dec!(0));
}

#[test]
fn control_plane_yaml_cases_1_2_4_5_and_7() {
    let catalog = example("control-plane");
    let mut request = closing_november("starter", usage_of_requests(dec!(130000)));
    request.addons = case_1_addons();
    let invoice = assemble(&catalog, &request).unwrap();
    assert_total(&invoice, dec!(465.00));
    assert_eq!(amounts(&invoice), ["299.00", "30.00", "49.00", "87.00"]);

    let q = quote(
        &catalog,
        "starter",
        &usage_of_requests(dec!(130000)),
        &case_1_addons(),
        &november(),
    )
    .unwrap();
    assert_eq!(q.total, usd(dec!(465.00)));
    let descriptions = |lines: &[tollgate_core::pricing::InvoiceLine]| {
        lines
            .iter()
            .map(|l| l.description.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        descriptions(&q.lines),
        [
            "Starter: base fee for 2026-11-01 to 2026-11-30",
            "requests: 30,000 x 0.001 (130,000 units, 100,000 included: 30,000 over)",
            "Extra policy pack: 1 x 49.00",
            "Seat: 3 x 29.00",
        ]
    );

    let professional = assemble(
        &catalog,
        &closing_november("professional", usage_of_requests(dec!(1250000))),
    )
    .unwrap();
    assert_total(&professional, dec!(1124.00));

    let ranked = recommend(
        &catalog,
        &usage_of_requests(dec!(900000)),
        &BTreeMap::new(),
        &november(),
    )
    .unwrap();
    let ranked: Vec<(&str, Money)> = ranked.iter().map(|c| (c.plan.as_str(), c.total)).collect();
    assert_eq!(
        ranked,
        [
            ("professional", usd(dec!(999.00))),
            ("starter", usd(dec!(1099.00))),
            ("enterprise", usd(dec!(4999.00)))
        ]
    );

    let halfway = ts("2026-11-16T00:00:00Z");
    let seats = addon_quantity_change(
        &catalog,
        "starter",
        "seat",
        dec!(3),
        dec!(5),
        halfway,
        &november(),
    )
    .unwrap();
    assert_eq!(seats.amount, dec!(29.00));
}

#[test]
fn levqor_yaml_cases_1_2_5_6_and_white_label() {
    let catalog = example("levqor");
    let developer = closing_november("developer", usage(&[("api_calls", dec!(12500))]));
    assert_total(&assemble(&catalog, &developer).unwrap(), dec!(38.00));
    for (calls, total) in [(dec!(50000), dec!(99.00)), (dec!(50001), dec!(101.00))] {
        let draft = assemble(
            &catalog,
            &closing_november("professional", usage(&[("api_calls", calls)])),
        )
        .unwrap();
        assert_total(&draft, total);
    }

    let with_credit = InvoiceRequest {
        credit_balance: Some(usd(dec!(50.00))),
        ..developer
    };
    let draft = assemble(&catalog, &with_credit).unwrap();
    assert_eq!(
        (draft.amount_due, draft.credit_balance),
        (usd(dec!(0)), usd(dec!(12.00)))
    );

    let pack = InvoiceRequest {
        products: quantities(&[("automation_pro", dec!(1))]),
        ..InvoiceRequest::default()
    };
    assert_total(&assemble(&catalog, &pack).unwrap(), dec!(99.00));

    let first = InvoiceRequest {
        plan: Some("white_label_basic".into()),
        opening: Some(november()),
        first_invoice: true,
        ..InvoiceRequest::default()
    };
    assert_total(&assemble(&catalog, &first).unwrap(), dec!(2499.00));
}

#[test]
fn qlp_yaml_cases_1_2_and_3() {
    let catalog = example("qlp");
    let mut generations = BTreeMap::new();
    generations.insert("generations".to_owned(), qlp_case_1_generations());
    assert_total(
        &assemble(&catalog, &closing_november("payg", generations)).unwrap(),
        dec!(7.00),
    );

    let changes = [
        (ts("2026-11-01T00:00:00Z"), dec!(50)),
        (ts("2026-11-16T00:00:00Z"), dec!(100)),
    ];
    let per = catalog.meters["storage_gb"].per.unwrap_or(TimeUnit::Month);
    let gb_months = time_weighted(&changes, &november(), per).unwrap();
    let draft = assemble(
        &catalog,
        &closing_november("starter", usage(&[("storage_gb", gb_months)])),
    )
    .unwrap();
    let storage = draft
        .lines
        .iter()
        .find(|l| {
            l.kind
                == LineKind::Usage {
                    meter: "storage_gb".into(),
                }
        })
        .unwrap();
    assert_eq!(storage.amount, usd(dec!(6.50)));
    assert_total(&draft, dec!(105.50));

    let minutes = divide_by(dec!(5400000), catalog.meters["compute_minutes"].divide_by).unwrap();
    let draft = assemble(
        &catalog,
        &closing_november("payg", usage(&[("compute_minutes", minutes)])),
    )
    .unwrap();
    assert_total(&draft, dec!(4.50));
}
