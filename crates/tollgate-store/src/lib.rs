//! Persistence for Tollgate, behind one trait with two backends: SQLite (the embedded default, WAL,
//! one file under the data dir) and PostgreSQL (many nodes, row-level security per workspace).
//!
//! The store knows rows, not rules: which period an event falls in and what it adds to which
//! meter is decided by the caller with `tollgate-core` and handed in as [`AggregateUpdate`]s, so
//! both backends stay thin and the conformance suite in `tests/` can hold them to the same
//! behaviour. Every method is written once (`store.rs`, `billing.rs`) over statements written
//! once (`sql.rs`); a backend (`backend.rs`) supplies only how a session opens and its bulk
//! ingest, so the backends cannot drift apart method by method.

use async_trait::async_trait;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tollgate_core::ids::{CustomerId, KeyId, WorkspaceId};

pub mod amendments;
mod backend;
mod batch;
pub mod billing;
mod codec;
pub mod customers;
pub mod email;
pub mod growth;
pub mod inspect;
pub mod jobs;
pub mod ledger;
mod migrations;
pub mod outbox;
pub mod partitions;
pub mod payments;
mod postgres;
pub mod profiles;
pub mod public;
#[cfg(test)]
mod scratch;
mod sql;
mod sqlite;
mod store;
pub mod trust;
pub mod users;
pub mod webhooks;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Everything that can go wrong in a store. Callers map these to API errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {id:?} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    /// The change conflicts with the stored state (e.g. an invoice no longer in the expected
    /// status, a refund beyond the invoice total).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The input cannot be stored as it is (e.g. a sum of amounts beyond 64 bits); `code` is
    /// stable, for the API's error code.
    #[error("{code}: {detail}")]
    Invalid {
        code: tollgate_core::code::Code,
        detail: String,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What an idempotency key holds: the request it was claimed for and, once that request
/// answered, its status and body (`None` while it runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    pub status: Option<u16>,
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceRecord {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
}

/// A customer of the operator. `id` is chosen by the operator (or generated) and unique per
/// workspace; events name customers by it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub workspace: String,
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub suspended: bool,
    /// Whether a payment method is on file (decides where a trial ends up).
    pub has_payment_method: bool,
    /// A test clock this customer follows instead of the wall clock.
    pub test_clock: Option<String>,
    pub metadata: serde_json::Value,
    pub created_at: Timestamp,
    /// Postal address, a JSON object as the API validated it; `null` when none.
    #[serde(default)]
    pub address: serde_json::Value,
    /// Tax ids, a JSON array of `{"type", "value"}` objects as the API validated them.
    #[serde(default = "empty_array")]
    pub tax_ids: serde_json::Value,
    /// When the customer was archived (`DELETE /v1/customers/{id}`); the row stays so its
    /// invoices and usage keep their owner.
    #[serde(default)]
    pub archived_at: Option<Timestamp>,
}

fn empty_array() -> serde_json::Value {
    serde_json::Value::Array(Vec::new())
}

/// The subscription lifecycle is the domain's: this is core's enum, re-exported at the path the
/// store always had it, and its transitions are `tollgate_core::lifecycle::subscription::apply`.
pub use tollgate_core::lifecycle::SubscriptionStatus;

/// A customer's subscription to one plan of one catalog version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub workspace: String,
    pub id: String,
    pub customer: String,
    pub plan: String,
    /// The catalog version the plan was taken from: applying a new catalog never changes what an
    /// existing subscription pays until it is moved.
    pub catalog_version: i64,
    pub status: SubscriptionStatus,
    /// Add-on key to quantity.
    pub addons: serde_json::Value,
    pub started_at: Timestamp,
    /// Billing periods are computed from this anchor (calendar month start for monthly plans).
    pub billing_anchor: Timestamp,
    pub trial_end: Option<Timestamp>,
    pub canceled_at: Option<Timestamp>,
    /// A cancellation that takes effect at this time (period end).
    pub ends_at: Option<Timestamp>,
}

/// An API key of a customer. Only the hash of the secret is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub workspace: String,
    pub id: String,
    pub customer: String,
    pub name: Option<String>,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
    /// The first characters of the secret, to recognise a key in a list.
    pub prefix: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// An admin key of a workspace (operator access). Only the hash is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminKeyRecord {
    pub workspace: String,
    pub id: String,
    pub secret_hash: String,
    pub created_at: Timestamp,
}

/// A clock that tests and operators move by hand (Stripe's test clocks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestClockRecord {
    pub workspace: String,
    pub id: String,
    pub name: Option<String>,
    pub frozen_time: Timestamp,
    pub created_at: Timestamp,
}

/// A stored catalog version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogVersionRecord {
    pub workspace: String,
    pub version: i64,
    /// The validated catalog (`tollgate_core::catalog::Catalog`) as JSON.
    pub catalog: serde_json::Value,
    pub created_at: Timestamp,
}

