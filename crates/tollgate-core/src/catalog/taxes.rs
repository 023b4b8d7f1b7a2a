//! The catalog's `taxes` section: the tax rates a workspace charges and the lines they apply to.
//!
//! ```yaml
//! taxes:
//!   rates:
//!     vat: { name: "VAT 20%", percent: 20 }
//!     levy: { name: "Digital levy", percent: 1.5 }
//!   default: [vat]            # every taxable line, unless a plan or product says otherwise
//!   plans: { pro: [vat, levy] }
//!   products: { ebook: [] }   # an empty list: this product is not taxed
//! ```
//!
//! A customer's own treatment (exempt, reverse charge, or rates of its own) is state held by the
//! store and passed to pricing with the invoice request; see `pricing::tax`.

use indexmap::IndexMap;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::node::Node;
use super::read::{Cx, index, join};

/// The tax rates of a catalog and which lines they apply to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxes {
    /// Every rate by key, in the file's order.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub rates: IndexMap<String, TaxRate>,
    /// The workspace's rates: every taxable line not covered by `plans` or `products`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default: Vec<String>,
    /// Rates for a plan's lines (base fee, usage, add-ons, setup fee, minimum, prorations).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub plans: IndexMap<String, Vec<String>>,
    /// Rates for a one-time product's lines.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub products: IndexMap<String, Vec<String>>,
}

impl Taxes {
    /// Whether no tax is configured (nothing to store).
    pub fn is_empty(&self) -> bool {
        *self == Taxes::default()
    }
}

/// One tax rate: a name printed on the invoice, a percentage, and whether prices already include
/// it (inclusive: the tax is the part of the line that is tax) or it is added on top (exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRate {
    pub name: String,
    pub percent: Decimal,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inclusive: bool,
}

const TAX_FIELDS: &[&str] = &["rates", "default", "plans", "products"];

/// Reads the `taxes` section; `plans` and `products` are the keys written in those sections.
pub(crate) fn taxes(
    cx: &mut Cx,
    path: &str,
    node: &Node,
    plans: &[String],
    products: &[String],
) -> Option<Taxes> {
    let start = cx.count();
    let f = cx.fields(path, node, TAX_FIELDS)?;
    let mut rates = IndexMap::new();
    let rates_path = f.path_of("rates");
    if let Some(entries) = f.get("rates").and_then(|n| cx.map(&rates_path, n)) {
        for (key, node) in entries {
            let p = join(&rates_path, key);
            let key_ok = cx.key(&p, key);
            if let (Some(rate), true) = (rate(cx, &p, node), key_ok) {
                rates.insert(key.clone(), rate);
            }
        }
    }
    let list = |cx: &mut Cx, p: &str, n: &Node| rate_list(cx, p, n, &rates);
    let default = f.opt(cx, "default", list).unwrap_or_default();
    let plans = f
        .opt(cx, "plans", |cx, p, n| {
            by_key(cx, p, n, "plan", plans, &rates)
        })
        .unwrap_or_default();
    let products = f
        .opt(cx, "products", |cx, p, n| {
            by_key(cx, p, n, "product", products, &rates)
        })
        .unwrap_or_default();
    (cx.count() == start).then_some(())?;
    Some(Taxes {
        rates,
        default,
        plans,
        products,
    })
}

fn rate(cx: &mut Cx, path: &str, node: &Node) -> Option<TaxRate> {
    let start = cx.count();
    let f = cx.fields(path, node, &["name", "percent", "inclusive"])?;
    let name = f.req(cx, "name", Cx::string);
    let percent = f.req(cx, "percent", Cx::percent);
    let inclusive = f.opt(cx, "inclusive", Cx::boolean).unwrap_or(false);
    (cx.count() == start).then_some(())?;
    Some(TaxRate {
        name: name?,
        percent: percent?,
        inclusive,
    })
}

/// A list of distinct known rates, all inclusive or all exclusive: a line's price either
/// includes its taxes or not.
fn rate_list(
    cx: &mut Cx,
    path: &str,
    node: &Node,
    rates: &IndexMap<String, TaxRate>,
) -> Option<Vec<String>> {
    let start = cx.count();
    let items = cx.seq(path, node)?;
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(key) = cx.reference(&p, item, "tax rate", |k| rates.contains_key(k)) else {
            continue;
        };
        if out.contains(&key) {
            cx.error(&p, format!("`{key}` is listed twice"));
        } else {
            out.push(key);
        }
    }
    let inclusive = out
        .iter()
        .filter(|k| rates.get(*k).is_some_and(|r| r.inclusive))
        .count();
    if inclusive != 0 && inclusive != out.len() {
        cx.error(
            path,
            "rates on one line must be all inclusive or all exclusive",
        );
    }
    (cx.count() == start).then_some(out)
}

fn by_key(
    cx: &mut Cx,
    path: &str,
    node: &Node,
    what: &str,
    known: &[String],
    rates: &IndexMap<String, TaxRate>,
) -> Option<IndexMap<String, Vec<String>>> {
    let entries = cx.map(path, node)?;
    let mut out = IndexMap::new();
    for (key, value) in entries {
        let p = join(path, key);
        if !known.iter().any(|k| k == key) {
            cx.error(&p, format!("unknown {what} `{key}`"));
            continue;
        }
        if let Some(list) = rate_list(cx, &p, value, rates) {
            out.insert(key.clone(), list);
        }
    }
    Some(out)
}
