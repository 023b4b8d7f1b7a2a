//! Plans: reading each one, checking `extends`, and resolving inheritance.
//!
//! A plan that `extends` another carries everything of it, its own values overriding:
//! - features and add-on terms merge by key;
//! - quotas are replaced per meter and scope, prices per meter, rate limits per scope (a child
//!   that writes `rate_limits` for customers drops the parent's customer rate limits, so that
//!   "10,000 per hour" on a bigger plan does not still carry the smaller plan's "100 per minute");
//! - `base`, `setup_fee`, `minimum`, `collection`, `billing`, `upgrades` and `license` are
//!   inherited unless written; writing `~` (null) clears an inherited `base`, `setup_fee`,
//!   `minimum` or `license`;
//! - `name`, `trial_days`, `trial_fallback` and `upgrade_target` are not inherited: they describe
//!   how this plan is offered, not what it grants (Apex offers a trial of `early`, not of `mid`).

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use rust_decimal::Decimal;

use super::model::{
    Addon, AddonTerms, Anchor, BasePrice, Collection, Enforcement, Entitlement, Feature,
    LicenseTerms, Meter, Plan, PlanPrices, ProgressiveBilling, Quota, QuotaReset, RateLimit, Scope,
    Timing, UpgradeInvoicing, UsagePrice,
};
use super::node::Node;
use super::parse::{INTERVALS, Section, entitlements};
use super::prices;
use super::read::{Cx, Fields, index, join};
use crate::duration::WindowLength;
use crate::period::Cadence;

/// What plans may refer to.
pub(crate) struct Refs<'a> {
    pub meters: &'a Section<Meter>,
    pub features: &'a Section<Feature>,
    pub addons: &'a [String],
}

const SCOPES: &[(&str, Scope)] = &[("customer", Scope::Customer), ("subject", Scope::Subject)];
const ENFORCEMENTS: &[(&str, Enforcement)] =
    &[("hard", Enforcement::Hard), ("soft", Enforcement::Soft)];
const TIMINGS: &[(&str, Timing)] = &[
    ("in_advance", Timing::InAdvance),
    ("in_arrears", Timing::InArrears),
];
const ANCHORS: &[(&str, Anchor)] = &[
    ("calendar", Anchor::Calendar),
    ("anniversary", Anchor::Anniversary),
];
const UPGRADES: &[(&str, UpgradeInvoicing)] = &[
    ("next_invoice", UpgradeInvoicing::NextInvoice),
    ("always_invoice", UpgradeInvoicing::AlwaysInvoice),
];
/// Most intervals in one billing period (`every`).
const MAX_EVERY: u64 = 1000;
const COLLECTIONS: &[(&str, Collection)] = &[
    ("automatic", Collection::Automatic),
    ("send_invoice", Collection::SendInvoice),
];
const RATE_UNITS: &[(&str, WindowLength)] = &[
    ("second", WindowLength::SECOND),
    ("minute", WindowLength::MINUTE),
    ("hour", WindowLength::HOUR),
    ("day", WindowLength::DAY),
];

const PLAN_FIELDS: &[&str] = &[
    "name",
    "extends",
    "base",
    "trial_days",
    "trial_fallback",
    "features",
    "quotas",
    "rate_limits",
    "prices",
    "addons",
    "setup_fee",
    "minimum",
    "collection",
    "upgrade_target",
    "billing",
    "upgrades",
    "license",
    "progressive_billing",
    "currencies",
];

/// A field a child may leave out (inherit), write (override) or write as null (clear).
type Patch<T> = Option<Option<T>>;

/// A plan as written, before inheritance.
struct Draft {
    name: Option<String>,
    extends: Option<String>,
    base: Patch<BasePrice>,
    trial_days: Option<u32>,
    trial_fallback: Option<String>,
    features: IndexMap<String, Entitlement>,
    quotas: Vec<Quota>,
    rate_limits: Vec<RateLimit>,
    prices: Vec<UsagePrice>,
    addons: IndexMap<String, AddonTerms>,
    setup_fee: Patch<Decimal>,
    minimum: Patch<Decimal>,
    collection: Option<Collection>,
    upgrade_target: bool,
    billing: Option<Anchor>,
    upgrades: Option<UpgradeInvoicing>,
    license: Patch<LicenseTerms>,
    progressive_billing: Patch<ProgressiveBilling>,
    currencies: Option<IndexMap<String, PlanPrices>>,
}

