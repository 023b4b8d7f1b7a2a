-- The outbox: domain events (`subscription.created`, `invoice.finalized`, ...) written in the
-- same transaction as the change they announce, read by operators (`GET /v1/domain_events`) and
-- later delivered as webhooks and emails (the delivery columns are that work's bookkeeping).
CREATE TABLE outbox (
    workspace       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    customer        TEXT,
    type            TEXT    NOT NULL,
    occurred_at     BIGINT  NOT NULL,
    data            JSONB   NOT NULL,
    created_at      BIGINT  NOT NULL,
    delivered_at    BIGINT,
    delivery_attempts BIGINT NOT NULL DEFAULT 0,
    next_delivery_at BIGINT,
    delivery_error  TEXT,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX outbox_by_type ON outbox (workspace, type, id);
CREATE INDEX outbox_by_customer ON outbox (workspace, customer, id);
CREATE INDEX outbox_undelivered ON outbox (workspace, id) WHERE delivered_at IS NULL;

-- Durable jobs (the scheduler): due at `due_at` on the clock of `test_clock` (the wall clock
-- when NULL), claimed with `FOR UPDATE SKIP LOCKED` and a lease (`locked_until`, wall time) so
-- a crashed worker's job is claimed again, retried with backoff (`available_at`, wall time) up
-- to `max_attempts`. `key` is unique per workspace: enqueuing the same job twice makes one.
CREATE TABLE jobs (
    workspace    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    customer     TEXT,
    test_clock   TEXT,
    due_at       BIGINT  NOT NULL,
    payload      JSONB   NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('scheduled', 'running', 'succeeded', 'failed', 'canceled')),
    attempts     BIGINT  NOT NULL DEFAULT 0,
    max_attempts BIGINT  NOT NULL,
    available_at BIGINT  NOT NULL,
    locked_by    TEXT,
    locked_until BIGINT,
    last_error   TEXT,
    result       JSONB,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    finished_at  BIGINT,
    PRIMARY KEY (workspace, id),
    UNIQUE (workspace, key)
);
CREATE INDEX jobs_due ON jobs (due_at, id) WHERE status IN ('scheduled', 'running');
CREATE INDEX jobs_by_clock ON jobs (workspace, test_clock, due_at) WHERE status IN ('scheduled', 'running');
CREATE INDEX jobs_listing ON jobs (workspace, id);

GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO tollgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobs TO tollgate_app;
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON outbox
    USING (workspace = current_setting('tollgate.workspace', true))
    WITH CHECK (workspace = current_setting('tollgate.workspace', true));
CREATE POLICY workspace_isolation ON jobs
    USING (workspace = current_setting('tollgate.workspace', true))
    WITH CHECK (workspace = current_setting('tollgate.workspace', true));
-- The scheduler claims due jobs of every workspace in one statement: naming itself
-- (`tollgate.listing` = 'jobs') shows it the rows of `jobs` and of no other table; each job then
-- runs in its own workspace's sessions.
CREATE POLICY job_claiming ON jobs
    USING (current_setting('tollgate.listing', true) = 'jobs')
    WITH CHECK (current_setting('tollgate.listing', true) = 'jobs');
