//! A period's usage per meter recomputed from raw events, the way ingest and the bill run
//! build it from aggregates: what each event adds comes from [`contribution`] (the function
//! ingest uses), and each group's value is folded like the store folds aggregates.
//!
//! The bill run never calls this (it reads aggregates); it is for those who must not trust
//! them: a quote from a file of events, an evidence report's counts, and recomputing an
//! invoice from the events the ledger recorded.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use rust_decimal::Decimal;

use super::{BillingPeriod, Group, MeterUsage, PricingError, divide_by, time_weighted};
use crate::catalog::{Aggregation, Catalog, TimeUnit};
use crate::event::Event;
use crate::meter::{ContributionValue, MeterError, contribution, parse_group_key};

/// Why usage could not be recomputed.
#[derive(Debug, thiserror::Error)]
pub enum EventsUsageError {
    /// The event at `index` has a meter property that is not a valid quantity.
    #[error("event {index}: {source}")]
    Event { index: usize, source: MeterError },
    /// A meter's value left the exact range.
    #[error("meter {meter}: {source}")]
    Meter { meter: String, source: PricingError },
}

/// The usage of a period, and how many events fell outside it and so were not counted (a level
/// set before the period that a time-weighted meter reads does count).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventsUsage {
    /// Per meter that at least one event contributed to.
    pub usage: BTreeMap<String, MeterUsage>,
    pub outside_period: usize,
}

#[derive(Default)]
struct Slot {
    total: Decimal,
    max: Option<Decimal>,
    /// `(time, value)`: the latest by time, the later event on ties.
    latest: Option<(Timestamp, Decimal)>,
    unique: BTreeSet<String>,
    levels: Vec<(Timestamp, Decimal)>,
}

/// Usage of `period` per meter of `catalog` from `events` (any order). A level set before the
/// period counts for a time-weighted meter: the period starts at that level.
pub fn usage_from_events<'e>(
    catalog: &Catalog,
    events: impl IntoIterator<Item = &'e Event>,
    period: &BillingPeriod,
) -> Result<EventsUsage, EventsUsageError> {
    let mut slots: BTreeMap<&str, BTreeMap<String, Slot>> = BTreeMap::new();
    let mut outside_period = 0;
    for (index, event) in events.into_iter().enumerate() {
        let at = event.timestamp;
        let in_period = period.start <= at && at < period.end;
        let mut counted = in_period;
        for (key, meter) in &catalog.meters {
            let counts =
                in_period || (meter.aggregation == Aggregation::TimeWeighted && at < period.start);
            if !counts {
                continue;
            }
            let Some(c) = contribution(key, meter, event)
                .map_err(|source| EventsUsageError::Event { index, source })?
            else {
                continue;
            };
            counted = true;
            let slot = slots
                .entry(key)
                .or_default()
                .entry(c.group_key)
                .or_default();
            match c.value {
                ContributionValue::Add(v) => {
                    slot.total =
                        slot.total
                            .checked_add(v)
                            .ok_or_else(|| EventsUsageError::Meter {
                                meter: key.clone(),
                                source: PricingError::Overflow,
                            })?;
                }
                ContributionValue::Max(v) => slot.max = Some(slot.max.map_or(v, |m| m.max(v))),
                ContributionValue::Latest(v) => {
                    if slot.latest.is_none_or(|(t, _)| at >= t) {
                        slot.latest = Some((at, v));
                    }
                }
                ContributionValue::Unique(v) => {
                    slot.unique.insert(v);
                }
                ContributionValue::Level(v) => slot.levels.push((at, v)),
            }
        }
        if !counted {
            outside_period += 1;
        }
    }

    let mut usage = BTreeMap::new();
    for (key, groups) in slots {
        let Some(meter) = catalog.meters.get(key) else {
            continue;
        };
        let fail = |source| EventsUsageError::Meter {
            meter: key.to_owned(),
            source,
        };
        let mut values: Vec<(Group, Decimal)> = Vec::with_capacity(groups.len());
        for (group_key, slot) in groups {
            let raw = match meter.aggregation {
                Aggregation::Count | Aggregation::Sum => slot.total,
                Aggregation::Max => slot.max.unwrap_or_default(),
                Aggregation::Latest => slot.latest.map(|(_, v)| v).unwrap_or_default(),
                Aggregation::UniqueCount => Decimal::from(slot.unique.len()),
                Aggregation::TimeWeighted => {
                    time_weighted(&slot.levels, period, meter.per.unwrap_or(TimeUnit::Month))
                        .map_err(fail)?
                }
            };
            let value = divide_by(raw, meter.divide_by).map_err(fail)?;
            let group: Group = parse_group_key(&group_key)
                .into_iter()
                .map(|(d, v)| (d.to_owned(), v.to_owned()))
                .collect();
            values.push((group, value));
        }
        let meter_usage = if meter.group_by.is_empty() {
            let mut total = Decimal::ZERO;
            for (_, v) in &values {
                total = total
                    .checked_add(*v)
                    .ok_or_else(|| fail(PricingError::Overflow))?;
            }
            MeterUsage::total(total)
        } else {
            MeterUsage::grouped(values).map_err(fail)?
        };
        usage.insert(key.to_owned(), meter_usage);
    }
    Ok(EventsUsage {
        usage,
        outside_period,
    })
}
