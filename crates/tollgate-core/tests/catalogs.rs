//! The catalog file format end to end: the five field catalogs, every mistake reported with its
//! path, `extends`, diffs, and the stored (serde JSON) form.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tollgate_core::catalog::{
    Aggregation, Catalog, Collection, CouponDuration, Discount, Enforcement, Entitlement, Interval,
    Limit, PackageRounding, PriceModel, QuotaReset, Scope, TimeUnit, diff, from_json_value,
    parse_yaml, to_json, to_yaml,
};
use tollgate_core::duration::WindowLength;

const LEXECON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/catalogs/lexecon.yaml"
));
const APEX: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/catalogs/apex.yaml"
));
const CONTROL_PLANE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/catalogs/control-plane.yaml"
));
const LEVQOR: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/catalogs/levqor.yaml"
));
const QLP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/catalogs/qlp.yaml"
));

const ALL: [(&str, &str); 5] = [
    ("lexecon", LEXECON),
    ("apex", APEX),
    ("control-plane", CONTROL_PLANE),
    ("levqor", LEVQOR),
    ("qlp", QLP),
];

fn parse(name: &str, text: &str) -> Catalog {
    parse_yaml(text).unwrap_or_else(|errors| panic!("{name} does not validate:\n{errors}"))
}

fn on(value: bool) -> Entitlement {
    Entitlement::Switch(value)
}

fn limit(value: Decimal) -> Entitlement {
    Entitlement::Limit(Limit::Finite(value))
}

#[test]
fn all_five_field_catalogs_validate() {
    for (name, text) in ALL {
        let catalog = parse(name, text);
        assert_eq!(catalog.currency.code(), "USD", "{name}");
        assert!(!catalog.plans.is_empty(), "{name}");
    }
}

#[test]
fn lexecon_facts() {
    let c = parse("lexecon", LEXECON);
    assert_eq!(
        c.meters["unique_actors"].aggregation,
        Aggregation::UniqueCount
    );
    assert_eq!(c.meters["unique_actors"].property.as_deref(), Some("actor"));
    let startup = &c.plans["startup"];
    let base = startup.base.as_ref().expect("startup has a base fee");
    assert_eq!((base.amount, base.interval), (dec!(99.00), Interval::Month));
    assert_eq!(startup.trial_days, Some(14));
    assert_eq!(startup.rate_limits[0].limit, 100);
    assert_eq!(startup.rate_limits[0].per, WindowLength::MINUTE);
    assert_eq!(
        startup.prices[0].model,
        PriceModel::Package {
            size: dec!(1000),
            amount: dec!(5.00),
            rounding: PackageRounding::Up
        }
    );
    let starter = &c.plans["enterprise_starter"];
    assert_eq!(starter.collection, Collection::SendInvoice);
    assert_eq!(
        starter.base.as_ref().map(|b| (b.amount, b.interval)),
        Some((dec!(10000), Interval::Year))
    );
    assert_eq!(starter.rate_limits[0].per, WindowLength::HOUR);
    let platform = &c.plans["enterprise_platform"];
    assert_eq!(platform.base.as_ref().map(|b| b.amount), Some(dec!(50000)));
    for feature in ["sso", "self_hosted", "dedicated_store"] {
        assert_eq!(platform.features[feature], on(true), "{feature}");
    }
    assert_eq!(platform.collection, Collection::SendInvoice, "inherited");
}

#[test]
fn apex_tiers_extend_each_other() {
    let c = parse("apex", APEX);
    let mid = &c.plans["mid"];
    assert_eq!(
        mid.features["basic_chat"],
        on(true),
        "from free, through early"
    );
    assert_eq!(mid.features["api_access"], on(true), "from early");
    assert_eq!(
        mid.quotas.len(),
        1,
        "the child's quota replaces the parent's"
    );
    let quota = &mid.quotas[0];
    assert_eq!(quota.limit, Limit::Finite(dec!(1000)));
    assert_eq!(quota.per, Scope::Subject);
    assert_eq!(quota.reset, QuotaReset::Rolling("5h".parse().expect("5h")));
    assert_eq!(mid.trial_days, None, "a trial is an offer of `early` only");

    let early = &c.plans["early"];
    assert_eq!(
        (early.trial_days, early.trial_fallback.as_deref()),
        (Some(7), Some("free"))
    );
    assert_eq!(
        early.prices[0].model,
        PriceModel::Percentage {
            percent: dec!(2),
            floor: None,
            cap: Some(dec!(99.00)),
            per_transaction: Default::default(),
        }
    );
    let enterprise = &c.plans["enterprise"];
    assert_eq!(
        enterprise.quotas[0].limit,
        Limit::Finite(dec!(1000)),
        "inherited from mid"
    );
    assert_eq!(enterprise.prices.len(), 1);
    assert_eq!(
        enterprise.prices[0].model,
        PriceModel::Percentage {
            percent: dec!(10),
            floor: None,
            cap: None,
            per_transaction: Default::default(),
        }
    );
    assert_eq!(
        c.meters["agent_runs"].filter["level"],
        serde_json::json!("supervisor")
    );
    let welcome = &c.coupons["referral_welcome"];
    assert_eq!(
        (welcome.discount, welcome.duration),
        (Discount::PercentOff(dec!(20)), CouponDuration::Invoices(3))
    );
    assert_eq!(
        c.referrals.as_ref().map(|r| r.referrer.as_str()),
        Some("referral_reward")
    );
    assert_eq!(c.policies.trial_reminder_days, Some(2));
}

