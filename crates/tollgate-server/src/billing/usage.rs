//! A customer's usage of one period, per meter and group, from the incremental aggregates (and
//! level points for time-weighted meters): the input of pricing. Only a per-transaction price
//! reads raw events: each one is a transaction it charges ([`transactions`]).

use std::collections::BTreeMap;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use rust_decimal::Decimal;
use tollgate_core::catalog::{Aggregation, Catalog, Meter, TimeUnit};
use tollgate_core::event::Event;
use tollgate_core::meter::{Contribution, ContributionValue, contribution, parse_group_key};
use tollgate_core::period::Period;
use tollgate_core::pricing::{BillingPeriod, Group, MeterUsage, divide_by, time_weighted};
use tollgate_store::{After, EventFilter, Store};

use crate::error::{AppResult, Error};

fn group_of(key: &str) -> Group {
    parse_group_key(key)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Usage per meter of the catalog in `period` (subject `""`: the whole customer).
pub async fn period_usage(
    store: &dyn Store,
    workspace: &str,
    customer: &str,
    catalog: &Catalog,
    period: Period,
) -> AppResult<BTreeMap<String, MeterUsage>> {
    period_usage_from(store, workspace, customer, catalog, period, None).await
}

/// [`period_usage`] from the period's aggregate rows when the caller read them already (the
/// bill run reads them for many customers at once); `None`: read here.
pub async fn period_usage_from(
    store: &dyn Store,
    workspace: &str,
    customer: &str,
    catalog: &Catalog,
    period: Period,
    rows: Option<&[tollgate_store::AggregateRow]>,
) -> AppResult<BTreeMap<String, MeterUsage>> {
    let pricing_error =
        |e: tollgate_core::pricing::PricingError| Error::internal(format!("usage: {e}"));
    let mut raw: BTreeMap<String, BTreeMap<String, Decimal>> = BTreeMap::new();
    let read;
    let rows = match rows {
        Some(rows) => rows,
        None => {
            read = store
                .aggregates(
                    &WorkspaceId::from(workspace),
                    &CustomerId::from(customer),
                    period.start,
                )
                .await?;
            read.as_slice()
        }
    };
    for row in rows {
        if !row.subject.is_empty() {
            continue;
        }
        let Some(meter) = catalog.meters.get(&row.meter) else {
            continue;
        };
        let groups = raw.entry(row.meter.clone()).or_default();
        let slot = groups.entry(row.group_key.clone()).or_default();
        *slot = match meter.aggregation {
            Aggregation::Max => (*slot).max(row.value),
            Aggregation::Latest | Aggregation::TimeWeighted => row.value,
            _ => slot.saturating_add(row.value),
        };
    }
    let mut usage = BTreeMap::new();
    let billing = BillingPeriod::new(period.start, period.end).map_err(pricing_error)?;
    let has_levels = catalog
        .meters
        .values()
        .any(|m| m.aggregation == Aggregation::TimeWeighted);
    let levels = if has_levels {
        store
            .level_points(
                &WorkspaceId::from(workspace),
                &CustomerId::from(customer),
                period.start,
                period.end,
            )
            .await?
    } else {
        Vec::new()
    };
    for (key, meter) in &catalog.meters {
        let groups: Vec<(Group, Decimal)> = if meter.aggregation == Aggregation::TimeWeighted {
            let mut by_group: BTreeMap<&str, Vec<(jiff::Timestamp, Decimal)>> = BTreeMap::new();
            for p in levels
                .iter()
                .filter(|p| &p.meter == key && p.subject.is_empty())
            {
                by_group
                    .entry(p.group_key.as_str())
                    .or_default()
                    .push((p.at, p.value));
            }
            let mut out = Vec::new();
            for (group, changes) in by_group {
                let value = time_weighted(&changes, &billing, meter.per.unwrap_or(TimeUnit::Month))
                    .map_err(pricing_error)?;
                out.push((group_of(group), value));
            }
            out
        } else {
            raw.get(key)
                .map(|g| g.iter().map(|(k, v)| (group_of(k), *v)).collect())
                .unwrap_or_default()
        };
        if groups.is_empty() {
            continue;
        }
        let mut converted = Vec::with_capacity(groups.len());
        for (group, value) in groups {
            converted.push((
                group,
                divide_by(value, meter.divide_by).map_err(pricing_error)?,
            ));
        }
        let meter_usage = if meter.group_by.is_empty() {
            MeterUsage::total(
                converted
                    .iter()
                    .fold(Decimal::ZERO, |sum, (_, v)| sum.saturating_add(*v)),
            )
        } else {
            MeterUsage::grouped(converted).map_err(pricing_error)?
        };
        usage.insert(key.clone(), meter_usage);
    }
    Ok(usage)
}

/// How many events one read of a meter's transactions takes.
const TRANSACTION_PAGE: i64 = 1_000;

/// Each event's value of `meter` in `period`, in time order (ties by event id): the transactions
/// a per-transaction price rates (`PriceModel::per_transaction`). Read from the stored events,
/// page by page, through the meter's own rule (`tollgate_core::meter::contribution`), so a
/// transaction is exactly what the meter counted.
pub async fn transactions(
    store: &dyn Store,
    workspace: &str,
    customer: &str,
    meter_key: &str,
    meter: &Meter,
    period: Period,
) -> AppResult<Vec<Decimal>> {
    let filter = EventFilter {
        customer: Some(customer.to_owned()),
        event_type: Some(meter.event.clone()),
        subject: None,
        from: Some(period.start),
        to: Some(period.end),
    };
    let workspace = WorkspaceId::from(workspace);
    let mut values = Vec::new();
    let mut last: Option<(jiff::Timestamp, String)> = None;
    loop {
        let after = last.as_ref().map(|(at, id)| After { at: *at, id });
        let page = store
            .query_events(&workspace, &filter, after, TRANSACTION_PAGE)
            .await?;
        for record in &page {
            let event = Event {
                event_type: record.event_type.clone(),
                timestamp: record.timestamp,
                subject: record.subject.clone(),
                properties: record.properties.as_object().cloned().unwrap_or_default(),
            };
            let contribution = contribution(meter_key, meter, &event)
                .map_err(|e| Error::internal(format!("event {}: {e}", record.id)))?;
            if let Some(Contribution {
                value: ContributionValue::Add(value),
                ..
            }) = contribution
            {
                values.push(
                    divide_by(value, meter.divide_by)
                        .map_err(|e| Error::internal(format!("usage: {e}")))?,
                );
            }
        }
        let full = i64::try_from(page.len()).is_ok_and(|n| n >= TRANSACTION_PAGE);
        match page.last() {
            Some(record) if full => last = Some((record.timestamp, record.id.clone())),
            _ => return Ok(values),
        }
    }
}
