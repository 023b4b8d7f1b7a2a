-- Webhooks (docs/WEBHOOKS.md): the operator's endpoints, one delivery per (outbox event,
-- endpoint), the log of every attempt, and per workspace whether endpoints may name private
-- addresses. The fan-out marks the outbox events it has turned into deliveries (`delivered_at`).
CREATE TABLE webhook_endpoints (
    workspace       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    -- JSON array of event types; empty: every type.
    event_types     TEXT    NOT NULL,
    description     TEXT,
    enabled         BOOLEAN NOT NULL,
    -- Deliver one customer's events in order: a later one waits while an earlier is pending.
    ordered         BOOLEAN NOT NULL,
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

-- Per workspace, set by the server operator (the default workspace's admin): whether endpoints
-- may name private, loopback and link-local addresses (the SSRF rule, docs/WEBHOOKS.md).
CREATE TABLE webhook_settings (
    workspace               TEXT    NOT NULL PRIMARY KEY,
    allow_private_addresses BOOLEAN NOT NULL,
    updated_at              BIGINT  NOT NULL
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['webhook_endpoints', 'webhook_settings', 'webhook_deliveries',
                             'webhook_attempts'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))', t);
    END LOOP;
END $$;
