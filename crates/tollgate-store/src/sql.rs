//! Every statement outside ingest, written once for both backends: `$N` placeholders (SQLite
//! reads them as named parameters, which sqlx binds by their number), upserts in the
//! `ON CONFLICT` form both accept, and NUMERIC and JSON columns read through `CAST(... AS TEXT)`
//! so that `codec` decodes both backends' rows alike. Static strings, so sqlx prepares each once
//! per connection.

macro_rules! customer_cols {
    () => {
        "workspace, id, name, email, suspended, has_payment_method, test_clock, \
         CAST(metadata AS TEXT) AS metadata, created_at"
    };
}
macro_rules! subscription_cols {
    () => {
        "workspace, id, customer, plan, catalog_version, status, CAST(addons AS TEXT) AS addons, \
         started_at, billing_anchor, trial_end, canceled_at, ends_at"
    };
}
macro_rules! api_key_cols {
    () => {
        "workspace, id, customer, name, secret_hash, prefix, created_at, revoked_at"
    };
}
macro_rules! catalog_cols {
    () => {
        "workspace, version, CAST(catalog AS TEXT) AS catalog, created_at"
    };
}
macro_rules! invoice_cols {
    () => {
        "workspace, id, number, customer, subscription, dedupe_key, status, currency, \
         period_start, period_end, total_minor, credit_applied_minor, amount_due_minor, \
         CAST(document AS TEXT) AS document, created_at, paid_at, voided_at"
    };
}
macro_rules! credit_note_cols {
    () => {
        "workspace, id, number, invoice, customer, amount_minor, currency, reason, created_at"
    };
}

pub(crate) const INSERT_WORKSPACE: &str =
    "INSERT INTO workspaces (workspace, name, created_at) VALUES ($1, $2, $3)";
pub(crate) const GET_WORKSPACE: &str =
    "SELECT workspace, name, created_at FROM workspaces WHERE workspace = $1";
pub(crate) const WORKSPACES: &str =
    "SELECT workspace, name, created_at FROM workspaces ORDER BY workspace";

/// `DO NOTHING` on any conflict: a key with the same hash is left as it is.
pub(crate) const INSERT_ADMIN_KEY: &str = "INSERT INTO admin_keys \
     (workspace, id, secret_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
pub(crate) const FIND_ADMIN_KEY: &str =
    "SELECT workspace, id, secret_hash, created_at FROM admin_keys WHERE secret_hash = $1";

/// The row lock taken here serialises concurrent adds of one workspace until commit.
pub(crate) const BUMP_CATALOG_SEQ: &str = "UPDATE workspaces SET catalog_seq = catalog_seq + 1 \
     WHERE workspace = $1 RETURNING catalog_seq";
pub(crate) const INSERT_CATALOG_VERSION: &str = "INSERT INTO catalog_versions \
     (workspace, version, catalog, created_at) VALUES ($1, $2, $3, $4)";
pub(crate) const LATEST_CATALOG: &str = concat!(
    "SELECT ",
    catalog_cols!(),
    " FROM catalog_versions WHERE workspace = $1 ORDER BY version DESC LIMIT 1"
);
pub(crate) const GET_CATALOG_VERSION: &str = concat!(
    "SELECT ",
    catalog_cols!(),
    " FROM catalog_versions WHERE workspace = $1 AND version = $2"
);

pub(crate) const INSERT_CUSTOMER: &str = "INSERT INTO customers (workspace, id, name, email, \
       suspended, has_payment_method, test_clock, metadata, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub(crate) const GET_CUSTOMER: &str = concat!(
    "SELECT ",
    customer_cols!(),
    " FROM customers WHERE workspace = $1 AND id = $2"
);
pub(crate) const LIST_CUSTOMERS: &str = concat!(
    "SELECT ",
    customer_cols!(),
    " FROM customers WHERE workspace = $1 ORDER BY created_at, id"
);
pub(crate) const UPDATE_CUSTOMER: &str = "UPDATE customers SET name = $3, email = $4, \
     suspended = $5, has_payment_method = $6, metadata = $7 WHERE workspace = $1 AND id = $2";