#[test]
fn control_plane_facts() {
    let c = parse("control-plane", CONTROL_PLANE);
    let open = &c.plans["open_source"];
    assert_eq!(open.quotas[0].limit, Limit::Finite(dec!(10000)));
    assert_eq!(
        (open.quotas[0].reset, open.quotas[0].enforcement),
        (QuotaReset::Period, Enforcement::Hard)
    );
    let starter = &c.plans["starter"];
    assert_eq!(starter.prices[0].included, Some(dec!(100000)));
    assert_eq!(
        starter.prices[0].model,
        PriceModel::PerUnit {
            unit_amount: dec!(0.001)
        }
    );
    assert_eq!(starter.features["policy_packs"], limit(dec!(2)));
    assert!(starter.addons.contains_key("seat"));
    assert!(!c.plans["professional"].addons.contains_key("seat"));
    assert_eq!(
        c.plans["enterprise"].features["policy_packs"],
        Entitlement::Limit(Limit::Unlimited)
    );
    assert_eq!(c.addons["seat"].amount, dec!(29.00));
    assert_eq!(
        c.addons["audit_retention_7y"].sets["audit_retention"],
        Entitlement::Config("7y".into())
    );
    // Case 4: from starter, the recommendation ladder is professional then enterprise.
    let ladder: Vec<&str> = c
        .plans_cheapest_first()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        ladder,
        ["open_source", "starter", "professional", "enterprise"]
    );
}

#[test]
fn levqor_facts() {
    let c = parse("levqor", LEVQOR);
    let developer = &c.plans["developer"].prices[0];
    assert_eq!(developer.included, Some(dec!(10000)));
    assert_eq!(
        developer.model,
        PriceModel::Package {
            size: dec!(1000),
            amount: dec!(3.00),
            rounding: PackageRounding::Up
        }
    );
    let white_label = &c.plans["white_label_basic"];
    assert_eq!(white_label.setup_fee, Some(dec!(2000.00)));
    assert_eq!(
        white_label.base.as_ref().map(|b| b.amount),
        Some(dec!(499.00))
    );
    let products: Vec<(&str, Decimal)> = c
        .products
        .iter()
        .map(|(k, p)| (k.as_str(), p.amount))
        .collect();
    assert_eq!(
        products,
        [
            ("integrity_pack", dec!(49)),
            ("starter_pack", dec!(0)),
            ("automation_pro", dec!(99)),
            ("enterprise_pack", dec!(299))
        ]
    );
    assert_eq!(c.products["automation_pro"].grants, ["download"]);
    assert_eq!(c.alerts["api_calls"], [dec!(80), dec!(100)]);
    assert_eq!(c.policies.download_link_ttl, Some(WindowLength::DAY));
}

#[test]
fn qlp_facts() {
    let c = parse("qlp", QLP);
    assert_eq!(c.meters["generations"].group_by, ["tier", "model"]);
    assert_eq!(c.meters["storage_gb"].per, Some(TimeUnit::Month));
    assert_eq!(c.meters["compute_minutes"].divide_by, Some(dec!(60000)));
    let free = &c.plans["free"];
    assert_eq!(
        (free.quotas[0].limit, free.quotas[0].reset),
        (Limit::Finite(dec!(10)), QuotaReset::Period)
    );
    let PriceModel::Dimensional {
        dimension,
        rates,
        multiplier,
    } = &c.plans["payg"].prices[0].model
    else {
        panic!("generations are priced by dimension")
    };
    assert_eq!(dimension, "tier");
    let rates: Vec<(&str, Decimal)> = rates.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        rates,
        [
            ("T0", dec!(0.10)),
            ("T1", dec!(0.25)),
            ("T2", dec!(0.50)),
            ("T3", dec!(1.00))
        ]
    );
    let multiplier = multiplier.as_ref().expect("premium models");
    assert_eq!(
        (multiplier.dimension.as_str(), multiplier.values["gpt-4"]),
        ("model", dec!(2))
    );
    let starter = &c.plans["starter"];
    let storage = starter
        .prices
        .iter()
        .find(|p| p.meter == "storage_gb")
        .expect("storage price");
    assert_eq!(
        (storage.included, &storage.model),
        (
            Some(dec!(10)),
            &PriceModel::PerUnit {
                unit_amount: dec!(0.10)
            }
        )
    );
    assert_eq!(
        starter.prices.len(),
        4,
        "api_calls and compute inherited from payg"
    );
    assert_eq!(starter.features["projects"], limit(dec!(5)));
    // Case 4: the upgrade hint from free is starter, never the base-less payg.
    let ladder: Vec<&str> = c
        .plans_cheapest_first()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(ladder, ["free", "starter", "professional", "enterprise"]);
}

