//! Catalog versions compiled for the hot path: which meters an event type feeds, which meters
//! need rolling-window entries or per-subject rows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tollgate_core::catalog::{Aggregation, Catalog, QuotaReset, Scope};

/// One catalog version with lookup tables derived from it.
#[derive(Debug)]
pub struct CompiledCatalog {
    pub version: i64,
    pub catalog: Catalog,
    /// Event type to the meters that read it.
    pub meters_by_event: HashMap<String, Vec<String>>,
    /// Meters with a rolling-window quota in any plan, with the longest window in seconds.
    pub rolling_meters: HashMap<String, u64>,
    /// Meters with a per-subject quota in any plan: they keep per-subject rows.
    pub subject_meters: HashSet<String>,
    /// Every rolling-window length (seconds) of any plan's quota per meter: with shared
    /// counters each length is a window of its own, fed by every use of the meter.
    pub rolling_lengths: HashMap<String, Vec<u64>>,
    /// Meters whose value is a plain sum (count, sum): the only ones a shared counter can add.
    pub additive_meters: HashSet<String>,
}

impl CompiledCatalog {
    pub fn new(version: i64, catalog: Catalog) -> Arc<Self> {
        let mut meters_by_event: HashMap<String, Vec<String>> = HashMap::new();
        for (key, meter) in &catalog.meters {
            meters_by_event
                .entry(meter.event.clone())
                .or_default()
                .push(key.clone());
        }
        let mut rolling_meters: HashMap<String, u64> = HashMap::new();
        let mut subject_meters = HashSet::new();
        let mut rolling_lengths: HashMap<String, Vec<u64>> = HashMap::new();
        for quota in catalog.plans.values().flat_map(|p| &p.quotas) {
            if let QuotaReset::Rolling(len) = quota.reset {
                let longest = rolling_meters.entry(quota.meter.clone()).or_default();
                *longest = (*longest).max(len.seconds());
                let lengths = rolling_lengths.entry(quota.meter.clone()).or_default();
                if !lengths.contains(&len.seconds()) {
                    lengths.push(len.seconds());
                }
            }
            if quota.per == Scope::Subject {
                subject_meters.insert(quota.meter.clone());
            }
        }
        let additive_meters = catalog
            .meters
            .iter()
            .filter(|(_, m)| matches!(m.aggregation, Aggregation::Count | Aggregation::Sum))
            .map(|(k, _)| k.clone())
            .collect();
        Arc::new(CompiledCatalog {
            version,
            catalog,
            meters_by_event,
            rolling_meters,
            subject_meters,
            rolling_lengths,
            additive_meters,
        })
    }

    /// The longest rolling window of any meter: how far back window entries must be loaded.
    pub fn longest_window(&self) -> u64 {
        self.rolling_meters.values().copied().max().unwrap_or(0)
    }
}
