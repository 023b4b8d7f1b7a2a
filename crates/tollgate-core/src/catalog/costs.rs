//! The catalog's `costs` section: what one unit of a meter costs the operator (model calls,
//! compute), optionally per value of one of the meter's `group_by` dimensions. Nothing is billed
//! from it: the margin report (docs/DASHBOARD.md, "Margins") sets it against invoiced revenue.
//!
//! ```yaml
//! costs:
//!   generations: { dimension: tier, rates: { T0: "0.03", T3: "0.12" } }
//!   compute_minutes: { unit_amount: "0.01" }
//! ```
//!
//! A unit whose dimension value has no rate costs `unit_amount` (0 when not given).

use indexmap::IndexMap;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::model::Meter;
use super::node::Node;
use super::parse::Section;
use super::read::{Cx, join};

/// The cost of one unit of a meter, in the catalog's currency, exact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterCost {
    /// The cost of a unit without a rate of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_amount: Option<Decimal>,
    /// One of the meter's `group_by` properties; `rates` are per value of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub rates: IndexMap<String, Decimal>,
}

impl MeterCost {
    /// The cost of one unit whose dimension value is `value` (`None`: no dimension known).
    pub fn unit_cost(&self, value: Option<&str>) -> Decimal {
        value
            .and_then(|v| self.rates.get(v))
            .copied()
            .or(self.unit_amount)
            .unwrap_or(Decimal::ZERO)
    }
}

const COST_FIELDS: &[&str] = &["unit_amount", "dimension", "rates"];

/// Reads the `costs` section against the meters written in the file.
pub(crate) fn costs(
    cx: &mut Cx,
    path: &str,
    node: &Node,
    meters: &Section<Meter>,
) -> Option<IndexMap<String, MeterCost>> {
    let entries = cx.map(path, node)?;
    let mut out = IndexMap::new();
    for (key, value) in entries {
        let p = join(path, key);
        let Some(meter) = meters.get(key) else {
            cx.error(&p, format!("unknown meter `{key}`"));
            continue;
        };
        let start = cx.count();
        let Some(f) = cx.fields(&p, value, COST_FIELDS) else {
            continue;
        };
        let unit_amount = f.opt(cx, "unit_amount", Cx::amount);
        let dimension = f.opt(cx, "dimension", Cx::property);
        let mut rates = IndexMap::new();
        let rates_path = f.path_of("rates");
        if let Some(items) = f.get("rates").and_then(|n| cx.map(&rates_path, n)) {
            for (value, rate) in items {
                if let Some(rate) = cx.amount(&join(&rates_path, value), rate) {
                    rates.insert(value.clone(), rate);
                }
            }
        }
        match (f.has("dimension"), f.has("rates")) {
            (true, false) => cx.error(&p, "`dimension` needs `rates`: a cost per value of it"),
            (false, true) => cx.error(&p, "`rates` need a `dimension`: the property they price"),
            (false, false) if !f.has("unit_amount") => cx.error(
                &p,
                "give the cost: `unit_amount`, or `dimension` and `rates`",
            ),
            _ => {}
        }
        if let (Some(dimension), Some(meter)) = (&dimension, meter)
            && !meter.group_by.contains(dimension)
        {
            cx.error(
                &f.path_of("dimension"),
                format!("`{dimension}` is not one of the meter's `group_by` properties"),
            );
        }
        if cx.count() == start {
            out.insert(
                key.clone(),
                MeterCost {
                    unit_amount,
                    dimension,
                    rates,
                },
            );
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use crate::catalog::parse_yaml;

    const BASE: &str = r#"
currency: USD
meters:
  generations: { event: codegen.completed, aggregation: count, group_by: [tier, model] }
  api_calls: { event: api.call, aggregation: count }
plans:
  payg: { name: Pay as you go }
"#;

    #[test]
    fn costs_are_read_and_checked() {
        let ok = parse_yaml(&format!(
            "{BASE}costs:\n  generations: {{ dimension: tier, rates: {{ T0: \"0.03\", T3: \"0.12\" }} }}\n  api_calls: {{ unit_amount: \"0.0001\" }}\n"
        ))
        .unwrap();
        let g = &ok.costs["generations"];
        assert_eq!(g.unit_cost(Some("T0")).to_string(), "0.03");
        assert_eq!(g.unit_cost(Some("T3")).to_string(), "0.12");
        assert_eq!(g.unit_cost(Some("T2")).to_string(), "0");
        assert_eq!(ok.costs["api_calls"].unit_cost(None).to_string(), "0.0001");
        // Stored and read back, and written back in the file's shape, it is the same.
        let json = serde_json::to_value(&ok).unwrap();
        let back: crate::catalog::Catalog = serde_json::from_value(json).unwrap();
        assert_eq!(back, ok);
        assert_eq!(
            crate::catalog::from_json_value(crate::catalog::to_json(&ok)).unwrap(),
            ok
        );

        for (costs, message) in [
            ("nope: { unit_amount: 1 }", "unknown meter `nope`"),
            ("api_calls: { unit_amount: \"-1\" }", "must not be negative"),
            (
                "generations: { dimension: size, rates: { a: 1 } }",
                "group_by",
            ),
            ("generations: { dimension: tier }", "needs `rates`"),
            ("generations: { rates: { T0: 1 } }", "need a `dimension`"),
            ("api_calls: {}", "give the cost"),
            ("api_calls: { unit_amount: 1, per: 2 }", "per"),
        ] {
            let errors = parse_yaml(&format!("{BASE}costs:\n  {costs}\n")).unwrap_err();
            let text = errors.to_string();
            assert!(text.contains(message), "{costs}: {text}");
            assert!(text.contains("costs."), "{costs}: {text}");
        }
    }
}
