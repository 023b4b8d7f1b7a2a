//! From a loose value tree to a validated [`Catalog`]: every section, every entry, every field
//! checked on its own, so that all mistakes of a file are reported together, each with its path.
//!
//! Sections are read in a fixed order (meters and features before the plans that refer to them),
//! and references are checked against the *keys* written in the file, so an entry with a mistake
//! of its own does not also make every reference to it an error.

use indexmap::IndexMap;
use rust_decimal::Decimal;

use super::error::CatalogErrors;
use super::model::{
    Addon, Aggregation, Catalog, Entitlement, Feature, FeatureKind, Interval, Meter, OnDuplicate,
    Product, TimeUnit,
};
use super::node::Node;
use super::offers::{alerts, coupon, policies, referrals};
use super::plans;
use super::read::{Cx, Fields, index, join, name_of};
use super::taxes::taxes;
use crate::money::{Currency, Rounding};

/// The entries of one section by key; `None` for an entry that has mistakes of its own. Every key
/// written in the file is here, so references to a broken entry are not reported twice.
pub(crate) type Section<T> = IndexMap<String, Option<T>>;

pub(crate) const AGGREGATIONS: &[(&str, Aggregation)] = &[
    ("count", Aggregation::Count),
    ("sum", Aggregation::Sum),
    ("max", Aggregation::Max),
    ("unique_count", Aggregation::UniqueCount),
    ("latest", Aggregation::Latest),
    ("time_weighted", Aggregation::TimeWeighted),
];
const TIME_UNITS: &[(&str, TimeUnit)] = &[
    ("second", TimeUnit::Second),
    ("minute", TimeUnit::Minute),
    ("hour", TimeUnit::Hour),
    ("day", TimeUnit::Day),
    ("month", TimeUnit::Month),
];
const ON_DUPLICATE: &[(&str, OnDuplicate)] = &[
    ("first_wins", OnDuplicate::FirstWins),
    ("latest_replaces", OnDuplicate::LatestReplaces),
];
const FEATURE_KINDS: &[(&str, FeatureKind)] = &[
    ("switch", FeatureKind::Switch),
    ("limit", FeatureKind::Limit),
    ("config", FeatureKind::Config),
];
pub(crate) const INTERVALS: &[(&str, Interval)] = &[
    ("day", Interval::Day),
    ("week", Interval::Week),
    ("month", Interval::Month),
    ("quarter", Interval::Quarter),
    ("year", Interval::Year),
];
const ROUNDINGS: &[(&str, Rounding)] = &[
    ("half_away_from_zero", Rounding::HalfAwayFromZero),
    ("half_even", Rounding::HalfEven),
    ("up", Rounding::Up),
    ("down", Rounding::Down),
];

const TOP: &[&str] = &[
    "currency",
    "rounding",
    "meters",
    "features",
    "plans",
    "addons",
    "products",
    "coupons",
    "referrals",
    "alerts",
    "policies",
    "taxes",
    "costs",
];

/// Checks a whole catalog. `Err` holds every mistake found, in the order of the sections.
pub(crate) fn catalog(root: &Node) -> Result<Catalog, CatalogErrors> {
    let mut cx = Cx::default();
    let built = read_catalog(&mut cx, root);
    match built {
        Some(catalog) if cx.errors.is_empty() => Ok(catalog),
        _ => Err(CatalogErrors(cx.errors)),
    }
}

