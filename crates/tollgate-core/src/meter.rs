//! How one event feeds a meter: whether it matches, which group it lands in, what it adds.
//!
//! This is the pure half of incremental aggregation. The server turns each
//! [`Contribution`] into store updates for the event's period, so reading a meter never rescans
//! raw events.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::catalog::{Aggregation, Meter};
use crate::event::Event;
use crate::quantity::{self, QuantityError};

/// What one event adds to one meter.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// Canonical group key, `dim=value` pairs sorted by dimension and joined by `,`; `""` when the
    /// meter has no group-by.
    pub group_key: String,
    pub value: ContributionValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ContributionValue {
    /// Added to the total (count: 1; sum: the property).
    Add(Decimal),
    Max(Decimal),
    Latest(Decimal),
    /// A distinct value for `unique_count`.
    Unique(String),
    /// The new level of a time-weighted meter.
    Level(Decimal),
}

/// Why an event that matched a meter could not be metered. The event is rejected whole, so a
/// bad property never half-counts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeterError {
    #[error("property `{property}` of meter `{meter}`: {error}")]
    Quantity {
        meter: String,
        property: String,
        error: QuantityError,
    },
}

impl MeterError {
    /// A stable machine-readable code.
    pub fn code(&self) -> crate::code::Code {
        match self {
            MeterError::Quantity { error, .. } => error.code(),
        }
    }
}

/// The property that says how many uses one event stands for on a `count` meter (default 1).
/// A consuming check of N units records it, so recomputing a meter from raw events gives the
/// aggregate the check added.
pub const COUNT_PROPERTY: &str = "tollgate.quantity";

/// The event that records `quantity` units of `meter` (a consuming check, a gateway request):
/// the meter's type, its filter values (they win over `properties`, so the event is one the
/// meter reads and what was admitted is what is stored), and the quantity where the meter reads
/// it: its property, or for a count meter [`COUNT_PROPERTY`], so that recomputing the meter from
/// raw events gives the aggregate that was added.
pub fn usage_event(
    meter: &Meter,
    quantity: Decimal,
    subject: Option<String>,
    mut properties: serde_json::Map<String, Value>,
    at: jiff::Timestamp,
) -> Event {
    for (k, v) in &meter.filter {
        properties.insert(k.clone(), v.clone());
    }
    let quantity_property = match meter.aggregation {
        Aggregation::Count => Some(COUNT_PROPERTY.to_owned()),
        _ => meter.property.clone(),
    };
    if let Some(p) = quantity_property {
        properties.insert(p, Value::String(quantity.to_string()));
    }
    Event {
        event_type: meter.event.clone(),
        timestamp: at,
        subject,
        properties,
    }
}

/// Whether a meter reads this event at all: its type, then every filter value.
pub fn matches(meter: &Meter, event: &Event) -> bool {
    meter.event == event.event_type
        && meter.filter.iter().all(|(key, expected)| {
            event
                .properties
                .get(key)
                .is_some_and(|v| loosely_equal(v, expected))
        })
}

/// Filter values compare as written: `level: supervisor` matches `"supervisor"`, `tier: 2` matches
/// `2` and `"2"`.
fn loosely_equal(actual: &Value, expected: &Value) -> bool {
    actual == expected || value_text(actual) == value_text(expected)
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What `event` contributes to `meter`, or `None` when the meter does not read it.
///
/// An event without the meter's property does not count in that meter (an `agent.run` without
/// `tokens` still counts as a run); a property that is there but is not a number is an error,
/// and the event is rejected whole, so bad data never half-counts.
pub fn contribution(
    meter_key: &str,
    meter: &Meter,
    event: &Event,
) -> Result<Option<Contribution>, MeterError> {
    if !matches(meter, event) {
        return Ok(None);
    }
    let value = match meter.aggregation {
        Aggregation::Count => Some(ContributionValue::Add(
            read_number(
                meter_key,
                COUNT_PROPERTY,
                event.properties.get(COUNT_PROPERTY),
                false,
            )?
            .unwrap_or(Decimal::ONE),
        )),
        Aggregation::Sum => number(meter_key, meter, event)?.map(ContributionValue::Add),
        Aggregation::Max => number(meter_key, meter, event)?.map(ContributionValue::Max),
        Aggregation::Latest => number(meter_key, meter, event)?.map(ContributionValue::Latest),
        Aggregation::TimeWeighted => number(meter_key, meter, event)?.map(ContributionValue::Level),
        Aggregation::UniqueCount => {
            property(meter, event).map(|v| ContributionValue::Unique(value_text(v)))
        }
    };
    Ok(value.map(|value| Contribution {
        group_key: group_key(meter, event),
        value,
    }))
}

fn property<'e>(meter: &Meter, event: &'e Event) -> Option<&'e Value> {
    let name = meter.property.as_deref()?;
    event.properties.get(name).filter(|v| !v.is_null())
}

