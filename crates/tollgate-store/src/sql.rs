//! Every statement outside ingest, written once for both backends: `$N` placeholders (SQLite
//! reads them as named parameters, which sqlx binds by their number), upserts in the
//! `ON CONFLICT` form both accept, and NUMERIC and JSON columns read through `CAST(... AS TEXT)`
//! so that `codec` decodes both backends' rows alike. Static strings, so sqlx prepares each once
//! per connection.

macro_rules! customer_cols {
    () => {
        "workspace, id, name, email, suspended, has_payment_method, test_clock, \
         CAST(metadata AS TEXT) AS metadata, created_at, CAST(address AS TEXT) AS address, \
         CAST(tax_ids AS TEXT) AS tax_ids, archived_at"
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
        "workspace, id, number, invoice, customer, amount_minor, currency, reason, created_at, \
         method"
    };
}

pub(crate) const INSERT_WORKSPACE: &str =
    "INSERT INTO workspaces (workspace, name, created_at) VALUES ($1, $2, $3)";
pub(crate) const GET_WORKSPACE: &str =
    "SELECT workspace, name, created_at FROM workspaces WHERE workspace = $1";
pub(crate) const WORKSPACES: &str =
    "SELECT workspace, name, created_at FROM workspaces ORDER BY workspace";

/// `DO NOTHING` on any conflict: a key with the same hash is left as it is.
pub(crate) const ROTATE_ADMIN_KEY: &str = "UPDATE admin_keys SET secret_hash = $3, \
     created_at = $4 WHERE workspace = $1 AND id = $2 AND secret_hash <> $3";
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
       suspended, has_payment_method, test_clock, metadata, created_at, address, tax_ids, \
       archived_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
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
     suspended = $5, has_payment_method = $6, metadata = $7, address = $8, tax_ids = $9 \
     WHERE workspace = $1 AND id = $2";

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
/// [`EVENT_BY_ID`] where `events` is partitioned by month (PostgreSQL): `received_at` from
/// `event_ids` names the one partition to probe, instead of one probe per month kept. An event
/// whose month was detached is not found (its id stays in `event_ids`).
pub(crate) const EVENT_BY_ID_ROUTED: &str = "SELECT workspace, id, customer, event_type, ts, \
       subject, CAST(properties AS TEXT) AS properties, received_at \
     FROM events WHERE workspace = $1 AND id = $2 \
       AND received_at = (SELECT received_at FROM event_ids WHERE workspace = $1 AND id = $2)";

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
// The customer's balance (`billing.rs`): a ledger of movements, credit notes in, invoices out.
pub(crate) const CUSTOMER_BALANCE: &str = "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS TEXT) \
     AS total FROM balance_entries WHERE workspace = $1 AND customer = $2";
pub(crate) const INSERT_BALANCE_ENTRY: &str = "INSERT INTO balance_entries \
     (workspace, id, customer, amount_minor, currency, kind, credit_note, invoice, created_at, \
     seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
pub(crate) const BALANCE_ENTRIES: &str = "SELECT workspace, id, customer, amount_minor, currency, \
       kind, credit_note, invoice, created_at FROM balance_entries \
     WHERE workspace = $1 AND customer = $2 ORDER BY seq";
pub(crate) const BILL_PENDING_CHARGE: &str = "UPDATE pending_charges SET invoice = $1 \
     WHERE workspace = $2 AND id = $3 AND invoice IS NULL";
pub(crate) const COUNT_COUPON_USE: &str =
    "UPDATE coupon_redemptions SET applied = applied + 1 WHERE workspace = $1 AND id = $2";

pub(crate) const CREDITED: &str = "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS TEXT) AS total \
     FROM credit_notes WHERE workspace = $1 AND invoice = $2";
// A credit note on an unpaid invoice lowers its amount due (compare-and-set on its status and
// amount due); at zero the invoice is paid.
pub(crate) const LOWER_AMOUNT_DUE: &str = concat!(
    "UPDATE invoices SET amount_due_minor = $1, \
     status = CASE WHEN $1 = 0 THEN 'paid' ELSE status END, \
     paid_at = CASE WHEN $1 = 0 THEN $2 ELSE paid_at END \
     WHERE workspace = $3 AND id = $4 AND status = $5 AND amount_due_minor = $6 RETURNING ",
    invoice_cols!()
);
// What a voided invoice took from the customer's balance and prepaid credit (negative sums).
pub(crate) const BALANCE_USED_BY_INVOICE: &str = "SELECT CAST(COALESCE(SUM(amount_minor), 0) \
     AS TEXT) AS total FROM balance_entries WHERE workspace = $1 AND customer = $2 \
     AND invoice = $3 AND kind = 'invoice'";
pub(crate) const CREDIT_USED_BY_INVOICE: &str = "SELECT CAST(COALESCE(SUM(amount_minor), 0) \
     AS TEXT) AS total FROM credit_entries WHERE workspace = $1 AND customer = $2 \
     AND invoice = $3 AND amount_minor < 0";
