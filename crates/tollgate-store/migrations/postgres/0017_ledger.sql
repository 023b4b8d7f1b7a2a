-- The ledger (docs/TRUST.md): per workspace, an append-only RFC 6962 Merkle log of every
-- accepted usage event and every domain event (the operator's actions and the state changes
-- they caused). Entries are sealed by a background pass, never on the ingest path: `entry` holds
-- the exact bytes hashed into the leaf, so verifying never depends on re-serializing.
CREATE TABLE ledger_entries (
    workspace  TEXT    NOT NULL,
    seq        BIGINT NOT NULL,
    kind       TEXT    NOT NULL,
    ref        TEXT    NOT NULL,
    customer   TEXT,
    entry      TEXT    NOT NULL,
    leaf_hash  TEXT    NOT NULL,
    sealed_at  BIGINT NOT NULL,
    PRIMARY KEY (workspace, seq),
    UNIQUE (workspace, kind, ref)
);
CREATE INDEX ledger_entries_by_customer ON ledger_entries (workspace, customer, seq);

-- The log's head: its size, and the compact range (the roots of its perfect subtrees, as JSON)
-- from which the next root is computed without reading old leaves. One row per workspace; the
-- sealing pass takes it first, so two nodes never append at once.
CREATE TABLE ledger_heads (
    workspace  TEXT    NOT NULL PRIMARY KEY,
    size       BIGINT NOT NULL,
    frontier   TEXT    NOT NULL,
    root_hash  TEXT    NOT NULL,
    sealed_until BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Signed checkpoints (signed-note text) of the log at a size.
CREATE TABLE ledger_checkpoints (
    workspace  TEXT    NOT NULL,
    size       BIGINT NOT NULL,
    root_hash  TEXT    NOT NULL,
    note       TEXT    NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace, size)
);

-- What the sealing pass reads: events and domain events by the time they were written.
CREATE INDEX events_by_received ON events (workspace, received_at);
CREATE INDEX outbox_by_created ON outbox (workspace, created_at);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['ledger_entries', 'ledger_heads', 'ledger_checkpoints'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))', t);
    END LOOP;
END $$;
