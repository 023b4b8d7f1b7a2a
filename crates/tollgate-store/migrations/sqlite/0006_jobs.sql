-- The outbox: domain events (`subscription.created`, `invoice.finalized`, ...) written in the
-- same transaction as the change they announce, read by operators (`GET /v1/domain_events`) and
-- later delivered as webhooks and emails (the delivery columns are that work's bookkeeping).
CREATE TABLE outbox (
    workspace       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    customer        TEXT,
    type            TEXT    NOT NULL,
    occurred_at     INTEGER NOT NULL,
    data            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    delivery_attempts INTEGER NOT NULL DEFAULT 0,
    next_delivery_at INTEGER,
    delivery_error  TEXT,
    PRIMARY KEY (workspace, id)
) STRICT;
CREATE INDEX outbox_by_type ON outbox (workspace, type, id);
CREATE INDEX outbox_by_customer ON outbox (workspace, customer, id);
CREATE INDEX outbox_undelivered ON outbox (workspace, id) WHERE delivered_at IS NULL;

-- Durable jobs (the scheduler): due at `due_at` on the clock of `test_clock` (the wall clock
-- when NULL), claimed with a lease (`locked_until`, wall time) so a crashed worker's job is
-- claimed again, retried with backoff (`available_at`, wall time) up to `max_attempts`.
-- `key` is unique per workspace: enqueuing the same job twice makes one.
CREATE TABLE jobs (
    workspace    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    customer     TEXT,
    test_clock   TEXT,
    due_at       INTEGER NOT NULL,
    payload      TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('scheduled', 'running', 'succeeded', 'failed', 'canceled')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    locked_by    TEXT,
    locked_until INTEGER,
    last_error   TEXT,
    result       TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    PRIMARY KEY (workspace, id),
    UNIQUE (workspace, key)
) STRICT;
CREATE INDEX jobs_due ON jobs (due_at, id) WHERE status IN ('scheduled', 'running');
CREATE INDEX jobs_by_clock ON jobs (workspace, test_clock, due_at) WHERE status IN ('scheduled', 'running');
CREATE INDEX jobs_listing ON jobs (workspace, id);
