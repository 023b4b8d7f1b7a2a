-- Billing profiles: what an invoice says about its buyer (legal name, address, tax ids, how the
-- customer is taxed) and its seller (the workspace: legal name, address, tax id, payment
-- instructions, numbering prefix, footer). Each a JSON document the server validates.
CREATE TABLE customer_profiles (
    workspace  TEXT   NOT NULL,
    customer   TEXT   NOT NULL,
    profile    JSONB  NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (workspace, customer),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
);

CREATE TABLE seller_profiles (
    workspace  TEXT   NOT NULL PRIMARY KEY,
    profile    JSONB  NOT NULL,
    updated_at BIGINT NOT NULL,
    FOREIGN KEY (workspace) REFERENCES workspaces (workspace)
);

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['customer_profiles', 'seller_profiles'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))',
            t
        );
    END LOOP;
END
$$;
