-- Webhooks (docs/WEBHOOKS.md): the operator's endpoints, one delivery per (outbox event,
-- endpoint), the log of every attempt, and per workspace how far the outbox was fanned out.
CREATE TABLE webhook_endpoints (
    workspace       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    -- JSON array of event types; empty: every type.
    event_types     TEXT    NOT NULL,
    description     TEXT,
    enabled         BOOLEAN NOT NULL,
    secret          TEXT    NOT NULL,
    -- The secret before the last rotation, still signing until `previous_secret_until`.
    previous_secret TEXT,
    previous_secret_until BIGINT,
    -- The first failure since the last success (on the failing delivery's clock).
    failing_since   BIGINT,
    disabled_reason TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (workspace, id)
);

-- The fan-out cursor: the last outbox event id turned into deliveries.
CREATE TABLE webhook_cursors (
    workspace  TEXT NOT NULL PRIMARY KEY,
    last_event TEXT NOT NULL
);

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
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- Wall time: the claim of one worker.
    locked_until    BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (workspace, id),
    UNIQUE (workspace, event, endpoint)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (workspace, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (workspace, endpoint, id);

CREATE TABLE webhook_attempts (
    workspace        TEXT    NOT NULL,
    delivery         TEXT    NOT NULL,
    attempt          BIGINT NOT NULL,
    endpoint         TEXT    NOT NULL,
    url              TEXT    NOT NULL,
    webhook_timestamp BIGINT NOT NULL,
    request_body     TEXT    NOT NULL,
    response_status  BIGINT,
    response_excerpt TEXT,
    duration_ms      BIGINT NOT NULL,
    error            TEXT,
    attempted_at     BIGINT NOT NULL,
    PRIMARY KEY (workspace, delivery, attempt)
);
CREATE INDEX webhook_attempts_age ON webhook_attempts (workspace, attempted_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO tollgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_cursors TO tollgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries TO tollgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_attempts TO tollgate_app;
ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_cursors ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_cursors FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON webhook_endpoints
    USING (workspace = current_setting('tollgate.workspace', true))
    WITH CHECK (workspace = current_setting('tollgate.workspace', true));
CREATE POLICY workspace_isolation ON webhook_cursors
    USING (workspace = current_setting('tollgate.workspace', true))
    WITH CHECK (workspace = current_setting('tollgate.workspace', true));
CREATE POLICY workspace_isolation ON webhook_deliveries
    USING (workspace = current_setting('tollgate.workspace', true))
    WITH CHECK (workspace = current_setting('tollgate.workspace', true));
CREATE POLICY workspace_isolation ON webhook_attempts
    USING (workspace = current_setting('tollgate.workspace', true))
    WITH CHECK (workspace = current_setting('tollgate.workspace', true));
