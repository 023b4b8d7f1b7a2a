-- Webhooks (docs/WEBHOOKS.md): the operator's endpoints, one delivery per (outbox event,
-- endpoint), the log of every attempt, and per workspace how far the outbox was fanned out.
CREATE TABLE webhook_endpoints (
    workspace       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    -- JSON array of event types; empty: every type.
    event_types     TEXT    NOT NULL,
    description     TEXT,
    enabled         INTEGER NOT NULL,
    secret          TEXT    NOT NULL,
    -- The secret before the last rotation, still signing until `previous_secret_until`.
    previous_secret TEXT,
    previous_secret_until INTEGER,
    -- The first failure since the last success (on the failing delivery's clock).
    failing_since   INTEGER,
    disabled_reason TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (workspace, id)
) STRICT;

-- The fan-out cursor: the last outbox event id turned into deliveries.
CREATE TABLE webhook_cursors (
    workspace  TEXT NOT NULL PRIMARY KEY,
    last_event TEXT NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries (
    workspace       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    endpoint        TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    customer        TEXT,
    -- The customer's test clock: the delivery is due on that clock.
    test_clock      TEXT,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- Wall time: the claim of one worker.
    locked_until    INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (workspace, id),
    UNIQUE (workspace, event, endpoint)
) STRICT;
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (workspace, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (workspace, endpoint, id);

CREATE TABLE webhook_attempts (
    workspace        TEXT    NOT NULL,
    delivery         TEXT    NOT NULL,
    attempt          INTEGER NOT NULL,
    endpoint         TEXT    NOT NULL,
    url              TEXT    NOT NULL,
    webhook_timestamp INTEGER NOT NULL,
    request_body     TEXT    NOT NULL,
    response_status  INTEGER,
    response_excerpt TEXT,
    duration_ms      INTEGER NOT NULL,
    error            TEXT,
    attempted_at     INTEGER NOT NULL,
    PRIMARY KEY (workspace, delivery, attempt)
) STRICT;
CREATE INDEX webhook_attempts_age ON webhook_attempts (workspace, attempted_at);
