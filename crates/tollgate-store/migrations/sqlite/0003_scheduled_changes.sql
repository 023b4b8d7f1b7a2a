-- Plan changes that take effect at a period end (downgrades), applied by the bill run.
CREATE TABLE scheduled_changes (
    workspace    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    subscription TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    plan         TEXT    NOT NULL,
    addons       TEXT    NOT NULL,
    effective_at INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    applied_at   INTEGER,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX scheduled_changes_pending ON scheduled_changes (workspace, subscription) WHERE applied_at IS NULL;
