-- Usage alerts fired (once per customer, meter, period and threshold: the primary key is the
-- "once") and the referral program: one shareable code per customer, and who referred whom.
CREATE TABLE usage_alerts (
    workspace    TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    meter        TEXT    NOT NULL,
    period_start BIGINT NOT NULL,
    threshold    TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    fired_at     BIGINT NOT NULL,
    PRIMARY KEY (workspace, customer, meter, period_start, threshold),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
);

CREATE TABLE referral_codes (
    workspace  TEXT    NOT NULL,
    code       TEXT    NOT NULL,
    customer   TEXT    NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace, code),
    FOREIGN KEY (workspace, customer) REFERENCES customers (workspace, id)
);
CREATE UNIQUE INDEX referral_codes_one_per_customer ON referral_codes (workspace, customer);

-- A customer is referred at most once (its primary key); the reward is granted once, when
-- `rewarded_at` goes from NULL to a time.
CREATE TABLE referrals (
    workspace   TEXT    NOT NULL,
    referred    TEXT    NOT NULL,
    referrer    TEXT    NOT NULL,
    code        TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    rewarded_at BIGINT,
    PRIMARY KEY (workspace, referred),
    FOREIGN KEY (workspace, referred) REFERENCES customers (workspace, id),
    FOREIGN KEY (workspace, referrer) REFERENCES customers (workspace, id)
);
CREATE INDEX referrals_by_referrer ON referrals (workspace, referrer);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['usage_alerts', 'referral_codes', 'referrals'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tollgate_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON %I '
            'USING (workspace = current_setting(''tollgate.workspace'', true)) '
            'WITH CHECK (workspace = current_setting(''tollgate.workspace'', true))', t);
    END LOOP;
END $$;
