-- The bill run's split of work: one row per customer with a subscription. A worker claims
-- customers under a lease (`locked_by`, `locked_until`) and releases them once their invoices
-- are written; `pass` is the workspace's `bill_run` counter when the row was last claimed, so a
-- run that began at pass P leaves alone the customers claimed at P or later (docs/SCALING.md,
-- "The bill run"). SQLite's single writer serialises claims.
CREATE TABLE bill_run_claims (
    workspace    TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    pass         INTEGER NOT NULL DEFAULT 0,
    locked_by    TEXT,
    locked_until INTEGER,
    PRIMARY KEY (workspace, customer),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
) STRICT, WITHOUT ROWID;
