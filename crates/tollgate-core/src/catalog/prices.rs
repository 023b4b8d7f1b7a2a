//! Usage prices of a plan: `{ meter, model, included, ...fields of the model }`.
//!
//! The file writes the model flat on the price (`model: package, size: 1000, amount: "5.00"`),
//! which reads like the operator's price sheet; the validated form nests it as a [`PriceModel`].
//! Only the fields of the chosen model are accepted, so `percent` on a `package` price is an
//! unknown field rather than silently ignored.

use indexmap::IndexMap;
use rust_decimal::Decimal;

use super::model::{
    AboveLastTier, Aggregation, Meter, Multiplier, OnDuplicate, PackageRounding, PercentTier,
    PriceModel, Tier, TransactionFees, UsagePrice,
};
use super::node::Node;
use super::plans::Refs;
use super::read::{Cx, Fields, index, join};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    PerUnit,
    Package,
    Graduated,
    Volume,
    Percentage,
    GraduatedPercentage,
    Dimensional,
}

const MODELS: &[(&str, Model)] = &[
    ("per_unit", Model::PerUnit),
    ("package", Model::Package),
    ("graduated", Model::Graduated),
    ("volume", Model::Volume),
    ("percentage", Model::Percentage),
    ("graduated_percentage", Model::GraduatedPercentage),
    ("dimensional", Model::Dimensional),
];

const COMMON: &[&str] = &["meter", "model", "description", "included", "minimum"];

fn model_fields(model: Model) -> &'static [&'static str] {
    match model {
        Model::PerUnit => &["unit_amount"],
        Model::Package => &["size", "amount", "rounding"],
        Model::Graduated | Model::Volume => &["tiers", "flat_at_zero", "above_last_tier"],
        Model::Percentage => &[
            "percent",
            "floor",
            "cap",
            "fixed_fee",
            "per_transaction_min",
            "per_transaction_max",
            "free_units",
            "free_amount",
        ],
        Model::GraduatedPercentage => &["tiers"],
        Model::Dimensional => &["dimension", "rates", "multiplier"],
    }
}