pub(crate) const INSERT_CREDIT_NOTE: &str = concat!(
    "INSERT INTO credit_notes (",
    credit_note_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
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

// The outbox (`outbox.rs`).
pub(crate) const INSERT_OUTBOX_EVENT: &str = "INSERT INTO outbox (workspace, id, customer, type, \
       occurred_at, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// Oldest first; each filter applies when its value is given.
pub(crate) const LIST_OUTBOX_EVENTS: &str = "SELECT workspace, id, customer, type, occurred_at, \
       CAST(data AS TEXT) AS data, created_at, delivered_at, delivery_attempts \
     FROM outbox WHERE workspace = $1 AND ($2 IS NULL OR type = $2) \
       AND ($3 IS NULL OR customer = $3) AND ($4 IS NULL OR id > $4) \
     ORDER BY id LIMIT $5";

// The scheduler's jobs (`jobs.rs`).
macro_rules! job_cols {
    () => {
        "workspace, id, kind, key, customer, test_clock, due_at, CAST(payload AS TEXT) AS payload, \
         status, attempts, max_attempts, available_at, locked_by, locked_until, last_error, \
         CAST(result AS TEXT) AS result, created_at, updated_at, finished_at"
    };
}
/// Enqueuing the same key twice makes one job: the second insert does nothing.
pub(crate) const INSERT_JOB: &str = "INSERT INTO jobs (workspace, id, kind, key, customer, \
       test_clock, due_at, payload, status, attempts, max_attempts, available_at, created_at, \
       updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'scheduled', 0, $9, $10, $10, $10) \
     ON CONFLICT (workspace, key) DO NOTHING";
pub(crate) const JOB_BY_KEY: &str = concat!(
    "SELECT ",
    job_cols!(),
    " FROM jobs WHERE workspace = $1 AND key = $2"
);
pub(crate) const JOB_BY_ID: &str = concat!(
    "SELECT ",
    job_cols!(),
    " FROM jobs WHERE workspace = $1 AND id = $2"
);
/// Jobs whose worker stopped (lease over) after their last allowed attempt: failed.
pub(crate) const FAIL_ABANDONED_JOBS: &str = "UPDATE jobs SET status = 'failed', \
       last_error = 'the worker running it stopped before it finished', finished_at = $1, \
       updated_at = $1, locked_by = NULL, locked_until = NULL \
     WHERE status = 'running' AND locked_until < $1 AND attempts >= max_attempts";
/// What a wall-clock job may be claimed in (`$1` now): due, out of its backoff, and scheduled or
/// abandoned by a worker whose lease is over.
macro_rules! claimable {
    () => {
        "SELECT workspace, id FROM jobs WHERE test_clock IS NULL AND due_at <= $1 \
           AND available_at <= $1 AND attempts < max_attempts \
           AND (status = 'scheduled' OR (status = 'running' AND locked_until < $1)) \
         ORDER BY due_at, id LIMIT $4"
    };
}
macro_rules! claim {
    () => {
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $2, \
           locked_until = $3, updated_at = $1 WHERE (workspace, id) IN ("
    };
}
/// PostgreSQL: rows another worker is claiming are skipped, not waited for.
pub(crate) const CLAIM_JOBS_SKIP_LOCKED: &str = concat!(
    claim!(),
    claimable!(),
    " FOR UPDATE SKIP LOCKED) RETURNING ",
    job_cols!()
);
/// SQLite: the single writer serialises claims.
pub(crate) const CLAIM_JOBS: &str = concat!(claim!(), claimable!(), ") RETURNING ", job_cols!());
/// The earliest due job of a test clock (`$5`) at or before its new time (`$6`).
macro_rules! clock_claimable {
    () => {
        "SELECT workspace, id FROM jobs WHERE workspace = $4 AND test_clock = $5 AND due_at <= $6 \
           AND available_at <= $1 AND attempts < max_attempts \
           AND (status = 'scheduled' OR (status = 'running' AND locked_until < $1)) \
         ORDER BY due_at, id LIMIT 1"
    };
}
pub(crate) const CLAIM_CLOCK_JOB_SKIP_LOCKED: &str = concat!(
    claim!(),
    clock_claimable!(),
    " FOR UPDATE SKIP LOCKED) RETURNING ",
    job_cols!()
);
pub(crate) const CLAIM_CLOCK_JOB: &str =
    concat!(claim!(), clock_claimable!(), ") RETURNING ", job_cols!());
/// Only the worker holding the job finishes it.
pub(crate) const COMPLETE_JOB: &str = "UPDATE jobs SET status = 'succeeded', result = $4, \
       last_error = NULL, finished_at = $5, updated_at = $5, locked_by = NULL, locked_until = NULL \
     WHERE workspace = $1 AND id = $2 AND status = 'running' AND locked_by = $3";
/// Back to `scheduled` after `$5` (backoff), or `failed` after its last attempt.
pub(crate) const FAIL_JOB: &str = concat!(
    "UPDATE jobs SET \
       status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'scheduled' END, \
       finished_at = CASE WHEN attempts >= max_attempts THEN $6 ELSE NULL END, \
       last_error = $4, available_at = $5, updated_at = $6, locked_by = NULL, locked_until = NULL \
     WHERE workspace = $1 AND id = $2 AND status = 'running' AND locked_by = $3 RETURNING ",
    job_cols!()
);
pub(crate) const LIST_JOBS: &str = concat!(
    "SELECT ",
    job_cols!(),
    " FROM jobs WHERE workspace = $1 AND ($2 IS NULL OR status = $2) \
       AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR customer = $4) \
       AND ($5 IS NULL OR id > $5) ORDER BY id LIMIT $6"
);
/// A failed or canceled job runs again, with its attempts counted afresh.
pub(crate) const RETRY_JOB: &str = concat!(
    "UPDATE jobs SET status = 'scheduled', attempts = 0, available_at = $3, updated_at = $3, \
       finished_at = NULL WHERE workspace = $1 AND id = $2 AND status IN ('failed', 'canceled') \
     RETURNING ",
    job_cols!()
);
pub(crate) const CANCEL_JOB: &str = concat!(
    "UPDATE jobs SET status = 'canceled', finished_at = $3, updated_at = $3 \
     WHERE workspace = $1 AND id = $2 AND status = 'scheduled' RETURNING ",
    job_cols!()
);
/// Archiving twice keeps the first archive time.
pub(crate) const ARCHIVE_CUSTOMER: &str = "UPDATE customers \
     SET archived_at = COALESCE(archived_at, $3) WHERE workspace = $1 AND id = $2";
/// Revokes the keys of a customer that are not revoked yet, returning them.
pub(crate) const REVOKE_CUSTOMER_KEYS: &str = concat!(
    "UPDATE api_keys SET revoked_at = $3 \
     WHERE workspace = $1 AND customer = $2 AND revoked_at IS NULL RETURNING ",
    api_key_cols!()
);
pub(crate) const SET_CUSTOMER_PROFILE: &str = "INSERT INTO customer_profiles \
     (workspace, customer, profile, updated_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (workspace, customer) DO UPDATE SET profile = $3, updated_at = $4";
pub(crate) const CUSTOMER_PROFILE: &str = "SELECT CAST(profile AS TEXT) AS profile \
     FROM customer_profiles WHERE workspace = $1 AND customer = $2";
pub(crate) const SET_SELLER_PROFILE: &str = "INSERT INTO seller_profiles \
     (workspace, profile, updated_at) VALUES ($1, $2, $3) \
     ON CONFLICT (workspace) DO UPDATE SET profile = $2, updated_at = $3";
pub(crate) const SELLER_PROFILE: &str =
    "SELECT CAST(profile AS TEXT) AS profile FROM seller_profiles WHERE workspace = $1";
// License signing keys, licenses and machine activations (`trust.rs`, migration 0010/0011 trust).
macro_rules! signing_key_cols {
    () => {
        "workspace, id, public_key, sealed_private_key, status, created_at, retired_at"
    };
}
macro_rules! license_cols {
    () => {
        "workspace, id, customer, subscription, plan, key_id, file, issued_at, expires_at, \
         max_machines, revoked_at, revoke_reason"
    };
}
macro_rules! activation_cols {
    () => {
        "workspace, license, fingerprint, activated_at, last_heartbeat"
    };
}
pub(crate) const DEMOTE_ACTIVE_SIGNING_KEY: &str = "UPDATE license_keys SET status = 'previous' \
     WHERE workspace = $1 AND status = 'active'";
pub(crate) const INSERT_SIGNING_KEY: &str = concat!(
    "INSERT INTO license_keys (",
    signing_key_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
pub(crate) const SIGNING_KEYS: &str = concat!(
    "SELECT ",
    signing_key_cols!(),
    " FROM license_keys WHERE workspace = $1 ORDER BY created_at DESC, id DESC"
);
pub(crate) const GET_SIGNING_KEY: &str = concat!(
    "SELECT ",
    signing_key_cols!(),
    " FROM license_keys WHERE workspace = $1 AND id = $2"
);
pub(crate) const RETIRE_SIGNING_KEY: &str = "UPDATE license_keys SET status = 'retired', \
     retired_at = COALESCE(retired_at, $3) WHERE workspace = $1 AND id = $2";
pub(crate) const INSERT_LICENSE: &str = concat!(
    "INSERT INTO licenses (",
    license_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);
pub(crate) const GET_LICENSE: &str = concat!(
    "SELECT ",
    license_cols!(),
    " FROM licenses WHERE workspace = $1 AND id = $2"
);
pub(crate) const CUSTOMER_LICENSES: &str = concat!(
    "SELECT ",
    license_cols!(),
    " FROM licenses WHERE workspace = $1 AND customer = $2 ORDER BY issued_at DESC, id DESC"
);
pub(crate) const SUBSCRIPTION_LICENSES: &str = concat!(
    "SELECT ",
    license_cols!(),
    " FROM licenses WHERE workspace = $1 AND subscription = $2 AND revoked_at IS NULL \
     ORDER BY issued_at, id"
);
pub(crate) const REVOKE_LICENSE: &str = "UPDATE licenses SET revoked_at = $3, revoke_reason = $4 \
     WHERE workspace = $1 AND id = $2 AND revoked_at IS NULL";
pub(crate) const RELEASE_STALE_ACTIVATIONS: &str = "DELETE FROM license_activations \
     WHERE workspace = $1 AND license = $2 AND last_heartbeat < $3";
pub(crate) const HEARTBEAT: &str = "UPDATE license_activations SET last_heartbeat = $4 \
     WHERE workspace = $1 AND license = $2 AND fingerprint = $3";
pub(crate) const COUNT_ACTIVATIONS: &str =
    "SELECT COUNT(*) AS n FROM license_activations WHERE workspace = $1 AND license = $2";
pub(crate) const INSERT_ACTIVATION: &str = concat!(
    "INSERT INTO license_activations (",
    activation_cols!(),
    ") VALUES ($1, $2, $3, $4, $5)"
);
pub(crate) const GET_ACTIVATION: &str = concat!(
    "SELECT ",
    activation_cols!(),
    " FROM license_activations WHERE workspace = $1 AND license = $2 AND fingerprint = $3"
);
pub(crate) const DELETE_ACTIVATION: &str = "DELETE FROM license_activations \
     WHERE workspace = $1 AND license = $2 AND fingerprint = $3";
pub(crate) const ACTIVATIONS: &str = concat!(
    "SELECT ",
    activation_cols!(),
    " FROM license_activations WHERE workspace = $1 AND license = $2 \
     ORDER BY activated_at, fingerprint"
);
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

// Usage alerts and referrals (`growth.rs`).
/// The primary key is the "once": a second firing of the same alert inserts nothing.
pub(crate) const INSERT_USAGE_ALERT: &str = "INSERT INTO usage_alerts (workspace, customer, meter, \
       period_start, threshold, value, fired_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT DO NOTHING";
pub(crate) const USAGE_ALERTS: &str = "SELECT workspace, customer, meter, period_start, threshold, \
       value, fired_at FROM usage_alerts WHERE workspace = $1 AND customer = $2 \
     ORDER BY fired_at, meter, period_start";
/// A customer already holding a code keeps it (the unique index on (workspace, customer)).
pub(crate) const INSERT_REFERRAL_CODE: &str = "INSERT INTO referral_codes (workspace, code, customer, \
       created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
pub(crate) const REFERRAL_CODE_OF: &str =
    "SELECT code FROM referral_codes WHERE workspace = $1 AND customer = $2";
pub(crate) const REFERRER_BY_CODE: &str =
    "SELECT customer FROM referral_codes WHERE workspace = $1 AND code = $2";
pub(crate) const INSERT_REFERRAL: &str = "INSERT INTO referrals (workspace, referred, referrer, code, \
       created_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const REFERRAL_OF: &str = "SELECT workspace, referred, referrer, code, created_at, \
       rewarded_at FROM referrals WHERE workspace = $1 AND referred = $2";
pub(crate) const REFERRALS_BY: &str = "SELECT workspace, referred, referrer, code, created_at, \
       rewarded_at FROM referrals WHERE workspace = $1 AND referrer = $2 ORDER BY created_at, referred";
/// Moves `rewarded_at` from NULL once: the affected-row count says whether this call rewarded.
pub(crate) const REWARD_REFERRAL: &str = "UPDATE referrals SET rewarded_at = $3 \
     WHERE workspace = $1 AND referred = $2 AND rewarded_at IS NULL";

// Webhooks (`webhooks.rs`).
macro_rules! endpoint_cols {
    () => {
        "workspace, id, url, event_types, description, enabled, ordered, secret, \
         previous_secret, previous_secret_until, failing_since, disabled_reason, created_at, \
         updated_at"
    };
}
pub(crate) const INSERT_WEBHOOK_ENDPOINT: &str = "INSERT INTO webhook_endpoints (workspace, id, \
       url, event_types, description, enabled, ordered, secret, previous_secret, \
       previous_secret_until, failing_since, disabled_reason, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
pub(crate) const UPDATE_WEBHOOK_ENDPOINT: &str = "UPDATE webhook_endpoints SET url = $3, \
       event_types = $4, description = $5, enabled = $6, ordered = $7, secret = $8, \
       previous_secret = $9, previous_secret_until = $10, failing_since = $11, \
       disabled_reason = $12, updated_at = $14 \
     WHERE workspace = $1 AND id = $2 AND created_at = $13";
/// An attempt's effect on its endpoint: a success clears the failure record...
pub(crate) const CLEAR_WEBHOOK_FAILING: &str = "UPDATE webhook_endpoints SET failing_since = NULL \
     WHERE workspace = $1 AND id = $2";
/// ...a failure starts it unless it runs already (only these columns: an operator's change made
/// during the attempt is kept).
pub(crate) const MARK_WEBHOOK_FAILING: &str = "UPDATE webhook_endpoints \
     SET failing_since = COALESCE(failing_since, $3) WHERE workspace = $1 AND id = $2";
/// Disables an enabled endpoint; no row when it was disabled already (one event, not two).
pub(crate) const DISABLE_WEBHOOK_ENDPOINT: &str = "UPDATE webhook_endpoints SET enabled = $3, \
       disabled_reason = $4, updated_at = $5 \
     WHERE workspace = $1 AND id = $2 AND enabled = $6 AND failing_since IS NOT NULL";
pub(crate) const WEBHOOK_SETTINGS: &str =
    "SELECT allow_private_addresses FROM webhook_settings WHERE workspace = $1";
pub(crate) const SET_WEBHOOK_SETTINGS: &str = "INSERT INTO webhook_settings (workspace, \
       allow_private_addresses, updated_at) VALUES ($1, $2, $3) \
     ON CONFLICT (workspace) DO UPDATE SET allow_private_addresses = excluded.allow_private_addresses, \
       updated_at = excluded.updated_at";
pub(crate) const WEBHOOK_ENDPOINT_BY_ID: &str = concat!(
    "SELECT ",
    endpoint_cols!(),
    " FROM webhook_endpoints WHERE workspace = $1 AND id = $2"
);
pub(crate) const LIST_WEBHOOK_ENDPOINTS: &str = concat!(
    "SELECT ",
    endpoint_cols!(),
    " FROM webhook_endpoints WHERE workspace = $1 ORDER BY id"
);
pub(crate) const DELETE_WEBHOOK_ENDPOINT: &str =
    "DELETE FROM webhook_endpoints WHERE workspace = $1 AND id = $2";
pub(crate) const DELETE_WEBHOOK_ENDPOINT_DELIVERIES: &str =
    "DELETE FROM webhook_deliveries WHERE workspace = $1 AND endpoint = $2";
pub(crate) const DELETE_WEBHOOK_ENDPOINT_ATTEMPTS: &str =
    "DELETE FROM webhook_attempts WHERE workspace = $1 AND endpoint = $2";
/// Outbox events not fanned out yet, oldest id first (the `outbox_undelivered` index). Marking
/// them in the fan-out's transaction, rather than moving a cursor past an id, cannot skip an
/// event whose transaction commits after a later id's.
pub(crate) const UNFANNED_OUTBOX_EVENTS: &str = "SELECT workspace, id, customer, type, \
       occurred_at, CAST(data AS TEXT) AS data, created_at, delivered_at, delivery_attempts \
     FROM outbox WHERE workspace = $1 AND delivered_at IS NULL ORDER BY id LIMIT $2";
pub(crate) const MARK_OUTBOX_FANNED_OUT: &str = "UPDATE outbox SET delivered_at = $3 \
     WHERE workspace = $1 AND id = $2 AND delivered_at IS NULL";
/// Exactly once per (event, endpoint): a second fan-out of the same event does nothing. The
/// customer's test clock is read in the same statement.
pub(crate) const INSERT_WEBHOOK_DELIVERY: &str = "INSERT INTO webhook_deliveries (workspace, id, \
       endpoint, event, event_type, customer, test_clock, status, attempts, next_attempt_at, \
       created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, \
       (SELECT test_clock FROM customers WHERE workspace = $1 AND id = $6), \
       'pending', 0, $7, $8, $8) \
     ON CONFLICT (workspace, event, endpoint) DO NOTHING";
macro_rules! delivery_cols {
    () => {
        "workspace, id, endpoint, event, event_type, customer, test_clock, status, attempts, \
         next_attempt_at, locked_until, last_status, last_error, created_at, updated_at"
    };
}
/// Pending deliveries that may be due: on the wall clock (`$2`) or on a test clock (decided by
/// the caller, which knows the clocks), not claimed by a live worker (`$3`, wall time), of
/// enabled endpoints; for an `ordered` endpoint, a customer's delivery waits while an earlier one
/// of the same customer (a smaller id: ids follow the events') is still pending.
pub(crate) const PENDING_WEBHOOK_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_cols!(),
    " FROM webhook_deliveries WHERE workspace = $1 AND status = 'pending' \
       AND (test_clock IS NOT NULL OR next_attempt_at <= $2) \
       AND (locked_until IS NULL OR locked_until < $3) \
       AND endpoint IN (SELECT id FROM webhook_endpoints WHERE workspace = $1 AND enabled = $5) \
       AND (customer IS NULL \
         OR endpoint NOT IN (SELECT id FROM webhook_endpoints \
           WHERE workspace = $1 AND ordered = $5) \
         OR NOT EXISTS (SELECT 1 FROM webhook_deliveries AS earlier \
           WHERE earlier.workspace = $1 AND earlier.endpoint = webhook_deliveries.endpoint \
             AND earlier.customer = webhook_deliveries.customer \
             AND earlier.status = 'pending' AND earlier.id < webhook_deliveries.id)) \
     ORDER BY next_attempt_at, id LIMIT $4"
);
/// Compare-and-set claim: one worker wins.
pub(crate) const CLAIM_WEBHOOK_DELIVERY: &str = "UPDATE webhook_deliveries SET locked_until = $3, \
       attempts = attempts + 1 \
     WHERE workspace = $1 AND id = $2 AND status = 'pending' \
       AND (locked_until IS NULL OR locked_until < $4)";
pub(crate) const FINISH_WEBHOOK_ATTEMPT: &str = "UPDATE webhook_deliveries SET status = $3, \
       next_attempt_at = $4, last_status = $5, last_error = $6, locked_until = NULL, \
       updated_at = $7 WHERE workspace = $1 AND id = $2";
pub(crate) const INSERT_WEBHOOK_ATTEMPT: &str = "INSERT INTO webhook_attempts (workspace, \
       delivery, attempt, endpoint, url, webhook_timestamp, request_body, response_status, \
       response_excerpt, duration_ms, error, attempted_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
pub(crate) const WEBHOOK_DELIVERY_BY_ID: &str = concat!(
    "SELECT ",
    delivery_cols!(),
    " FROM webhook_deliveries WHERE workspace = $1 AND id = $2"
);
pub(crate) const LIST_WEBHOOK_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_cols!(),
    " FROM webhook_deliveries WHERE workspace = $1 AND endpoint = $2 ORDER BY id LIMIT $3"
);
pub(crate) const LIST_WEBHOOK_ATTEMPTS: &str = "SELECT workspace, delivery, attempt, endpoint, \
       url, webhook_timestamp, request_body, response_status, response_excerpt, duration_ms, \
       error, attempted_at FROM webhook_attempts WHERE workspace = $1 AND delivery = $2 \
     ORDER BY attempt";
/// Replay: pending again, due at `$3` (on its own clock).
pub(crate) const REPLAY_WEBHOOK_DELIVERY: &str = "UPDATE webhook_deliveries SET status = 'pending', \
       next_attempt_at = $3, locked_until = NULL, updated_at = $4 \
     WHERE workspace = $1 AND id = $2";
/// Replay of an endpoint's deliveries whose event occurred at or after `$3`.
pub(crate) const REPLAY_WEBHOOK_DELIVERIES_SINCE: &str = "UPDATE webhook_deliveries SET \
       status = 'pending', next_attempt_at = $5, locked_until = NULL, updated_at = $4 \
     WHERE workspace = $1 AND endpoint = $2 AND event IN \
       (SELECT id FROM outbox WHERE workspace = $1 AND occurred_at >= $3)";
pub(crate) const PRUNE_WEBHOOK_ATTEMPTS: &str =
    "DELETE FROM webhook_attempts WHERE workspace = $1 AND attempted_at < $2";
pub(crate) const OUTBOX_EVENT_BY_ID: &str = "SELECT workspace, id, customer, type, occurred_at, \
       CAST(data AS TEXT) AS data, created_at, delivered_at, delivery_attempts \
     FROM outbox WHERE workspace = $1 AND id = $2";

// The ledger (ledger.rs). A head row exists from the first pass on; its update is the pass's lock.
pub(crate) const LEDGER_HEAD_INIT: &str = "INSERT INTO ledger_heads (workspace, size, frontier, \
       root_hash, sealed_until, updated_at) VALUES ($1, 0, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
pub(crate) const LEDGER_HEAD_LOCK: &str =
    "UPDATE ledger_heads SET updated_at = $2 WHERE workspace = $1";
pub(crate) const LEDGER_HEAD: &str = "SELECT workspace, size, frontier, root_hash, sealed_until, \
       updated_at FROM ledger_heads WHERE workspace = $1";
pub(crate) const UPDATE_LEDGER_HEAD: &str = "UPDATE ledger_heads SET size = $2, frontier = $3, \
       root_hash = $4, sealed_until = $5, updated_at = $6 WHERE workspace = $1";
/// Usage events written since `$2` and not in the log yet, oldest first.
///
/// `LIMIT 1 OFFSET 0` keeps PostgreSQL from turning the `NOT EXISTS` into an anti-join: right
/// after a burst, before autoanalyze has run, the planner believed `ledger_entries` nearly empty
/// and compared every event with every entry of the workspace (measured: 32 s for 21,000 events
/// against 12,000 entries); as a per-row subquery it is one probe of the (kind, ref) key each
/// (88 ms for the same rows), whatever the statistics say. SQLite runs it per row either way.
pub(crate) const LEDGER_UNSEALED_EVENTS: &str = "SELECT e.id, e.customer, e.event_type, e.ts, \
       e.subject, CAST(e.properties AS TEXT) AS properties, e.received_at FROM events e \
     WHERE e.workspace = $1 AND e.received_at >= $2 AND NOT EXISTS (SELECT 1 FROM ledger_entries l \
       WHERE l.workspace = e.workspace AND l.kind = 'usage' AND l.ref = e.id LIMIT 1 OFFSET 0) \
     ORDER BY e.received_at, e.id LIMIT $3";
/// Domain events written since `$2` and not in the log yet, oldest first (a per-row probe, as
/// above).
pub(crate) const LEDGER_UNSEALED_ACTIONS: &str = "SELECT o.id, o.customer, o.type, \
       o.occurred_at, CAST(o.data AS TEXT) AS data, o.created_at FROM outbox o \
     WHERE o.workspace = $1 AND o.created_at >= $2 AND NOT EXISTS (SELECT 1 FROM ledger_entries l \
       WHERE l.workspace = o.workspace AND l.kind = 'action' AND l.ref = o.id LIMIT 1 OFFSET 0) \
     ORDER BY o.created_at, o.id LIMIT $3";
/// Appends entries, `rows` at a time (a power of two up to [`LEDGER_INSERT_CHUNK`]): one
/// statement per chunk, not per entry (a statement's round trip cost more than its row). With
/// `anonymous`, the placeholders are `?` (see `Backend::ANONYMOUS_PARAMETERS`).
pub(crate) fn insert_ledger_entries(rows: usize, anonymous: bool) -> &'static str {
    type Texts = std::sync::OnceLock<Vec<String>>;
    static NUMBERED: Texts = Texts::new();
    static ANONYMOUS: Texts = Texts::new();
    let texts = (if anonymous { &ANONYMOUS } else { &NUMBERED }).get_or_init(|| {
        (0..=LEDGER_INSERT_CHUNK.trailing_zeros())
            .map(|i| {
                let values = (0..1usize << i)
                    .map(|r| {
                        let cols = (1..=8).map(|c| match anonymous {
                            true => "?".to_owned(),
                            false => format!("${}", r * 8 + c),
                        });
                        format!("({})", cols.collect::<Vec<_>>().join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "INSERT INTO ledger_entries (workspace, seq, kind, ref, customer, entry, \
                     leaf_hash, sealed_at) VALUES {values}"
                )
            })
            .collect()
    });
    debug_assert!(rows.is_power_of_two() && rows <= LEDGER_INSERT_CHUNK);
    &texts[rows.trailing_zeros() as usize]
}
/// The most entries one insert statement carries (8 parameters each).
pub(crate) const LEDGER_INSERT_CHUNK: usize = 64;
pub(crate) const LEDGER_ENTRIES: &str = "SELECT workspace, seq, kind, ref, customer, entry, \
       leaf_hash, sealed_at FROM ledger_entries WHERE workspace = $1 AND seq >= $2 AND seq < $3 \
     ORDER BY seq";
pub(crate) const LEDGER_ENTRY_OF: &str = "SELECT workspace, seq, kind, ref, customer, entry, \
       leaf_hash, sealed_at FROM ledger_entries WHERE workspace = $1 AND kind = $2 AND ref = $3";
pub(crate) const LEDGER_EVENT: &str = "SELECT id, customer, event_type, ts, subject, \
       CAST(properties AS TEXT) AS properties, received_at FROM events \
     WHERE workspace = $1 AND id = $2";
/// [`LEDGER_EVENT`] routed to one partition, as [`EVENT_BY_ID_ROUTED`].
pub(crate) const LEDGER_EVENT_ROUTED: &str = "SELECT id, customer, event_type, ts, subject, \
       CAST(properties AS TEXT) AS properties, received_at FROM events \
     WHERE workspace = $1 AND id = $2 \
       AND received_at = (SELECT received_at FROM event_ids WHERE workspace = $1 AND id = $2)";
pub(crate) const LEDGER_ACTION: &str = "SELECT id, customer, type, occurred_at, \
       CAST(data AS TEXT) AS data, created_at FROM outbox WHERE workspace = $1 AND id = $2";
pub(crate) const INSERT_CHECKPOINT: &str = "INSERT INTO ledger_checkpoints (workspace, size, \
       root_hash, note, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
pub(crate) const CHECKPOINTS: &str = "SELECT workspace, size, root_hash, note, created_at \
       FROM ledger_checkpoints WHERE workspace = $1 ORDER BY size";
pub(crate) const LATEST_CHECKPOINT: &str = "SELECT workspace, size, root_hash, note, created_at \
       FROM ledger_checkpoints WHERE workspace = $1 ORDER BY size DESC LIMIT 1";
// Email (`email.rs`).
macro_rules! email_settings_cols {
    () => {
        "workspace, from_address, from_name, reply_to, brand_name, logo_url, brand_color, \
         docs_url, operator_email, enabled, created_at, updated_at"
    };
}
pub(crate) const EMAIL_SETTINGS: &str = concat!(
    "SELECT ",
    email_settings_cols!(),
    " FROM email_settings WHERE workspace = $1"
);
/// Keeps `created_at` of an existing row: events written before it are not emailed.
pub(crate) const PUT_EMAIL_SETTINGS: &str = "INSERT INTO email_settings (workspace, from_address, \
       from_name, reply_to, brand_name, logo_url, brand_color, docs_url, operator_email, enabled, \
       created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     ON CONFLICT (workspace) DO UPDATE SET from_address = excluded.from_address, \
       from_name = excluded.from_name, reply_to = excluded.reply_to, \
       brand_name = excluded.brand_name, logo_url = excluded.logo_url, \
       brand_color = excluded.brand_color, docs_url = excluded.docs_url, \
       operator_email = excluded.operator_email, enabled = excluded.enabled, \
       updated_at = excluded.updated_at";
pub(crate) const EMAIL_TEMPLATE: &str = "SELECT workspace, template, subject, text_body, html_body, \
       updated_at FROM email_templates WHERE workspace = $1 AND template = $2";
pub(crate) const LIST_EMAIL_TEMPLATES: &str = "SELECT workspace, template, subject, text_body, \
       html_body, updated_at FROM email_templates WHERE workspace = $1 ORDER BY template";
pub(crate) const PUT_EMAIL_TEMPLATE: &str = "INSERT INTO email_templates (workspace, template, \
       subject, text_body, html_body, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (workspace, template) DO UPDATE SET subject = excluded.subject, \
       text_body = excluded.text_body, html_body = excluded.html_body, \
       updated_at = excluded.updated_at";
pub(crate) const DELETE_EMAIL_TEMPLATE: &str =
    "DELETE FROM email_templates WHERE workspace = $1 AND template = $2";
/// Outbox events the email fan-out has not looked at, oldest id first (the `outbox_unemailed`
/// index); marked in the transaction that writes their messages, like the webhooks' fan-out.
pub(crate) const UNEMAILED_OUTBOX_EVENTS: &str = "SELECT workspace, id, customer, type, \
       occurred_at, CAST(data AS TEXT) AS data, created_at, delivered_at, delivery_attempts \
     FROM outbox WHERE workspace = $1 AND emailed_at IS NULL ORDER BY id LIMIT $2";
pub(crate) const MARK_OUTBOX_EMAILED: &str = "UPDATE outbox SET emailed_at = $3 \
     WHERE workspace = $1 AND id = $2 AND emailed_at IS NULL";
/// Exactly once per (event, recipient): a second fan-out of the same event does nothing. The
/// customer's test clock is read in the same statement.
pub(crate) const INSERT_EMAIL_MESSAGE: &str = "INSERT INTO email_messages (workspace, id, event, \
       event_type, template, recipient, customer, test_clock, status, attempts, next_attempt_at, \
       created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, \
       (SELECT test_clock FROM customers WHERE workspace = $1 AND id = $7), \
       'pending', 0, $8, $9, $9) \
     ON CONFLICT (workspace, event, recipient) DO NOTHING";
macro_rules! email_message_cols {
    () => {
        "workspace, id, event, event_type, template, recipient, customer, test_clock, status, \
         attempts, next_attempt_at, locked_until, subject, last_error, sent_at, created_at, \
         updated_at"
    };
}
/// Pending messages that may be due: on the wall clock (`$2`) or on a test clock (decided by the
/// caller), not claimed by a live worker (`$3`, wall time).
pub(crate) const PENDING_EMAIL_MESSAGES: &str = concat!(
    "SELECT ",
    email_message_cols!(),
    " FROM email_messages WHERE workspace = $1 AND status = 'pending' \
       AND (test_clock IS NOT NULL OR next_attempt_at <= $2) \
       AND (locked_until IS NULL OR locked_until < $3) \
     ORDER BY next_attempt_at, id LIMIT $4"
);
/// Compare-and-set claim: one worker wins.
pub(crate) const CLAIM_EMAIL_MESSAGE: &str = "UPDATE email_messages SET locked_until = $3, \
       attempts = attempts + 1 \
     WHERE workspace = $1 AND id = $2 AND status = 'pending' \
       AND (locked_until IS NULL OR locked_until < $4)";
pub(crate) const FINISH_EMAIL_MESSAGE: &str = "UPDATE email_messages SET status = $3, \
       next_attempt_at = $4, subject = COALESCE($5, subject), last_error = $6, sent_at = $7, \
       locked_until = NULL, updated_at = $8 WHERE workspace = $1 AND id = $2";
pub(crate) const EMAIL_MESSAGE_BY_ID: &str = concat!(
    "SELECT ",
    email_message_cols!(),
    " FROM email_messages WHERE workspace = $1 AND id = $2"
);
pub(crate) const LIST_EMAIL_MESSAGES: &str = concat!(
    "SELECT ",
    email_message_cols!(),
    " FROM email_messages WHERE workspace = $1 AND ($2 IS NULL OR customer = $2) \
       AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR id > $4) ORDER BY id LIMIT $5"
);
// Operator users and web sessions (`users.rs`, migration 0018/0019 web).
macro_rules! operator_user_cols {
    () => {
        "workspace, id, email, password_hash, role, created_at"
    };
}
macro_rules! web_session_cols {
    () => {
        "workspace, token_hash, kind, subject, csrf, created_at, expires_at, used_at"
    };
}
pub(crate) const CREATE_OPERATOR_USER: &str = concat!(
    "INSERT INTO operator_users (",
    operator_user_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6)"
);
pub(crate) const OPERATOR_USER_BY_EMAIL: &str = concat!(
    "SELECT ",
    operator_user_cols!(),
    " FROM operator_users WHERE workspace = $1 AND email = $2"
);
pub(crate) const OPERATOR_USER: &str = concat!(
    "SELECT ",
    operator_user_cols!(),
    " FROM operator_users WHERE workspace = $1 AND id = $2"
);
pub(crate) const LIST_OPERATOR_USERS: &str = concat!(
    "SELECT ",
    operator_user_cols!(),
    " FROM operator_users WHERE workspace = $1 ORDER BY email"
);
/// A role change that never leaves the workspace without an admin: demoting an admin matches
/// only while another admin exists (one statement, so the check and the change go together).
pub(crate) const SET_OPERATOR_ROLE: &str = "UPDATE operator_users SET role = $3 \
     WHERE workspace = $1 AND id = $2 AND (role <> 'admin' OR $3 = 'admin' OR \
     (SELECT count(*) FROM operator_users o WHERE o.workspace = $1 AND o.role = 'admin') > 1)";
/// Removing an operator, never the last admin (as above).
pub(crate) const DELETE_OPERATOR_USER: &str = "DELETE FROM operator_users \
     WHERE workspace = $1 AND id = $2 AND (role <> 'admin' OR \
     (SELECT count(*) FROM operator_users o WHERE o.workspace = $1 AND o.role = 'admin') > 1)";
/// The sessions of a removed operator.
pub(crate) const DELETE_OPERATOR_SESSIONS: &str =
    "DELETE FROM web_sessions WHERE workspace = $1 AND kind = 'operator' AND subject = $2";
pub(crate) const CREATE_WEB_SESSION: &str = concat!(
    "INSERT INTO web_sessions (",
    web_session_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);
pub(crate) const FIND_WEB_SESSION: &str = concat!(
    "SELECT ",
    web_session_cols!(),
    " FROM web_sessions WHERE token_hash = $1"
);
pub(crate) const USE_WEB_SESSION: &str = "UPDATE web_sessions SET used_at = $3 \
     WHERE workspace = $1 AND token_hash = $2 AND used_at IS NULL";
pub(crate) const DELETE_WEB_SESSION: &str =
    "DELETE FROM web_sessions WHERE workspace = $1 AND token_hash = $2";
pub(crate) const PRUNE_WEB_SESSIONS: &str =
    "DELETE FROM web_sessions WHERE workspace = $1 AND expires_at < $2";

// ---- public pages (public.rs) ----
pub(crate) const GET_PUBLIC_PAGES: &str =
    "SELECT workspace, enabled, updated_at FROM public_pages WHERE workspace = $1";
pub(crate) const PUT_PUBLIC_PAGES: &str = "INSERT INTO public_pages (workspace, enabled, \
     updated_at) VALUES ($1, $2, $3) ON CONFLICT (workspace) DO UPDATE SET \
     enabled = excluded.enabled, updated_at = excluded.updated_at";
pub(crate) const ADD_CUSTOM_DOMAIN: &str =
    "INSERT INTO custom_domains (hostname, workspace, created_at) VALUES ($1, $2, $3)";
pub(crate) const LIST_CUSTOM_DOMAINS: &str = "SELECT hostname, workspace, created_at \
     FROM custom_domains WHERE workspace = $1 ORDER BY hostname";
pub(crate) const DELETE_CUSTOM_DOMAIN: &str =
    "DELETE FROM custom_domains WHERE workspace = $1 AND hostname = $2";
pub(crate) const FIND_CUSTOM_DOMAIN: &str =
    "SELECT hostname, workspace, created_at FROM custom_domains WHERE hostname = $1";
pub(crate) const CUSTOMER_BY_EMAIL: &str = concat!(
    "SELECT ",
    customer_cols!(),
    " FROM customers WHERE workspace = $1 AND lower(email) = lower($2) \
     ORDER BY created_at, id LIMIT 1"
);
// Event amendments (`amendments.rs`).
pub(crate) const INSERT_EVENT_AMENDMENT: &str = "INSERT INTO event_amendments (workspace, \
       event_id, seq, customer, event_type, old_properties, new_properties, amended_by, \
       amended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
macro_rules! amendment_cols {
    () => {
        "workspace, event_id, seq, customer, event_type, \
         CAST(old_properties AS TEXT) AS old_properties, \
         CAST(new_properties AS TEXT) AS new_properties, amended_by, amended_at"
    };
}
pub(crate) const LATEST_EVENT_AMENDMENT: &str = concat!(
    "SELECT ",
    amendment_cols!(),
    " FROM event_amendments WHERE workspace = $1 AND event_id = $2 ORDER BY seq DESC LIMIT 1"
);
pub(crate) const EVENT_AMENDMENTS: &str = concat!(
    "SELECT ",
    amendment_cols!(),
    " FROM event_amendments WHERE workspace = $1 AND event_id = $2 ORDER BY seq"
);
pub(crate) const CUSTOMER_EVENT_AMENDMENTS: &str = concat!(
    "SELECT ",
    amendment_cols!(),
    " FROM event_amendments WHERE workspace = $1 AND customer = $2 \
       AND amended_at >= $3 AND amended_at < $4 ORDER BY amended_at, event_id, seq"
);

// The bill run's chunked reads (`billing.rs`, `BillingStore::billing_chunk`): each reads what
// one per-subscription statement above reads, for up to `CHUNK` subscriptions or customers at
// once (`$2` .. `$CHUNK+1`; a short chunk repeats its last value). Built once, then static, so
// sqlx still prepares each once per connection.

/// Values per chunked read.
pub(crate) const CHUNK: usize = 200;

fn chunk_list(first: usize) -> String {
    (first..first + CHUNK)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) static CHUNK_CUSTOMERS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        concat!(
            "SELECT ",
            customer_cols!(),
            " FROM customers WHERE workspace = $1 AND id IN ({})"
        ),
        chunk_list(2)
    )
});
pub(crate) static CHUNK_CUSTOMER_PROFILES: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            "SELECT customer, CAST(profile AS TEXT) AS profile FROM customer_profiles \
             WHERE workspace = $1 AND customer IN ({})",
            chunk_list(2)
        )
    });
