//! The hot path of the PostgreSQL backend: a batch in one transaction and at most seven
//! statements, whatever its size (the event ids and the events are one statement).
//!
//! Rows travel as one array per column and come back out with `UNNEST ... WITH ORDINALITY`, so
//! each statement has a fixed text (prepared once per connection) and one round trip. Aggregate
//! arithmetic happens in the upserts themselves (`value + EXCLUDED.value`, `GREATEST`, ...) on
//! NUMERIC, which is exact and, unlike a read-modify-write, correct under concurrent batches from
//! other nodes: the row lock of the conflicting row orders them. Rows are sent in key order
//! (`ORDER BY ord` over sorted input), so concurrent batches lock shared rows in the same order.

use sqlx::{Postgres, Transaction};
use std::collections::HashSet;

use crate::batch::{self, Point, RowKey, Updates};
use crate::codec::{json_text, micros};
use crate::{IngestItem, IngestOutcome, StoreResult};

/// Inserts the candidate ids into `event_ids` and the events whose id it took into `events`, in
/// one statement; `RETURNING` yields the ids that were new. `events` is partitioned by month
/// (migration 0026), so `(workspace, id)` is unique in `event_ids` only: that insert decides, as
/// the unique index of `events` did before. A concurrent batch inserting the same id waits on
/// that index until this one commits, then skips it, so exactly one of them sees it as new. The
/// batch is unnested once (`b`, materialized) and read by both inserts.
const INSERT_EVENTS: &str = "WITH b AS ( \
       SELECT * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], \
         $7::text[], $8::int8[]) WITH ORDINALITY \
         AS e (id, customer, event_type, ts, subject, properties, received_at, ord) \
     ), fresh AS ( \
       INSERT INTO event_ids (workspace, id, received_at) \
       SELECT $1, b.id, b.received_at FROM b ORDER BY b.ord \
       ON CONFLICT (workspace, id) DO NOTHING \
       RETURNING id \
     ) \
     INSERT INTO events \
       (workspace, id, customer, event_type, ts, subject, properties, received_at) \
     SELECT $1, b.id, b.customer, b.event_type, b.ts, b.subject, b.properties::jsonb, \
       b.received_at \
     FROM b JOIN fresh ON fresh.id = b.id \
     ORDER BY b.ord \
     RETURNING id";

/// The key columns as `$2..$6` of the aggregate statements.
macro_rules! unnest_keys {
    ($extra:literal, $cols:literal) => {
        concat!(
            "FROM UNNEST($2::text[], $3::text[], $4::int8[], $5::text[], $6::text[]",
            $extra,
            ") WITH ORDINALITY AS r (customer, meter, period_start, subject, group_key",
            $cols,
            ", ord) ORDER BY r.ord "
        )
    };
}

const UPSERT_ADD: &str = concat!(
    "INSERT INTO aggregates (workspace, customer, meter, period_start, subject, group_key, value) \
     SELECT $1, r.customer, r.meter, r.period_start, r.subject, r.group_key, r.value::numeric ",
    unnest_keys!(", $7::text[]", ", value"),
    "ON CONFLICT (workspace, customer, meter, period_start, subject, group_key) \
     DO UPDATE SET value = aggregates.value + EXCLUDED.value"
);

const UPSERT_MAX: &str = concat!(
    "INSERT INTO aggregates (workspace, customer, meter, period_start, subject, group_key, value) \
     SELECT $1, r.customer, r.meter, r.period_start, r.subject, r.group_key, r.value::numeric ",
    unnest_keys!(", $7::text[]", ", value"),
    "ON CONFLICT (workspace, customer, meter, period_start, subject, group_key) \
     DO UPDATE SET value = GREATEST(aggregates.value, EXCLUDED.value)"
);

/// `Latest` and `Level`: the newer (or equally new) value wins.
const UPSERT_LATEST: &str = concat!(
    "INSERT INTO aggregates \
       (workspace, customer, meter, period_start, subject, group_key, value, updated_at) \
     SELECT $1, r.customer, r.meter, r.period_start, r.subject, r.group_key, r.value::numeric, \
       r.at ",
    unnest_keys!(", $7::text[], $8::int8[]", ", value, at"),
    "ON CONFLICT (workspace, customer, meter, period_start, subject, group_key) \
     DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at \
     WHERE aggregates.updated_at IS NULL OR EXCLUDED.updated_at >= aggregates.updated_at"
);

/// Inserts the distinct unique values and adds, per row, the number that were new.
const UPSERT_UNIQUES: &str = concat!(
    "WITH fresh AS ( \
       INSERT INTO aggregate_uniques \
         (workspace, customer, meter, period_start, subject, group_key, value) \
       SELECT $1, r.customer, r.meter, r.period_start, r.subject, r.group_key, r.value ",
    unnest_keys!(", $7::text[]", ", value"),
    "ON CONFLICT DO NOTHING \
       RETURNING customer, meter, period_start, subject, group_key \
     ) \
     INSERT INTO aggregates (workspace, customer, meter, period_start, subject, group_key, value) \
     SELECT $1, customer, meter, period_start, subject, group_key, count(*) FROM fresh \
     GROUP BY customer, meter, period_start, subject, group_key \
     ORDER BY customer, meter, period_start, subject, group_key \
     ON CONFLICT (workspace, customer, meter, period_start, subject, group_key) \
     DO UPDATE SET value = aggregates.value + EXCLUDED.value"
);