/// Reads, checks and resolves all plans; `None` when any has a mistake (all are reported).
pub(crate) fn read_plans(
    cx: &mut Cx,
    path: &str,
    entries: &[(String, Node)],
    refs: &Refs<'_>,
) -> Option<IndexMap<String, Plan>> {
    let start = cx.count();
    let keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
    let mut drafts = IndexMap::new();
    let mut parents = HashMap::new();
    for (key, node) in entries {
        let plan_path = join(path, key);
        cx.key(&plan_path, key);
        let (extends, draft) = read_plan(cx, &plan_path, key, node, &keys, refs);
        if let Some(parent) = extends {
            parents.insert(key.clone(), parent);
        }
        if let Some(draft) = draft {
            drafts.insert(key.clone(), draft);
        }
    }
    report_cycles(cx, path, &keys, &parents);
    if cx.count() > start {
        return None;
    }
    let mut resolved = HashMap::new();
    for key in drafts.keys() {
        resolve(key, &drafts, &mut resolved);
    }
    keys.into_iter()
        .map(|k| resolved.remove(&k).map(|p| (k, p)))
        .collect()
}

/// One plan. Returns the plan it validly extends (for the cycle check, even when the rest of the
/// plan has mistakes) and the draft when the plan has none.
fn read_plan(
    cx: &mut Cx,
    path: &str,
    key: &str,
    node: &Node,
    plans: &[String],
    refs: &Refs<'_>,
) -> (Option<String>, Option<Draft>) {
    let start = cx.count();
    let Some(f) = cx.fields(path, node, PLAN_FIELDS) else {
        return (None, None);
    };
    let is_plan = |k: &str| plans.iter().any(|p| p == k);
    let name = f.opt(cx, "name", Cx::string);
    let extends = f.opt(cx, "extends", |cx, p, n| {
        cx.reference(p, n, "plan", is_plan)
    });
    let extends = match extends {
        Some(parent) if parent == key => {
            cx.error(
                &f.path_of("extends"),
                format!("plan `{key}` cannot extend itself"),
            );
            None
        }
        other => other,
    };
    let base = patch(cx, &f, "base", base_price);
    let trial_days = f.opt(cx, "trial_days", |cx, p, n| cx.integer(p, n, 1));
    let trial_fallback = f.opt(cx, "trial_fallback", |cx, p, n| {
        cx.reference(p, n, "plan", is_plan)
    });
    if trial_fallback.as_deref() == Some(key) {
        cx.error(
            &f.path_of("trial_fallback"),
            "a trial cannot fall back to its own plan",
        );
    }
    if f.has("trial_fallback") && !f.has("trial_days") {
        cx.error(
            &f.path_of("trial_fallback"),
            "a trial fallback needs `trial_days` on the same plan",
        );
    }
    let features = f.opt(cx, "features", |cx, p, n| {
        entitlements(cx, p, n, refs.features)
    });
    let quotas = f.opt(cx, "quotas", |cx, p, n| {
        list(cx, p, n, |cx, p, n| quota(cx, p, n, refs))
    });
    if let Some(quotas) = &quotas {
        duplicate_quotas(cx, &f.path_of("quotas"), quotas);
    }
    let rate_limits = f.opt(cx, "rate_limits", |cx, p, n| list(cx, p, n, rate_limit));
    let prices = f.opt(cx, "prices", |cx, p, n| {
        list(cx, p, n, |cx, p, n| prices::price(cx, p, n, refs))
    });
    let addons = f.opt(cx, "addons", |cx, p, n| addon_terms(cx, p, n, refs.addons));
    let setup_fee = patch(cx, &f, "setup_fee", Cx::amount);
    let minimum = patch(cx, &f, "minimum", Cx::amount);
    let collection = f.opt(cx, "collection", |cx, p, n| cx.choice(p, n, COLLECTIONS));
    let upgrade_target = f.opt(cx, "upgrade_target", Cx::boolean).unwrap_or(true);
    let billing = f.opt(cx, "billing", |cx, p, n| cx.choice(p, n, ANCHORS));
    let upgrades = f.opt(cx, "upgrades", |cx, p, n| cx.choice(p, n, UPGRADES));
    let license = patch(cx, &f, "license", license_terms);
    let progressive_billing = patch(cx, &f, "progressive_billing", progressive);
    let currencies = f.opt(cx, "currencies", |cx, p, n| currencies(cx, p, n, refs));
    if cx.count() > start {
        return (extends, None);
    }
    let draft = Draft {
        name,
        extends: extends.clone(),
        base,
        trial_days,
        trial_fallback,
        features: features.unwrap_or_default(),
        quotas: quotas.unwrap_or_default(),
        rate_limits: rate_limits.unwrap_or_default(),
        prices: prices.unwrap_or_default(),
        addons: addons.unwrap_or_default(),
        setup_fee,
        minimum,
        collection,
        upgrade_target,
        billing,
        upgrades,
        license,
        progressive_billing,
        currencies,
    };
    (extends, Some(draft))
}