/// As `INVOICE_KEYS`: in number order per subscription.
pub(crate) static CHUNK_INVOICE_KEYS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            "SELECT subscription, dedupe_key FROM invoices \
             WHERE workspace = $1 AND subscription IN ({}) ORDER BY subscription, number",
            chunk_list(2)
        )
    });
pub(crate) static CHUNK_SCHEDULED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT workspace, id, subscription, customer, plan, \
           CAST(addons AS TEXT) AS addons, effective_at, created_at, applied_at \
         FROM scheduled_changes WHERE workspace = $1 AND applied_at IS NULL \
           AND subscription IN ({})",
        chunk_list(2)
    )
});
/// As `PENDING_CHARGES`, in its order per customer.
pub(crate) static CHUNK_PENDING_CHARGES: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            "SELECT workspace, id, customer, subscription, \
               CAST(charge AS TEXT) AS charge, created_at, invoice \
             FROM pending_charges WHERE workspace = $1 AND invoice IS NULL \
               AND customer IN ({}) ORDER BY customer, created_at, id",
            chunk_list(2)
        )
    });
/// As `REDEMPTIONS`, in its order per customer.
pub(crate) static CHUNK_REDEMPTIONS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT workspace, id, customer, coupon, applied, created_at \
             FROM coupon_redemptions WHERE workspace = $1 AND customer IN ({}) \
             ORDER BY customer, created_at, id",
        chunk_list(2)
    )
});
/// As `CREDIT_BALANCE`, per customer (a customer without entries has no row: 0).
pub(crate) static CHUNK_CREDIT_BALANCES: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            "SELECT customer, CAST(COALESCE(SUM(amount_minor), 0) AS TEXT) AS total \
             FROM credit_entries WHERE workspace = $1 AND customer IN ({}) GROUP BY customer",
            chunk_list(2)
        )
    });
