//! Shared counters in Redis, for several Tollgate nodes on one store.
//!
//! One node keeps its counters in memory (`engine`); that stays the default and makes no Redis
//! call. With a Redis URL, the counters that decide checks — request rate limits (fixed windows),
//! calendar-period quotas and exact rolling windows — live in Redis instead, and every decision
//! is one Lua script (`lua`) that reads, compares and adds atomically, so two nodes together
//! never admit more than a limit. This module is the Redis side: programs in, replies out,
//! connection health, the failure mode; `engine::shared` decides what to ask.
//!
//! When Redis fails, the backend opens a circuit for [`RETRY_AFTER_MS`]: calls fail at once
//! (no timeout per request while Redis is down), every failure increments
//! `tollgate_counter_backend_errors_total{op}`, `tollgate_counter_backend_up` drops to 0, and a
//! warning is logged at most every [`LOG_EVERY_MS`] with the number of failures since the last.
//! What a check does then is the configured [`FailureMode`].

pub mod bus;
mod connection;
pub mod keys;
mod lua;
mod program;

pub use connection::{CLUSTER_SCHEME, cluster_nodes, ping};
pub use program::{CheckProgram, CheckReply, Counter, Increment, QuotaProbe, RateHit, Seed};

use rust_decimal::Decimal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use connection::{Connection, Connector};

/// Redis is not asked again for this long after a failure.
pub const RETRY_AFTER_MS: i64 = 1_000;
/// At most one warning per this many milliseconds while Redis fails.
pub const LOG_EVERY_MS: i64 = 10_000;
/// Keys whose counters could not be updated are deleted (and so re-seeded from the store) when
/// Redis is back; past this many the oldest are dropped and a warning says so.
const MAX_REPAIRS: usize = 100_000;

/// What a check does when the shared counters cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Answer from this node's own in-memory counters (each node then admits up to the limit on
    /// its own): the product keeps working, limits are enforced per node until Redis is back.
    #[default]
    FailOpen,
    /// Refuse checks that need a shared counter (`503`, code `counter_unavailable`).
    FailClosed,
}

/// A failure mode that is not `fail_open` or `fail_closed`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0:?} is not a failure mode: use `fail_open` or `fail_closed`")]
pub struct NotAFailureMode(pub String);

impl std::str::FromStr for FailureMode {
    type Err = NotAFailureMode;

    /// `fail_open` / `fail_closed` (also with `-`, or just `open` / `closed`), for flags and
    /// environment variables.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "fail_open" | "open" => Ok(FailureMode::FailOpen),
            "fail_closed" | "closed" => Ok(FailureMode::FailClosed),
            _ => Err(NotAFailureMode(s.to_owned())),
        }
    }
}

impl std::fmt::Display for FailureMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailureMode::FailOpen => "fail_open",
            FailureMode::FailClosed => "fail_closed",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis is unavailable (a recent call failed; retrying in at most {RETRY_AFTER_MS} ms)")]
    CircuitOpen,
    #[error("redis answered something unexpected: {0}")]
    Protocol(String),
    #[error("quantity {quantity} is too large for a shared counter")]
    OutOfRange { quantity: Decimal },
    #[error("not a Redis URL: {0}")]
    BadUrl(String),
}

/// The Redis connection and its health.
pub struct RedisCounters {
    connector: Connector,
    mode: FailureMode,
    scripts: lua::Scripts,
    /// Unix milliseconds before which Redis is not asked (the circuit is open).
    down_until: AtomicI64,
    was_down: AtomicBool,
    last_warning: AtomicI64,
    failures_since_warning: AtomicU64,
    needs_repair: AtomicBool,
    repairs: Mutex<Vec<String>>,
}

