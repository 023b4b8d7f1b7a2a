-- The subscription lifecycle gains `past_due`, `paused` and `expired` (tollgate-core's
-- `lifecycle::SubscriptionStatus`). 0001 declared the CHECK inline, so PostgreSQL named it
-- `subscriptions_status_check`; it is replaced by one listing every state.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_status_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_status_check
    CHECK (status IN ('trialing', 'active', 'past_due', 'paused', 'canceled', 'expired'));
