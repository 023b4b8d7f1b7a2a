-- Sealing writes one entry per accepted event, beside ingest on SQLite's one writer, so each
-- entry should touch as few b-trees as it can. Before: the table (by rowid), its primary key,
-- its (kind, ref) key and a by-customer index no query reads: four inserts per entry. After:
-- the table stored in its primary key's order (entries append at its right edge) and the
-- (kind, ref) key that finds an event's entry: two.
CREATE TABLE ledger_entries_lean (
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
) STRICT, WITHOUT ROWID;
INSERT INTO ledger_entries_lean (workspace, seq, kind, ref, customer, entry, leaf_hash, sealed_at)
    SELECT workspace, seq, kind, ref, customer, entry, leaf_hash, sealed_at FROM ledger_entries;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_lean RENAME TO ledger_entries;