#[test]
fn decimals_from_yaml_numbers_are_exact() {
    let c = parse_yaml(
        "currency: USD\nmeters: { m: { event: e, aggregation: count } }\nplans:\n  p:\n    prices:\n      - { meter: m, model: per_unit, unit_amount: 0.001 }\n",
    )
    .expect("valid");
    assert_eq!(
        c.plans["p"].prices[0].model,
        PriceModel::PerUnit {
            unit_amount: dec!(0.001)
        }
    );
    // 17 significant digits cannot survive the float the YAML parser makes; say so, never guess.
    let errors = parse_yaml(
        "currency: USD\nmeters: { m: { event: e, aggregation: count } }\nplans:\n  p:\n    prices:\n      - { meter: m, model: per_unit, unit_amount: 1234567890.1234567 }\n",
    )
    .expect_err("too many digits");
    assert_eq!(
        errors.to_string(),
        "plans.p.prices[0].unit_amount: 1234567890.1234567 has more digits than a YAML or JSON \
         number keeps exactly; write it as a string"
    );
}

#[test]
fn stored_form_round_trips_for_every_example() {
    for (name, text) in ALL {
        let catalog = parse(name, text);
        let json = serde_json::to_string(&catalog).expect("serializes");
        let back: Catalog = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, catalog, "{name}");
        // And the file form: exporting and reading again gives the same catalog.
        let again = parse_yaml(&to_yaml(&catalog)).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert_eq!(again, catalog, "{name} via YAML");
        // And as JSON in the file's shape (what GET /v1/catalog answers and PUT reads).
        let read_back =
            from_json_value(to_json(&catalog)).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert_eq!(read_back, catalog, "{name} via JSON");
        let value = serde_json::to_value(&catalog).expect("to value");
        assert_eq!(
            serde_json::from_value::<Catalog>(value).expect("from value"),
            catalog,
            "{name}"
        );
    }
}

#[test]
fn config_values_that_look_like_numbers_round_trip() {
    let c = parse_yaml(
        "currency: USD\nfeatures: { retention: config, seats: limit }\nplans:\n  p:\n    features: { retention: \"90\", seats: \"90\" }\n",
    )
    .expect("valid");
    assert_eq!(
        c.plans["p"].features["retention"],
        Entitlement::Config("90".into())
    );
    let back: Catalog =
        serde_json::from_str(&serde_json::to_string(&c).expect("json")).expect("back");
    assert_eq!(back, c);
}

#[test]
fn json_values_validate_like_yaml() {
    let value = serde_json::json!({
        "currency": "USD",
        "meters": { "requests": { "event": "ai.request", "aggregation": "count" } },
        "plans": {
            "zeta": { "quotas": [{ "meter": "requests", "limit": 5, "period": "billing" }] },
            "alpha": { "extends": "zeta", "base": { "amount": 9.99, "interval": "month" } }
        }
    });
    let c = from_json_value(value).expect("valid");
    let order: Vec<&str> = c.plans.keys().map(String::as_str).collect();
    assert_eq!(order, ["zeta", "alpha"], "tier order is the order written");
    assert_eq!(
        c.plans["alpha"].base.as_ref().map(|b| b.amount),
        Some(dec!(9.99))
    );
    assert_eq!(c.plans["alpha"].quotas.len(), 1);
    let errors = from_json_value(serde_json::json!({ "currency": "usd", "plans": [] }))
        .expect_err("invalid");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "currency: \"usd\" is not an ISO 4217 currency code",
            "plans: expected a map, found a list",
        ]
    );
}

/// A catalog with one or more mistakes in every section.
const MISTAKES: &str = r#"currency: XYZ
colour: blue
meters:
  decisions: { event: decision.evaluated, aggregation: count, property: actor }
  spend: { event: cloud.cost, aggregation: total }
  tokens: { event: agent.run, aggregation: sum }
  Bad-Key: { event: "Agent Run", aggregation: count }
  generations: { event: codegen.completed, aggregation: count, group_by: [tier] }
  minutes: { event: job.finished, aggregation: sum, property: ms, divide_by: 0, per: month }
features:
  sso: switch
  projects: limit
  retention: config
  teleport: magic
