//! The conformance suite: one set of behaviours every `Store` backend must show.
//!
//! Each case is an async fn over a [`Harness`] (in the modules below); the `conformance!` macro
//! instantiates all of them once for SQLite (a temporary file, always) and once for PostgreSQL
//! (run when `TOLLGATE_TEST_DATABASE_URL` is set at build time, reported as ignored otherwise;
//! a set but unreachable URL fails loudly).
//! Every case works in a fresh random workspace, so the PostgreSQL cases run in parallel on one
//! database. Promises of one backend only (SQLite durability across reopening, PostgreSQL
//! row-level security) are in `backends`. (A test crate's root resolves `mod` paths beside
//! itself, hence the `#[path]`s into `conformance/`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

#[path = "conformance/amendments.rs"]
mod amendments;
#[path = "conformance/backends.rs"]
mod backends;
#[path = "conformance/bill_claims.rs"]
mod bill_claims;
#[path = "conformance/billing.rs"]
mod billing;
#[path = "conformance/customers.rs"]
mod customers;
#[path = "conformance/email.rs"]
mod email;
#[path = "conformance/isolation.rs"]
mod isolation;
#[path = "conformance/ledger.rs"]
mod ledger;
#[path = "conformance/listing.rs"]
mod listing;
#[path = "conformance/partitions.rs"]
mod partitions;
#[path = "conformance/payments.rs"]
mod payments;
#[path = "conformance/profiles.rs"]
mod profiles;
#[path = "conformance/records.rs"]
mod records;
#[path = "conformance/scheduling.rs"]
mod scheduling;
#[path = "conformance/support.rs"]
mod support;
#[path = "conformance/trust.rs"]
mod trust;
#[path = "conformance/usage.rs"]
mod usage;
#[path = "conformance/users.rs"]
mod users;
#[path = "conformance/webhooks.rs"]
mod webhooks;

use amendments::*;
use bill_claims::*;
use billing::*;
use customers::*;
use email::*;
use isolation::*;
use jiff::Timestamp;
use ledger::*;
use listing::*;
use payments::*;
use profiles::*;
use records::*;
use scheduling::*;
use std::sync::Arc;
use support::{create_workspace, customer, fresh};
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::{
    AggregateRow, CustomerRecord, IngestItem, IngestOutcome, PostgresStore, SqliteStore, Store,
};
use trust::*;
use usage::*;
use users::*;
use webhooks::*;

pub(crate) const DATABASE_URL_VAR: &str = "TOLLGATE_TEST_DATABASE_URL";

/// A store and a fresh workspace in it.
struct Harness {
    store: Arc<dyn Store>,
    ws: String,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    async fn new(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>) -> Harness {
        let ws = fresh("ws");
        create_workspace(store.as_ref(), &ws).await;
        Harness {
            store,
            ws,
            _dir: dir,
        }
    }

    /// Another fresh workspace in the same store.
    async fn other_workspace(&self) -> String {
        let ws = fresh("ws");
        create_workspace(self.store.as_ref(), &ws).await;
        ws
    }

    async fn customer(&self, ws: &str, id: &str) -> CustomerRecord {
        let c = customer(ws, id);
        self.store.create_customer(&c).await.unwrap();
        c
    }

    async fn ingest(&self, ws: &str, items: &[IngestItem]) -> Vec<IngestOutcome> {
        self.store
            .ingest(&WorkspaceId::from(ws), items)
            .await
            .unwrap()
    }

    async fn aggregates(&self, ws: &str, customer: &str, period: Timestamp) -> Vec<AggregateRow> {
        self.store
            .aggregates(&WorkspaceId::from(ws), &CustomerId::from(customer), period)
            .await
            .unwrap()
    }
}

async fn sqlite_harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("tollgate.db"))
        .await
        .unwrap();
    Harness::new(Arc::new(store), Some(dir)).await
}

async fn postgres_harness() -> Harness {
    Harness::new(Arc::new(postgres_store().await), None).await
}

