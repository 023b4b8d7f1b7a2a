//! Memory per loaded customer and the time to load many customers' state (issue 11), measured,
//! never asserted.
//!
//! `cargo bench -p tollgate-server --bench state` (default 1,000,000 customers; override with
//! `TOLLGATE_BENCH_CUSTOMERS`). The store is a SQLite file in a temporary directory with the Apex
//! catalog. One customer and its subscription are created through the store; the others are
//! copies of those rows made by one SQL statement each (creating a million through the store, a
//! transaction and an fsync each, would take a quarter of an hour and measure nothing of interest
//! here). Then each customer's state is loaded into the engine the way a server loads it: by the
//! customer's first check. The global allocator counts the bytes live, so the bytes per loaded
//! customer are exact (what the engine keeps, not the allocator's slack); the process's resident
//! set is printed beside them. Last, checks of customers picked across the whole set show whether
//! a check slows down as the number of loaded customers grows (the first row's figure is with one
//! loaded customer).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark fails loudly

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::json;
use tollgate_server::clock::SystemClock;
use tollgate_server::engine::{CheckRequest, CheckTarget, Engine};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's own arguments; the counter is
// bookkeeping only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Copies the template row of `table` (`WHERE id = template`) `n` times, numbering the copies
/// `c0 .. c{n-1}` in the columns `renamed` names (with a prefix each), every other column as is.
async fn copy_rows(
    pool: &sqlx::SqlitePool,
    table: &str,
    template: &str,
    renamed: &[(&str, &str)],
    n: usize,
) {
    // The table and column names are this file's own literals and the schema's: no input.
    let columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
    )))
    .fetch_all(pool)
    .await
    .expect("columns");
    let select: Vec<String> = columns
        .iter()
        .map(|c| match renamed.iter().find(|(name, _)| name == c) {
            Some((_, prefix)) => format!("'{prefix}c' || n.i"),
            None => format!("t.{c}"),
        })
        .collect();
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {n}) \
         INSERT INTO {table} ({}) SELECT {} FROM {table} t CROSS JOIN n WHERE t.id = '{template}'",
        columns.join(", "),
        select.join(", ")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .expect("copy rows");
}