fn read_catalog(cx: &mut Cx, root: &Node) -> Option<Catalog> {
    let top = match root {
        Node::Map(_) => cx.fields("", root, TOP)?,
        other => {
            let found = other.describe();
            cx.error(
                "catalog",
                format!("expected a map of sections (currency, meters, ...), found {found}"),
            );
            return None;
        }
    };
    let currency = top.req(cx, "currency", read_currency);
    let rounding = top.opt(cx, "rounding", |cx, p, n| cx.choice(p, n, ROUNDINGS));
    let meters = section(cx, &top, "meters", meter);
    check_duplicate_rules(cx, &top.path_of("meters"), &meters);
    let features = section(cx, &top, "features", feature);
    let plans_path = top.path_of("plans");
    let plan_entries = top
        .get("plans")
        .and_then(|n| cx.map(&plans_path, n))
        .unwrap_or_default();
    let addon_keys: Vec<String> = top
        .get("addons")
        .and_then(|n| match n {
            Node::Map(entries) => Some(entries.iter().map(|(k, _)| k.clone()).collect()),
            _ => None,
        })
        .unwrap_or_default();
    let refs = plans::Refs {
        meters: &meters,
        features: &features,
        addons: &addon_keys,
    };
    let plans = plans::read_plans(cx, &plans_path, plan_entries, &refs);
    let addons = section(cx, &top, "addons", |cx, p, n| addon(cx, p, n, &features));
    let products = section(cx, &top, "products", product);
    let coupons = section(cx, &top, "coupons", coupon);
    let referrals = top.opt(cx, "referrals", |cx, p, n| referrals(cx, p, n, &coupons));
    let alerts = top
        .opt(cx, "alerts", |cx, p, n| alerts(cx, p, n, &meters))
        .unwrap_or_default();
    let policies = top.opt(cx, "policies", policies).unwrap_or_default();
    if let Some(currency) = currency {
        let at = |section: &str, key: &str| join(&top.path_of(section), key);
        let entries: Vec<(String, &IndexMap<String, Decimal>)> = addons
            .iter()
            .filter_map(|(k, a)| Some((at("addons", k), &a.as_ref()?.currencies)))
            .chain(
                products
                    .iter()
                    .filter_map(|(k, p)| Some((at("products", k), &p.as_ref()?.currencies))),
            )
            .chain(
                coupons
                    .iter()
                    .filter_map(|(k, c)| Some((at("coupons", k), &c.as_ref()?.currencies))),
            )
            .collect();
        check_offer_currencies(cx, entries, currency);
    }
    if let Some(plans) = &plans {
        plans::check_addon_cadences(cx, &plans_path, plans, &addons);
        if let Some(currency) = currency {
            plans::check_currencies(cx, &plans_path, plans, currency);
        }
    }
    let plan_keys: Vec<String> = plan_entries.iter().map(|(k, _)| k.clone()).collect();
    let product_keys: Vec<String> = products.keys().cloned().collect();
    let taxes = top
        .opt(cx, "taxes", |cx, p, n| {
            taxes(cx, p, n, &plan_keys, &product_keys)
        })
        .unwrap_or_default();
    let costs = top
        .opt(cx, "costs", |cx, p, n| {
            super::costs::costs(cx, p, n, &meters)
        })
        .unwrap_or_default();
    if !cx.errors.is_empty() {
        return None;
    }
    Some(Catalog {
        currency: currency?,
        rounding: rounding.unwrap_or_default(),
        meters: complete(meters)?,
        features: complete(features)?,
        plans: plans?,
        addons: complete(addons)?,
        products: complete(products)?,
        coupons: complete(coupons)?,
        referrals,
        alerts,
        policies,
        taxes,
        costs,
    })
}

/// The meters of one event type share its events, so they must agree on what a repeated id
/// does: an amendment replaces the event's properties for all of them or for none.
fn check_duplicate_rules(cx: &mut Cx, path: &str, meters: &Section<Meter>) {
    let mut first: IndexMap<&str, (&str, OnDuplicate)> = IndexMap::new();
    for (key, meter) in meters {
        let Some(meter) = meter else { continue };
        match first.get(meter.event.as_str()) {
            Some((other, rule)) if *rule != meter.on_duplicate => cx.error(
                &join(&join(path, key), "on_duplicate"),
                format!(
                    "meter `{other}` reads the same event type `{}` with another `on_duplicate`; meters of one event type must agree",
                    meter.event
                ),
            ),
            Some(_) => {}
            None => {
                first.insert(&meter.event, (key, meter.on_duplicate));
            }
        }
    }
}

/// Reads one section: a map from keys (checked) to entries (read by `read`).
fn section<'n, T>(
    cx: &mut Cx,
    top: &Fields<'n>,
    name: &str,
    mut read: impl FnMut(&mut Cx, &str, &'n Node) -> Option<T>,
) -> Section<T> {
    let mut out = Section::new();
    let path = top.path_of(name);
    let Some(entries) = top.get(name).and_then(|node| cx.map(&path, node)) else {
        return out;
    };
    for (key, node) in entries {
        let entry_path = join(&path, key);
        let key_ok = cx.key(&entry_path, key);
        let value = read(cx, &entry_path, node);
        out.insert(key.clone(), value.filter(|_| key_ok));
    }
    out
}

