-- A credit note either refunds (money back, as before) or credits the customer's balance.
ALTER TABLE credit_notes ADD COLUMN method TEXT NOT NULL DEFAULT 'refund';

-- The customer's balance, as a ledger of movements: a credit note credited to it (positive),
-- an invoice it paid (negative). The balance is their sum; `seq` (the workspace's counter of
-- movements) orders them as they were written.
CREATE TABLE balance_entries (
    workspace    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    seq          BIGINT  NOT NULL,
    customer     TEXT    NOT NULL,
    amount_minor BIGINT  NOT NULL CHECK (amount_minor <> 0),
    currency     TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    credit_note  TEXT,
    invoice      TEXT,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (workspace, id),
    UNIQUE (workspace, seq)
);
CREATE INDEX balance_entries_by_customer ON balance_entries (workspace, customer, seq);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['balance_entries'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))', t);
    END LOOP;
END $$;