/// One usage price of a plan.
pub(crate) fn price(cx: &mut Cx, path: &str, node: &Node, refs: &Refs<'_>) -> Option<UsagePrice> {
    let start = cx.count();
    // The model decides which other fields belong; an unknown model accepts all of them so that
    // only the model itself is reported.
    let written_model =
        match node {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == "model")
                .and_then(|(_, v)| match v {
                    Node::Str(s) => MODELS.iter().find(|(n, _)| n == s).map(|(_, m)| *m),
                    _ => None,
                }),
            _ => None,
        };
    let mut allowed: Vec<&str> = COMMON.to_vec();
    match written_model {
        Some(m) => allowed.extend(model_fields(m)),
        None => MODELS
            .iter()
            .for_each(|(_, m)| allowed.extend(model_fields(*m))),
    }
    let f = cx.fields(path, node, &allowed)?;
    let meter = f.req(cx, "meter", |cx, p, n| {
        cx.reference(p, n, "meter", |m| refs.meters.contains_key(m))
    });
    let kind = f.req(cx, "model", |cx, p, n| cx.choice(p, n, MODELS));
    let description = f.opt(cx, "description", Cx::string);
    let included = f.opt(cx, "included", Cx::amount);
    let minimum = f.opt(cx, "minimum", Cx::positive);
    let meter_def = meter
        .as_deref()
        .and_then(|m| refs.meters.get(m))
        .and_then(Option::as_ref);
    let model = kind.and_then(|kind| match kind {
        Model::PerUnit => {
            let unit_amount = f.req(cx, "unit_amount", Cx::amount);
            Some(PriceModel::PerUnit {
                unit_amount: unit_amount?,
            })
        }
        Model::Package => {
            let size = f.req(cx, "size", Cx::positive);
            let amount = f.req(cx, "amount", Cx::amount);
            let rounding = f.opt(cx, "rounding", |cx, p, n| {
                cx.choice(
                    p,
                    n,
                    &[("up", PackageRounding::Up), ("down", PackageRounding::Down)],
                )
            });
            Some(PriceModel::Package {
                size: size?,
                amount: amount?,
                rounding: rounding.unwrap_or_default(),
            })
        }
        Model::Graduated => {
            tiered(cx, &f).map(
                |(tiers, flat_at_zero, above_last_tier)| PriceModel::Graduated {
                    tiers,
                    flat_at_zero,
                    above_last_tier,
                },
            )
        }
        Model::Volume => {
            tiered(cx, &f).map(
                |(tiers, flat_at_zero, above_last_tier)| PriceModel::Volume {
                    tiers,
                    flat_at_zero,
                    above_last_tier,
                },
            )
        }
        Model::Percentage => {
            let percent = f.req(cx, "percent", Cx::percent);
            let floor = f.opt(cx, "floor", Cx::amount);
            let cap = f.opt(cx, "cap", Cx::amount);
            if let (Some(floor), Some(cap)) = (floor, cap)
                && floor > cap
            {
                cx.error(
                    &f.path_of("cap"),
                    format!("must not be below `floor` ({floor})"),
                );
            }
            if floor.is_some() && minimum.is_some() {
                cx.error(
                    &f.path_of("minimum"),
                    "a percentage price takes `floor` or `minimum`, not both (`floor` raises the line, `minimum` adds a true-up line)",
                );
            }
            let per_transaction = transaction_fees(cx, &f, meter.as_deref(), meter_def);
            Some(PriceModel::Percentage {
                percent: percent?,
                floor,
                cap,
                per_transaction,
            })
        }
        Model::GraduatedPercentage => {
            let tiers = f.req(cx, "tiers", percent_tiers);
            Some(PriceModel::GraduatedPercentage { tiers: tiers? })
        }
        Model::Dimensional => {
            let dimension = f.req(cx, "dimension", Cx::property);
            if let Some(d) = &dimension {
                check_dimension(cx, &f.path_of("dimension"), d, meter.as_deref(), meter_def);
            }
            let rates = f.req(cx, "rates", rates);
            let multiplier = f.opt(cx, "multiplier", |cx, p, n| {
                let m = multiplier(cx, p, n)?;
                check_dimension(
                    cx,
                    &join(p, "dimension"),
                    &m.dimension,
                    meter.as_deref(),
                    meter_def,
                );
                if dimension.as_deref() == Some(m.dimension.as_str()) {
                    cx.error(
                        &join(p, "dimension"),
                        "a multiplier must use another dimension than the rates",
                    );
                }
                Some(m)
            });
            Some(PriceModel::Dimensional {
                dimension: dimension?,
                rates: rates?,
                multiplier,
            })
        }
    });
    (cx.count() == start).then_some(())?;
    Some(UsagePrice {
        meter: meter?,
        description,
        included,
        model: model?,
        minimum,
    })
}