/// All entries of a section, or `None` if any had a mistake (already reported).
pub(crate) fn complete<T>(section: Section<T>) -> Option<IndexMap<String, T>> {
    section
        .into_iter()
        .map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

fn read_currency(cx: &mut Cx, path: &str, node: &Node) -> Option<Currency> {
    let code = cx.string(path, node)?;
    match code.parse::<Currency>() {
        Ok(currency) => Some(currency),
        Err(e) => {
            cx.error(path, e.to_string());
            None
        }
    }
}

const METER_FIELDS: &[&str] = &[
    "name",
    "event",
    "aggregation",
    "property",
    "filter",
    "group_by",
    "divide_by",
    "per",
    "corrections",
    "on_duplicate",
];

fn meter(cx: &mut Cx, path: &str, node: &Node) -> Option<Meter> {
    let start = cx.count();
    let f = cx.fields(path, node, METER_FIELDS)?;
    let name = f.opt(cx, "name", Cx::string);
    let event = f.req(cx, "event", Cx::event_type);
    let aggregation = f.req(cx, "aggregation", |cx, p, n| cx.choice(p, n, AGGREGATIONS));
    let property = f.opt(cx, "property", Cx::property);
    let filter = f.opt(cx, "filter", filter).unwrap_or_default();
    let group_by = f.opt(cx, "group_by", property_list).unwrap_or_default();
    let divide_by = f.opt(cx, "divide_by", Cx::positive);
    let per = f.opt(cx, "per", |cx, p, n| cx.choice(p, n, TIME_UNITS));
    let corrections = f.opt(cx, "corrections", Cx::boolean).unwrap_or(false);
    if corrections && aggregation.is_some_and(|a| a != Aggregation::Sum) {
        cx.error(
            &f.path_of("corrections"),
            "only `sum` meters take corrections (negative quantities)",
        );
    }
    let on_duplicate = f
        .opt(cx, "on_duplicate", |cx, p, n| cx.choice(p, n, ON_DUPLICATE))
        .unwrap_or_default();
    // Only a meter whose events each add a value can take a replacement back exactly (by the
    // difference); a maximum, latest value, unique count or level cannot be un-applied.
    if on_duplicate == OnDuplicate::LatestReplaces
        && aggregation.is_some_and(|a| !matches!(a, Aggregation::Sum | Aggregation::Count))
    {
        cx.error(
            &f.path_of("on_duplicate"),
            "only `sum` and `count` meters take `latest_replaces` (a replacement changes the total by the difference)",
        );
    }
    if let Some(aggregation) = aggregation {
        let word = name_of(AGGREGATIONS, aggregation);
        match aggregation {
            Aggregation::Count if f.has("property") => cx.error(
                &f.path_of("property"),
                "`count` counts events and reads no property; remove it or use another aggregation",
            ),
            Aggregation::Count => {}
            _ if !f.has("property") => cx.error(
                &f.path_of("property"),
                format!("required field is missing: aggregation `{word}` reads a property"),
            ),
            _ => {}
        }
        if f.has("per") && aggregation != Aggregation::TimeWeighted {
            cx.error(
                &f.path_of("per"),
                "only `time_weighted` meters have a time unit",
            );
        }
    }
    if cx.count() > start {
        return None;
    }
    let time_weighted = aggregation == Some(Aggregation::TimeWeighted);
    Some(Meter {
        name,
        event: event?,
        aggregation: aggregation?,
        property,
        filter,
        group_by,
        divide_by,
        // A validated time-weighted meter always says its unit, so no reader guesses the default.
        per: per.or(time_weighted.then_some(TimeUnit::Month)),
        corrections,
        on_duplicate,
    })
}

/// Event-property filters: each value a string, number or boolean to compare with.
fn filter(cx: &mut Cx, path: &str, node: &Node) -> Option<IndexMap<String, serde_json::Value>> {
    let entries = cx.map(path, node)?;
    let mut out = IndexMap::new();
    for (key, value) in entries {
        let p = join(path, key);
        match value {
            Node::Str(_) | Node::Number(_) | Node::Bool(_) => {
                out.insert(key.clone(), value.to_json());
            }
            other => {
                cx.error(
                    &p,
                    format!(
                        "expected a string, number or boolean, found {}",
                        other.describe()
                    ),
                );
            }
        }
    }
    Some(out)
}

/// A list of distinct property names (`group_by: [tier, model]`).
fn property_list(cx: &mut Cx, path: &str, node: &Node) -> Option<Vec<String>> {
    let items = cx.seq(path, node)?;
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        if let Some(name) = cx.property(&p, item) {
            if out.contains(&name) {
                cx.error(&p, format!("`{name}` is listed twice"));
            } else {
                out.push(name);
            }
        }
    }
    Some(out)
}