/// One usage event as accepted by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub workspace: String,
    /// The caller's id: a second event with the same id is a duplicate and counts once.
    pub id: String,
    pub customer: String,
    pub event_type: String,
    pub timestamp: Timestamp,
    /// Who inside the customer did it (a user), if anyone.
    pub subject: Option<String>,
    pub properties: serde_json::Value,
    pub received_at: Timestamp,
}

/// What one accepted event adds to one meter's aggregates. Computed by the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateUpdate {
    pub meter: String,
    /// Start of the billing period the event falls in.
    pub period_start: Timestamp,
    /// `""` for the whole customer, else the subject the row counts for.
    pub subject: String,
    /// Canonical group-by values (`"model=gpt-4,tier=T2"`), `""` when the meter has no groups.
    pub group_key: String,
    pub op: AggregateOp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AggregateOp {
    /// count and sum.
    Add(Decimal),
    Max(Decimal),
    /// The value replaces the stored one if `at` is not older than the stored one's.
    Latest {
        value: Decimal,
        at: Timestamp,
    },
    /// Adds 1 to the row if this value was not seen in this row before.
    Unique(String),
    /// A level change at `at` (time-weighted meters); kept as a point, the row's value is the
    /// most recent level.
    Level {
        value: Decimal,
        at: Timestamp,
    },
    /// An entry of an exact rolling window; `period_start` is ignored, rows expire with the window.
    WindowEntry {
        quantity: Decimal,
        at: Timestamp,
    },
}

/// An event with the aggregate updates it brings if it is new.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestItem {
    pub event: EventRecord,
    pub updates: Vec<AggregateUpdate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestOutcome {
    /// Stored, and its updates applied.
    Accepted,
    /// An event with this id was already stored: nothing changed.
    Duplicate,
}

/// One row of aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateRow {
    pub meter: String,
    pub period_start: Timestamp,
    pub subject: String,
    pub group_key: String,
    pub value: Decimal,
    /// For `Latest`: the time of the value kept.
    pub updated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowEntryRow {
    pub meter: String,
    pub subject: String,
    pub group_key: String,
    pub at: Timestamp,
    pub quantity: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelPoint {
    pub meter: String,
    pub subject: String,
    pub group_key: String,
    pub at: Timestamp,
    pub value: Decimal,
}

/// Which events a query returns; every field left `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub customer: Option<String>,
    pub event_type: Option<String>,
    pub subject: Option<String>,
    /// Events at or after this time.
    pub from: Option<Timestamp>,
    /// Events before this time.
    pub to: Option<Timestamp>,
}

/// Where a page of a list starts: after the row with this sort key (its time and its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct After<'a> {
    pub at: Timestamp,
    pub id: &'a str,
}