/// Reads an inheritable field: absent -> `None`, null -> `Some(None)`, a value -> `Some(Some)`.
fn patch<'n, T>(
    cx: &mut Cx,
    f: &Fields<'n>,
    key: &str,
    read: impl FnOnce(&mut Cx, &str, &'n Node) -> Option<T>,
) -> Patch<T> {
    match f.raw(key)? {
        Node::Null => Some(None),
        node => read(cx, &f.path_of(key), node).map(Some),
    }
}

/// Every item of a list read with `read`; the good ones are returned, the bad ones reported.
pub(crate) fn list<'n, T>(
    cx: &mut Cx,
    path: &str,
    node: &'n Node,
    mut read: impl FnMut(&mut Cx, &str, &'n Node) -> Option<T>,
) -> Option<Vec<T>> {
    let items = cx.seq(path, node)?;
    Some(
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| read(cx, &index(path, i), item))
            .collect(),
    )
}

/// `license: { grace_days, max_machines, limits: { name: n } }`.
/// `currencies: { EUR: { base, setup_fee, minimum, prices } }`: the plan's amounts in more
/// currencies (checked against the resolved plan by [`check_currencies`]).
fn currencies(
    cx: &mut Cx,
    path: &str,
    node: &Node,
    refs: &Refs<'_>,
) -> Option<IndexMap<String, PlanPrices>> {
    let start = cx.count();
    let entries = cx.map(path, node)?;
    let mut out = IndexMap::new();
    for (code, value) in entries {
        let p = join(path, code);
        if let Err(e) = code.parse::<crate::money::Currency>() {
            cx.error(&p, e.to_string());
            continue;
        }
        let Some(f) = cx.fields(&p, value, &["base", "setup_fee", "minimum", "prices"]) else {
            continue;
        };
        let base = f.opt(cx, "base", Cx::amount);
        let setup_fee = f.opt(cx, "setup_fee", Cx::amount);
        let minimum = f.opt(cx, "minimum", Cx::amount);
        let prices = f.opt(cx, "prices", |cx, p, n| {
            list(cx, p, n, |cx, p, n| prices::price(cx, p, n, refs))
        });
        out.insert(
            code.clone(),
            PlanPrices {
                base,
                setup_fee,
                minimum,
                prices: prices.unwrap_or_default(),
            },
        );
    }
    (cx.count() == start).then_some(out)
}

/// Each of a resolved plan's `currencies` prices what the plan prices, no more, no less: a base
/// amount if it has a base fee, a setup fee and a minimum if it has them, and the same meters.
/// None of them is the catalog's own currency.
pub(crate) fn check_currencies(
    cx: &mut Cx,
    path: &str,
    plans: &IndexMap<String, Plan>,
    currency: crate::money::Currency,
) {
    for (key, plan) in plans {
        for (code, priced) in &plan.currencies {
            let p = join(&join(&join(path, key), "currencies"), code);
            if code == currency.code() {
                cx.error(
                    &p,
                    format!("{code} is the catalog's currency: the plan's own prices are in it"),
                );
            }
            let pairs = [
                ("base", plan.base.is_some(), priced.base.is_some()),
                (
                    "setup_fee",
                    plan.setup_fee.is_some(),
                    priced.setup_fee.is_some(),
                ),
                ("minimum", plan.minimum.is_some(), priced.minimum.is_some()),
            ];
            for (field, has, given) in pairs {
                if has && !given {
                    cx.error(
                        &join(&p, field),
                        format!("required field is missing: the plan has a `{field}`"),
                    );
                } else if given && !has {
                    cx.error(
                        &join(&p, field),
                        format!("the plan has no `{field}` to price in {code}"),
                    );
                }
            }
            let mut own: Vec<&str> = plan.prices.iter().map(|x| x.meter.as_str()).collect();
            let mut theirs: Vec<&str> = priced.prices.iter().map(|x| x.meter.as_str()).collect();
            own.sort_unstable();
            theirs.sort_unstable();
            if own != theirs {
                cx.error(
                    &join(&p, "prices"),
                    format!(
                        "must price the plan's meters ({}), one price each; found ({})",
                        own.join(", "),
                        theirs.join(", ")
                    ),
                );
            }
        }
    }
}