fn unix_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl RedisCounters {
    /// Prepares a connection to `url` without connecting: a node starts even while Redis is
    /// down, and connects on first use. `redis://...` is one Redis; `redis+cluster://host:port,
    /// host:port` a Redis Cluster (see `connection`).
    pub fn new(url: &str, mode: FailureMode) -> Result<Self, CounterError> {
        let connector = Connector::new(url)?;
        metrics::gauge!("tollgate_counter_backend_up").set(1.0);
        Ok(RedisCounters {
            connector,
            mode,
            scripts: lua::Scripts::new(),
            down_until: AtomicI64::new(0),
            was_down: AtomicBool::new(false),
            last_warning: AtomicI64::new(0),
            failures_since_warning: AtomicU64::new(0),
            needs_repair: AtomicBool::new(false),
            repairs: Mutex::new(Vec::new()),
        })
    }

    pub fn mode(&self) -> FailureMode {
        self.mode
    }

    /// Clients for the invalidation subscriber's own connection: one Redis, or each node of a
    /// cluster named in the URL (any one of them hears every message).
    pub fn subscriber_clients(&self) -> &[redis::Client] {
        self.connector.subscriber_clients()
    }

    /// Whether the counters are on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.connector.is_cluster()
    }

    /// Whether Redis may be asked now (no failure in the last [`RETRY_AFTER_MS`]).
    pub fn available(&self) -> bool {
        unix_ms() >= self.down_until.load(Ordering::Relaxed)
    }

    /// Records a failure of `op`: opens the circuit, counts it, warns (rate-limited).
    pub fn failed(&self, op: &'static str, error: &CounterError) {
        if !matches!(error, CounterError::CircuitOpen) {
            self.down_until
                .store(unix_ms() + RETRY_AFTER_MS, Ordering::Relaxed);
            if !self.was_down.swap(true, Ordering::Relaxed) {
                metrics::gauge!("tollgate_counter_backend_up").set(0.0);
            }
        }
        self.report(op, error);
    }

    /// Counts and logs (rate-limited) a failure without opening the circuit: for the
    /// subscriber, whose connection is not the one checks use.
    pub fn report(&self, op: &'static str, error: &CounterError) {
        metrics::counter!("tollgate_counter_backend_errors_total", "op" => op).increment(1);
        let now = unix_ms();
        let suppressed = self.failures_since_warning.fetch_add(1, Ordering::Relaxed);
        let last = self.last_warning.load(Ordering::Relaxed);
        if now - last >= LOG_EVERY_MS
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.failures_since_warning.store(0, Ordering::Relaxed);
            tracing::warn!(
                op,
                %error,
                failures_since_last_warning = suppressed + 1,
                mode = ?self.mode,
                "shared counters unavailable: checks {}",
                match self.mode {
                    FailureMode::FailOpen => "are answered from this node's own counters (fail open)",
                    FailureMode::FailClosed => "that need a shared counter are refused (fail closed)",
                }
            );
        }
    }

    /// Remembers counters that missed an update while Redis failed: they are deleted when Redis
    /// is back, so the next use rebuilds them from the store (which has every committed event).
    pub fn needs_rebuild(&self, counters: impl IntoIterator<Item = Counter>) {
        let mut repairs = self
            .repairs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for c in counters {
            match c {
                Counter::Period { key, .. } => repairs.push(key),
                Counter::Window { zset, total, .. } => repairs.extend([total, zset]),
            }
        }
        if repairs.len() > MAX_REPAIRS {
            let excess = repairs.len() - MAX_REPAIRS;
            repairs.drain(..excess);
            tracing::warn!(
                dropped = excess,
                "too many shared counters to rebuild; some stay short until they expire"
            );
        }
        self.needs_repair.store(true, Ordering::Relaxed);
    }

    /// A connection if Redis may be asked; first deletes counters that missed updates.
    async fn connection(&self, op: &'static str) -> Result<Connection, CounterError> {
        if !self.available() {
            let e = CounterError::CircuitOpen;
            self.failed(op, &e);
            return Err(e);
        }
        let mut conn = self.connector.conn.clone();
        if self.needs_repair.swap(false, Ordering::Relaxed) {
            let keys = std::mem::take(
                &mut *self
                    .repairs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if let Err(e) = delete(&mut conn, &keys).await {
                self.repairs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(keys);
                self.needs_repair.store(true, Ordering::Relaxed);
                return Err(self.fail(op, e.into()));
            }
            tracing::info!(
                counters = keys.len(),
                "rebuilding shared counters that missed updates"
            );
        }
        Ok(conn)
    }

    fn fail(&self, op: &'static str, e: CounterError) -> CounterError {
        self.failed(op, &e);
        e
    }

    fn succeeded(&self) {
        if self.was_down.swap(false, Ordering::Relaxed) {
            metrics::gauge!("tollgate_counter_backend_up").set(1.0);
            tracing::info!("shared counters reachable again");
        }
    }

    async fn run(
        &self,
        op: &'static str,
        script: &redis::Script,
        keys: &program::KeyTable,
        args: &[String],
    ) -> Result<Vec<String>, CounterError> {
        let mut conn = self.connection(op).await?;
        match program::invocation(script, keys, args)
            .invoke_async::<Vec<String>>(&mut conn)
            .await
        {
            Ok(reply) => {
                self.succeeded();
                Ok(reply)
            }
            Err(e) => Err(self.fail(op, e.into())),
        }
    }

    /// Runs a check program: see [`CheckReply`].
    pub async fn check(&self, program: &CheckProgram) -> Result<CheckReply, CounterError> {
        let (keys, args) = program::encode_check(program);
        let reply = self.run("check", &self.scripts.check, &keys, &args).await?;
        program::parse_check(&reply).inspect_err(|e| self.failed("check", e))
    }

    /// Adds committed uses; returns the (0-based) increments whose counter does not exist.
    pub async fn apply(
        &self,
        now: i64,
        increments: &[Increment],
    ) -> Result<Vec<usize>, CounterError> {
        if increments.is_empty() {
            return Ok(Vec::new());
        }
        let (keys, args) = program::encode_increments(now, increments);
        let reply = self.run("apply", &self.scripts.apply, &keys, &args).await?;
        reply
            .iter()
            .map(|i| program::number::<usize>(i).map(|i| i - 1))
            .collect()
    }

    /// Takes back reserved uses.
    pub async fn give_back(&self, now: i64, increments: &[Increment]) -> Result<(), CounterError> {
        if increments.is_empty() {
            return Ok(());
        }
        let (keys, args) = program::encode_increments(now, increments);
        let mut conn = self.connection("give_back").await?;
        match program::invocation(&self.scripts.give_back, &keys, &args)
            .invoke_async::<i64>(&mut conn)
            .await
        {
            Ok(_) => {
                self.succeeded();
                Ok(())
            }
            Err(e) => Err(self.fail("give_back", e.into())),
        }
    }

    /// Creates counters that do not exist; `true` per seed that was written.
    pub async fn seed(&self, seeds: &[Seed]) -> Result<Vec<bool>, CounterError> {
        let (keys, args) = program::encode_seeds(seeds);
        let reply = self.run("seed", &self.scripts.seed, &keys, &args).await?;
        Ok(reply.iter().map(|s| s == "1").collect())
    }

    /// Publishes an invalidation to every node.
    pub async fn publish(&self, channel: &str, payload: &str) -> Result<(), CounterError> {
        let mut conn = self.connection("publish").await?;
        match redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
        {
            Ok(_) => {
                self.succeeded();
                Ok(())
            }
            Err(e) => Err(self.fail("publish", e.into())),
        }
    }
}

/// Deletes counters: in one pipeline per customer (its keys share a slot; a cluster refuses a
/// pipeline across slots), in one pipeline for all on a single Redis.
async fn delete(conn: &mut Connection, keys: &[String]) -> redis::RedisResult<()> {
    let mut groups: std::collections::HashMap<&str, redis::Pipeline> =
        std::collections::HashMap::new();
    for k in keys {
        let tag = match conn {
            Connection::Single(_) => "",
            Connection::Cluster(_) => keys::hash_tag(k),
        };
        groups
            .entry(tag)
            .or_insert_with(redis::pipe)
            .del(k)
            .ignore();
    }
    for (_, pipe) in groups {
        pipe.query_async::<()>(conn).await?;
    }
    Ok(())
}
