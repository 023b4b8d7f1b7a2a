-- Email (docs/EMAIL.md): per workspace its sender and branding, the templates the operator
-- replaced (a default compiled into the binary otherwise), and one message per (outbox event,
-- recipient), which is also the email log. The email fan-out marks the outbox events it has
-- turned into messages (`emailed_at`), independently of the webhooks' `delivered_at`.
CREATE TABLE email_settings (
    workspace      TEXT    NOT NULL PRIMARY KEY,
    from_address   TEXT    NOT NULL,
    from_name      TEXT,
    reply_to       TEXT,
    brand_name     TEXT,
    logo_url       TEXT,
    brand_color    TEXT,
    docs_url       TEXT,
    -- Where notices for the operator go (an endpoint disabled after failing for days).
    operator_email TEXT,
    enabled        BOOLEAN NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE email_templates (
    workspace  TEXT    NOT NULL,
    template   TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    text_body  TEXT    NOT NULL,
    html_body  TEXT    NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (workspace, template)
);

CREATE TABLE email_messages (
    workspace       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    template        TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    customer        TEXT,
    -- The customer's test clock: the message is due on that clock.
    test_clock      TEXT,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- Wall time: the claim of one worker.
    locked_until    BIGINT,
    subject         TEXT,
    last_error      TEXT,
    sent_at         BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (workspace, id),
    UNIQUE (workspace, event, recipient)
);
CREATE INDEX email_messages_pending ON email_messages (workspace, next_attempt_at) WHERE status = 'pending';
CREATE INDEX email_messages_by_customer ON email_messages (workspace, customer, id);

ALTER TABLE outbox ADD COLUMN emailed_at BIGINT;
CREATE INDEX outbox_unemailed ON outbox (workspace, id) WHERE emailed_at IS NULL;

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['email_settings', 'email_templates', 'email_messages'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))', t);
    END LOOP;
END $$;
