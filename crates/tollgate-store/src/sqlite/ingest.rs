//! The hot path of the SQLite backend: a batch of events in one write transaction and a handful
//! of multi-row statements (see `values`), whatever its size.
//!
//! Aggregate arithmetic is exact decimal arithmetic in Rust: SQLite has no decimal type and
//! would compute `value + x` in floating point. The rows a batch touches are read once, folded
//! in memory (`batch::fold_rows`) and written back once; the write lock taken by
//! `BEGIN IMMEDIATE` makes this read-modify-write safe.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::values::Values;
use crate::batch::{self, Point, RowKey, RowState, Updates};
use crate::codec::{self, json_text, micros};
use crate::{EventRecord, IngestItem, IngestOutcome, StoreResult};

/// Finds which candidate ids are stored already: usually none, so this returns next to nothing,
/// where `RETURNING` on the insert would hand back every new row through sqlx's channel to the
/// SQLite worker thread (measured: the largest cost of a batch).
static FIND_EVENTS: Values = Values::new(
    "WITH k (workspace, id) AS (VALUES ",
    1,
    ") SELECT e.id FROM k CROSS JOIN events AS e ON e.workspace = k.workspace AND e.id = k.id",
);

/// Inserts the new events. No `ON CONFLICT`: the write lock held since `BEGIN IMMEDIATE` means
/// no other writer can have stored one of them since `FIND_EVENTS`, and if that reasoning were
/// ever wrong the unique index fails the batch instead of counting an event twice.
static INSERT_EVENTS: Values = Values::new(
    "INSERT INTO events \
       (workspace, id, customer, event_type, ts, subject, properties, received_at) VALUES ",
    7,
    "",
);

/// Inserts the batch's distinct unique values; the ones returned were not seen before.
static INSERT_UNIQUES: Values = Values::new(
    "INSERT INTO aggregate_uniques \
       (workspace, customer, meter, period_start, subject, group_key, value) VALUES ",
    6,
    " ON CONFLICT DO NOTHING RETURNING customer, meter, period_start, subject, group_key",
);

/// Reads the touched rows. `CROSS JOIN` fixes the join order in SQLite: one primary-key lookup
/// per key, never a scan of the workspace's aggregates.
static READ_AGGREGATES: Values = Values::new(
    "WITH k (workspace, customer, meter, period_start, subject, group_key) AS (VALUES ",
    5,
    ") SELECT a.customer, a.meter, a.period_start, a.subject, a.group_key, a.value, \
       a.updated_at \
     FROM k CROSS JOIN aggregates AS a \
       ON a.workspace = k.workspace AND a.customer = k.customer AND a.meter = k.meter \
       AND a.period_start = k.period_start AND a.subject = k.subject \
       AND a.group_key = k.group_key",
);

/// Writes the folded rows.
static WRITE_AGGREGATES: Values = Values::new(
    "INSERT INTO aggregates \
       (workspace, customer, meter, period_start, subject, group_key, value, updated_at) VALUES ",
    7,
    " ON CONFLICT (workspace, customer, meter, period_start, subject, group_key) \
     DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
);

/// Level points and window entries are inserted in batch order, so `seq` reflects arrival.
static INSERT_LEVEL_POINTS: Values = Values::new(
    "INSERT INTO level_points (workspace, customer, meter, subject, group_key, at, value) VALUES ",
    6,
    "",
);

static INSERT_WINDOW_ENTRIES: Values = Values::new(
    "INSERT INTO window_entries \
       (workspace, customer, meter, subject, group_key, at, quantity) VALUES ",
    6,
    "",
);

/// An aggregate key as read back from the database.
type OwnedKey = (String, String, i64, String, String);

fn owned_key(row: &SqliteRow) -> StoreResult<OwnedKey> {
    Ok((
        row.try_get("customer")?,
        row.try_get("meter")?,
        row.try_get("period_start")?,
        row.try_get("subject")?,
        row.try_get("group_key")?,
    ))
}

fn borrow_key(k: &OwnedKey) -> RowKey<'_> {
    RowKey {
        customer: &k.0,
        meter: &k.1,
        period_start: k.2,
        subject: &k.3,
        group_key: &k.4,
    }
}