/// As `CUSTOMER_BALANCE`, per customer (a customer without entries has no row: 0).
pub(crate) static CHUNK_CUSTOMER_BALANCES: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            "SELECT customer, CAST(COALESCE(SUM(amount_minor), 0) AS TEXT) AS total \
             FROM balance_entries WHERE workspace = $1 AND customer IN ({}) GROUP BY customer",
            chunk_list(2)
        )
    });
/// As `AGGREGATES`, for the customers' periods starting in `[$2, $3]` (the caller keeps each
/// customer's own period), in its order per customer.
pub(crate) static CHUNK_AGGREGATES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT customer, meter, period_start, subject, group_key, \
               CAST(value AS TEXT) AS value, updated_at \
             FROM aggregates WHERE workspace = $1 AND period_start >= $2 AND period_start <= $3 \
               AND customer IN ({}) ORDER BY customer, meter, subject, group_key",
        chunk_list(4)
    )
});

// The monthly partitions of `events` (`partitions.rs`, PostgreSQL only): the functions of
// migration 0026, and the catalog's view of the tables.
pub(crate) const CREATE_EVENT_PARTITION: &str =
    "SELECT tollgate_events_partition_create($1::int4, $2::int4) AS done";
pub(crate) const DETACH_EVENT_PARTITION: &str =
    "SELECT tollgate_events_partition_detach($1::int4, $2::int4) AS done";