pub(crate) const INSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions (workspace, id, customer, \
       plan, catalog_version, status, addons, started_at, billing_anchor, trial_end, \
       canceled_at, ends_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
/// Everything but the owner (workspace, id, customer) may change; a record naming another
/// owner finds no row. Numbered as `INSERT_SUBSCRIPTION`, so both bind the same values.
pub(crate) const UPDATE_SUBSCRIPTION: &str = "UPDATE subscriptions SET plan = $4, \
     catalog_version = $5, status = $6, addons = $7, started_at = $8, billing_anchor = $9, \
     trial_end = $10, canceled_at = $11, ends_at = $12 \
     WHERE workspace = $1 AND id = $2 AND customer = $3";
pub(crate) const GET_SUBSCRIPTION: &str = concat!(
    "SELECT ",
    subscription_cols!(),
    " FROM subscriptions WHERE workspace = $1 AND id = $2"
);
pub(crate) const LIST_SUBSCRIPTIONS: &str = concat!(
    "SELECT ",
    subscription_cols!(),
    " FROM subscriptions WHERE workspace = $1 AND customer = $2 \
     ORDER BY started_at DESC, id DESC"
);
pub(crate) const WORKSPACE_SUBSCRIPTIONS: &str = concat!(
    "SELECT ",
    subscription_cols!(),
    " FROM subscriptions WHERE workspace = $1 ORDER BY id"
);

pub(crate) const INSERT_API_KEY: &str = concat!(
    "INSERT INTO api_keys (",
    api_key_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);
pub(crate) const FIND_API_KEY: &str = concat!(
    "SELECT ",
    api_key_cols!(),
    " FROM api_keys WHERE secret_hash = $1"
);
pub(crate) const LIST_API_KEYS: &str = concat!(
    "SELECT ",
    api_key_cols!(),
    " FROM api_keys WHERE workspace = $1 AND customer = $2 ORDER BY created_at, id"
);
/// Revoking twice keeps the first revocation time.
pub(crate) const REVOKE_API_KEY: &str = concat!(
    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $4) \
     WHERE workspace = $1 AND customer = $2 AND id = $3 RETURNING ",
    api_key_cols!()
);

pub(crate) const INSERT_TEST_CLOCK: &str = "INSERT INTO test_clocks \
     (workspace, id, name, frozen_time, created_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const GET_TEST_CLOCK: &str = "SELECT workspace, id, name, frozen_time, created_at \
     FROM test_clocks WHERE workspace = $1 AND id = $2";
pub(crate) const SET_TEST_CLOCK_TIME: &str =
    "UPDATE test_clocks SET frozen_time = $3 WHERE workspace = $1 AND id = $2";

pub(crate) const AGGREGATES: &str = "SELECT meter, period_start, subject, group_key, \
       CAST(value AS TEXT) AS value, updated_at \
     FROM aggregates WHERE workspace = $1 AND customer = $2 AND period_start = $3 \
     ORDER BY meter, subject, group_key";
pub(crate) const WINDOW_ENTRIES: &str = "SELECT meter, subject, group_key, at, \
       CAST(quantity AS TEXT) AS quantity \
     FROM window_entries WHERE workspace = $1 AND customer = $2 AND at >= $3 ORDER BY at, seq";
pub(crate) const PRUNE_WINDOW_ENTRIES: &str =
    "DELETE FROM window_entries WHERE workspace = $1 AND at < $2";
/// The points in `[from, to)` plus, per series, the last point before `from` (ties on `at`
/// broken by arrival, as the aggregate row broke them).
pub(crate) const LEVEL_POINTS: &str = "SELECT meter, subject, group_key, at, \
       CAST(value AS TEXT) AS value FROM ( \
       SELECT seq, meter, subject, group_key, at, value FROM level_points \
       WHERE workspace = $1 AND customer = $2 AND at >= $3 AND at < $4 \
       UNION ALL \
       SELECT seq, meter, subject, group_key, at, value FROM ( \
         SELECT seq, meter, subject, group_key, at, value, row_number() OVER ( \
           PARTITION BY meter, subject, group_key ORDER BY at DESC, seq DESC) AS rn \
         FROM level_points WHERE workspace = $1 AND customer = $2 AND at < $3 \
       ) AS before_from WHERE rn = 1 \
     ) AS points ORDER BY at, seq";
