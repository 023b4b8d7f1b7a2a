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
    enabled        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE email_templates (
    workspace  TEXT    NOT NULL,
    template   TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    text_body  TEXT    NOT NULL,
    html_body  TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (workspace, template)
) STRICT;

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
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- Wall time: the claim of one worker.
    locked_until    INTEGER,
    subject         TEXT,
    last_error      TEXT,
    sent_at         INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (workspace, id),
    UNIQUE (workspace, event, recipient)
) STRICT;
CREATE INDEX email_messages_pending ON email_messages (workspace, next_attempt_at) WHERE status = 'pending';
CREATE INDEX email_messages_by_customer ON email_messages (workspace, customer, id);

ALTER TABLE outbox ADD COLUMN emailed_at INTEGER;
CREATE INDEX outbox_unemailed ON outbox (workspace, id) WHERE emailed_at IS NULL;
