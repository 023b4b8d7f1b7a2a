-- Tollgate schema for SQLite.
--
-- Conventions (shared with the PostgreSQL schema so the two backends read alike):
-- * every table has a `workspace` column and every query filters by it;
-- * timestamps are INTEGER unix microseconds (exact round trip of `jiff::Timestamp` at µs);
-- * decimals are TEXT in `rust_decimal`'s notation: SQLite has no exact decimal type and would
--   turn `value + x` into a float, so aggregate arithmetic happens in Rust inside the write
--   transaction;
-- * JSON documents are TEXT.
-- Tables are STRICT so a wrongly typed bind fails loudly instead of being coerced.

CREATE TABLE workspaces (
    workspace   TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    -- Last catalog version handed out: bumping it in the same transaction as the insert keeps
    -- versions gapless and serialised per workspace.
    catalog_seq INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE admin_keys (
    workspace   TEXT    NOT NULL REFERENCES workspaces (workspace),
    id          TEXT    NOT NULL,
    secret_hash TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (workspace, id)
) STRICT;

CREATE TABLE catalog_versions (
    workspace  TEXT    NOT NULL REFERENCES workspaces (workspace),
    version    INTEGER NOT NULL,
    catalog    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (workspace, version)
) STRICT;

CREATE TABLE test_clocks (
    workspace   TEXT    NOT NULL REFERENCES workspaces (workspace),
    id          TEXT    NOT NULL,
    name        TEXT,
    frozen_time INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (workspace, id)
) STRICT;

CREATE TABLE customers (
    workspace          TEXT    NOT NULL REFERENCES workspaces (workspace),
    id                 TEXT    NOT NULL,
    name               TEXT,
    email              TEXT,
    suspended          INTEGER NOT NULL,
    has_payment_method INTEGER NOT NULL,
    test_clock         TEXT,
    metadata           TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    PRIMARY KEY (workspace, id)
) STRICT;

CREATE TABLE subscriptions (
    workspace       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    customer        TEXT    NOT NULL,
    plan            TEXT    NOT NULL,
    catalog_version INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('trialing', 'active', 'canceled')),
    addons          TEXT    NOT NULL,
    started_at      INTEGER NOT NULL,
    billing_anchor  INTEGER NOT NULL,
    trial_end       INTEGER,
    canceled_at     INTEGER,
    ends_at         INTEGER,
    PRIMARY KEY (workspace, id),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
) STRICT;
CREATE INDEX subscriptions_by_customer ON subscriptions (workspace, customer, started_at);

CREATE TABLE api_keys (
    workspace   TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    customer    TEXT    NOT NULL,
    name        TEXT,
    secret_hash TEXT    NOT NULL UNIQUE,
    prefix      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    PRIMARY KEY (workspace, id),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
) STRICT;
CREATE INDEX api_keys_by_customer ON api_keys (workspace, customer);

-- Raw events, kept for audit and recompute. No foreign key to customers: this is the hot ingest
-- path and the caller has resolved the customer already. A rowid table (append-only inserts)
-- with a unique index for idempotency is cheaper here than a WITHOUT ROWID table keyed by the
-- caller's random ids, since rows carry their properties.
CREATE TABLE events (
    workspace   TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    customer    TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    ts          INTEGER NOT NULL,
    subject     TEXT,
    properties  TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (workspace, id)
) STRICT;
CREATE INDEX events_by_customer_time ON events (workspace, customer, ts);

-- Incremental aggregates: one small row per (customer, meter, period, subject, group).
CREATE TABLE aggregates (
    workspace    TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    meter        TEXT    NOT NULL,
    period_start INTEGER NOT NULL,
    subject      TEXT    NOT NULL,
    group_key    TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    updated_at   INTEGER,
    PRIMARY KEY (workspace, customer, meter, period_start, subject, group_key)
) STRICT, WITHOUT ROWID;

-- The distinct values seen by unique-count meters, per aggregate row.
CREATE TABLE aggregate_uniques (
    workspace    TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    meter        TEXT    NOT NULL,
    period_start INTEGER NOT NULL,
    subject      TEXT    NOT NULL,
    group_key    TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    PRIMARY KEY (workspace, customer, meter, period_start, subject, group_key, value)
) STRICT, WITHOUT ROWID;

-- Level changes of time-weighted meters. `seq` orders points with the same `at` by arrival, the
-- same order in which the aggregate row took them.
CREATE TABLE level_points (
    seq       INTEGER PRIMARY KEY,
    workspace TEXT    NOT NULL,
    customer  TEXT    NOT NULL,
    meter     TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    group_key TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    value     TEXT    NOT NULL
) STRICT;
CREATE INDEX level_points_by_time ON level_points (workspace, customer, at);
CREATE INDEX level_points_by_series ON level_points (workspace, customer, meter, subject, group_key, at);

-- Entries of exact rolling windows; pruned once older than the longest window.
CREATE TABLE window_entries (
    seq       INTEGER PRIMARY KEY,
    workspace TEXT    NOT NULL,
    customer  TEXT    NOT NULL,
    meter     TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    group_key TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    quantity  TEXT    NOT NULL
) STRICT;
CREATE INDEX window_entries_by_customer ON window_entries (workspace, customer, at);
CREATE INDEX window_entries_by_time ON window_entries (workspace, at);
