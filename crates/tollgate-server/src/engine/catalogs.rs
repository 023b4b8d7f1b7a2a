//! Catalog versions compiled for the hot path: which meters an event type feeds, which meters
//! need rolling-window entries or per-subject rows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tollgate_core::catalog::{Aggregation, Catalog, Plan, QuotaReset, Scope};

/// The hasher of the check path's lookup tables: foldhash, seeded per map. Not SipHash, so not
/// HashDoS-proof in the strict sense; acceptable because every key hashed on this path is chosen
/// by an authenticated party about its own data: plan, feature and meter keys come from the
/// operator's own catalog, and customer ids from the operator (or the key's own customer), so an
/// attacker who can craft colliding keys slows only its own tenant's lookups, and the per-map
/// random seed keeps the collisions from being precomputed offline. SipHash was about a fifth
/// of an in-process check's instructions (callgrind, docs/PERFORMANCE.md).
pub type FastHasher = foldhash::fast::RandomState;
/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, FastHasher>;

/// One plan's check lookups, resolved once per catalog version instead of once per check.
#[derive(Debug, Default)]
pub struct PlanTable {
    /// Every feature of the catalog: the index of the plan's entitlement in `Plan::features`,
    /// `None` when the plan does not list it. A feature missing here is unknown.
    pub features: FastMap<String, Option<usize>>,
    /// Every meter of the catalog: the indexes in `Plan::quotas` of the plan's quotas on it
    /// (in the plan's order). A meter missing here is unknown.
    pub meters: FastMap<String, Vec<usize>>,
}

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
    /// Plan key to its index in `catalog.plans` (an `IndexMap`, whose own lookups hash with
    /// SipHash) and to its [`PlanTable`] at the same index in `plan_tables`.
    pub plan_index: FastMap<String, usize>,
    pub plan_tables: Vec<PlanTable>,
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
        let plan_index = catalog
            .plans
            .keys()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        let plan_tables = catalog
            .plans
            .values()
            .map(|plan| PlanTable {
                features: catalog
                    .features
                    .keys()
                    .map(|f| (f.clone(), plan.features.get_index_of(f)))
                    .collect(),
                meters: catalog
                    .meters
                    .keys()
                    .map(|m| {
                        let quotas = plan.quotas.iter().enumerate();
                        let on = quotas.filter(|(_, q)| q.meter == *m).map(|(i, _)| i);
                        (m.clone(), on.collect())
                    })
                    .collect(),
            })
            .collect();
        Arc::new(CompiledCatalog {
            version,
            catalog,
            meters_by_event,
            rolling_meters,
            subject_meters,
            rolling_lengths,
            additive_meters,
            plan_index,
            plan_tables,
        })
    }

    /// A plan by key: its index, key, definition and check table.
    pub fn plan(&self, key: &str) -> Option<(usize, &str, &Plan, &PlanTable)> {
        let i = *self.plan_index.get(key)?;
        let (key, plan) = self.catalog.plans.get_index(i)?;
        Some((i, key, plan, self.plan_tables.get(i)?))
    }

    /// The longest rolling window of any meter: how far back window entries must be loaded.
    pub fn longest_window(&self) -> u64 {
        self.rolling_meters.values().copied().max().unwrap_or(0)
    }
}