pub(crate) const EVENTS: &str = "SELECT workspace, id, customer, event_type, ts, subject, \
       CAST(properties AS TEXT) AS properties, received_at \
     FROM events WHERE workspace = $1 AND customer = $2 AND ts >= $3 AND ts < $4 \
     ORDER BY ts, id LIMIT $5";

pub(crate) const EVENT_BY_ID: &str = "SELECT workspace, id, customer, event_type, ts, subject, \
       CAST(properties AS TEXT) AS properties, received_at \
     FROM events WHERE workspace = $1 AND id = $2";

pub(crate) const INVOICE_BY_KEY: &str = concat!(
    "SELECT ",
    invoice_cols!(),
    " FROM invoices WHERE workspace = $1 AND dedupe_key = $2"
);
pub(crate) const INVOICE_BY_ID: &str = concat!(
    "SELECT ",
    invoice_cols!(),
    " FROM invoices WHERE workspace = $1 AND id = $2"
);
pub(crate) const INVOICES_OF_CUSTOMER: &str = concat!(
    "SELECT ",
    invoice_cols!(),
    " FROM invoices WHERE workspace = $1 AND customer = $2 ORDER BY number"
);
pub(crate) const INVOICE_KEYS: &str =
    "SELECT dedupe_key FROM invoices WHERE workspace = $1 AND subscription = $2 ORDER BY number";
/// The next number of a kind of document, in the caller's transaction: a rolled-back
/// transaction gives its number back, so numbers stay gapless.
pub(crate) const NEXT_NUMBER: &str = "INSERT INTO document_counters (workspace, kind, last) \
     VALUES ($1, $2, 1) ON CONFLICT (workspace, kind) \
     DO UPDATE SET last = document_counters.last + 1 RETURNING last";
pub(crate) const INSERT_INVOICE: &str = "INSERT INTO invoices (workspace, id, number, customer, \
       subscription, dedupe_key, status, currency, period_start, period_end, total_minor, \
       credit_applied_minor, amount_due_minor, document, created_at, paid_at, voided_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";
pub(crate) const SET_INVOICE_STATUS: &str = concat!(
    "UPDATE invoices SET status = $1, \
     paid_at = CASE WHEN $1 = 'paid' THEN $2 ELSE paid_at END, \
     voided_at = CASE WHEN $1 = 'void' THEN $2 ELSE voided_at END \
     WHERE workspace = $3 AND id = $4 AND status = $5 RETURNING ",
    invoice_cols!()
);

/// Sums come back as text: PostgreSQL's sum of BIGINT is NUMERIC and may exceed an `i64`, which
/// the caller then reports instead of a database error.
pub(crate) const CREDIT_BALANCE: &str = "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS TEXT) \
     AS total FROM credit_entries WHERE workspace = $1 AND customer = $2";
pub(crate) const INSERT_CREDIT_ENTRY: &str = "INSERT INTO credit_entries \
     (workspace, id, customer, amount_minor, currency, reason, invoice, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub(crate) const BILL_PENDING_CHARGE: &str = "UPDATE pending_charges SET invoice = $1 \
     WHERE workspace = $2 AND id = $3 AND invoice IS NULL";
pub(crate) const COUNT_COUPON_USE: &str =
    "UPDATE coupon_redemptions SET applied = applied + 1 WHERE workspace = $1 AND id = $2";

pub(crate) const CREDITED: &str = "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS TEXT) AS total \
     FROM credit_notes WHERE workspace = $1 AND invoice = $2";