plans:
  free:
    name: Free
    features: { sso: "yes", projects: -1, retention: 30, warp: true }
    quotas:
      - { meter: decisions, limit: 3, window: 5 hrs, per: subject }
      - { meter: requests, limit: lots, period: billing }
      - { meter: decisions, limit: 3 }
      - { meter: decisions, limit: 3, window: 1h, period: billing, enforcment: soft }
    rate_limits:
      - { limit: 0, per: minute }
      - { limit: 10, per: fortnight, scope: planet }
  early:
    extends: freee
    trial_days: 7
    trial_fallback: nowhere
    base: { amount: "-5.00", interval: weekly }
    prices:
      - { meter: spend, model: percentage, percent: 120, cap: "99.00" }
      - { meter: decisions, model: package, size: 0, amount: "5.OO" }
      - { meter: decisions, model: per_unit, unit_amount: "0.001", percent: 2 }
      - { meter: generations, model: dimensional, dimension: model, rates: { gpt-4: 1 } }
      - { meter: decisions, model: graduated, tiers: [{ up_to: 1000, unit_amount: 1 }, { up_to: 500 }, { up_to: 2000 }] }
      - { meter: decisions, model: volume, tiers: [{ unit_amount: 1 }, { up_to: 10 }] }
      - { meter: decisions, model: flat }
    addons: [seat, parachute]
  mid: { extends: big }
  big: { extends: mid }
addons:
  seat: { amount: 29, interval: month, grants: { sso: 1 } }
products:
  pack: { amount: "-1", grants: [Download] }
coupons:
  half: { percent_off: 50, amount_off: 5 }
referrals: { referred: half, referrer: missing }
"#;

#[test]
fn every_mistake_is_reported_with_its_path() {
    let errors = parse_yaml(MISTAKES).expect_err("full of mistakes");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "colour: unknown field `colour`, expected one of `currency`, `rounding`, `meters`, `features`, `plans`, `addons`, `products`, `coupons`, `referrals`, `alerts`, `policies`, `taxes`, `costs`",
            "currency: \"XYZ\" is not an ISO 4217 currency code",
            "meters.decisions.property: `count` counts events and reads no property; remove it or use another aggregation",
            "meters.spend.aggregation: \"total\" is not one of count, sum, max, unique_count, latest, time_weighted",
            "meters.tokens.property: required field is missing: aggregation `sum` reads a property",
            "meters.Bad-Key: invalid key \"Bad-Key\": use lowercase letters, digits and `_`, starting with a letter (^[a-z][a-z0-9_]*$)",
            "meters.Bad-Key.event: invalid event type \"Agent Run\": use dot-separated lowercase words such as \"decision.evaluated\"",
            "meters.minutes.divide_by: must be greater than 0, found 0",
            "meters.minutes.per: only `time_weighted` meters have a time unit",
            "features.teleport: \"magic\" is not one of switch, limit, config",
            "plans.free.features.sso: feature `sso` is a switch: expected true or false, found the string \"yes\"",
            "plans.free.features.projects: must not be negative, found -1",
            "plans.free.features.retention: feature `retention` is a config value: expected a string, found the number 30",
            "plans.free.features.warp: unknown feature `warp`",
            "plans.free.quotas[0].window: \"5 hrs\" is not a duration (write e.g. \"30s\", \"1m\", \"5h\", \"7d\")",
            "plans.free.quotas[1].meter: unknown meter `requests`",
            "plans.free.quotas[1].limit: expected a number or \"unlimited\", found the string \"lots\"",
            "plans.free.quotas[2]: give `window` (a rolling window such as \"5h\") or `period: billing`",
            "plans.free.quotas[3].enforcment: unknown field `enforcment`, expected one of `meter`, `limit`, `window`, `period`, `per`, `enforcement`",
            "plans.free.quotas[3]: give `window` or `period`, not both",
            "plans.free.rate_limits[0].limit: must be at least 1, found 0",
            "plans.free.rate_limits[1].per: \"fortnight\" is not a duration (write e.g. \"30s\", \"1m\", \"5h\", \"7d\")",
            "plans.free.rate_limits[1].scope: \"planet\" is not one of customer, subject",
            "plans.early.extends: unknown plan `freee`",
            "plans.early.base.amount: must not be negative, found -5.00",
            "plans.early.base.interval: \"weekly\" is not one of day, week, month, quarter, year",
            "plans.early.trial_fallback: unknown plan `nowhere`",
            "plans.early.prices[0].percent: must be between 0 and 100, found 120",
            "plans.early.prices[1].size: must be greater than 0, found 0",
            "plans.early.prices[1].amount: \"5.OO\" is not a decimal number",
            "plans.early.prices[2].percent: unknown field `percent`, expected one of `meter`, `model`, `description`, `included`, `minimum`, `unit_amount`",
            "plans.early.prices[3].dimension: `model` is not a `group_by` property of meter `generations` (it groups by tier)",
            "plans.early.prices[4].tiers[1].up_to: tiers must ascend: 500 is not above 1000",
            "plans.early.prices[4].tiers[2].up_to: the last tier must be open-ended: leave out `up_to`",
            "plans.early.prices[5].tiers[0]: only the last tier may be open-ended: give `up_to`",
            "plans.early.prices[5].tiers[1].up_to: the last tier must be open-ended: leave out `up_to`",
            "plans.early.prices[6].model: \"flat\" is not one of per_unit, package, graduated, volume, percentage, graduated_percentage, dimensional",
            "plans.early.addons[1]: unknown addon `parachute`",
            "plans.mid.extends: `extends` forms a cycle: mid -> big -> mid",
            "addons.seat.grants.sso: feature `sso` is not a limit; an add-on raises limits (use `sets` for others)",
            "products.pack.amount: must not be negative, found -1",
            "products.pack.grants[0]: invalid key \"Download\": use lowercase letters, digits and `_`, starting with a letter (^[a-z][a-z0-9_]*$)",
            "coupons.half: give `percent_off` or `amount_off`, not both",
            "referrals.referrer: unknown coupon `missing`",
        ]
    );
    assert_eq!(
        errors.to_string(),
        lines.join("\n"),
        "Display is one line per mistake"
    );
}