/// `progressive_billing: { thresholds: [50, 200], every: 500 }`: ascending positive amounts,
/// and a positive step after the last one; at least one of them.
fn progressive(cx: &mut Cx, path: &str, node: &Node) -> Option<ProgressiveBilling> {
    let start = cx.count();
    let f = cx.fields(path, node, &["thresholds", "every"])?;
    let thresholds = f
        .opt(cx, "thresholds", |cx, p, n| list(cx, p, n, Cx::positive))
        .unwrap_or_default();
    for (i, pair) in thresholds.windows(2).enumerate() {
        if pair[1] <= pair[0] {
            cx.error(
                &index(&f.path_of("thresholds"), i + 1),
                format!(
                    "thresholds must ascend: {} is not above {}",
                    pair[1], pair[0]
                ),
            );
        }
    }
    let every = f.opt(cx, "every", Cx::positive);
    if thresholds.is_empty() && every.is_none() {
        cx.error(path, "give `thresholds`, `every` or both");
    }
    (cx.count() == start).then_some(())?;
    Some(ProgressiveBilling { thresholds, every })
}

fn license_terms(cx: &mut Cx, path: &str, node: &Node) -> Option<LicenseTerms> {
    let start = cx.count();
    let f = cx.fields(path, node, &["grace_days", "max_machines", "limits"])?;
    let grace_days = f
        .opt(cx, "grace_days", |cx, p, n| cx.integer(p, n, 0))
        .unwrap_or(0);
    let max_machines = f.opt(cx, "max_machines", |cx, p, n| cx.integer(p, n, 1));
    let limits = f
        .opt(cx, "limits", |cx, p, n| {
            let entries = cx.map(p, n)?;
            let mut limits = IndexMap::new();
            for (name, value) in entries {
                let path = join(p, name);
                if let Some(v) = cx.integer(&path, value, 0) {
                    limits.insert(name.clone(), v);
                }
            }
            Some(limits)
        })
        .unwrap_or_default();
    (cx.count() == start).then_some(())?;
    Some(LicenseTerms {
        grace_days,
        max_machines,
        limits,
    })
}

fn base_price(cx: &mut Cx, path: &str, node: &Node) -> Option<BasePrice> {
    let start = cx.count();
    let f = cx.fields(path, node, &["amount", "interval", "timing", "every"])?;
    let amount = f.req(cx, "amount", Cx::amount);
    let interval = f.req(cx, "interval", |cx, p, n| cx.choice(p, n, INTERVALS));
    let timing = f
        .opt(cx, "timing", |cx, p, n| cx.choice(p, n, TIMINGS))
        .unwrap_or_default();
    let every = f.opt(cx, "every", |cx, p, n| cx.integer::<u32>(p, n, 1));
    if let Some(every) = every
        && u64::from(every) > MAX_EVERY
    {
        cx.error(
            &f.path_of("every"),
            format!("must be at most {MAX_EVERY}, found {every}"),
        );
    }
    (cx.count() == start).then_some(())?;
    Some(BasePrice {
        amount: amount?,
        interval: interval?,
        timing,
        every: every.unwrap_or(1),
    })
}

