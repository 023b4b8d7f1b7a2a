-- Tollgate schema for PostgreSQL.
--
-- Conventions (shared with the SQLite schema so the two backends read alike):
-- * every table has a `workspace` column, every query filters by it, and row-level security
--   enforces it as well (see the end of this file);
-- * timestamps are BIGINT unix microseconds: exact for `jiff::Timestamp` at µs, and the same
--   encoding as SQLite so both backends share their conversions;
-- * decimals are NUMERIC (exact arithmetic in upserts), read back through `::text`;
-- * JSON documents are JSONB.

-- The role every workspace-scoped statement runs as (`SET LOCAL ROLE` inside the transaction).
-- Roles are cluster-wide, so another database on the same cluster may have created it already,
-- possibly at the same moment: both cases are fine.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'tollgate_app') THEN
        CREATE ROLE tollgate_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- A non-superuser connecting role must be a member to `SET ROLE tollgate_app`.
GRANT tollgate_app TO CURRENT_USER;

CREATE TABLE workspaces (
    workspace   TEXT   NOT NULL PRIMARY KEY,
    name        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    -- Last catalog version handed out: the row lock taken by bumping it serialises concurrent
    -- `add_catalog_version` calls, and a rolled-back insert rolls the bump back (no gaps).
    catalog_seq BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE admin_keys (
    workspace   TEXT   NOT NULL REFERENCES workspaces (workspace),
    id          TEXT   NOT NULL,
    secret_hash TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (workspace, id)
);

CREATE TABLE catalog_versions (
    workspace  TEXT   NOT NULL REFERENCES workspaces (workspace),
    version    BIGINT NOT NULL,
    catalog    JSONB  NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace, version)
);

CREATE TABLE test_clocks (
    workspace   TEXT   NOT NULL REFERENCES workspaces (workspace),
    id          TEXT   NOT NULL,
    name        TEXT,
    frozen_time BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (workspace, id)
);

CREATE TABLE customers (
    workspace          TEXT    NOT NULL REFERENCES workspaces (workspace),
    id                 TEXT    NOT NULL,
    name               TEXT,
    email              TEXT,
    suspended          BOOLEAN NOT NULL,
    has_payment_method BOOLEAN NOT NULL,
    test_clock         TEXT,
    metadata           JSONB   NOT NULL,
    created_at         BIGINT  NOT NULL,
    PRIMARY KEY (workspace, id)
);

CREATE TABLE subscriptions (
    workspace       TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    customer        TEXT   NOT NULL,
    plan            TEXT   NOT NULL,
    catalog_version BIGINT NOT NULL,
    status          TEXT   NOT NULL CHECK (status IN ('trialing', 'active', 'canceled')),
    addons          JSONB  NOT NULL,
    started_at      BIGINT NOT NULL,
    billing_anchor  BIGINT NOT NULL,
    trial_end       BIGINT,
    canceled_at     BIGINT,
    ends_at         BIGINT,
    PRIMARY KEY (workspace, id),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
);
CREATE INDEX subscriptions_by_customer ON subscriptions (workspace, customer, started_at);

CREATE TABLE api_keys (
    workspace   TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    customer    TEXT   NOT NULL,
    name        TEXT,
    secret_hash TEXT   NOT NULL UNIQUE,
    prefix      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    PRIMARY KEY (workspace, id),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
);
CREATE INDEX api_keys_by_customer ON api_keys (workspace, customer);

-- Raw events, kept for audit and recompute. No foreign key to customers: this is the hot ingest
-- path and the caller has resolved the customer already.
CREATE TABLE events (
    workspace   TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    customer    TEXT   NOT NULL,
    event_type  TEXT   NOT NULL,
    ts          BIGINT NOT NULL,
    subject     TEXT,
    properties  JSONB  NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX events_by_customer_time ON events (workspace, customer, ts);

-- Incremental aggregates: one small row per (customer, meter, period, subject, group).
CREATE TABLE aggregates (
    workspace    TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    meter        TEXT    NOT NULL,
    period_start BIGINT  NOT NULL,
    subject      TEXT    NOT NULL,
    group_key    TEXT    NOT NULL,
    value        NUMERIC NOT NULL,
    updated_at   BIGINT,
    PRIMARY KEY (workspace, customer, meter, period_start, subject, group_key)
);

-- The distinct values seen by unique-count meters, per aggregate row.
CREATE TABLE aggregate_uniques (
    workspace    TEXT   NOT NULL,
    customer     TEXT   NOT NULL,
    meter        TEXT   NOT NULL,
    period_start BIGINT NOT NULL,
    subject      TEXT   NOT NULL,
    group_key    TEXT   NOT NULL,
    value        TEXT   NOT NULL,
    PRIMARY KEY (workspace, customer, meter, period_start, subject, group_key, value)
);

-- Level changes of time-weighted meters. `seq` orders points with the same `at` by arrival, the
-- same order in which the aggregate row took them.
CREATE TABLE level_points (
    seq       BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace TEXT    NOT NULL,
    customer  TEXT    NOT NULL,
    meter     TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    group_key TEXT    NOT NULL,
    at        BIGINT  NOT NULL,
    value     NUMERIC NOT NULL
);
CREATE INDEX level_points_by_time ON level_points (workspace, customer, at);
CREATE INDEX level_points_by_series ON level_points (workspace, customer, meter, subject, group_key, at);

-- Entries of exact rolling windows; pruned once older than the longest window.
CREATE TABLE window_entries (
    seq       BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace TEXT    NOT NULL,
    customer  TEXT    NOT NULL,
    meter     TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    group_key TEXT    NOT NULL,
    at        BIGINT  NOT NULL,
    quantity  NUMERIC NOT NULL
);
CREATE INDEX window_entries_by_customer ON window_entries (workspace, customer, at);
CREATE INDEX window_entries_by_time ON window_entries (workspace, at);

-- Row-level security. The application filters by workspace in every query; these policies make
-- a forgotten filter return nothing instead of another workspace's rows. FORCE applies them to
-- the table owner too (superusers and BYPASSRLS roles still bypass them, which is why the store
-- switches to `tollgate_app` for every statement).
DO $$
DECLARE
    t TEXT;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO tollgate_app', current_schema());
    FOREACH t IN ARRAY ARRAY[
        'workspaces', 'admin_keys', 'catalog_versions', 'test_clocks', 'customers',
        'subscriptions', 'api_keys', 'events', 'aggregates', 'aggregate_uniques',
        'level_points', 'window_entries'
    ] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))',
            t
        );
    END LOOP;
END
$$;

-- Authentication finds the workspace from a key's hash, before any workspace is known. These
-- read-only policies reveal a key row only to a caller who names its exact hash
-- (`tollgate.key_hash`), so the lookup runs as `tollgate_app` too and cannot leak other rows.
CREATE POLICY key_lookup ON api_keys FOR SELECT
    USING (secret_hash = current_setting('tollgate.key_hash', true));
CREATE POLICY key_lookup ON admin_keys FOR SELECT
    USING (secret_hash = current_setting('tollgate.key_hash', true));
