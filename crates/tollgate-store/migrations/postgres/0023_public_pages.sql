-- The public pages (docs/DASHBOARD.md, "Public pages"): whether a workspace shows its pricing
-- table and hosted signup to anyone (off until its operator turns them on), and the custom
-- domains (hostnames) that serve a workspace's public pages and portal without its id in the path.
CREATE TABLE public_pages (
    workspace  TEXT    NOT NULL PRIMARY KEY,
    enabled    BOOLEAN NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- A hostname names one workspace in the whole deployment (a request's Host header is read
-- before any workspace is known): the primary key is the hostname alone, lower-cased.
CREATE TABLE custom_domains (
    hostname   TEXT   NOT NULL PRIMARY KEY,
    workspace  TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX custom_domains_by_workspace ON custom_domains (workspace, hostname);

-- Portal sign-in by email and the hosted signup's duplicate check find a customer by its email,
-- compared lower-cased.
CREATE INDEX customers_by_email ON customers (workspace, lower(email));

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['public_pages', 'custom_domains'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))', t);
    END LOOP;
END $$;

-- A request's Host names a workspace before any workspace is known: like the key lookup of
-- 0001, this read-only policy reveals a domain row only to a caller who names its exact hostname.
CREATE POLICY key_lookup ON custom_domains FOR SELECT
    USING (hostname = current_setting('tollgate.key_hash', true));
