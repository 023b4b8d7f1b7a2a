//! The backend-independent half of `ingest`: which items of a batch are candidates, which outcome
//! each gets once the database said which events it inserted, and what the accepted events do
//! to the aggregates, folded per row so that each backend writes every touched row once.
//!
//! Folding per row (rather than applying updates one by one) is what makes a batch of 1,000
//! events cost a handful of statements. Within one batch the updates of one row are applied in a
//! fixed order of kinds: adds, maxima, latest values (and levels), unique counts. A meter has one
//! aggregation, so a row only ever receives one kind and the order is never observable; it is
//! fixed anyway so both backends agree on any input.

use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::codec::micros;
use crate::{AggregateOp, IngestItem, IngestOutcome, StoreError, StoreResult};

/// The primary key of an aggregate row within a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct RowKey<'a> {
    pub customer: &'a str,
    pub meter: &'a str,
    pub period_start: i64,
    pub subject: &'a str,
    pub group_key: &'a str,
}

/// A level point or a window entry: a timed value in one series.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point<'a> {
    pub customer: &'a str,
    pub meter: &'a str,
    pub subject: &'a str,
    pub group_key: &'a str,
    pub at: i64,
    pub value: Decimal,
}

/// Indices of the first occurrence of each event id in the batch, sorted by id. Later
/// occurrences are duplicates whatever the database holds. Sorting gives concurrent batches
/// one order in which to take index locks (PostgreSQL), so they wait for each other instead
/// of deadlocking.
pub(crate) fn candidates(items: &[IngestItem]) -> Vec<usize> {
    let mut seen = HashSet::with_capacity(items.len());
    let mut out: Vec<usize> = (0..items.len())
        .filter(|&i| seen.insert(items[i].event.id.as_str()))
        .collect();
    out.sort_unstable_by(|&a, &b| items[a].event.id.cmp(&items[b].event.id));
    out
}

/// The outcome of every item, given which candidate ids the database stored as new, and the
/// accepted indices in batch order.
pub(crate) fn decide(
    items: &[IngestItem],
    stored_as_new: impl Fn(&str) -> bool,
) -> (Vec<IngestOutcome>, Vec<usize>) {
    let mut seen = HashSet::with_capacity(items.len());
    let mut accepted = Vec::with_capacity(items.len());
    let outcomes = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let id = item.event.id.as_str();
            if seen.insert(id) && stored_as_new(id) {
                accepted.push(i);
                IngestOutcome::Accepted
            } else {
                IngestOutcome::Duplicate
            }
        })
        .collect();
    (outcomes, accepted)
}

/// The aggregate updates of the accepted events, folded per row. Maps are ordered so that rows
/// are written in key order (a stable lock order across concurrent batches).
#[derive(Debug, Default)]
pub(crate) struct Updates<'a> {
    /// Sum of the `Add`s per row.
    pub adds: BTreeMap<RowKey<'a>, Decimal>,
    /// Largest `Max` per row.
    pub maxes: BTreeMap<RowKey<'a>, Decimal>,
    /// The `Latest` or `Level` that wins per row: the latest `at`, the last one on a tie.
    pub latests: BTreeMap<RowKey<'a>, (Decimal, i64)>,
    /// Distinct `Unique` values per row.
    pub uniques: BTreeSet<(RowKey<'a>, &'a str)>,
    /// Every `Level` as a point, in batch order.
    pub levels: Vec<Point<'a>>,
    /// Every `WindowEntry`, in batch order.
    pub windows: Vec<Point<'a>>,
}