/// The default partition and every `events_YYYY_MM` table of `events`' schema, attached or not;
/// the estimate is the larger of the planner's (set by ANALYZE) and the live-row counter's.
pub(crate) const EVENT_PARTITIONS: &str = "SELECT c.relname::text AS name, \
       EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid \
         AND i.inhparent = 'events'::regclass) AS attached, \
       GREATEST(c.reltuples::int8, COALESCE(s.n_live_tup, 0), 0) AS rows_estimate \
     FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid \
     WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'events'::regclass) \
       AND c.relkind = 'r' \
       AND (c.relname = 'events_default' OR c.relname ~ '^events_[0-9]{4}_[0-9]{2}$') \
     ORDER BY c.relname";

// The bill run's split of work (`billing.rs`, `BillingStore::begin_bill_pass` and after; the
// table is migration 0025 (SQLite) / 0027 (PostgreSQL)'s `bill_run_claims`).

/// Every customer with a subscription has a claim row (new ones start at pass 0).
pub(crate) const BILL_PASS_CLAIM_ROWS: &str = "INSERT INTO bill_run_claims (workspace, customer, pass) \
     SELECT DISTINCT workspace, customer, 0 FROM subscriptions WHERE workspace = $1 \
     ON CONFLICT (workspace, customer) DO NOTHING";
