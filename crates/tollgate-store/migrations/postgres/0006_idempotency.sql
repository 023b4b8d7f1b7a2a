-- Idempotency keys of mutating API requests: the first request with a key claims it (status
-- NULL while it runs), its answer is kept, and a retry with the same key gets that answer.
CREATE TABLE idempotency_keys (
    workspace    TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       BIGINT,
    body         TEXT,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (workspace, key)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO tollgate_app;
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON idempotency_keys
    USING (workspace = current_setting('tollgate.workspace', true))
    WITH CHECK (workspace = current_setting('tollgate.workspace', true));