#[test]
fn yaml_syntax_errors_say_where() {
    let errors =
        parse_yaml("currency: USD\nplans:\n  a: { name: \"x\"\n  b: 1\n").expect_err("broken");
    assert_eq!(errors.len(), 1);
    let error = &errors.0[0];
    assert_eq!(error.path, "line 4 column 3");
    assert!(
        error
            .message
            .starts_with("invalid YAML: did not find expected ',' or '}'"),
        "{error}"
    );
    let errors = parse_yaml("currency: USD\nplans:\n  a: {}\n  a: {}\n").expect_err("duplicate");
    assert!(
        errors
            .to_string()
            .contains("duplicate entry with key \"a\""),
        "{errors}"
    );
    let errors = parse_yaml("").expect_err("empty");
    assert_eq!(
        errors.to_string(),
        "catalog: expected a map of sections (currency, meters, ...), found nothing (null)"
    );
}

#[test]
fn extends_cycles_are_reported_once_each() {
    let errors = parse_yaml(
        "currency: USD\nplans:\n  a: { extends: c }\n  b: { extends: a }\n  c: { extends: b }\n  d: { extends: a }\n  e: { extends: e }\n",
    )
    .expect_err("cycles");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "plans.e.extends: plan `e` cannot extend itself",
            "plans.a.extends: `extends` forms a cycle: a -> c -> b -> a",
        ]
    );
}

#[test]
fn references_must_exist_and_trials_need_days() {
    let errors = parse_yaml(
        r#"
currency: USD
meters: { m: { event: e, aggregation: count } }
plans:
  free: { trial_fallback: free }
  paid: { trial_fallback: free, prices: [{ meter: nope, model: per_unit, unit_amount: 1 }] }
alerts: { nope: [80, 100], m: [100, 80] }
"#,
    )
    .expect_err("dangling");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "plans.free.trial_fallback: a trial cannot fall back to its own plan",
            "plans.free.trial_fallback: a trial fallback needs `trial_days` on the same plan",
            "plans.paid.trial_fallback: a trial fallback needs `trial_days` on the same plan",
            "plans.paid.prices[0].meter: unknown meter `nope`",
            "alerts.nope: unknown meter `nope`",
            "alerts.m[1]: thresholds must ascend: 80 is not above 100",
        ]
    );
}

#[test]
fn a_broken_entry_does_not_make_references_to_it_errors_too() {
    let errors = parse_yaml(
        "currency: USD\nmeters: { m: { event: e, aggregation: sum } }\nfeatures: { f: toggle }\nplans:\n  p:\n    features: { f: true }\n    prices: [{ meter: m, model: per_unit, unit_amount: 1 }]\n",
    )
    .expect_err("broken meter and feature");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "meters.m.property: required field is missing: aggregation `sum` reads a property",
            "features.f: \"toggle\" is not one of switch, limit, config",
        ]
    );
}