impl<'a> Updates<'a> {
    pub(crate) fn collect(items: &'a [IngestItem], accepted: &[usize]) -> StoreResult<Self> {
        let mut u = Updates::default();
        for &i in accepted {
            let item = &items[i];
            let customer = item.event.customer.as_str();
            for up in &item.updates {
                let key = RowKey {
                    customer,
                    meter: &up.meter,
                    period_start: micros(up.period_start),
                    subject: &up.subject,
                    group_key: &up.group_key,
                };
                let point = |at, value| Point {
                    customer,
                    meter: &up.meter,
                    subject: &up.subject,
                    group_key: &up.group_key,
                    at: micros(at),
                    value,
                };
                match &up.op {
                    AggregateOp::Add(x) => {
                        let sum = u.adds.entry(key).or_default();
                        *sum = checked_add(*sum, *x)?;
                    }
                    AggregateOp::Max(x) => {
                        u.maxes
                            .entry(key)
                            .and_modify(|m| *m = (*m).max(*x))
                            .or_insert(*x);
                    }
                    AggregateOp::Latest { value, at } => u.latest(key, *value, micros(*at)),
                    AggregateOp::Level { value, at } => {
                        u.latest(key, *value, micros(*at));
                        u.levels.push(point(*at, *value));
                    }
                    AggregateOp::Unique(v) => {
                        u.uniques.insert((key, v.as_str()));
                    }
                    AggregateOp::WindowEntry { quantity, at } => {
                        u.windows.push(point(*at, *quantity));
                    }
                }
            }
        }
        Ok(u)
    }

    fn latest(&mut self, key: RowKey<'a>, value: Decimal, at: i64) {
        self.latests
            .entry(key)
            .and_modify(|cur| {
                if at >= cur.1 {
                    *cur = (value, at);
                }
            })
            .or_insert((value, at));
    }
}

pub(crate) fn checked_add(a: Decimal, b: Decimal) -> StoreResult<Decimal> {
    a.checked_add(b)
        .ok_or_else(|| StoreError::Corrupt(format!("aggregate {a} + {b} overflows a decimal")))
}

/// The state of an aggregate row while a batch is folded into it in memory (SQLite, which has no
/// exact decimal arithmetic of its own).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RowState {
    pub value: Decimal,
    pub updated_at: Option<i64>,
}

/// Applies folded updates to rows read from the database (`existing`, absent rows missing) and
/// returns the rows to write. `new_uniques` counts, per row, the unique values the batch added
/// that were not stored before. Mirrors the PostgreSQL upserts exactly.
pub(crate) fn fold_rows<'a>(
    updates: &Updates<'a>,
    existing: &HashMap<RowKey<'a>, RowState>,
    new_uniques: &BTreeMap<RowKey<'a>, i64>,
) -> StoreResult<BTreeMap<RowKey<'a>, RowState>> {
    let mut out: BTreeMap<RowKey<'a>, RowState> = BTreeMap::new();
    let current = |key: &RowKey<'a>, out: &BTreeMap<RowKey<'a>, RowState>| {
        out.get(key).or_else(|| existing.get(key)).copied()
    };
    for (key, x) in &updates.adds {
        let row = match current(key, &out) {
            Some(r) => RowState {
                value: checked_add(r.value, *x)?,
                ..r
            },
            None => RowState {
                value: *x,
                updated_at: None,
            },
        };
        out.insert(*key, row);
    }
    for (key, x) in &updates.maxes {
        let row = match current(key, &out) {
            Some(r) => RowState {
                value: r.value.max(*x),
                ..r
            },
            None => RowState {
                value: *x,
                updated_at: None,
            },
        };
        out.insert(*key, row);
    }
    for (key, (value, at)) in &updates.latests {
        let replace = match current(key, &out) {
            Some(r) => r.updated_at.is_none_or(|stored| *at >= stored),
            None => true,
        };
        if replace {
            out.insert(
                *key,
                RowState {
                    value: *value,
                    updated_at: Some(*at),
                },
            );
        }
    }
    for (key, n) in new_uniques {
        let row = match current(key, &out) {
            Some(r) => RowState {
                value: checked_add(r.value, Decimal::from(*n))?,
                ..r
            },
            None => RowState {
                value: Decimal::from(*n),
                updated_at: None,
            },
        };
        out.insert(*key, row);
    }
    Ok(out)
}