fn quota(cx: &mut Cx, path: &str, node: &Node, refs: &Refs<'_>) -> Option<Quota> {
    let start = cx.count();
    let fields = &["meter", "limit", "window", "period", "per", "enforcement"];
    let f = cx.fields(path, node, fields)?;
    let meter = f.req(cx, "meter", |cx, p, n| {
        cx.reference(p, n, "meter", |m| refs.meters.contains_key(m))
    });
    let limit = f.req(cx, "limit", Cx::limit);
    let window = f.opt(cx, "window", Cx::duration);
    let period = f.opt(cx, "period", |cx, p, n| {
        cx.choice(p, n, &[("billing", QuotaReset::Period)])
    });
    let reset = match (f.has("window"), f.has("period")) {
        (true, false) => window.map(QuotaReset::Rolling),
        (false, true) => period,
        (true, true) => {
            cx.error(path, "give `window` or `period`, not both");
            None
        }
        (false, false) => {
            cx.error(
                path,
                "give `window` (a rolling window such as \"5h\") or `period: billing`",
            );
            None
        }
    };
    let per = f
        .opt(cx, "per", |cx, p, n| cx.choice(p, n, SCOPES))
        .unwrap_or_default();
    let enforcement = f.opt(cx, "enforcement", |cx, p, n| cx.choice(p, n, ENFORCEMENTS));
    (cx.count() == start).then_some(())?;
    Some(Quota {
        meter: meter?,
        limit: limit?,
        reset: reset?,
        per,
        enforcement: enforcement.unwrap_or_default(),
    })
}

/// Two quotas of one plan on the same meter, scope and reset would leave it unclear which holds.
fn duplicate_quotas(cx: &mut Cx, path: &str, quotas: &[Quota]) {
    for (i, q) in quotas.iter().enumerate() {
        let same = |o: &&Quota| o.meter == q.meter && o.per == q.per && o.reset == q.reset;
        if let Some(first) = quotas[..i].iter().position(|o| same(&o)) {
            cx.error(
                &index(path, i),
                format!("same meter, scope and reset as quotas[{first}]"),
            );
        }
    }
}

fn rate_limit(cx: &mut Cx, path: &str, node: &Node) -> Option<RateLimit> {
    let start = cx.count();
    let f = cx.fields(path, node, &["limit", "per", "scope"])?;
    let limit = f.req(cx, "limit", |cx, p, n| cx.integer(p, n, 1));
    let per = f.req(cx, "per", |cx, p, n| match n {
        Node::Str(s) if RATE_UNITS.iter().any(|(u, _)| u == s) => cx.choice(p, n, RATE_UNITS),
        _ => cx.duration(p, n),
    });
    let scope = f
        .opt(cx, "scope", |cx, p, n| cx.choice(p, n, SCOPES))
        .unwrap_or_default();
    (cx.count() == start).then_some(())?;
    Some(RateLimit {
        limit: limit?,
        per: per?,
        scope,
    })
}

/// `addons: [seat, policy_pack]` or `addons: { seat: { included: 2 }, policy_pack: ~ }`.
fn addon_terms(
    cx: &mut Cx,
    path: &str,
    node: &Node,
    addons: &[String],
) -> Option<IndexMap<String, AddonTerms>> {
    let exists = |k: &str| addons.iter().any(|a| a == k);
    let mut out = IndexMap::new();
    match node {
        Node::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(key) = cx.reference(&index(path, i), item, "addon", exists) {
                    out.insert(key, AddonTerms::default());
                }
            }
        }
        Node::Map(entries) => {
            for (key, value) in entries {
                let p = join(path, key);
                if !exists(key) {
                    cx.error(&p, format!("unknown addon `{key}`"));
                }
                let terms = match value {
                    Node::Null => Some(AddonTerms::default()),
                    _ => cx.fields(&p, value, &["included"]).map(|f| AddonTerms {
                        included: f.opt(cx, "included", Cx::amount).unwrap_or_default(),
                    }),
                };
                if let Some(terms) = terms {
                    out.insert(key.clone(), terms);
                }
            }
        }
        other => {
            cx.error(
                path,
                format!(
                    "expected a list or map of add-ons, found {}",
                    other.describe()
                ),
            );
            return None;
        }
    }
    Some(out)
}