fn request(customer: &str) -> CheckRequest {
    CheckRequest {
        workspace: tollgate_server::DEFAULT_WORKSPACE.into(),
        customer: customer.into(),
        target: CheckTarget::Feature("advanced_analytics".into()),
        quantity: Decimal::ONE,
        subject: None,
        consume: false,
        event_id: None,
        properties: Default::default(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let customers = env_count("TOLLGATE_BENCH_CUSTOMERS", 1_000_000).max(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    runtime.block_on(async {
        let store = tollgate_store::SqliteStore::open(&path)
            .await
            .expect("store");
        let store: Arc<dyn tollgate_store::Store> = Arc::new(store);
        let now = jiff::Timestamp::now();
        tollgate_server::bootstrap(store.as_ref(), None, now)
            .await
            .expect("bootstrap");
        let engine = Arc::new(Engine::new(store.clone(), Arc::new(SystemClock)));
        let yaml = include_str!("../../../examples/catalogs/apex.yaml");
        let catalog = tollgate_core::catalog::parse_yaml(yaml).expect("apex catalog");
        let compiled = engine
            .apply_catalog(tollgate_server::DEFAULT_WORKSPACE, catalog)
            .await
            .expect("apply");
        store
            .create_customer(&tollgate_store::CustomerRecord {
                workspace: tollgate_server::DEFAULT_WORKSPACE.into(),
                id: "template".into(),
                name: None,
                email: None,
                suspended: false,
                has_payment_method: true,
                test_clock: None,
                metadata: json!({}),
                created_at: now,
                address: serde_json::Value::Null,
                tax_ids: json!([]),
                archived_at: None,
            })
            .await
            .expect("customer");
        store
            .create_subscription(&tollgate_store::SubscriptionRecord {
                workspace: tollgate_server::DEFAULT_WORKSPACE.into(),
                id: "template".into(),
                customer: "template".into(),
                plan: "mid".into(),
                catalog_version: compiled.version,
                status: tollgate_store::SubscriptionStatus::Active,
                addons: json!({}),
                started_at: now,
                billing_anchor: tollgate_core::period::Period::calendar_month(now).start,
                trial_end: None,
                canceled_at: None,
                ends_at: None,
            })
            .await
            .expect("subscription");

        let began = Instant::now();
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("pool");
        copy_rows(&pool, "customers", "template", &[("id", "")], customers).await;
        copy_rows(
            &pool,
            "subscriptions",
            "template",
            &[("id", "sub_"), ("customer", "")],
            customers,
        )
        .await;
        pool.close().await;
        println!(
            "created {customers} customers and subscriptions in {:.1} s (copies of one, in SQL)",
            began.elapsed().as_secs_f64()
        );

        // One loaded customer: the check's cost before the engine holds many.
        engine.check(&request("c0")).await.expect("check");
        let one = time_checks(&engine, customers.min(1), 100_000).await;

        let (live_before, rss_before) = (live_bytes(), rss_kb());
        let began = Instant::now();
        let mut marks = Vec::new();
        for i in 1..customers {
            let outcome = engine
                .check(&request(&format!("c{i}")))
                .await
                .expect("check");
            std::hint::black_box(outcome);
            if (i + 1).is_power_of_two() || i + 1 == customers {
                marks.push((i + 1, began.elapsed()));
            }
        }
        let load = began.elapsed();
        let (live_after, rss_after) = (live_bytes(), rss_kb());
        let loaded = customers.saturating_sub(1).max(1);
        let bytes = (live_after - live_before) as f64 / loaded as f64;
        let rss = (rss_after.saturating_sub(rss_before)) as f64 * 1024.0 / loaded as f64;
        let many = time_checks(&engine, customers, 100_000).await;

        println!();
        println!("| figure | value |");
        println!("|---|---:|");
        println!(
            "| customers loaded (first check each, one after another) | {customers} |"
        );
        println!(
            "| time to load them | {:.1} s ({:.1} µs per customer, {:.0} customers/s) |",
            load.as_secs_f64(),
            load.as_secs_f64() * 1e6 / loaded as f64,
            loaded as f64 / load.as_secs_f64()
        );
        for (n, at) in marks.iter().filter(|(n, _)| n.trailing_zeros() >= 14 || *n == customers) {
            println!("| ... first {n} loaded after | {:.1} s |", at.as_secs_f64());
        }
        println!("| heap bytes live per loaded customer (counting allocator) | {bytes:.0} B |");
        println!("| resident set growth per loaded customer | {rss:.0} B |");
        println!(
            "| heap live / resident set at the end | {:.0} MB / {:.0} MB |",
            live_after as f64 / 1e6,
            rss_after as f64 / 1024.0
        );
        println!(
            "| check (feature gate), 1 customer loaded: median / p99 | {} ns / {} ns |",
            one.0.as_nanos(),
            one.1.as_nanos()
        );
        println!(
            "| check (feature gate), customers picked across all {customers} loaded: median / p99 | {} ns / {} ns |",
            many.0.as_nanos(),
            many.1.as_nanos()
        );
    });
}

/// Median and p99 of `samples` checks of customers `c0 .. c{spread-1}`, picked by a stride that
/// walks the whole range (so the lookups are not all in one cache line's worth of state).
async fn time_checks(engine: &Engine, spread: usize, samples: usize) -> (Duration, Duration) {
    let ids: Vec<String> = (0..samples)
        .map(|k| format!("c{}", (k * 7_919) % spread.max(1)))
        .collect();
    let requests: Vec<CheckRequest> = ids.iter().map(|id| request(id)).collect();
    let mut times = Vec::with_capacity(samples);
    for req in &requests {
        let start = Instant::now();
        let outcome = engine.check(req).await.expect("check");
        times.push(start.elapsed());
        std::hint::black_box(outcome);
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}
