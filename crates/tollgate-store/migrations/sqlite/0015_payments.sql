-- Payments (docs/PAYMENTS.md): the workspace's provider settings (secrets sealed under the
-- master key, never stored in clear), the provider's customer for each Tollgate customer, every
-- payment attempt (a reference is recorded once per provider: a replayed webhook or a retried
-- request finds it), the provider events handled (each once), the dunning of unpaid invoices and
-- the refunds made for credit notes.
CREATE TABLE payment_settings (
    workspace             TEXT    NOT NULL PRIMARY KEY,
    stripe_secret_key     TEXT,
    stripe_key_hint       TEXT,
    stripe_webhook_secret TEXT,
    manual_instructions   TEXT,
    updated_at            INTEGER NOT NULL
) STRICT;

CREATE TABLE payment_customers (
    workspace              TEXT    NOT NULL,
    customer               TEXT    NOT NULL,
    provider               TEXT    NOT NULL,
    provider_customer      TEXT    NOT NULL,
    default_payment_method TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    PRIMARY KEY (workspace, customer, provider),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
) STRICT;
CREATE UNIQUE INDEX payment_customers_by_ref
    ON payment_customers (workspace, provider, provider_customer);

CREATE TABLE payments (
    workspace       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    invoice         TEXT    NOT NULL,
    customer        TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed')),
    amount_minor    INTEGER NOT NULL,
    currency        TEXT    NOT NULL,
    reference       TEXT    NOT NULL,
    method          TEXT,
    failure_code    TEXT,
    failure_message TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (workspace, id),
    FOREIGN KEY (workspace, invoice) REFERENCES invoices (workspace, id)
) STRICT;
CREATE UNIQUE INDEX payments_by_reference ON payments (workspace, provider, reference);
CREATE INDEX payments_by_invoice ON payments (workspace, invoice);

CREATE TABLE provider_events (
    workspace   TEXT    NOT NULL,
    provider    TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (workspace, provider, event_id)
) STRICT;

CREATE TABLE dunning (
    workspace     TEXT    NOT NULL,
    invoice       TEXT    NOT NULL,
    customer      TEXT    NOT NULL,
    subscription  TEXT,
    status        TEXT    NOT NULL CHECK (status IN ('retrying', 'exhausted', 'recovered')),
    failures      INTEGER NOT NULL,
    next_retry_at INTEGER,
    suspended     INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace, invoice),
    FOREIGN KEY (workspace, invoice) REFERENCES invoices (workspace, id)
) STRICT;

CREATE TABLE refunds (
    workspace       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    credit_note     TEXT    NOT NULL,
    invoice         TEXT    NOT NULL,
    payment         TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('succeeded', 'pending', 'failed')),
    amount_minor    INTEGER NOT NULL,
    currency        TEXT    NOT NULL,
    provider_refund TEXT,
    failure_message TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (workspace, id),
    FOREIGN KEY (workspace, payment) REFERENCES payments (workspace, id)
) STRICT;
CREATE UNIQUE INDEX refunds_once_per_note ON refunds (workspace, credit_note, payment);
CREATE INDEX refunds_by_invoice ON refunds (workspace, invoice);
