-- The dashboard's operators and the sessions of the web pages (docs/DASHBOARD.md).
-- An operator signs in with an email and a password (an argon2 PHC string, never the password);
-- a session's token is stored as its SHA-256 hash only, like every secret.
CREATE TABLE operator_users (
    workspace     TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    email         TEXT   NOT NULL,
    password_hash TEXT   NOT NULL,
    role          TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace, id)
);
CREATE UNIQUE INDEX operator_users_email ON operator_users (workspace, email);

-- `kind`: `operator` (a signed-in operator: `subject` is the user id), `portal_link` (the
-- single-use link an operator's app hands to its customer: `subject` is the customer id) and
-- `portal` (the customer's portal session the link became). `csrf` is the token every form of the
-- session must carry back.
CREATE TABLE web_sessions (
    workspace  TEXT   NOT NULL,
    token_hash TEXT   NOT NULL PRIMARY KEY,
    kind       TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    csrf       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX web_sessions_by_subject ON web_sessions (workspace, kind, subject);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['operator_users', 'web_sessions'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))', t);
    END LOOP;
END $$;

-- A request's cookie names a session before any workspace is known: like the key lookup of
-- 0001, this read-only policy reveals a session row only to a caller who names its exact hash.
CREATE POLICY key_lookup ON web_sessions FOR SELECT
    USING (token_hash = current_setting('tollgate.key_hash', true));
