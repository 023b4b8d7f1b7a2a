-- Usage alerts fired (once per customer, meter, period and threshold: the primary key is the
-- "once") and the referral program: one shareable code per customer, and who referred whom.
CREATE TABLE usage_alerts (
    workspace    TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    meter        TEXT    NOT NULL,
    period_start INTEGER NOT NULL,
    threshold    TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    fired_at     INTEGER NOT NULL,
    PRIMARY KEY (workspace, customer, meter, period_start, threshold),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
) STRICT;

CREATE TABLE referral_codes (
    workspace  TEXT    NOT NULL,
    code       TEXT    NOT NULL,
    customer   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (workspace, code),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
) STRICT;
CREATE UNIQUE INDEX referral_codes_one_per_customer ON referral_codes (workspace, customer);

-- A customer is referred at most once (its primary key); the reward is granted once, when
-- `rewarded_at` goes from NULL to a time.
CREATE TABLE referrals (
    workspace   TEXT    NOT NULL,
    referred    TEXT    NOT NULL,
    referrer    TEXT    NOT NULL,
    code        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    rewarded_at INTEGER,
    PRIMARY KEY (workspace, referred),
    FOREIGN KEY (workspace, referred) REFERENCES customers (workspace, id),
    FOREIGN KEY (workspace, referrer) REFERENCES customers (workspace, id)
) STRICT;
CREATE INDEX referrals_by_referrer ON referrals (workspace, referrer);
