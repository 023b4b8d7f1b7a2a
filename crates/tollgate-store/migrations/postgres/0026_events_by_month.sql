-- `events` partitioned by month of `received_at` (docs/SCALING.md, "Partitioning `events` by
-- month"), so that an old month can be detached, archived and dropped without a long DELETE.
--
-- * `event_ids` (not partitioned) holds every event id once: a unique key on a partitioned
--   table must contain the partition key, so `(workspace, id)` is unique here instead. Ingest
--   inserts into it first and stores in `events` only the ids it took (`postgres/ingest.rs`);
--   a lookup by id reads `received_at` here and visits one partition. Ids of a detached month
--   stay, so a retry of an old event is still a duplicate.
-- * `events` is partitioned by RANGE (`received_at`): one partition `events_YYYY_MM` per month
--   (UTC) and `events_default` for anything outside them. The scheduler creates the current and
--   next month's partitions ahead (`tollgate_events_partition_create`), so in normal operation
--   the default partition stays empty.
-- * Partitions get no grants: `tollgate_app` reaches rows only through `events`, under its
--   row-level-security policy (partitions do not inherit policies, so a grant on one would be a
--   way around them).

CREATE TABLE event_ids (
    workspace   TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (workspace, id)
);
INSERT INTO event_ids (workspace, id, received_at)
SELECT workspace, id, received_at FROM events;

-- Amendments name an event by id, which is unique only in `event_ids` now.
ALTER TABLE event_amendments DROP CONSTRAINT event_amendments_workspace_event_id_fkey;
ALTER TABLE event_amendments ADD CONSTRAINT event_amendments_workspace_event_id_fkey
    FOREIGN KEY (workspace, event_id) REFERENCES event_ids (workspace, id);

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey TO events_unpartitioned_pkey;
DROP INDEX events_by_customer_time;
DROP INDEX events_by_time;
DROP INDEX events_by_received;

CREATE TABLE events (
    workspace   TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    customer    TEXT   NOT NULL,
    event_type  TEXT   NOT NULL,
    ts          BIGINT NOT NULL,
    subject     TEXT,
    properties  JSONB  NOT NULL,
    received_at BIGINT NOT NULL
) PARTITION BY RANGE (received_at);
-- No primary key: `event_ids` is the unique `(workspace, id)`, and a lookup by id reads its
-- `received_at` there and probes `events_by_received` in one partition. A key here (it would
-- have to be `(workspace, id, received_at)`) is one more index per event that no query reads:
-- measured, it cost a fifth of the insert's rate (docs/PERFORMANCE.md).
CREATE INDEX events_by_customer_time ON events (workspace, customer, ts);
CREATE INDEX events_by_time ON events (workspace, ts, id);
CREATE INDEX events_by_received ON events (workspace, received_at, id);
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- Creates the partition of month `m` of year `y` (UTC) unless a table of its name exists; true
-- if this call created it. Rows of that month already in the default partition (the scheduler
-- was not running, or a test clock wrote ahead) are moved into it, under a lock that holds
-- ingest back meanwhile. SECURITY DEFINER: `tollgate_app` may call it, and it can do nothing but
-- this. `lock_timeout` bounds how long ingest queues behind it; the scheduler tries again.
CREATE FUNCTION tollgate_events_partition_create(y INT, m INT) RETURNS BOOLEAN
LANGUAGE plpgsql SECURITY DEFINER SET lock_timeout = '2s' AS $fn$
DECLARE
    name TEXT;
    lo BIGINT;
    hi BIGINT;
BEGIN
    IF y < 1900 OR y > 9998 OR m < 1 OR m > 12 THEN
        RAISE EXCEPTION 'no month % of year %', m, y USING ERRCODE = '22023';
    END IF;
    name := format('events_%s_%s', lpad(y::text, 4, '0'), lpad(m::text, 2, '0'));
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Both bounds from make_timestamptz in UTC: adding an interval would follow the session's
    -- time zone across a daylight-saving change.
    lo := (extract(epoch FROM make_timestamptz(y, m, 1, 0, 0, 0, 'UTC')) * 1000000)::bigint;
    hi := (extract(epoch FROM make_timestamptz(y + m / 12, m % 12 + 1, 1, 0, 0, 0, 'UTC'))
        * 1000000)::bigint;
    BEGIN
        IF EXISTS (SELECT 1 FROM events_default WHERE received_at >= lo AND received_at < hi) THEN
            LOCK TABLE events IN ACCESS EXCLUSIVE MODE;
            EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS)', name);
            EXECUTE format('WITH moved AS (DELETE FROM events_default WHERE received_at >= %s '
                'AND received_at < %s RETURNING *) INSERT INTO %I SELECT * FROM moved',
                lo, hi, name);
            EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                name, lo, hi);
        ELSE
            EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%s) TO (%s)',
                name, lo, hi);
        END IF;
    EXCEPTION WHEN duplicate_table OR unique_violation THEN
        -- Another node created it first.
        RETURN false;
    END;
    RETURN true;
END
$fn$;

-- Detaches the partition of month `m` of year `y`: its rows leave every read, the table stays
-- (to archive with pg_dump, then drop; docs/OPERATIONS.md). False if no such partition is
-- attached. Not CONCURRENTLY: PostgreSQL refuses that when a default partition exists (and
-- inside a function); a plain detach takes `events`' lock for a moment, bounded as above.
CREATE FUNCTION tollgate_events_partition_detach(y INT, m INT) RETURNS BOOLEAN
LANGUAGE plpgsql SECURITY DEFINER SET lock_timeout = '2s' AS $fn$
DECLARE
    name TEXT := format('events_%s_%s', lpad(y::text, 4, '0'), lpad(m::text, 2, '0'));
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_inherits
                   WHERE inhrelid = to_regclass(name) AND inhparent = 'events'::regclass) THEN
        RETURN false;
    END IF;
    EXECUTE format('ALTER TABLE events DETACH PARTITION %I', name);
    RETURN true;
END
$fn$;

-- A partition for every month present, and the current and next ones.
SELECT tollgate_events_partition_create(extract(year FROM month)::int,
                                        extract(month FROM month)::int)
FROM (
    SELECT DISTINCT date_trunc('month', to_timestamp(received_at / 1000000.0) AT TIME ZONE 'UTC')
        AS month FROM events_unpartitioned
    UNION
    SELECT date_trunc('month', now() AT TIME ZONE 'UTC')
    UNION
    SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month'
) AS months;

INSERT INTO events SELECT workspace, id, customer, event_type, ts, subject, properties, received_at
FROM events_unpartitioned;
DROP TABLE events_unpartitioned;

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['events', 'event_ids'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))', t);
    END LOOP;
    -- The functions run as their owner: only `tollgate_app` may call them, and they resolve
    -- names in this schema alone whatever the caller's search_path.
    FOREACH t IN ARRAY ARRAY['tollgate_events_partition_create(int, int)',
                             'tollgate_events_partition_detach(int, int)'] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', t);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO tollgate_app', t);
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', t, current_schema());
    END LOOP;
END $$;
