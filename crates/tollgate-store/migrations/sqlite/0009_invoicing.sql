-- Billing profiles: what an invoice says about its buyer (legal name, address, tax ids, how the
-- customer is taxed) and its seller (the workspace: legal name, address, tax id, payment
-- instructions, numbering prefix, footer). Each a JSON document the server validates.
CREATE TABLE customer_profiles (
    workspace  TEXT    NOT NULL,
    customer   TEXT    NOT NULL,
    profile    TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (workspace, customer),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
) STRICT;

CREATE TABLE seller_profiles (
    workspace  TEXT    NOT NULL PRIMARY KEY,
    profile    TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    FOREIGN KEY (workspace) REFERENCES workspaces (workspace)
) STRICT;