/// The per-transaction fields of a percentage price. They price each event of the meter, so the
/// meter must add a value per event (`sum` or `count`) and never take one back (`corrections`);
/// free value is `free_amount`, not `included`.
fn transaction_fees(
    cx: &mut Cx,
    f: &Fields<'_>,
    meter: Option<&str>,
    def: Option<&Meter>,
) -> TransactionFees {
    let fees = TransactionFees {
        fixed_fee: f.opt(cx, "fixed_fee", Cx::amount),
        min: f.opt(cx, "per_transaction_min", Cx::amount),
        max: f.opt(cx, "per_transaction_max", Cx::amount),
        free_units: f.opt(cx, "free_units", |cx, p, n| cx.integer::<u64>(p, n, 1)),
        free_amount: f.opt(cx, "free_amount", Cx::positive),
    };
    if let (Some(min), Some(max)) = (fees.min, fees.max)
        && min > max
    {
        cx.error(
            &f.path_of("per_transaction_max"),
            format!("must not be below `per_transaction_min` ({min})"),
        );
    }
    if fees.is_empty() {
        return fees;
    }
    if f.has("included") {
        cx.error(
            &f.path_of("included"),
            "a per-transaction price gives free value with `free_amount` (or free transactions with `free_units`)",
        );
    }
    if let (Some(meter), Some(def)) = (meter, def) {
        if !matches!(def.aggregation, Aggregation::Sum | Aggregation::Count) {
            cx.error(
                &f.path_of("meter"),
                format!(
                    "a per-transaction price needs a `sum` or `count` meter: each event is a transaction (`{meter}` is not one)"
                ),
            );
        }
        if def.on_duplicate == OnDuplicate::LatestReplaces {
            cx.error(
                &f.path_of("meter"),
                format!(
                    "a per-transaction price cannot rate meter `{meter}`: its events may be replaced (`on_duplicate: latest_replaces`), and a transaction is charged as it happened"
                ),
            );
        }
        if def.corrections {
            cx.error(
                &f.path_of("meter"),
                format!(
                    "a per-transaction price cannot rate meter `{meter}`: it takes corrections (negative events are not transactions)"
                ),
            );
        }
    }
    fees
}

/// Graduated percentage tiers: `{up_to, percent, flat_amount}`, `up_to` ascending, the last
/// tier open-ended.
fn percent_tiers(cx: &mut Cx, path: &str, node: &Node) -> Option<Vec<PercentTier>> {
    let items = cx.seq(path, node)?;
    if items.is_empty() {
        cx.error(path, "give at least one tier");
        return None;
    }
    let start = cx.count();
    let mut out = Vec::with_capacity(items.len());
    let mut previous: Option<Decimal> = None;
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(f) = cx.fields(&p, item, &["up_to", "percent", "flat_amount"]) else {
            continue;
        };
        let up_to = f.opt(cx, "up_to", Cx::positive);
        let percent = f.req(cx, "percent", Cx::percent);
        let flat_amount = f.opt(cx, "flat_amount", Cx::amount).unwrap_or_default();
        let last = i + 1 == items.len();
        if last && f.has("up_to") {
            cx.error(
                &f.path_of("up_to"),
                "the last tier must be open-ended: leave out `up_to`",
            );
        }
        if !last && !f.has("up_to") {
            cx.error(&p, "only the last tier may be open-ended: give `up_to`");
        }
        if let (Some(prev), Some(bound)) = (previous, up_to)
            && bound <= prev
        {
            cx.error(
                &f.path_of("up_to"),
                format!("tiers must ascend: {bound} is not above {prev}"),
            );
        }
        previous = up_to.or(previous);
        if let Some(percent) = percent {
            out.push(PercentTier {
                up_to,
                percent,
                flat_amount,
            });
        }
    }
    (cx.count() == start).then_some(out)
}

/// A dimension must be one of the meter's `group_by` properties, or there is nothing to price by.
fn check_dimension(
    cx: &mut Cx,
    path: &str,
    dimension: &str,
    meter: Option<&str>,
    def: Option<&Meter>,
) {
    let (Some(meter), Some(def)) = (meter, def) else {
        return;
    };
    if def.group_by.iter().any(|g| g == dimension) {
        return;
    }
    let groups = if def.group_by.is_empty() {
        "it has no `group_by`".to_owned()
    } else {
        format!("it groups by {}", def.group_by.join(", "))
    };
    cx.error(
        path,
        format!("`{dimension}` is not a `group_by` property of meter `{meter}` ({groups})"),
    );
}

