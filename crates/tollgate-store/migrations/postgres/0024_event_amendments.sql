-- "Latest copy replaces" (docs/INVOICES.md, "Repeated event ids"): the event row stays as first
-- written (the ledger forbids editing it); each replacement of its properties is a row here,
-- numbered per event from 1. The primary key makes two concurrent replacements of one event
-- computed from the same previous value conflict instead of both applying.
CREATE TABLE event_amendments (
    workspace      TEXT   NOT NULL,
    event_id       TEXT   NOT NULL,
    seq            BIGINT NOT NULL,
    customer       TEXT   NOT NULL,
    event_type     TEXT   NOT NULL,
    old_properties JSONB  NOT NULL,
    new_properties JSONB  NOT NULL,
    amended_by     TEXT   NOT NULL,
    amended_at     BIGINT NOT NULL,
    PRIMARY KEY (workspace, event_id, seq),
    FOREIGN KEY (workspace, event_id) REFERENCES events (workspace, id)
);
CREATE INDEX event_amendments_by_customer ON event_amendments (workspace, customer, amended_at);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['event_amendments'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))', t);
    END LOOP;
END $$;
