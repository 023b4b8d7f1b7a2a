//! The SQLite statements outside ingest. Static strings, so sqlx prepares each once per
//! connection and reuses it. Column names match what `codec` decodes.

macro_rules! customer_cols {
    () => {
        "workspace, id, name, email, suspended, has_payment_method, test_clock, metadata, created_at"
    };
}
macro_rules! subscription_cols {
    () => {
        "workspace, id, customer, plan, catalog_version, status, addons, started_at, \
         billing_anchor, trial_end, canceled_at, ends_at"
    };
}
macro_rules! api_key_cols {
    () => {
        "workspace, id, customer, name, secret_hash, prefix, created_at, revoked_at"
    };
}

pub(super) const INSERT_WORKSPACE: &str =
    "INSERT INTO workspaces (workspace, name, created_at) VALUES (?1, ?2, ?3)";
pub(super) const GET_WORKSPACE: &str =
    "SELECT workspace, name, created_at FROM workspaces WHERE workspace = ?1";

/// `DO NOTHING` on any conflict: a key with the same hash is left as it is.
pub(super) const INSERT_ADMIN_KEY: &str = "INSERT INTO admin_keys (workspace, id, secret_hash, created_at) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";
pub(super) const FIND_ADMIN_KEY: &str =
    "SELECT workspace, id, secret_hash, created_at FROM admin_keys WHERE secret_hash = ?1";

pub(super) const BUMP_CATALOG_SEQ: &str = "UPDATE workspaces SET catalog_seq = catalog_seq + 1 \
     WHERE workspace = ?1 RETURNING catalog_seq";
pub(super) const INSERT_CATALOG_VERSION: &str = "INSERT INTO catalog_versions (workspace, version, catalog, created_at) \
     VALUES (?1, ?2, ?3, ?4)";
pub(super) const LATEST_CATALOG: &str = "SELECT workspace, version, catalog, created_at FROM catalog_versions \
     WHERE workspace = ?1 ORDER BY version DESC LIMIT 1";
pub(super) const GET_CATALOG_VERSION: &str = "SELECT workspace, version, catalog, created_at FROM catalog_versions \
     WHERE workspace = ?1 AND version = ?2";

pub(super) const INSERT_CUSTOMER: &str = concat!(
    "INSERT INTO customers (",
    customer_cols!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
);
pub(super) const GET_CUSTOMER: &str = concat!(
    "SELECT ",
    customer_cols!(),
    " FROM customers WHERE workspace = ?1 AND id = ?2"
);
pub(super) const LIST_CUSTOMERS: &str = concat!(
    "SELECT ",
    customer_cols!(),
    " FROM customers WHERE workspace = ?1 ORDER BY created_at, id"
);
pub(super) const UPDATE_CUSTOMER: &str = "UPDATE customers SET name = ?3, email = ?4, suspended = ?5, \
     has_payment_method = ?6, metadata = ?7 WHERE workspace = ?1 AND id = ?2";

pub(super) const INSERT_SUBSCRIPTION: &str = concat!(
    "INSERT INTO subscriptions (",
    subscription_cols!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
);
/// Everything but the owner (workspace, id, customer) may change.
pub(super) const UPDATE_SUBSCRIPTION: &str = "UPDATE subscriptions SET plan = ?3, catalog_version = ?4, status = ?5, \
     addons = ?6, started_at = ?7, billing_anchor = ?8, trial_end = ?9, canceled_at = ?10, \
     ends_at = ?11 WHERE workspace = ?1 AND id = ?2";
pub(super) const GET_SUBSCRIPTION: &str = concat!(
    "SELECT ",
    subscription_cols!(),
    " FROM subscriptions WHERE workspace = ?1 AND id = ?2"
);
pub(super) const LIST_SUBSCRIPTIONS: &str = concat!(
    "SELECT ",
    subscription_cols!(),
    " FROM subscriptions WHERE workspace = ?1 AND customer = ?2 \
     ORDER BY started_at DESC, id DESC"
);

pub(super) const INSERT_API_KEY: &str = concat!(
    "INSERT INTO api_keys (",
    api_key_cols!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
);
pub(super) const FIND_API_KEY: &str = concat!(
    "SELECT ",
    api_key_cols!(),
    " FROM api_keys WHERE secret_hash = ?1"
);
pub(super) const LIST_API_KEYS: &str = concat!(
    "SELECT ",
    api_key_cols!(),
    " FROM api_keys WHERE workspace = ?1 AND customer = ?2 ORDER BY created_at, id"
);
/// Revoking twice keeps the first revocation time.
pub(super) const REVOKE_API_KEY: &str = concat!(
    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?4) \
     WHERE workspace = ?1 AND customer = ?2 AND id = ?3 RETURNING ",
    api_key_cols!()
);

pub(super) const INSERT_TEST_CLOCK: &str = "INSERT INTO test_clocks (workspace, id, name, frozen_time, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5)";
pub(super) const GET_TEST_CLOCK: &str = "SELECT workspace, id, name, frozen_time, created_at FROM test_clocks \
     WHERE workspace = ?1 AND id = ?2";
pub(super) const SET_TEST_CLOCK_TIME: &str =
    "UPDATE test_clocks SET frozen_time = ?3 WHERE workspace = ?1 AND id = ?2";

pub(super) const AGGREGATES: &str = "SELECT meter, period_start, subject, group_key, value, updated_at FROM aggregates \
     WHERE workspace = ?1 AND customer = ?2 AND period_start = ?3 \
     ORDER BY meter, subject, group_key";
pub(super) const WINDOW_ENTRIES: &str = "SELECT meter, subject, group_key, at, quantity FROM window_entries \
     WHERE workspace = ?1 AND customer = ?2 AND at >= ?3 ORDER BY at, seq";
pub(super) const PRUNE_WINDOW_ENTRIES: &str =
    "DELETE FROM window_entries WHERE workspace = ?1 AND at < ?2";
/// The points in `[from, to)` plus, per series, the last point before `from` (ties on `at`
/// broken by arrival, as the aggregate row broke them).
pub(super) const LEVEL_POINTS: &str = "SELECT meter, subject, group_key, at, value FROM ( \
       SELECT seq, meter, subject, group_key, at, value FROM level_points \
       WHERE workspace = ?1 AND customer = ?2 AND at >= ?3 AND at < ?4 \
       UNION ALL \
       SELECT seq, meter, subject, group_key, at, value FROM ( \
         SELECT seq, meter, subject, group_key, at, value, row_number() OVER ( \
           PARTITION BY meter, subject, group_key ORDER BY at DESC, seq DESC) AS rn \
         FROM level_points WHERE workspace = ?1 AND customer = ?2 AND at < ?3 \
       ) WHERE rn = 1 \
     ) ORDER BY at, seq";
pub(super) const EVENTS: &str = "SELECT workspace, id, customer, event_type, ts, subject, properties, received_at \
     FROM events WHERE workspace = ?1 AND customer = ?2 AND ts >= ?3 AND ts < ?4 \
     ORDER BY ts, id LIMIT ?5";
