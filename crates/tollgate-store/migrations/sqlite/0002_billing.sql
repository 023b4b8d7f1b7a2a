-- Money documents: invoices and credit notes with gapless numbers, prepaid credit, coupon
-- redemptions and prorations waiting for the next invoice.

CREATE TABLE document_counters (
    workspace TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    last      INTEGER NOT NULL,
    PRIMARY KEY (workspace, kind)
);

CREATE TABLE invoices (
    workspace            TEXT    NOT NULL,
    id                   TEXT    NOT NULL,
    number               INTEGER NOT NULL,
    customer             TEXT    NOT NULL,
    subscription         TEXT,
    dedupe_key           TEXT    NOT NULL,
    status               TEXT    NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
    currency             TEXT    NOT NULL,
    period_start         INTEGER,
    period_end           INTEGER,
    total_minor          INTEGER NOT NULL,
    credit_applied_minor INTEGER NOT NULL,
    amount_due_minor     INTEGER NOT NULL,
    document             TEXT    NOT NULL,
    created_at           INTEGER NOT NULL,
    paid_at              INTEGER,
    voided_at            INTEGER,
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
    number       INTEGER NOT NULL,
    invoice      TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency     TEXT    NOT NULL,
    reason       TEXT,
    created_at   INTEGER NOT NULL,
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
    created_at   INTEGER NOT NULL,
    invoice      TEXT,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX pending_charges_open ON pending_charges (workspace, customer) WHERE invoice IS NULL;

CREATE TABLE coupon_redemptions (
    workspace  TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    customer   TEXT    NOT NULL,
    coupon     TEXT    NOT NULL,
    applied    INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX coupon_redemptions_by_customer ON coupon_redemptions (workspace, customer);

CREATE TABLE credit_entries (
    workspace    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency     TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    invoice      TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX credit_entries_by_customer ON credit_entries (workspace, customer);
