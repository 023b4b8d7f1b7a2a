//! What a backend supplies so that every store method is written once (in `store.rs` and
//! `billing.rs`) over statements written once (`sql.rs`).
//!
//! A backend decides only what truly differs: how a session is opened (SQLite: `BEGIN IMMEDIATE`
//! on the single writer, a pooled reader otherwise; PostgreSQL: a transaction switched to the
//! row-level-security role with its workspace named) and the bulk path of `ingest`. Statements
//! use `$N` placeholders, which PostgreSQL numbers natively and SQLite reads as named parameters
//! that sqlx binds by their number.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::pool::PoolConnection;
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, IntoArguments, Transaction, Type};

use crate::codec::{Columns, micros};
use crate::{IngestItem, IngestOutcome, StoreResult};

/// One backend of the store. Sealed: public only so that the blanket `Store` and
/// `BillingStore` impls may name it; the module is private.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    type Conn: Conn;
    /// For logs and `/healthz`.
    const NAME: &'static str;
    /// Whether statements of many rows should use anonymous `?` placeholders: SQLite binds
    /// `$N` by name, and sqlx's binding asks SQLite for every parameter's name, which SQLite
    /// finds by a linear scan, so a statement of hundreds of `$N` binds in quadratic time
    /// (the largest single cost of a ledger pass in callgrind). PostgreSQL knows only `$N`.
    const ANONYMOUS_PARAMETERS: bool;
    /// Whether `events` is partitioned by month with its ids in `event_ids` (PostgreSQL,
    /// migration 0026): lookups by id then read the id's month there first.
    const PARTITIONED_EVENTS: bool;

    /// A transaction that may change `workspace`'s rows; it sees no other workspace's.
    async fn write(&self, workspace: &str) -> StoreResult<Self::Conn>;
    /// A session that reads `workspace`'s rows; it sees no other workspace's.
    async fn read(&self, workspace: &str) -> StoreResult<Self::Conn>;
    /// A session that may read the key rows whose hash is `secret_hash`, before any workspace
    /// is known (authentication).
    async fn key_lookup(&self, secret_hash: &str) -> StoreResult<Self::Conn>;
    /// A session that may list the workspaces themselves, and nothing inside them.
    async fn workspace_listing(&self) -> StoreResult<Self::Conn>;
    /// A transaction that may claim the due jobs of every workspace (the scheduler), and see
    /// nothing else.
    async fn job_claiming(&self) -> StoreResult<Self::Conn>;
    /// A transaction that sees no rows, for schema maintenance through the functions the
    /// migrations granted (the partitions of `events` on PostgreSQL).
    async fn maintenance(&self) -> StoreResult<Self::Conn>;
    /// Stores a non-empty batch (see [`crate::Store::ingest`]): the hot path, in bulk statements
    /// each backend writes its own way.
    async fn ingest_batch(
        &self,
        workspace: &str,
        items: &[IngestItem],
    ) -> StoreResult<Vec<IngestOutcome>>;
    /// [`crate::amendments::AmendmentStore::amend_event`]: the amendment row, its aggregate
    /// difference (applied as ingest applies updates) and its domain events, in one transaction.
    async fn amend_batch(
        &self,
        amendment: &crate::amendments::EventAmendment,
        change: &IngestItem,
        events: &[crate::outbox::OutboxEvent],
    ) -> StoreResult<()>;
}

/// A session of a backend: statements run in it, and `commit` makes its writes durable (a
/// session dropped without it rolls back).
#[async_trait]
pub trait Conn: Send {
    type Row: Columns + Send;

    async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> sqlx::Result<u64>;
    async fn fetch_all(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> sqlx::Result<Vec<Self::Row>>;
    async fn fetch_optional(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> sqlx::Result<Option<Self::Row>>;
    async fn commit(self) -> sqlx::Result<()>;
}

/// A bound value, in the stored encodings of `codec` (timestamps as microseconds, JSON as the
/// backend's JSON type).
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Flag(bool),
    Json(&'a serde_json::Value),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}
macro_rules! id_arg {
    ($($id:ty),*) => {$(
        impl<'a> From<&'a $id> for Arg<'a> {
            fn from(id: &'a $id) -> Self {
                Arg::from(id.as_str())
            }
        }
    )*};
}
id_arg!(
    tollgate_core::ids::WorkspaceId,
    tollgate_core::ids::CustomerId,
    tollgate_core::ids::KeyId
);

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::OptText(v.as_deref())
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::OptText(v)
    }
}
impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Flag(v)
    }
}
impl From<Timestamp> for Arg<'_> {
    fn from(v: Timestamp) -> Self {
        Arg::Int(micros(v))
    }
}
impl From<Option<Timestamp>> for Arg<'_> {
    fn from(v: Option<Timestamp>) -> Self {
        Arg::OptInt(v.map(micros))
    }
}
impl<'a> From<&'a serde_json::Value> for Arg<'a> {
    fn from(v: &'a serde_json::Value) -> Self {
        Arg::Json(v)
    }
}