/// Reports each `extends` cycle once, at the plan of the cycle that comes first in the file.
fn report_cycles(cx: &mut Cx, path: &str, order: &[String], parents: &HashMap<String, String>) {
    let position = |k: &str| order.iter().position(|o| o == k).unwrap_or(usize::MAX);
    let mut reported: HashSet<&str> = HashSet::new();
    for start in order {
        let mut chain: Vec<&str> = vec![start];
        let mut current = start.as_str();
        while let Some(parent) = parents.get(current) {
            if let Some(at) = chain.iter().position(|k| k == parent) {
                let mut cycle = chain[at..].to_vec();
                if cycle.iter().all(|k| !reported.contains(k)) {
                    let first = (0..cycle.len())
                        .min_by_key(|&i| position(cycle[i]))
                        .unwrap_or(0);
                    cycle.rotate_left(first);
                    let mut text = cycle.join(" -> ");
                    text.push_str(&format!(" -> {}", cycle[0]));
                    cx.error(
                        &join(&join(path, cycle[0]), "extends"),
                        format!("`extends` forms a cycle: {text}"),
                    );
                    reported.extend(cycle);
                }
                break;
            }
            chain.push(parent);
            current = parent;
        }
    }
}

/// Builds plan `key` with everything it inherits. Callers guarantee no cycles and known parents.
fn resolve(key: &str, drafts: &IndexMap<String, Draft>, done: &mut HashMap<String, Plan>) {
    if done.contains_key(key) {
        return;
    }
    let Some(draft) = drafts.get(key) else { return };
    let parent = match &draft.extends {
        Some(parent) => {
            resolve(parent, drafts, done);
            done.get(parent).cloned().unwrap_or_default()
        }
        None => Plan::default(),
    };
    done.insert(key.to_owned(), merge(parent, draft));
}

/// The child's values over the parent's, by the rules in the module documentation.
fn merge(parent: Plan, child: &Draft) -> Plan {
    let mut features = parent.features;
    features.extend(child.features.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut addons = parent.addons;
    addons.extend(child.addons.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut quotas: Vec<Quota> = parent
        .quotas
        .into_iter()
        .filter(|q| {
            !child
                .quotas
                .iter()
                .any(|c| c.meter == q.meter && c.per == q.per)
        })
        .collect();
    quotas.extend(child.quotas.iter().cloned());
    let mut rate_limits: Vec<RateLimit> = parent
        .rate_limits
        .into_iter()
        .filter(|r| !child.rate_limits.iter().any(|c| c.scope == r.scope))
        .collect();
    rate_limits.extend(child.rate_limits.iter().cloned());
    let mut prices: Vec<UsagePrice> = parent
        .prices
        .into_iter()
        .filter(|p| !child.prices.iter().any(|c| c.meter == p.meter))
        .collect();
    prices.extend(child.prices.iter().cloned());
    Plan {
        name: child.name.clone(),
        extends: child.extends.clone(),
        base: child.base.clone().unwrap_or(parent.base),
        trial_days: child.trial_days,
        trial_fallback: child.trial_fallback.clone(),
        features,
        quotas,
        rate_limits,
        prices,
        addons,
        setup_fee: child.setup_fee.unwrap_or(parent.setup_fee),
        minimum: child.minimum.unwrap_or(parent.minimum),
        collection: child.collection.unwrap_or(parent.collection),
        upgrade_target: child.upgrade_target,
        billing: child.billing.or(parent.billing),
        upgrades: child.upgrades.unwrap_or(parent.upgrades),
        license: child.license.clone().unwrap_or(parent.license),
        progressive_billing: child
            .progressive_billing
            .clone()
            .unwrap_or(parent.progressive_billing),
        currencies: child.currencies.clone().unwrap_or(parent.currencies),
    }
}

/// Refuses an add-on on a plan whose billing period its price cannot be converted to exactly: a
/// monthly or yearly add-on on a plan billed per day or week, or the reverse.
pub(crate) fn check_addon_cadences(
    cx: &mut Cx,
    path: &str,
    plans: &IndexMap<String, Plan>,
    addons: &Section<Addon>,
) {
    for (key, plan) in plans {
        let cadence = plan.cadence();
        for addon_key in plan.addons.keys() {
            let Some(Some(addon)) = addons.get(addon_key) else {
                continue;
            };
            let own = Cadence::from(addon.interval);
            if !own.converts_to(cadence) {
                cx.error(
                    &join(&join(&join(path, key), "addons"), addon_key),
                    format!(
                        "add-on `{addon_key}` is priced per {own} and cannot be billed on a plan \
                         billed every {cadence}: price it per day or week on plans billed in days \
                         or weeks, per month, quarter or year on the others"
                    ),
                );
            }
        }
    }
}