pub(crate) const INSERT_CREDIT_NOTE: &str = concat!(
    "INSERT INTO credit_notes (",
    credit_note_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
pub(crate) const CREDIT_NOTES: &str = concat!(
    "SELECT ",
    credit_note_cols!(),
    " FROM credit_notes WHERE workspace = $1 AND invoice = $2 ORDER BY number"
);

pub(crate) const INSERT_PENDING_CHARGE: &str = "INSERT INTO pending_charges \
     (workspace, id, customer, subscription, charge, created_at, invoice) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub(crate) const PENDING_CHARGES: &str = "SELECT workspace, id, customer, subscription, \
       CAST(charge AS TEXT) AS charge, created_at, invoice \
     FROM pending_charges WHERE workspace = $1 AND customer = $2 AND invoice IS NULL \
     ORDER BY created_at, id";

pub(crate) const INSERT_REDEMPTION: &str = "INSERT INTO coupon_redemptions \
     (workspace, id, customer, coupon, applied, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const REDEMPTIONS: &str = "SELECT workspace, id, customer, coupon, applied, created_at \
     FROM coupon_redemptions WHERE workspace = $1 AND customer = $2 ORDER BY created_at, id";

pub(crate) const CANCEL_SCHEDULED: &str = "DELETE FROM scheduled_changes \
     WHERE workspace = $1 AND subscription = $2 AND applied_at IS NULL";
pub(crate) const INSERT_SCHEDULED: &str = "INSERT INTO scheduled_changes (workspace, id, \
       subscription, customer, plan, addons, effective_at, created_at, applied_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub(crate) const SCHEDULED: &str = "SELECT workspace, id, subscription, customer, plan, \
       CAST(addons AS TEXT) AS addons, effective_at, created_at, applied_at \
     FROM scheduled_changes WHERE workspace = $1 AND subscription = $2 AND applied_at IS NULL";
pub(crate) const MARK_APPLIED: &str =
    "UPDATE scheduled_changes SET applied_at = $1 WHERE workspace = $2 AND id = $3";

pub(crate) const EXPIRE_IDEMPOTENCY_KEY: &str =
    "DELETE FROM idempotency_keys WHERE workspace = $1 AND key = $2 AND created_at < $3";
pub(crate) const CLAIM_IDEMPOTENCY_KEY: &str = "INSERT INTO idempotency_keys \
     (workspace, key, request_hash, status, body, created_at) VALUES ($1, $2, $3, NULL, NULL, $4) \
     ON CONFLICT (workspace, key) DO NOTHING";
pub(crate) const IDEMPOTENCY_KEY: &str = "SELECT request_hash, status, body \
     FROM idempotency_keys WHERE workspace = $1 AND key = $2";
pub(crate) const COMPLETE_IDEMPOTENCY_KEY: &str =
    "UPDATE idempotency_keys SET status = $3, body = $4 WHERE workspace = $1 AND key = $2";
pub(crate) const RELEASE_IDEMPOTENCY_KEY: &str =
    "DELETE FROM idempotency_keys WHERE workspace = $1 AND key = $2 AND status IS NULL";

/// A page of customers after the cursor `($2 created_at, $3 id)`, or from the first when both
/// are NULL.
pub(crate) const CUSTOMERS_PAGE: &str = concat!(
    "SELECT ",
    customer_cols!(),
    " FROM customers WHERE workspace = $1 \
     AND ($2 IS NULL OR created_at > $2 OR (created_at = $2 AND id > $3)) \
     ORDER BY created_at, id LIMIT $4"
);
/// Events matching the optional filters `$2`..`$6` (NULL matches all), after the cursor
/// `($7 ts, $8 id)`, oldest first.
pub(crate) const QUERY_EVENTS: &str = "SELECT workspace, id, customer, event_type, ts, subject, \
       CAST(properties AS TEXT) AS properties, received_at \
     FROM events WHERE workspace = $1 \
     AND ($2 IS NULL OR customer = $2) AND ($3 IS NULL OR event_type = $3) \
     AND ($4 IS NULL OR subject = $4) AND ($5 IS NULL OR ts >= $5) AND ($6 IS NULL OR ts < $6) \
     AND ($7 IS NULL OR ts > $7 OR (ts = $7 AND id > $8)) \
     ORDER BY ts, id LIMIT $9";