/// `args![a, b, ...]`: the values of a statement's `$1, $2, ...`, in order.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        &[$($crate::backend::Arg::from($value)),*]
    };
}
pub(crate) use args;

/// A session over any sqlx database: a pooled connection outside a transaction (SQLite's
/// readers, where one statement needs none) or a transaction.
pub enum Session<DB: Database> {
    Pooled(PoolConnection<DB>),
    Tx(Transaction<'static, DB>),
}

impl<DB: Database> Session<DB> {
    pub(crate) fn conn(&mut self) -> &mut DB::Connection {
        match self {
            Session::Pooled(c) => c,
            Session::Tx(t) => t,
        }
    }
}

/// `rows_affected`, which each driver's result has but no sqlx trait names.
pub trait RowsAffected {
    fn rows(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

type Query<DB> = sqlx::query::Query<'static, DB, <DB as Database>::Arguments>;

/// A database that can bind every [`Arg`]: both drivers, through the one blanket impl below.
pub trait BindArgs: Database {
    fn query(sql: &'static str, args: &[Arg<'_>]) -> Query<Self>;
}

impl<DB> BindArgs for DB
where
    DB: Database,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB> + Type<DB>,
    for<'a> Json<&'a serde_json::Value>: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> Option<i64>: Encode<'a, DB> + Type<DB>,
    for<'a> bool: Encode<'a, DB> + Type<DB>,
{
    fn query(sql: &'static str, args: &[Arg<'_>]) -> Query<DB> {
        args.iter().fold(sqlx::query(sql), |q, arg| match *arg {
            Arg::Text(v) => q.bind(v),
            Arg::OptText(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::OptInt(v) => q.bind(v),
            Arg::Flag(v) => q.bind(v),
            Arg::Json(v) => q.bind(Json(v)),
        })
    }
}

#[async_trait]
impl<DB> Conn for Session<DB>
where
    DB: BindArgs,
    DB::Row: Columns,
    DB::QueryResult: RowsAffected,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Row = DB::Row;

    async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> sqlx::Result<u64> {
        let done = DB::query(sql, args).execute(self.conn()).await?;
        Ok(done.rows())
    }

    async fn fetch_all(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> sqlx::Result<Vec<DB::Row>> {
        DB::query(sql, args).fetch_all(self.conn()).await
    }

    async fn fetch_optional(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> sqlx::Result<Option<DB::Row>> {
        DB::query(sql, args).fetch_optional(self.conn()).await
    }

    async fn commit(self) -> sqlx::Result<()> {
        match self {
            Session::Pooled(_) => Ok(()),
            Session::Tx(t) => t.commit().await,
        }
    }
}

/// One statement in a session of its own (`session`: a [`Backend`] method's future), committed,
/// and the row it returned decoded. The shape of most store methods.
pub(crate) async fn run_optional<C: Conn, T>(
    session: impl Future<Output = StoreResult<C>>,
    sql: &'static str,
    args: &[Arg<'_>],
    decode: impl Fn(&C::Row) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut tx = session.await?;
    let row = tx.fetch_optional(sql, args).await?;
    tx.commit().await?;
    row.as_ref().map(decode).transpose()
}

/// [`run_optional`] for every row the statement returns.
pub(crate) async fn run_all<C: Conn, T>(
    session: impl Future<Output = StoreResult<C>>,
    sql: &'static str,
    args: &[Arg<'_>],
    decode: impl Fn(&C::Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut tx = session.await?;
    let rows = tx.fetch_all(sql, args).await?;
    tx.commit().await?;
    rows.iter().map(decode).collect()
}

/// [`run_optional`] for a statement that returns no rows: how many it changed.
pub(crate) async fn run_execute<C: Conn>(
    session: impl Future<Output = StoreResult<C>>,
    sql: &'static str,
    args: &[Arg<'_>],
) -> StoreResult<u64> {
    let mut tx = session.await?;
    let rows = tx.execute(sql, args).await?;
    tx.commit().await?;
    Ok(rows)
}
