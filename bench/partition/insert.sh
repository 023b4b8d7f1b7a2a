#!/usr/bin/env bash
# The PostgreSQL ingest statement for `events`, before and after partitioning by month (issue 11,
# migration 0026), side by side in one run, measured inside PostgreSQL with pgbench.
#
# Three fresh schemas of one database, migrated by psql from crates/tollgate-store/migrations:
#   before:  migrations up to 0025 (one `events` table, primary key (workspace, id)), the old
#            `INSERT INTO events ... ON CONFLICT (workspace, id) DO NOTHING RETURNING id`;
#   after:   up to 0026 (`events` partitioned by month, ids in `event_ids`), the statement of
#            crates/tollgate-store/src/postgres/ingest.rs (ids into event_ids, the new ones into
#            events, one statement);
#   after+pk: the same with a primary key (workspace, id, received_at) on `events`, the design
#            that was measured and dropped.
# Each transaction is one batch of BATCH events with fresh ids, run as `tollgate_app` with the
# workspace set, as the server runs it. Rounds interleave the variants; events/s = tps x BATCH.
#
# Usage: bench/partition/insert.sh
# Settings (environment): PG_URL=postgres://postgres@127.0.0.1:5432/test BATCH=1000
#   CLIENTS=4 SECONDS_EACH=12 ROUNDS=3. The schemas are dropped at the end.
set -euo pipefail

PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
BATCH="${BATCH:-1000}"
CLIENTS="${CLIENTS:-4}"
SECONDS_EACH="${SECONDS_EACH:-12}"
ROUNDS="${ROUNDS:-3}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
migrations="$here/../../crates/tollgate-store/migrations/postgres"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

migrate() { # schema, last migration number
    psql "$PG_URL" -q -c "DROP SCHEMA IF EXISTS $1 CASCADE" -c "CREATE SCHEMA $1" 2>/dev/null
    {
        echo "SET search_path = $1;"
        for f in "$migrations"/*.sql; do
            n="$(basename "$f" | cut -c1-4)"
            if ((10#$n <= $2)); then cat "$f"; echo; fi
        done
        echo "INSERT INTO workspaces (workspace, name, created_at) VALUES ('w', 'W', 0);"
    } | psql "$PG_URL" -q -v ON_ERROR_STOP=1 >/dev/null 2>&1
}
migrate pb_before 25
migrate pb_after 26
migrate pb_after_pk 26
psql "$PG_URL" -q -c "ALTER TABLE pb_after_pk.events ADD PRIMARY KEY (workspace, id, received_at)"

batch="WITH b AS (SELECT gen_random_uuid()::text AS id, 'bench'::text AS customer,
  'agent.run'::text AS event_type, 1::int8 AS ts, NULL::text AS subject,
  '{\"tokens\": 12, \"model\": \"m\"}'::text AS properties,
  (extract(epoch FROM clock_timestamp()) * 1000000)::int8 AS received_at, g AS ord
  FROM generate_series(1, $BATCH) g)"
scope="SELECT set_config('role', 'tollgate_app', true), set_config('tollgate.workspace', 'w', true);"
cat > "$scratch/before.sql" <<SQL
BEGIN;
$scope
$batch
INSERT INTO events (workspace, id, customer, event_type, ts, subject, properties, received_at)
SELECT 'w', b.id, b.customer, b.event_type, b.ts, b.subject, b.properties::jsonb, b.received_at
FROM b ORDER BY b.ord ON CONFLICT (workspace, id) DO NOTHING RETURNING id;
END;
SQL
cat > "$scratch/after.sql" <<SQL
BEGIN;
$scope
$batch, fresh AS (INSERT INTO event_ids (workspace, id, received_at)
  SELECT 'w', b.id, b.received_at FROM b ORDER BY b.ord
  ON CONFLICT (workspace, id) DO NOTHING RETURNING id)
INSERT INTO events (workspace, id, customer, event_type, ts, subject, properties, received_at)
SELECT 'w', b.id, b.customer, b.event_type, b.ts, b.subject, b.properties::jsonb, b.received_at
FROM b JOIN fresh ON fresh.id = b.id ORDER BY b.ord RETURNING id;
END;
SQL
cp "$scratch/after.sql" "$scratch/after_pk.sql"

printf '%-6s %-9s %12s  %s\n' round variant events/s "load average (1, 5, 15 min)"
for round in $(seq 1 "$ROUNDS"); do
    for v in before after after_pk; do
        load="$(cut -d' ' -f1-3 /proc/loadavg)"
        tps="$(PGOPTIONS="-c search_path=pb_$v" pgbench -n -M prepared -c "$CLIENTS" -j 2 \
            -T "$SECONDS_EACH" -f "$scratch/$v.sql" "$PG_URL" 2>&1 | awk '/^tps/ {print $3}')"
        printf '%-6s %-9s %12.0f  %s\n' "$round" "$v" "$(echo "$tps * $BATCH" | bc -l)" "$load"
    done
done
for v in before after after_pk; do
    psql "$PG_URL" -q -c "DROP SCHEMA pb_$v CASCADE" 2>/dev/null
done