/// Level points and window entries keep batch order, so `seq` reflects arrival.
const INSERT_LEVEL_POINTS: &str = "INSERT INTO level_points \
       (workspace, customer, meter, subject, group_key, at, value) \
     SELECT $1, p.customer, p.meter, p.subject, p.group_key, p.at, p.value::numeric \
     FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[]) \
       WITH ORDINALITY AS p (customer, meter, subject, group_key, at, value, ord) \
     ORDER BY p.ord";

const INSERT_WINDOW_ENTRIES: &str = "INSERT INTO window_entries \
       (workspace, customer, meter, subject, group_key, at, quantity) \
     SELECT $1, p.customer, p.meter, p.subject, p.group_key, p.at, p.value::numeric \
     FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[]) \
       WITH ORDINALITY AS p (customer, meter, subject, group_key, at, value, ord) \
     ORDER BY p.ord";

/// Aggregate keys split into one array per column.
#[derive(Default)]
struct KeyColumns<'a> {
    customers: Vec<&'a str>,
    meters: Vec<&'a str>,
    periods: Vec<i64>,
    subjects: Vec<&'a str>,
    groups: Vec<&'a str>,
}

impl<'a> KeyColumns<'a> {
    fn push(&mut self, k: &RowKey<'a>) {
        self.customers.push(k.customer);
        self.meters.push(k.meter);
        self.periods.push(k.period_start);
        self.subjects.push(k.subject);
        self.groups.push(k.group_key);
    }

    /// Binds the keys as `$1` (workspace) to `$6` of `sql`.
    fn query(
        self,
        sql: &'static str,
        workspace: &'a str,
    ) -> sqlx::query::Query<'a, Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(sql)
            .bind(workspace)
            .bind(self.customers)
            .bind(self.meters)
            .bind(self.periods)
            .bind(self.subjects)
            .bind(self.groups)
    }
}

/// Stores the batch inside `tx` (already scoped to `workspace`) and returns the outcomes.
pub(super) async fn ingest(
    tx: &mut Transaction<'static, Postgres>,
    workspace: &str,
    items: &[IngestItem],
) -> StoreResult<Vec<IngestOutcome>> {
    let candidates = batch::candidates(items);
    let n = candidates.len();
    let (mut ids, mut customers, mut types) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut ts, mut subjects, mut props, mut received) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for i in candidates {
        let e = &items[i].event;
        ids.push(e.id.as_str());
        customers.push(e.customer.as_str());
        types.push(e.event_type.as_str());
        ts.push(micros(e.timestamp));
        subjects.push(e.subject.as_deref());
        props.push(json_text(&e.properties));
        received.push(micros(e.received_at));
    }
    let inserted: Vec<String> = sqlx::query_scalar(INSERT_EVENTS)
        .bind(workspace)
        .bind(ids)
        .bind(customers)
        .bind(types)
        .bind(ts)
        .bind(subjects)
        .bind(props)
        .bind(received)
        .fetch_all(&mut **tx)
        .await?;
    let inserted: HashSet<String> = inserted.into_iter().collect();
    let (outcomes, accepted) = batch::decide(items, |id| inserted.contains(id));
    let updates = Updates::collect(items, &accepted)?;
    apply(tx, workspace, &updates).await?;
    Ok(outcomes)
}

pub(super) async fn apply(
    tx: &mut Transaction<'static, Postgres>,
    workspace: &str,
    u: &Updates<'_>,
) -> StoreResult<()> {
    for (sql, rows) in [(UPSERT_ADD, &u.adds), (UPSERT_MAX, &u.maxes)] {
        if rows.is_empty() {
            continue;
        }
        let mut keys = KeyColumns::default();
        let mut values = Vec::with_capacity(rows.len());
        for (k, v) in rows {
            keys.push(k);
            values.push(v.to_string());
        }
        keys.query(sql, workspace)
            .bind(values)
            .execute(&mut **tx)
            .await?;
    }
    if !u.latests.is_empty() {
        let mut keys = KeyColumns::default();
        let (mut values, mut ats) = (Vec::new(), Vec::new());
        for (k, (v, at)) in &u.latests {
            keys.push(k);
            values.push(v.to_string());
            ats.push(*at);
        }
        keys.query(UPSERT_LATEST, workspace)
            .bind(values)
            .bind(ats)
            .execute(&mut **tx)
            .await?;
    }
    if !u.uniques.is_empty() {
        let mut keys = KeyColumns::default();
        let mut values = Vec::with_capacity(u.uniques.len());
        for (k, v) in &u.uniques {
            keys.push(k);
            values.push(*v);
        }
        keys.query(UPSERT_UNIQUES, workspace)
            .bind(values)
            .execute(&mut **tx)
            .await?;
    }
    insert_points(tx, INSERT_LEVEL_POINTS, workspace, &u.levels).await?;
    insert_points(tx, INSERT_WINDOW_ENTRIES, workspace, &u.windows).await
}

async fn insert_points(
    tx: &mut Transaction<'static, Postgres>,
    sql: &'static str,
    workspace: &str,
    points: &[Point<'_>],
) -> StoreResult<()> {
    if points.is_empty() {
        return Ok(());
    }
    let n = points.len();
    let (mut customers, mut meters, mut subjects, mut groups, mut ats, mut values) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for p in points {
        customers.push(p.customer);
        meters.push(p.meter);
        subjects.push(p.subject);
        groups.push(p.group_key);
        ats.push(p.at);
        values.push(p.value.to_string());
    }
    sqlx::query(sql)
        .bind(workspace)
        .bind(customers)
        .bind(meters)
        .bind(subjects)
        .bind(groups)
        .bind(ats)
        .bind(values)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
