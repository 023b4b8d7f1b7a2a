-- Idempotency keys of mutating API requests: the first request with a key claims it (status
-- NULL while it runs), its answer is kept, and a retry with the same key gets that answer.
CREATE TABLE idempotency_keys (
    workspace    TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       INTEGER,
    body         TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace, key)
) STRICT;
