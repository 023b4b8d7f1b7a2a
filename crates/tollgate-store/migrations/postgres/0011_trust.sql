-- License signing keys, licenses and machine activations (docs/TRUST.md). The private key is
-- stored sealed (ChaCha20-Poly1305 under the operator's master key), never in the clear.
CREATE TABLE license_keys (
    workspace          TEXT    NOT NULL,
    id                 TEXT    NOT NULL,
    public_key         TEXT    NOT NULL,
    sealed_private_key TEXT    NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('active', 'previous', 'retired')),
    created_at         BIGINT NOT NULL,
    retired_at         BIGINT,
    PRIMARY KEY (workspace, id)
);
-- At most one active key per workspace.
CREATE UNIQUE INDEX license_keys_one_active ON license_keys (workspace) WHERE status = 'active';

CREATE TABLE licenses (
    workspace     TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    customer      TEXT    NOT NULL,
    subscription  TEXT,
    plan          TEXT    NOT NULL,
    key_id        TEXT    NOT NULL,
    file          TEXT    NOT NULL,
    issued_at     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    max_machines  BIGINT,
    revoked_at    BIGINT,
    revoke_reason TEXT,
    PRIMARY KEY (workspace, id),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
);
CREATE INDEX licenses_by_customer ON licenses (workspace, customer);
CREATE INDEX licenses_by_subscription ON licenses (workspace, subscription);

CREATE TABLE license_activations (
    workspace      TEXT    NOT NULL,
    license        TEXT    NOT NULL,
    fingerprint    TEXT    NOT NULL,
    activated_at   BIGINT NOT NULL,
    last_heartbeat BIGINT NOT NULL,
    PRIMARY KEY (workspace, license, fingerprint),
    FOREIGN KEY (workspace, license) REFERENCES licenses (workspace, id)
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['license_keys', 'licenses', 'license_activations'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))', t);
    END LOOP;
END $$;