#[test]
fn inheritance_rules() {
    let c = parse_yaml(
        r#"
currency: USD
meters:
  runs: { event: run, aggregation: count }
  calls: { event: call, aggregation: count }
features: { sso: switch, seats: limit }
addons: { seat: { amount: 5, interval: month } }
plans:
  small:
    base: { amount: 10, interval: month }
    setup_fee: 100
    features: { sso: false, seats: 1 }
    quotas:
      - { meter: runs, limit: 3, window: 5h, per: subject }
      - { meter: runs, limit: 100, period: billing }
    rate_limits:
      - { limit: 100, per: minute }
      - { limit: 5, per: second, scope: subject }
    prices: [{ meter: calls, model: per_unit, unit_amount: "0.01" }]
    addons: [seat]
  big:
    extends: small
    setup_fee: ~
    features: { sso: true }
    quotas: [{ meter: runs, limit: 10, window: 5h, per: subject }]
    rate_limits: [{ limit: 10000, per: hour }]
"#,
    )
    .expect("valid");
    let big = &c.plans["big"];
    assert_eq!(
        big.base.as_ref().map(|b| b.amount),
        Some(dec!(10)),
        "inherited"
    );
    assert_eq!(big.setup_fee, None, "cleared with ~");
    assert_eq!(big.features["sso"], on(true));
    assert_eq!(big.features["seats"], limit(dec!(1)));
    let quotas: Vec<(Limit, QuotaReset)> = big.quotas.iter().map(|q| (q.limit, q.reset)).collect();
    assert_eq!(
        quotas,
        [
            (Limit::Finite(dec!(100)), QuotaReset::Period),
            (
                Limit::Finite(dec!(10)),
                QuotaReset::Rolling("5h".parse().expect("5h"))
            )
        ],
        "the subject quota on runs is replaced, the customer one kept"
    );
    let rates: Vec<(u64, Scope)> = big.rate_limits.iter().map(|r| (r.limit, r.scope)).collect();
    assert_eq!(
        rates,
        [(5, Scope::Subject), (10000, Scope::Customer)],
        "customer rate limits replaced"
    );
    assert_eq!(big.prices, c.plans["small"].prices);
    assert!(big.addons.contains_key("seat"));
    assert_eq!(big.extends.as_deref(), Some("small"));
}

#[test]
fn diff_names_what_changed() {
    let old = parse("apex", APEX);
    let changed = APEX
        .replace(r#"percent: 2, cap: "99.00""#, r#"percent: 2, cap: "89.00""#)
        .replace(
            "  tokens: { event: agent.run, aggregation: sum, property: tokens }\n",
            "",
        )
        .replace("    trial_days: 7\n", "    trial_days: 14\n")
        .replace(
            "  referral_reward:",
            "  spring_sale: { percent_off: 10 }\n  referral_reward:",
        );
    let new = parse("apex changed", &changed);
    let lines: Vec<String> = diff(&old, &new).iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "- meters.tokens",
            "~ plans.early.trial_days: 7 -> 14",
            "~ plans.early.prices[0].cap: 99.00 -> 89.00",
            "+ coupons.spring_sale",
        ]
    );
    assert!(diff(&old, &old).is_empty());
    let fewer = APEX
        .replace("  mid:\n    name: Mid\n", "  mid:\n")
        .replace("extends: mid", "extends: early");
    let lines: Vec<String> = diff(&old, &parse("apex fewer", &fewer))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(lines[0], "- plans.mid.name: Mid");
    assert!(
        lines.contains(&"- plans.enterprise.features.all_agents: true".to_owned()),
        "{lines:#?}"
    );
}

#[test]
fn diff_shows_added_plans_and_order() {
    let old = parse_yaml("currency: USD\nplans: { a: {}, b: {} }\n").expect("valid");
    let new = parse_yaml(
        "currency: EUR\nplans: { b: {}, a: { base: { amount: 5, interval: month } }, c: {} }\n",
    )
    .expect("valid");
    let lines: Vec<String> = diff(&old, &new).iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "~ currency: USD -> EUR",
            "+ plans.a.base: {amount: 5, interval: month, timing: in_advance}",
            "+ plans.c",
            "~ plans (order): a, b -> b, a",
        ]
    );
}

#[test]
fn the_reference_opening_example_validates() {
    let reference = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/CATALOG.md"
    ));
    let block = reference
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/CATALOG.md opens with a yaml example");
    let catalog = parse_yaml(block).unwrap_or_else(|e| panic!("docs/CATALOG.md example:\n{e}"));
    assert_eq!(
        catalog.plans["enterprise"].rate_limits,
        catalog.plans["startup"].rate_limits
    );
}

mod exact_decimals {
    use proptest::prelude::*;
    use rust_decimal::Decimal;
    use tollgate_core::catalog::{PriceModel, parse_yaml};

