-- Stripe as the biller, and where a customer pays an open invoice (docs/PAYMENTS.md).
-- `stripe_billing`: whether Stripe Billing charges this workspace's customers (Tollgate then
-- charges no invoice itself), and the cursor of the usage pushed to Stripe's meters: the
-- `(received_at, id)` of the last stored event handled, so each event is pushed once.
CREATE TABLE stripe_billing (
    workspace          TEXT    NOT NULL PRIMARY KEY,
    enabled            BOOLEAN NOT NULL,
    cursor_received_at BIGINT,
    cursor_event       TEXT,
    pushed             BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

-- The page where the customer pays (or authenticates the payment of) an open invoice: a Stripe
-- Checkout Session in payment mode, or the PaymentIntent's 3-D Secure page; one per invoice,
-- replaced when a new one is made.
CREATE TABLE invoice_payment_links (
    workspace  TEXT    NOT NULL,
    invoice    TEXT    NOT NULL,
    provider   TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('checkout', 'authenticate')),
    reference  TEXT    NOT NULL,
    url        TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (workspace, invoice),
    FOREIGN KEY (workspace, invoice) REFERENCES invoices (workspace, id)
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['stripe_billing', 'invoice_payment_links'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))', t);
    END LOOP;
END $$;
