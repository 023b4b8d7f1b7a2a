-- Money documents: invoices and credit notes with gapless numbers, prepaid credit, coupon
-- redemptions and prorations waiting for the next invoice.

CREATE TABLE document_counters (
    workspace TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    last      BIGINT NOT NULL,
    PRIMARY KEY (workspace, kind)
);

CREATE TABLE invoices (
    workspace            TEXT    NOT NULL,
    id                   TEXT    NOT NULL,
    number               BIGINT NOT NULL,
    customer             TEXT    NOT NULL,
    subscription         TEXT,
    dedupe_key           TEXT    NOT NULL,
    status               TEXT    NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
    currency             TEXT    NOT NULL,
    period_start         BIGINT,
    period_end           BIGINT,
    total_minor          BIGINT NOT NULL,
    credit_applied_minor BIGINT NOT NULL,
    amount_due_minor     BIGINT NOT NULL,
    document             TEXT    NOT NULL,
    created_at           BIGINT NOT NULL,
    paid_at              BIGINT,
    voided_at            BIGINT,
    PRIMARY KEY (workspace, id),
    UNIQUE (workspace, dedupe_key),
    UNIQUE (workspace, number),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
);
CREATE INDEX invoices_by_customer ON invoices (workspace, customer, number);
CREATE INDEX invoices_by_subscription ON invoices (workspace, subscription);

CREATE TABLE credit_notes (
    workspace    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    number       BIGINT NOT NULL,
    invoice      TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency     TEXT    NOT NULL,
    reason       TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace, id),
    UNIQUE (workspace, number),
    FOREIGN KEY (workspace, invoice) REFERENCES invoices (workspace, id)
);
CREATE INDEX credit_notes_by_invoice ON credit_notes (workspace, invoice);

CREATE TABLE pending_charges (
    workspace    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    subscription TEXT,
    charge       TEXT    NOT NULL,
    created_at   BIGINT NOT NULL,
    invoice      TEXT,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX pending_charges_open ON pending_charges (workspace, customer) WHERE invoice IS NULL;

CREATE TABLE coupon_redemptions (
    workspace  TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    customer   TEXT    NOT NULL,
    coupon     TEXT    NOT NULL,
    applied    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX coupon_redemptions_by_customer ON coupon_redemptions (workspace, customer);

CREATE TABLE credit_entries (
    workspace    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency     TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    invoice      TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX credit_entries_by_customer ON credit_entries (workspace, customer);

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'document_counters', 'invoices', 'credit_notes', 'pending_charges', 'coupon_redemptions',
        'credit_entries'
    ] LOOP
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