/// Stores the batch inside `tx` (already `BEGIN IMMEDIATE`) and returns the outcomes.
pub(super) async fn ingest(
    tx: &mut Transaction<'static, Sqlite>,
    workspace: &str,
    items: &[IngestItem],
) -> StoreResult<Vec<IngestOutcome>> {
    let candidates: Vec<&EventRecord> = batch::candidates(items)
        .into_iter()
        .map(|i| &items[i].event)
        .collect();
    let stored = FIND_EVENTS
        .run(&mut *tx, workspace, &candidates, |q, e| q.bind(&e.id))
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<HashSet<String>, _>>()?;
    let new: Vec<_> = candidates
        .into_iter()
        .filter(|e| !stored.contains(&e.id))
        .map(|e| (e, json_text(&e.properties)))
        .collect();
    INSERT_EVENTS
        .run(&mut *tx, workspace, &new, |q, (e, properties)| {
            q.bind(&e.id)
                .bind(&e.customer)
                .bind(&e.event_type)
                .bind(micros(e.timestamp))
                .bind(&e.subject)
                .bind(properties)
                .bind(micros(e.received_at))
        })
        .await?;
    let (outcomes, accepted) = batch::decide(items, |id| !stored.contains(id));
    let updates = Updates::collect(items, &accepted)?;
    apply(tx, workspace, &updates).await?;
    Ok(outcomes)
}

pub(super) async fn apply(
    tx: &mut Transaction<'static, Sqlite>,
    workspace: &str,
    u: &Updates<'_>,
) -> StoreResult<()> {
    // Unique values first: which of them are new decides what the rows gain.
    let uniques: Vec<_> = u.uniques.iter().collect();
    let fresh: Vec<OwnedKey> = INSERT_UNIQUES
        .run(&mut *tx, workspace, &uniques, |q, (k, v)| {
            q.bind(k.customer)
                .bind(k.meter)
                .bind(k.period_start)
                .bind(k.subject)
                .bind(k.group_key)
                .bind(*v)
        })
        .await?
        .iter()
        .map(owned_key)
        .collect::<StoreResult<_>>()?;
    let mut new_uniques: BTreeMap<RowKey<'_>, i64> = BTreeMap::new();
    for k in &fresh {
        *new_uniques.entry(borrow_key(k)).or_default() += 1;
    }

    let touched: Vec<RowKey<'_>> = u
        .adds
        .keys()
        .chain(u.maxes.keys())
        .chain(u.latests.keys())
        .chain(new_uniques.keys())
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let stored = READ_AGGREGATES
        .run(&mut *tx, workspace, &touched, |q, k| {
            q.bind(k.customer)
                .bind(k.meter)
                .bind(k.period_start)
                .bind(k.subject)
                .bind(k.group_key)
        })
        .await?
        .iter()
        .map(|row| {
            let state = RowState {
                value: codec::decimal(row.try_get::<&str, _>("value")?)?,
                updated_at: row.try_get("updated_at")?,
            };
            Ok((owned_key(row)?, state))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let existing: HashMap<RowKey<'_>, RowState> =
        stored.iter().map(|(k, s)| (borrow_key(k), *s)).collect();
    let folded: Vec<_> = batch::fold_rows(u, &existing, &new_uniques)?
        .into_iter()
        .map(|(k, s)| (k, s.value.to_string(), s.updated_at))
        .collect();
    WRITE_AGGREGATES
        .run(&mut *tx, workspace, &folded, |q, (k, value, updated_at)| {
            q.bind(k.customer)
                .bind(k.meter)
                .bind(k.period_start)
                .bind(k.subject)
                .bind(k.group_key)
                .bind(value)
                .bind(*updated_at)
        })
        .await?;

    insert_points(tx, &INSERT_LEVEL_POINTS, workspace, &u.levels).await?;
    insert_points(tx, &INSERT_WINDOW_ENTRIES, workspace, &u.windows).await
}

async fn insert_points(
    tx: &mut Transaction<'static, Sqlite>,
    statement: &'static Values,
    workspace: &str,
    points: &[Point<'_>],
) -> StoreResult<()> {
    let rows: Vec<_> = points.iter().map(|p| (p, p.value.to_string())).collect();
    statement
        .run(&mut *tx, workspace, &rows, |q, (p, value)| {
            q.bind(p.customer)
                .bind(p.meter)
                .bind(p.subject)
                .bind(p.group_key)
                .bind(p.at)
                .bind(value)
        })
        .await?;
    Ok(())
}