/// `sso: switch` or `sso: { kind: switch, name: "Single sign-on" }`.
fn feature(cx: &mut Cx, path: &str, node: &Node) -> Option<Feature> {
    if let Node::Str(_) = node {
        let kind = cx.choice(path, node, FEATURE_KINDS)?;
        return Some(Feature { name: None, kind });
    }
    if !matches!(node, Node::Map(_)) {
        let found = node.describe();
        cx.error(
            path,
            format!("expected switch, limit, config or a map with `kind`, found {found}"),
        );
        return None;
    }
    let start = cx.count();
    let f = cx.fields(path, node, &["kind", "name"])?;
    let kind = f.req(cx, "kind", |cx, p, n| cx.choice(p, n, FEATURE_KINDS));
    let name = f.opt(cx, "name", Cx::string);
    (cx.count() == start).then_some(())?;
    Some(Feature { name, kind: kind? })
}

/// The value a plan (or an add-on) gives feature `key`, checked against the feature's kind.
pub(crate) fn entitlement(
    cx: &mut Cx,
    path: &str,
    key: &str,
    node: &Node,
    features: &Section<Feature>,
) -> Option<Entitlement> {
    let kind = match features.get(key) {
        None => {
            cx.error(path, format!("unknown feature `{key}`"));
            return None;
        }
        // The feature itself is broken and already reported; its kind is unknown.
        Some(None) => return None,
        Some(Some(feature)) => feature.kind,
    };
    match (kind, node) {
        (FeatureKind::Switch, Node::Bool(on)) => Some(Entitlement::Switch(*on)),
        (FeatureKind::Config, Node::Str(text)) => Some(Entitlement::Config(text.clone())),
        (FeatureKind::Limit, Node::Number(_) | Node::Str(_)) => {
            cx.limit(path, node).map(Entitlement::Limit)
        }
        (kind, other) => {
            let expected = match kind {
                FeatureKind::Switch => "a switch: expected true or false",
                FeatureKind::Limit => "a limit: expected a number or \"unlimited\"",
                FeatureKind::Config => "a config value: expected a string",
            };
            cx.error(
                path,
                format!("feature `{key}` is {expected}, found {}", other.describe()),
            );
            None
        }
    }
}

/// A map of feature values (`features: { sso: true, projects: 5 }`).
pub(crate) fn entitlements(
    cx: &mut Cx,
    path: &str,
    node: &Node,
    features: &Section<Feature>,
) -> Option<IndexMap<String, Entitlement>> {
    let entries = cx.map(path, node)?;
    let start = cx.count();
    let mut out = IndexMap::new();
    for (key, value) in entries {
        if let Some(e) = entitlement(cx, &join(path, key), key, value, features) {
            out.insert(key.clone(), e);
        }
    }
    (cx.count() == start).then_some(out)
}

fn addon(cx: &mut Cx, path: &str, node: &Node, features: &Section<Feature>) -> Option<Addon> {
    let start = cx.count();
    let f = cx.fields(
        path,
        node,
        &["name", "amount", "interval", "grants", "sets", "currencies"],
    )?;
    let name = f.opt(cx, "name", Cx::string);
    let amount = f.req(cx, "amount", Cx::amount);
    let interval = f.req(cx, "interval", |cx, p, n| cx.choice(p, n, INTERVALS));
    let grants = f
        .opt(cx, "grants", |cx, p, n| grants(cx, p, n, features))
        .unwrap_or_default();
    let sets = f
        .opt(cx, "sets", |cx, p, n| entitlements(cx, p, n, features))
        .unwrap_or_default();
    let currencies = f
        .opt(cx, "currencies", currency_amounts)
        .unwrap_or_default();
    (cx.count() == start).then_some(())?;
    Some(Addon {
        name,
        amount: amount?,
        interval: interval?,
        grants,
        sets,
        currencies,
    })
}

