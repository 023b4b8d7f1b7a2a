-- "Latest copy replaces" (docs/INVOICES.md, "Repeated event ids"): the event row stays as first
-- written (the ledger forbids editing it); each replacement of its properties is a row here,
-- numbered per event from 1. The primary key makes two concurrent replacements of one event
-- computed from the same previous value conflict instead of both applying.
CREATE TABLE event_amendments (
    workspace      TEXT    NOT NULL,
    event_id       TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    customer       TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    old_properties TEXT    NOT NULL,
    new_properties TEXT    NOT NULL,
    amended_by     TEXT    NOT NULL,
    amended_at     INTEGER NOT NULL,
    PRIMARY KEY (workspace, event_id, seq),
    FOREIGN KEY (workspace, event_id) REFERENCES events (workspace, id)
) STRICT;
CREATE INDEX event_amendments_by_customer ON event_amendments (workspace, customer, amended_at);
