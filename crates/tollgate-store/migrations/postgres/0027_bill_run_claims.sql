-- The bill run's split of work: one row per customer with a subscription. A worker claims
-- customers under a lease (`locked_by`, `locked_until`) with `FOR UPDATE SKIP LOCKED`, so
-- workers of one node and of several nodes take disjoint customers without waiting on each
-- other, and releases them once their invoices are written; `pass` is the workspace's
-- `bill_run` counter when the row was last claimed, so a run that began at pass P leaves alone
-- the customers claimed at P or later (docs/SCALING.md, "The bill run").
CREATE TABLE bill_run_claims (
    workspace    TEXT   NOT NULL,
    customer     TEXT   NOT NULL,
    pass         BIGINT NOT NULL DEFAULT 0,
    locked_by    TEXT,
    locked_until BIGINT,
    PRIMARY KEY (workspace, customer),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['bill_run_claims'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))', t);
    END LOOP;
END $$;