    fn unit_amount(written: &str) -> Decimal {
        let text = format!(
            "currency: USD\nmeters: {{ m: {{ event: e, aggregation: count }} }}\nplans:\n  p:\n    prices:\n      - {{ meter: m, model: per_unit, unit_amount: {written} }}\n"
        );
        let catalog = parse_yaml(&text).unwrap_or_else(|e| panic!("{written}: {e}"));
        match &catalog.plans["p"].prices[0].model {
            PriceModel::PerUnit { unit_amount } => *unit_amount,
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        /// Any decimal of up to 15 significant digits written as a bare YAML number, or any
        /// decimal at all written as a string, is read as exactly that decimal.
        #[test]
        fn written_decimals_are_read_exactly(mantissa in 0i64..999_999_999_999_999, scale in 0u32..10) {
            let value = Decimal::new(mantissa, scale);
            prop_assert_eq!(unit_amount(&value.to_string()), value);
            prop_assert_eq!(unit_amount(&format!("\"{value}\"")), value);
        }
    }
}

/// A catalog's currency decides the decimals of every invoice amount, from ISO 4217: yen have
/// none, Kuwaiti dinars three. An unknown code is refused at validation, never billed as if it
/// had two.
#[test]
fn invoice_amounts_have_the_catalog_currency_s_decimals() {
    use tollgate_core::pricing::{BillingPeriod, InvoiceRequest, MeterUsage, assemble};
    let catalog = |currency: &str| {
        format!(
            "currency: {currency}\nmeters: {{ m: {{ event: e, aggregation: count }} }}\nplans:\n  p:\n    prices:\n      - {{ meter: m, model: per_unit, unit_amount: \"0.1234\" }}\n"
        )
    };
    let november = BillingPeriod::new(
        "2026-11-01T00:00:00Z".parse().unwrap(),
        "2026-12-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let request = InvoiceRequest {
        plan: Some("p".into()),
        closing: Some(november),
        usage: [("m".to_owned(), MeterUsage::total(dec!(1000)))].into(),
        ..InvoiceRequest::default()
    };
    for (currency, digits, total, minor) in [
        ("JPY", 0, "123", 123),
        ("USD", 2, "123.40", 12_340),
        ("KWD", 3, "123.400", 123_400),
    ] {
        let c = parse(currency, &catalog(currency));
        assert_eq!(c.currency.minor_digits(), digits, "{currency}");
        let draft = assemble(&c, &request).unwrap();
        assert_eq!(draft.total.to_decimal().to_string(), total, "{currency}");
        assert_eq!(draft.total.minor(), minor, "{currency}");
        assert_eq!(draft.lines[0].amount.to_decimal().to_string(), total);
    }

    let errors = parse_yaml(&catalog("XYZ")).expect_err("XYZ is no currency");
    assert_eq!(
        errors.to_string(),
        "currency: \"XYZ\" is not an ISO 4217 currency code"
    );
    let errors = parse_yaml(&catalog("XAU")).expect_err("gold has no minor unit");
    assert_eq!(errors.0[0].path, "currency");
    assert!(
        errors.0[0].message.contains("without a minor unit"),
        "{errors}"
    );
}

/// `billing`, `upgrades` and `every` are read, inherited and defaulted as docs/CATALOG.md says,
/// and an add-on whose interval cannot be converted to its plan's period is refused.
#[test]
fn billing_periods_in_the_catalog() {
    use tollgate_core::catalog::{Anchor, UpgradeInvoicing};
    let yaml = r#"
currency: USD
addons:
  seat: { amount: "29.00", interval: month }
  day_pass: { amount: "2.00", interval: day }
plans:
  monthly:
    base: { amount: "99.00", interval: month }
    addons: [seat]
  quarterly:
    extends: monthly
    base: { amount: "270.00", interval: month, every: 3 }
    upgrades: always_invoice
  yearly:
    base: { amount: "1000.00", interval: year }
  yearly_calendar:
    base: { amount: "1000.00", interval: year }
    billing: calendar
  weekly:
    base: { amount: "20.00", interval: week, every: 2 }
    billing: anniversary
    addons: [day_pass]
"#;
    let catalog = parse_yaml(yaml).unwrap();
    let plan = |k: &str| &catalog.plans[k];
    assert_eq!(plan("monthly").anchor(), Anchor::Calendar);
    assert_eq!(plan("yearly").anchor(), Anchor::Anniversary);
    assert_eq!(plan("yearly_calendar").anchor(), Anchor::Calendar);
    assert_eq!(plan("weekly").anchor(), Anchor::Anniversary);
    assert_eq!(plan("quarterly").cadence().months(), Some(3));
    assert_eq!(plan("weekly").cadence().days(), Some(14));
    assert_eq!(plan("quarterly").upgrades, UpgradeInvoicing::AlwaysInvoice);
    assert_eq!(plan("monthly").upgrades, UpgradeInvoicing::NextInvoice);
    // Stored form round-trips with the new keys.
    let stored = serde_json::to_string(&catalog).unwrap();
    let back: Catalog = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, catalog);

