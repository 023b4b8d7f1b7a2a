-- Plan changes that take effect at a period end (downgrades), applied by the bill run.
CREATE TABLE scheduled_changes (
    workspace    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    subscription TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    plan         TEXT    NOT NULL,
    addons       TEXT    NOT NULL,
    effective_at BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    applied_at   BIGINT,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX scheduled_changes_pending ON scheduled_changes (workspace, subscription) WHERE applied_at IS NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON scheduled_changes TO tollgate_app;
ALTER TABLE scheduled_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE scheduled_changes FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON scheduled_changes
    USING (workspace = current_setting('tollgate.workspace', true))
    WITH CHECK (workspace = current_setting('tollgate.workspace', true));
