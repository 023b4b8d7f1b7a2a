-- The subscription lifecycle gains `past_due`, `paused` and `expired` (tollgate-core's
-- `lifecycle::SubscriptionStatus`). SQLite cannot change a CHECK in place, so the table is
-- rebuilt with the same columns and rows (no table references it, so foreign keys stay as
-- they are) and its index made again.
CREATE TABLE subscriptions_new (
    workspace       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    customer        TEXT    NOT NULL,
    plan            TEXT    NOT NULL,
    catalog_version INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'paused', 'canceled', 'expired')),
    addons          TEXT    NOT NULL,
    started_at      INTEGER NOT NULL,
    billing_anchor  INTEGER NOT NULL,
    trial_end       INTEGER,
    canceled_at     INTEGER,
    ends_at         INTEGER,
    PRIMARY KEY (workspace, id),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
) STRICT;
INSERT INTO subscriptions_new (workspace, id, customer, plan, catalog_version, status, addons,
    started_at, billing_anchor, trial_end, canceled_at, ends_at)
SELECT workspace, id, customer, plan, catalog_version, status, addons,
    started_at, billing_anchor, trial_end, canceled_at, ends_at
FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_new RENAME TO subscriptions;
CREATE INDEX subscriptions_by_customer ON subscriptions (workspace, customer, started_at);