/// The whole persistence surface. Every method is scoped to a workspace except the key lookups
/// that *find* the workspace from a secret's hash.
#[async_trait]
pub trait Store:
    amendments::AmendmentStore
    + billing::BillingStore
    + customers::CustomerStore
    + email::EmailStore
    + growth::GrowthStore
    + outbox::OutboxStore
    + payments::PaymentStore
    + profiles::ProfileStore
    + public::PublicStore
    + jobs::JobStore
    + ledger::LedgerStore
    + partitions::PartitionStore
    + trust::TrustStore
    + users::UserStore
    + webhooks::WebhookStore
    + Send
    + Sync
    + 'static
{
    /// Which backend this is, for logs and `/healthz`.
    fn backend(&self) -> &'static str;

    // Workspaces and admin keys.
    async fn create_workspace(&self, workspace: &WorkspaceRecord) -> StoreResult<()>;
    async fn get_workspace(&self, id: &str) -> StoreResult<Option<WorkspaceRecord>>;
    /// Inserts an admin key; a key with the same hash is left as it is.
    async fn put_admin_key(&self, key: &AdminKeyRecord) -> StoreResult<()>;
    async fn find_admin_key(&self, secret_hash: &str) -> StoreResult<Option<AdminKeyRecord>>;

    // Catalog versions.
    /// Stores a new version and returns its number (1, 2, ...).
    async fn add_catalog_version(
        &self,
        workspace: &WorkspaceId,
        catalog: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<i64>;
    async fn latest_catalog(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<CatalogVersionRecord>>;
    async fn catalog_version(
        &self,
        workspace: &WorkspaceId,
        version: i64,
    ) -> StoreResult<Option<CatalogVersionRecord>>;

    // Customers.
    async fn create_customer(&self, customer: &CustomerRecord) -> StoreResult<()>;
    async fn get_customer(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<CustomerRecord>>;
    async fn list_customers(&self, workspace: &WorkspaceId) -> StoreResult<Vec<CustomerRecord>>;
    /// Replaces the mutable fields (name, email, suspended, payment method, metadata, address,
    /// tax ids).
    async fn update_customer(&self, customer: &CustomerRecord) -> StoreResult<()>;

    // Subscriptions.
    async fn create_subscription(&self, subscription: &SubscriptionRecord) -> StoreResult<()>;
    async fn update_subscription(&self, subscription: &SubscriptionRecord) -> StoreResult<()>;
    async fn get_subscription(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<SubscriptionRecord>>;
    /// The customer's subscriptions, newest first.
    async fn list_subscriptions(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<SubscriptionRecord>>;

    // API keys.
    async fn create_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    async fn find_api_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKeyRecord>>;
    async fn list_api_keys(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Marks a key revoked; `NotFound` if the customer has no such key.
    ///
    /// The ids are types, so they go in one order only:
    ///
    /// ```no_run
    /// # use tollgate_core::ids::{CustomerId, KeyId, WorkspaceId};
    /// # async fn revoke(store: &dyn tollgate_store::Store, ws: &WorkspaceId, customer: &CustomerId, key: &KeyId) {
    /// let _ = store.revoke_api_key(ws, customer, key, jiff::Timestamp::UNIX_EPOCH).await;
    /// # }
    /// ```
    ///
    /// ```compile_fail
    /// # use tollgate_core::ids::{CustomerId, KeyId, WorkspaceId};
    /// # async fn revoke(store: &dyn tollgate_store::Store, ws: &WorkspaceId, customer: &CustomerId, key: &KeyId) {
    /// let _ = store.revoke_api_key(ws, key, customer, jiff::Timestamp::UNIX_EPOCH).await;
    /// # }
    /// ```
    async fn revoke_api_key(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        key_id: &KeyId,
        at: Timestamp,
    ) -> StoreResult<ApiKeyRecord>;

    // Test clocks.
    async fn create_test_clock(&self, clock: &TestClockRecord) -> StoreResult<()>;
    async fn get_test_clock(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<TestClockRecord>>;
    async fn set_test_clock_time(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        time: Timestamp,
    ) -> StoreResult<()>;

    // Usage.
    /// Stores a batch of events in one transaction and applies the updates of the new ones.
    /// Returns one outcome per item, in order. After `Ok`, the accepted events are durable.
    async fn ingest(
        &self,
        workspace: &WorkspaceId,
        items: &[IngestItem],
    ) -> StoreResult<Vec<IngestOutcome>>;
    /// Aggregate rows of a customer for one period (all meters, subjects, groups).
    async fn aggregates(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        period_start: Timestamp,
    ) -> StoreResult<Vec<AggregateRow>>;
    /// Rolling-window entries of a customer at or after `since`.
    async fn window_entries(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        since: Timestamp,
    ) -> StoreResult<Vec<WindowEntryRow>>;
    /// Deletes window entries older than `before` (they can no longer fall in any window).
    async fn prune_window_entries(
        &self,
        workspace: &WorkspaceId,
        before: Timestamp,
    ) -> StoreResult<u64>;
    /// Level points of a customer's time-weighted meters in `[from, to)`, plus the last point
    /// before `from` for each (meter, subject, group) so the opening level is known.
    async fn level_points(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<LevelPoint>>;
    /// Claims an idempotency key for a request whose method, path and body hash to
    /// `request_hash`: `None` when this call claimed it (run the request, then
    /// [`Store::complete_idempotency_key`] or [`Store::release_idempotency_key`]), else what is
    /// stored under it. A claim made before `expired_before` is forgotten first.
    async fn claim_idempotency_key(
        &self,
        workspace: &WorkspaceId,
        key: &str,
        request_hash: &str,
        at: Timestamp,
        expired_before: Timestamp,
    ) -> StoreResult<Option<IdempotencyRecord>>;
    /// Keeps the answer of a claimed request, for its retries.
    async fn complete_idempotency_key(
        &self,
        workspace: &WorkspaceId,
        key: &str,
        status: u16,
        body: &str,
    ) -> StoreResult<()>;
    /// Gives up a claim whose request failed, so a retry runs it again.
    async fn release_idempotency_key(&self, workspace: &WorkspaceId, key: &str) -> StoreResult<()>;
    /// One event by its id (ids are unique per workspace): how a retried consuming check learns
    /// that it was admitted before.
    async fn get_event(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<EventRecord>>;
    /// Raw events of a customer in `[from, to)`, oldest first (audit and recompute, never checks).
    async fn events(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        from: Timestamp,
        to: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>>;
    /// A page of the workspace's customers in creation order (`created_at`, then id), after
    /// `after` when given, at most `limit` of them. Keyset paging: no offset is scanned.
    async fn customers_page(
        &self,
        workspace: &WorkspaceId,
        after: Option<After<'_>>,
        limit: i64,
    ) -> StoreResult<Vec<CustomerRecord>>;
    /// The workspace's events matching `filter`, oldest first (time, then id), after `after`
    /// when given, at most `limit` of them (query and export, never checks).
    async fn query_events(
        &self,
        workspace: &WorkspaceId,
        filter: &EventFilter,
        after: Option<After<'_>>,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>>;
}