/// The meter's property as an exact, bounded decimal (see [`crate::quantity`]), `None` when
/// absent. Negative values are refused unless the meter takes corrections.
fn number(meter_key: &str, meter: &Meter, event: &Event) -> Result<Option<Decimal>, MeterError> {
    let name = meter.property.as_deref().unwrap_or_default();
    read_number(meter_key, name, property(meter, event), meter.corrections)
}

fn read_number(
    meter_key: &str,
    property: &str,
    value: Option<&Value>,
    negative_allowed: bool,
) -> Result<Option<Decimal>, MeterError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let fail = |error| MeterError::Quantity {
        meter: meter_key.to_owned(),
        property: property.to_owned(),
        error,
    };
    let number = quantity::from_json(value).map_err(fail)?;
    if number.is_sign_negative() && !number.is_zero() && !negative_allowed {
        return Err(fail(QuantityError::Negative(number.to_string())));
    }
    Ok(Some(number))
}

/// `dim=value` pairs of the meter's group-by dimensions, sorted by dimension. A missing
/// dimension is recorded as empty so the event still counts in the meter's total.
pub fn group_key(meter: &Meter, event: &Event) -> String {
    let mut dims: Vec<&String> = meter.group_by.iter().collect();
    dims.sort();
    dims.iter()
        .map(|d| {
            format!(
                "{d}={}",
                event
                    .properties
                    .get(d.as_str())
                    .map(value_text)
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits a canonical group key back into `(dimension, value)` pairs.
pub fn parse_group_key(key: &str) -> Vec<(&str, &str)> {
    if key.is_empty() {
        return Vec::new();
    }
    key.split(',')
        .filter_map(|pair| pair.split_once('='))
        .collect()
}

/// Applies the meter's unit conversion (`divide_by`) to an aggregated value.
pub fn convert(meter: &Meter, raw: Decimal) -> Decimal {
    match meter.divide_by {
        // A divisor below 1 multiplies: saturate rather than overflow.
        Some(d) if !d.is_zero() => raw.checked_div(d).unwrap_or(if raw.is_sign_negative() {
            Decimal::MIN
        } else {
            Decimal::MAX
        }),
        _ => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use serde_json::json;

    fn meter(aggregation: Aggregation, property: Option<&str>) -> Meter {
        Meter {
            name: None,
            event: "agent.run".into(),
            aggregation,
            property: property.map(Into::into),
            filter: IndexMap::new(),
            group_by: vec![],
            divide_by: None,
            per: None,
            corrections: false,
            on_duplicate: Default::default(),
        }
    }

    fn event(props: Value) -> Event {
        Event {
            event_type: "agent.run".into(),
            timestamp: "2026-11-01T00:00:00Z".parse().unwrap(),
            subject: None,
            properties: props.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn filters_select_events() {
        let mut m = meter(Aggregation::Count, None);
        m.filter.insert("level".into(), json!("supervisor"));
        assert!(
            contribution("runs", &m, &event(json!({"level": "supervisor"})))
                .unwrap()
                .is_some()
        );
        assert!(
            contribution("runs", &m, &event(json!({"level": "worker"})))
                .unwrap()
                .is_none()
        );
        assert!(
            contribution("runs", &m, &event(json!({})))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn sums_are_exact_absent_properties_skip_and_bad_ones_are_errors() {
        let m = meter(Aggregation::Sum, Some("amount_usd"));
        let c = contribution("spend", &m, &event(json!({"amount_usd": 0.1})))
            .unwrap()
            .unwrap();
        assert_eq!(c.value, ContributionValue::Add(Decimal::new(1, 1)));
        let c = contribution("spend", &m, &event(json!({"amount_usd": "123456.78"})))
            .unwrap()
            .unwrap();
        assert_eq!(c.value, ContributionValue::Add(Decimal::new(12_345_678, 2)));
        assert_eq!(contribution("spend", &m, &event(json!({}))).unwrap(), None);
        let err = contribution("spend", &m, &event(json!({"amount_usd": "lots"}))).unwrap_err();
        assert_eq!(err.code(), "invalid_property");
    }

    #[test]
    fn group_keys_are_canonical() {
        let mut m = meter(Aggregation::Count, None);
        m.group_by = vec!["tier".into(), "model".into()];
        let c = contribution("gens", &m, &event(json!({"tier": "T2", "model": "gpt-4"})))
            .unwrap()
            .unwrap();
        assert_eq!(c.group_key, "model=gpt-4,tier=T2");
        assert_eq!(
            parse_group_key(&c.group_key),
            vec![("model", "gpt-4"), ("tier", "T2")]
        );
    }
}
