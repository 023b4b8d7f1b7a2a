//! A validated catalog written back in the shape of the file format.
//!
//! Used to export a catalog (`to_yaml`) and to compare two (`diff`) in the words the operator
//! wrote: `plans.early.prices[0].percent`, not the nesting of the stored model. Plans come out
//! resolved (everything inherited is written out); reading the output again gives the same
//! catalog, because re-applying `extends` to a resolved plan changes nothing.

use serde_norway::{Mapping, Value};

use super::model::{Catalog, Plan};

/// The catalog as a YAML value in the file's shape, in the file's order.
pub(crate) fn surface(catalog: &Catalog) -> Value {
    // Serializing the model cannot fail (string keys, no non-finite floats); `Null` keeps this
    // total without a panic path.
    let mut value = untag(serde_norway::to_value(catalog).unwrap_or(Value::Null));
    if let Some(plans) = value.get_mut("plans").and_then(Value::as_mapping_mut) {
        for (key, plan) in plans.iter_mut() {
            let resolved = key.as_str().and_then(|k| catalog.plans.get(k));
            if let (Some(resolved), Some(plan)) = (resolved, plan.as_mapping_mut()) {
                reshape_plan(plan, resolved, catalog);
            }
        }
    }
    if let Some(coupons) = value.get_mut("coupons").and_then(Value::as_mapping_mut) {
        for (_, coupon) in coupons.iter_mut() {
            if let Some(coupon) = coupon.as_mapping_mut() {
                reshape_coupon(coupon);
            }
        }
    }
    value
}

/// YAML writes enum variants with data as tags (`!rolling 5h`); the file format has no tags, so
/// each becomes a one-entry map (`{ rolling: 5h }`), as in the JSON form, before reshaping.
fn untag(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => {
            let mut map = Mapping::new();
            let tag = tagged.tag.to_string();
            map.insert(
                Value::String(tag.trim_start_matches('!').to_owned()),
                untag(tagged.value),
            );
            Value::Mapping(map)
        }
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(untag).collect()),
        Value::Mapping(map) => {
            Value::Mapping(map.into_iter().map(|(k, v)| (k, untag(v))).collect())
        }
        other => other,
    }
}

/// The catalog as JSON in the file's shape: what `GET /v1/catalog` answers, so that reading it
/// back (`from_json_value`, `PUT /v1/catalog`) gives the same catalog.
pub fn to_json(catalog: &Catalog) -> serde_json::Value {
    serde_json::to_value(surface(catalog)).unwrap_or(serde_json::Value::Null)
}

/// The catalog as YAML text in the file format (see `docs/CATALOG.md`).
pub fn to_yaml(catalog: &Catalog) -> String {
    serde_norway::to_string(&surface(catalog)).unwrap_or_default()
}

fn reshape_plan(plan: &mut Mapping, resolved: &Plan, catalog: &Catalog) {
    if let Some(prices) = plan.get_mut("prices").and_then(Value::as_sequence_mut) {
        for price in prices.iter_mut().filter_map(Value::as_mapping_mut) {
            flatten_price(price);
        }
    }
    if let Some(currencies) = plan.get_mut("currencies").and_then(Value::as_mapping_mut) {
        for (_, priced) in currencies.iter_mut() {
            let prices = priced.get_mut("prices").and_then(Value::as_sequence_mut);
            for price in prices
                .into_iter()
                .flatten()
                .filter_map(Value::as_mapping_mut)
            {
                flatten_price(price);
            }
        }
    }
    if let Some(quotas) = plan.get_mut("quotas").and_then(Value::as_sequence_mut) {
        for quota in quotas.iter_mut().filter_map(Value::as_mapping_mut) {
            reshape_quota(quota);
        }
    }
    // A resolved plan without a value its parent has must say so, or reading it back would
    // inherit the parent's value again.
    let parent = resolved
        .extends
        .as_deref()
        .and_then(|p| catalog.plans.get(p));
    if let Some(parent) = parent {
        let cleared = [
            ("base", parent.base.is_some() && resolved.base.is_none()),
            (
                "setup_fee",
                parent.setup_fee.is_some() && resolved.setup_fee.is_none(),
            ),
            (
                "minimum",
                parent.minimum.is_some() && resolved.minimum.is_none(),
            ),
            (
                "license",
                parent.license.is_some() && resolved.license.is_none(),
            ),
            (
                "progressive_billing",
                parent.progressive_billing.is_some() && resolved.progressive_billing.is_none(),
            ),
        ];
        for (field, is_cleared) in cleared {
            if is_cleared {
                plan.insert(field.into(), Value::Null);
            }
        }
    }
}

/// `{ meter, model: { kind: package, size, amount } }` -> `{ meter, model: package, size, amount }`.
fn flatten_price(price: &mut Mapping) {
    let Some(Value::Mapping(mut model)) = price.shift_remove("model") else {
        return;
    };
    let kind = model.shift_remove("kind").unwrap_or(Value::Null);
    let mut out = Mapping::new();
    if let Some(meter) = price.shift_remove("meter") {
        out.insert("meter".into(), meter);
    }
    out.insert("model".into(), kind);
    out.extend(model);
    out.extend(std::mem::take(price));
    *price = out;
}

/// `reset: period` -> `period: billing`; `reset: { rolling: 5h }` -> `window: 5h`.
fn reshape_quota(quota: &mut Mapping) {
    let reset = quota.shift_remove("reset");
    let (key, value) = match reset {
        Some(Value::Mapping(rolling)) => (
            "window",
            rolling.get("rolling").cloned().unwrap_or(Value::Null),
        ),
        _ => ("period", Value::String("billing".to_owned())),
    };
    let mut out = Mapping::new();
    for (k, v) in std::mem::take(quota) {
        let after_limit = k.as_str() == Some("limit");
        out.insert(k, v);
        if after_limit {
            out.insert(key.into(), value.clone());
        }
    }
    *quota = out;
}

/// `discount: { percent_off: 20 }, duration: { invoices: 3 }` -> `percent_off: 20, duration: 3`.
fn reshape_coupon(coupon: &mut Mapping) {
    if let Some(Value::Mapping(discount)) = coupon.shift_remove("discount") {
        let duration = coupon.shift_remove("duration");
        coupon.extend(discount);
        match duration {
            Some(Value::Mapping(d)) => {
                coupon.insert(
                    "duration".into(),
                    d.get("invoices").cloned().unwrap_or(Value::Null),
                );
            }
            Some(other) => {
                coupon.insert("duration".into(), other);
            }
            None => {}
        }
    }
}