pub(crate) const COUNT_WORKSPACE_SUBSCRIPTIONS: &str =
    "SELECT COUNT(*) AS n FROM subscriptions WHERE workspace = $1";
/// What a run of pass `$2` may claim (`$4` now) after customer `$7`: not billed since it
/// began and not being billed, or held by a worker whose lease is over.
macro_rules! bill_claimable {
    () => {
        "SELECT customer FROM bill_run_claims WHERE workspace = $1 AND customer > $7 \
           AND ((locked_until IS NULL AND pass < $2) OR locked_until < $4) \
         ORDER BY customer LIMIT $5"
    };
}
/// A claimed row takes the pass counter's value *now* (not the claiming run's): a run that
/// began after this claim was taken counts it as its own, a run that began before does not.
macro_rules! bill_claim {
    () => {
        "UPDATE bill_run_claims SET locked_by = $3, locked_until = $6, \
           pass = (SELECT last FROM document_counters WHERE workspace = $1 AND kind = 'bill_run') \
         WHERE workspace = $1 AND customer IN ("
    };
}
/// PostgreSQL: rows another worker is claiming are skipped, not waited for.
pub(crate) const CLAIM_BILL_CUSTOMERS_SKIP_LOCKED: &str = concat!(
    bill_claim!(),
    bill_claimable!(),
    " FOR UPDATE SKIP LOCKED) RETURNING customer"
);
/// SQLite: the single writer serialises claims.
pub(crate) const CLAIM_BILL_CUSTOMERS: &str =
    concat!(bill_claim!(), bill_claimable!(), ") RETURNING customer");
/// Customers a run of pass `$2` has still to see billed: claimed before it began, or held.
pub(crate) const BILL_PASS_REMAINING: &str = "SELECT COUNT(*) AS n FROM bill_run_claims \
     WHERE workspace = $1 AND (pass < $2 OR locked_until IS NOT NULL)";
/// Only the worker holding them releases them.
pub(crate) static RELEASE_BILL_CUSTOMERS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            "UPDATE bill_run_claims SET locked_by = NULL, locked_until = NULL \
             WHERE workspace = $1 AND locked_by = $2 AND customer IN ({})",
            chunk_list(3)
        )
    });
/// The subscriptions of a chunk of customers, by customer then id.
pub(crate) static CHUNK_SUBSCRIPTIONS_OF_CUSTOMERS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            concat!(
                "SELECT ",
                subscription_cols!(),
                " FROM subscriptions WHERE workspace = $1 AND customer IN ({}) \
                 ORDER BY customer, id"
            ),
            chunk_list(2)
        )
    });