/// Per-unit raises of limit features (`grants: { policy_packs: 1 }`).
fn grants(
    cx: &mut Cx,
    path: &str,
    node: &Node,
    features: &Section<Feature>,
) -> Option<IndexMap<String, Decimal>> {
    let entries = cx.map(path, node)?;
    let mut out = IndexMap::new();
    for (key, value) in entries {
        let p = join(path, key);
        match features.get(key) {
            None => cx.error(&p, format!("unknown feature `{key}`")),
            Some(Some(feature)) if feature.kind != FeatureKind::Limit => cx.error(
                &p,
                format!("feature `{key}` is not a limit; an add-on raises limits (use `sets` for others)"),
            ),
            _ => {}
        }
        if let Some(amount) = cx.positive(&p, value) {
            out.insert(key.clone(), amount);
        }
    }
    Some(out)
}

fn product(cx: &mut Cx, path: &str, node: &Node) -> Option<Product> {
    let start = cx.count();
    let f = cx.fields(
        path,
        node,
        &["name", "amount", "grants", "download_url", "currencies"],
    )?;
    let name = f.opt(cx, "name", Cx::string);
    let amount = f.req(cx, "amount", Cx::amount);
    let grants = f.opt(cx, "grants", key_list).unwrap_or_default();
    let download_url = f.opt(cx, "download_url", |cx, p, n| {
        let url = cx.string(p, n)?;
        let scheme = url.starts_with("https://") || url.starts_with("http://");
        if !scheme || url.len() > 2048 || !url.bytes().all(|b| b.is_ascii_graphic()) {
            cx.error(
                p,
                "a download URL is an `https://` (or `http://`) URL of printable ASCII, without \
                 spaces (percent-encode the rest)",
            );
            return None;
        }
        Some(url)
    });
    if download_url.is_some() && !grants.iter().any(|g| g == "download") {
        cx.error(
            &join(path, "download_url"),
            "`download_url` needs `grants: [download]`",
        );
    }
    let currencies = f
        .opt(cx, "currencies", currency_amounts)
        .unwrap_or_default();
    (cx.count() == start).then_some(())?;
    Some(Product {
        name,
        amount: amount?,
        grants,
        download_url,
        currencies,
    })
}

/// An amount per other currency (`currencies: { EUR: "27.00" }`): ISO 4217 codes, amounts >= 0.
pub(crate) fn currency_amounts(
    cx: &mut Cx,
    path: &str,
    node: &Node,
) -> Option<IndexMap<String, Decimal>> {
    let entries = cx.map(path, node)?;
    let start = cx.count();
    let mut out = IndexMap::new();
    for (code, value) in entries {
        let p = join(path, code);
        if let Err(e) = code.parse::<Currency>() {
            cx.error(&p, e.to_string());
            continue;
        }
        if let Some(amount) = cx.amount(&p, value) {
            out.insert(code.clone(), amount);
        }
    }
    (cx.count() == start).then_some(out)
}

/// Prices in other currencies name another currency than the catalog's own. `entries`: each
/// add-on's, product's or coupon's path with its `currencies`.
fn check_offer_currencies<'a>(
    cx: &mut Cx,
    entries: impl IntoIterator<Item = (String, &'a IndexMap<String, Decimal>)>,
    currency: Currency,
) {
    for (path, currencies) in entries {
        if currencies.contains_key(currency.code()) {
            cx.error(
                &join(&join(&path, "currencies"), currency.code()),
                format!(
                    "{} is the catalog's currency: `amount` is already in it",
                    currency.code()
                ),
            );
        }
    }
}

/// A list of distinct keys (`grants: [download]`).
fn key_list(cx: &mut Cx, path: &str, node: &Node) -> Option<Vec<String>> {
    let items = cx.seq(path, node)?;
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        if let Some(key) = cx.string(&p, item).filter(|k| cx.key(&p, k)) {
            if out.contains(&key) {
                cx.error(&p, format!("`{key}` is listed twice"));
            } else {
                out.push(key);
            }
        }
    }
    Some(out)
}
