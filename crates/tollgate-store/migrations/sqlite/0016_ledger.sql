-- The ledger (docs/TRUST.md): per workspace, an append-only RFC 6962 Merkle log of every
-- accepted usage event and every domain event (the operator's actions and the state changes
-- they caused). Entries are sealed by a background pass, never on the ingest path: `entry` holds
-- the exact bytes hashed into the leaf, so verifying never depends on re-serializing.
CREATE TABLE ledger_entries (
    workspace  TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    ref        TEXT    NOT NULL,
    customer   TEXT,
    entry      TEXT    NOT NULL,
    leaf_hash  TEXT    NOT NULL,
    sealed_at  INTEGER NOT NULL,
    PRIMARY KEY (workspace, seq),
    UNIQUE (workspace, kind, ref)
) STRICT;
CREATE INDEX ledger_entries_by_customer ON ledger_entries (workspace, customer, seq);

-- The log's head: its size, and the compact range (the roots of its perfect subtrees, as JSON)
-- from which the next root is computed without reading old leaves. One row per workspace; the
-- sealing pass takes it first, so two nodes never append at once.
CREATE TABLE ledger_heads (
    workspace  TEXT    NOT NULL PRIMARY KEY,
    size       INTEGER NOT NULL,
    frontier   TEXT    NOT NULL,
    root_hash  TEXT    NOT NULL,
    sealed_until INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Signed checkpoints (signed-note text) of the log at a size.
CREATE TABLE ledger_checkpoints (
    workspace  TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    root_hash  TEXT    NOT NULL,
    note       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (workspace, size)
) STRICT;

-- What the sealing pass reads: events and domain events by the time they were written.
CREATE INDEX events_by_received ON events (workspace, received_at);
CREATE INDEX outbox_by_created ON outbox (workspace, created_at);