/// The fields of a graduated or volume price: its tiers, `flat_at_zero` (only with a first tier
/// that has a flat amount) and `above_last_tier` (exactly when the last tier is bounded).
fn tiered(cx: &mut Cx, f: &Fields<'_>) -> Option<(Vec<Tier>, bool, Option<AboveLastTier>)> {
    let start = cx.count();
    let above = f.opt(cx, "above_last_tier", |cx, p, n| {
        cx.choice(
            p,
            n,
            &[
                ("last_rate", AboveLastTier::LastRate),
                ("free", AboveLastTier::Free),
            ],
        )
    });
    let flat_at_zero = f.opt(cx, "flat_at_zero", Cx::boolean).unwrap_or(false);
    let tiers = f.req(cx, "tiers", |cx, p, n| {
        tiers(cx, p, n, f.has("above_last_tier"))
    })?;
    if flat_at_zero && tiers.first().is_some_and(|t| t.flat_amount.is_zero()) {
        cx.error(
            &f.path_of("flat_at_zero"),
            "the first tier has no `flat_amount` to charge at zero usage",
        );
    }
    let bounded = tiers.last().is_some_and(|t| t.up_to.is_some());
    if f.has("above_last_tier") && !bounded {
        cx.error(
            &f.path_of("above_last_tier"),
            "only for a bounded last tier: give the last tier an `up_to`",
        );
    }
    (cx.count() == start).then_some((tiers, flat_at_zero, above))
}

/// Graduated or volume tiers: `up_to` ascending, the last tier open-ended unless the price says
/// what units above it cost (`bounded_last`).
fn tiers(cx: &mut Cx, path: &str, node: &Node, bounded_last: bool) -> Option<Vec<Tier>> {
    let items = cx.seq(path, node)?;
    if items.is_empty() {
        cx.error(path, "give at least one tier");
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut previous: Option<Decimal> = None;
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(f) = cx.fields(&p, item, &["up_to", "unit_amount", "flat_amount"]) else {
            continue;
        };
        let up_to = f.opt(cx, "up_to", Cx::positive);
        let unit_amount = f.opt(cx, "unit_amount", Cx::amount).unwrap_or_default();
        let flat_amount = f.opt(cx, "flat_amount", Cx::amount).unwrap_or_default();
        let last = i + 1 == items.len();
        if last && f.has("up_to") && !bounded_last {
            cx.error(
                &f.path_of("up_to"),
                "the last tier must be open-ended: leave out `up_to`",
            );
        }
        if !last && !f.has("up_to") {
            cx.error(&p, "only the last tier may be open-ended: give `up_to`");
        }
        if let (Some(prev), Some(bound)) = (previous, up_to)
            && bound <= prev
        {
            cx.error(
                &f.path_of("up_to"),
                format!("tiers must ascend: {bound} is not above {prev}"),
            );
        }
        previous = up_to.or(previous);
        out.push(Tier {
            up_to,
            unit_amount,
            flat_amount,
        });
    }
    Some(out)
}

/// A map from dimension values to amounts (`rates: { T0: 0.10, T1: 0.25 }`).
fn rates(cx: &mut Cx, path: &str, node: &Node) -> Option<IndexMap<String, Decimal>> {
    let entries = cx.map(path, node)?;
    if entries.is_empty() {
        cx.error(path, "give at least one rate");
        return None;
    }
    let mut out = IndexMap::new();
    for (key, value) in entries {
        if let Some(amount) = cx.amount(&join(path, key), value) {
            out.insert(key.clone(), amount);
        }
    }
    Some(out)
}

/// `multiplier: { dimension: model, values: { gpt-4: 2 } }`.
fn multiplier(cx: &mut Cx, path: &str, node: &Node) -> Option<Multiplier> {
    let start = cx.count();
    let f = cx.fields(path, node, &["dimension", "values"])?;
    let dimension = f.req(cx, "dimension", Cx::property);
    let values = f.req(cx, "values", rates);
    (cx.count() == start).then_some(())?;
    Some(Multiplier {
        dimension: dimension?,
        values: values?,
    })
}
