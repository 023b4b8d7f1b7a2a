-- A credit note either refunds (money back, as before) or credits the customer's balance.
ALTER TABLE credit_notes ADD COLUMN method TEXT NOT NULL DEFAULT 'refund';

-- The customer's balance, as a ledger of movements: a credit note credited to it (positive),
-- an invoice it paid (negative). The balance is their sum; `seq` (the workspace's counter of
-- movements) orders them as they were written.
CREATE TABLE balance_entries (
    workspace    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    customer     TEXT    NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor <> 0),
    currency     TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    credit_note  TEXT,
    invoice      TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace, id),
    UNIQUE (workspace, seq)
) STRICT;
CREATE INDEX balance_entries_by_customer ON balance_entries (workspace, customer, seq);