/// The store at `TOLLGATE_TEST_DATABASE_URL`. Only the PostgreSQL tests call it, and they are
/// ignored unless the variable was set at build time (`cfg(tollgate_pg)`, see `build.rs`), so
/// a missing or unreachable database here is a failure, never a silent pass.
pub(crate) async fn postgres_store() -> PostgresStore {
    let url = std::env::var(DATABASE_URL_VAR)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| panic!("{DATABASE_URL_VAR} is not set: PostgreSQL tests cannot run"));
    match PostgresStore::connect_with(&url, 8).await {
        Ok(store) => store,
        Err(e) => panic!("{DATABASE_URL_VAR} is set but PostgreSQL at {url} failed: {e}"),
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            #[tokio::test]
            async fn backend_names_itself() {
                assert_eq!(super::sqlite_harness().await.store.backend(), "sqlite");
            }
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(&super::sqlite_harness().await).await;
                }
            )*
        }
        mod postgres {
            #[tokio::test]
            #[cfg_attr(
                not(tollgate_pg),
                ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
            )]
            async fn backend_names_itself() {
                assert_eq!(super::postgres_harness().await.store.backend(), "postgres");
            }
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[cfg_attr(
                    not(tollgate_pg),
                    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
                )]
                async fn $case() {
                    super::$case(&super::postgres_harness().await).await;
                }
            )*
        }
    };
}

conformance!(
    workspaces_and_admin_keys,
    operator_users_and_web_sessions,
    catalog_versions,
    catalog_versions_are_gapless_under_concurrency,
    customers,
    subscriptions,
    subscription_statuses_round_trip,
    api_keys,
    test_clocks,
    ingest_is_idempotent,
    amendments_commit_with_their_difference,
    concurrent_ingest_accepts_an_id_once,
    aggregate_add_and_max,
    aggregate_latest,
    aggregate_unique,
    aggregate_level_and_points,
    window_entries_and_prune,
    events_range_order_and_limit,
    workspace_isolation,
    timestamps_round_trip_to_the_microsecond,
    large_batches,
    invoices_are_numbered_gapless_and_deduped,
    invoice_batches_are_one_transaction,
    invoice_numbers_are_gapless_under_concurrency,
    invoice_effects_are_applied_with_it,
    invoice_status_moves_by_compare_and_set,
    invoice_statuses_round_trip,
    credit_notes_are_numbered_and_bounded,
    credit_note_sums_do_not_overflow,
    concurrent_credit_notes_stay_within_the_total,
    credit_ledger_and_balance,
    customer_balance_ledger,
    a_credit_lowers_the_amount_due_and_a_void_gives_back,
    concurrent_credit_stays_in_range,
    coupon_redemptions,
    pending_charges_wait_for_an_invoice,
    plan_changes_are_all_or_nothing,
    idempotency_keys_are_claimed_once,
    scheduled_changes,
    bill_run_worklists,
    billing_chunks_read_what_single_reads_do,
    bill_run_claims_split_a_pass,
    concurrent_bill_claims_are_disjoint,
    a_pending_charge_is_billed_once,
    billing_isolation,
    outbox_events_commit_with_their_change,
    jobs_are_enqueued_once_claimed_in_due_order_and_retried,
    signup_is_all_or_nothing,
    archive_revokes_keys_and_ends_subscriptions,
    billing_profiles_are_replaced_and_scoped,
    signing_keys_rotate_and_retire,
    licenses_issue_list_and_revoke,
    activations_hold_seats_until_heartbeats_stop,
    customer_pages_follow_creation_order,
    event_queries_filter_and_page,
    webhook_deliveries_are_made_once_and_claimed_once,
    webhook_order_and_settings,
    email_settings_and_templates,
    email_messages_are_enqueued_once_and_claimed_once,
    stripe_billing_cursor_moves_once_and_links_are_replaced,
    payments_settle_once_and_never_beyond_the_amount_due,
    ledger_passes_append_once_and_find_late_commits,
    concurrent_passes_append_each_record_once,
);
