//! Creating shared counters from the store: a period's aggregates, a window's entries.

use std::collections::BTreeMap;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use jiff::Timestamp;
use rust_decimal::Decimal;

use super::prepare::Source;
use crate::counters::{Counter, CounterError, RedisCounters, Seed, keys};
use crate::engine::Engine;
use crate::error::AppResult;

impl Engine {
    /// Creates counters from the store unless they exist; `true` per counter written.
    pub(super) async fn seed(
        &self,
        counters: &RedisCounters,
        workspace: &str,
        customer: &str,
        now: Timestamp,
        targets: &[(Counter, Source)],
    ) -> AppResult<Result<Vec<bool>, CounterError>> {
        let mut periods: BTreeMap<Timestamp, Vec<tollgate_store::AggregateRow>> = BTreeMap::new();
        let mut windows: Option<Vec<tollgate_store::WindowEntryRow>> = None;
        let mut seeds = Vec::with_capacity(targets.len());
        for (counter, source) in targets {
            let seed = match source {
                Source::Period {
                    meter,
                    subject,
                    period_start,
                } => {
                    if !periods.contains_key(period_start) {
                        let rows = self
                            .store
                            .aggregates(
                                &WorkspaceId::from(workspace),
                                &CustomerId::from(customer),
                                *period_start,
                            )
                            .await?;
                        periods.insert(*period_start, rows);
                    }
                    let raw: Decimal = periods[period_start]
                        .iter()
                        .filter(|r| &r.meter == meter && &r.subject == subject)
                        .map(|r| r.value)
                        .sum();
                    match keys::scale_up(raw) {
                        Ok(value) => Seed {
                            counter: counter.clone(),
                            value,
                            entries: Vec::new(),
                        },
                        Err(e) => return Ok(Err(e)),
                    }
                }
                Source::Window {
                    meter,
                    subject,
                    len,
                } => {
                    if windows.is_none() {
                        let longest = targets
                            .iter()
                            .filter_map(|(_, s)| match s {
                                Source::Window { len, .. } => Some(*len),
                                Source::Period { .. } => None,
                            })
                            .max()
                            .unwrap_or(*len);
                        let since =
                            Timestamp::from_second(now.as_second() - longest as i64).unwrap_or(now);
                        windows = Some(
                            self.store
                                .window_entries(
                                    &WorkspaceId::from(workspace),
                                    &CustomerId::from(customer),
                                    since,
                                )
                                .await?,
                        );
                    }
                    let horizon = now.as_second() - *len as i64;
                    let mut value = 0i64;
                    let mut entries = Vec::new();
                    for (n, row) in windows.iter().flatten().enumerate() {
                        if &row.meter != meter
                            || &row.subject != subject
                            || row.at.as_second() <= horizon
                        {
                            continue;
                        }
                        let delta = match keys::scale_up(row.quantity) {
                            Ok(d) => d,
                            Err(e) => return Ok(Err(e)),
                        };
                        value = value.saturating_add(delta);
                        entries.push((row.at.as_second(), keys::member(delta, &format!("s{n}"))));
                    }
                    Seed {
                        counter: counter.clone(),
                        value,
                        entries,
                    }
                }
            };
            seeds.push(seed);
        }
        Ok(counters.seed(&seeds).await)
    }
}