    let bad = r#"
currency: USD
addons:
  seat: { amount: "29.00", interval: month }
plans:
  weekly:
    base: { amount: "20.00", interval: week, every: 0 }
    billing: monthly
    upgrades: sometimes
  daily:
    base: { amount: "1.00", interval: day }
    addons: [seat]
  long:
    base: { amount: "1.00", interval: month, every: 1001 }
"#;
    let errors: Vec<String> = parse_yaml(bad)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "plans.weekly.base.every: must be at least 1, found 0",
            "plans.weekly.billing: \"monthly\" is not one of calendar, anniversary",
            "plans.weekly.upgrades: \"sometimes\" is not one of next_invoice, always_invoice",
            "plans.long.base.every: must be at most 1000, found 1001",
        ],
        "{errors:#?}"
    );
    let mismatched = bad
        .replace("every: 0", "every: 1")
        .replace("billing: monthly", "billing: calendar")
        .replace("upgrades: sometimes", "upgrades: next_invoice")
        .replace("every: 1001", "every: 2");
    let errors: Vec<String> = parse_yaml(&mismatched)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("plans.daily.addons.seat: add-on `seat` is priced per month"),
        "{errors:#?}"
    );
}

#[test]
fn license_blocks_are_read_inherited_and_checked() {
    let c = parse("lexecon", LEXECON);
    let starter = c.plans["enterprise_starter"].license.clone().unwrap();
    assert_eq!((starter.grace_days, starter.max_machines), (0, None));
    assert!(starter.limits.is_empty());
    assert_eq!(
        c.plans["enterprise_platform"].license,
        Some(starter),
        "inherited through extends"
    );
    assert_eq!(c.plans["startup"].license, None);
    assert!(
        parse("control-plane", CONTROL_PLANE).plans["enterprise"]
            .license
            .is_some()
    );

    let yaml = r#"
currency: USD
plans:
  onprem:
    base: { amount: "10.00", interval: month }
    license: { grace_days: 7, max_machines: 3, limits: { agents: 50 } }
  bigger:
    extends: onprem
    license: ~
  bad:
    license: { grace_days: -1, max_machines: 0, limits: { agents: 1.5 }, seats: 2 }
"#;
    let errors: Vec<String> = parse_yaml(yaml)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(
        errors.iter().all(|e| e.starts_with("plans.bad.license")),
        "{errors:#?}"
    );
    let good = parse_yaml(&yaml.replace(
        "  bad:\n    license: { grace_days: -1, max_machines: 0, limits: { agents: 1.5 }, seats: 2 }\n",
        "",
    ))
    .unwrap();
    let terms = good.plans["onprem"].license.clone().unwrap();
    assert_eq!((terms.grace_days, terms.max_machines), (7, Some(3)));
    assert_eq!(terms.limits["agents"], 50);
    assert_eq!(good.plans["bigger"].license, None, "`license: ~` clears it");
}

#[test]
fn products_may_name_a_download_url() {
    let yaml = r#"
currency: USD
products:
  pack: { amount: "9.00", grants: [download], download_url: "https://cdn.example.com/pack.zip" }
  sticker: { amount: "1.00", download_url: "https://cdn.example.com/s.zip" }
  odd: { amount: "1.00", grants: [download], download_url: "ftp://x" }
"#;
    let errors: Vec<String> = parse_yaml(yaml)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("products.sticker.download_url"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with("products.odd.download_url"),
        "{errors:#?}"
    );
    let c = parse_yaml(
        &yaml
            .replace("  sticker:", "  #sticker:")
            .replace("  odd:", "  #odd:"),
    )
    .unwrap();
    assert_eq!(
        c.products["pack"].download_url.as_deref(),
        Some("https://cdn.example.com/pack.zip")
    );
}

#[test]
fn dunning_policies_read_check_and_round_trip() {
    let base = "currency: USD\nplans:\n  pro:\n    base: { amount: \"20.00\", interval: month }\n";
    let good =
        format!("{base}policies:\n  dunning: {{ retry_after_days: [1, 3, 5], then: suspend }}\n");
    let catalog = parse_yaml(&good).unwrap();
    let dunning = catalog.policies.dunning.clone().unwrap();
    assert_eq!(dunning.retry_after_days, vec![1, 3, 5]);
    assert_eq!(dunning.then, tollgate_core::catalog::DunningEnd::Suspend);
    let again = parse_yaml(&to_yaml(&catalog)).unwrap();
    assert_eq!(again.policies, catalog.policies);
    let bad =
        format!("{base}policies:\n  dunning: {{ retry_after_days: [3, 1, 90], then: sulk }}\n");
    let errors: Vec<String> = parse_yaml(&bad)
        .unwrap_err()
        .0
        .iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect();
    assert_eq!(
        errors,
        vec![
            "policies.dunning.retry_after_days[1]: days must ascend: 1 is not after 3",
            "policies.dunning.retry_after_days[2]: a retry is at most 60 days after the first failure",
            "policies.dunning.then: \"sulk\" is not one of suspend, cancel, nothing",
        ]
    );
    let missing = format!("{base}policies:\n  dunning: {{ then: cancel }}\n");
    assert!(parse_yaml(&missing).is_err());
}
