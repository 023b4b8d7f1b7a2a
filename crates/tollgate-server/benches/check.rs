//! In-process check latency against the floor of a bare hash-map lookup, in the same run.
//!
//! `cargo bench -p tollgate-server --bench check` prints a table of medians and p99s. The engine
//! runs on a temporary SQLite store with the Apex catalog; checks hit a customer whose state is
//! already loaded (the steady state of a running server). Each check borrows one prepared
//! `CheckRequest` (as the HTTP handler does with the one it parsed); the `engine.check` rows go
//! through `Runtime::block_on` on a current-thread runtime, the `polled once` rows poll the
//! check's future once without a runtime (a check of a loaded customer never waits), which is the
//! engine's own cost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use rust_decimal::Decimal;
use serde_json::json;
use tollgate_server::clock::SystemClock;
use tollgate_server::engine::{CheckRequest, CheckTarget, Engine};

const SAMPLES: usize = 200_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn report(name: &str, mut samples: Vec<Duration>, floor: Option<Duration>) -> Duration {
    samples.sort();
    let median = percentile(&samples, 0.5);
    let ratio = floor.map_or(String::from("1.0x (floor)"), |f| {
        format!(
            "{:.1}x floor",
            median.as_nanos() as f64 / f.as_nanos().max(1) as f64
        )
    });
    println!(
        "| {name:<44} | {:>9} ns | {:>9} ns | {ratio:>14} |",
        median.as_nanos(),
        percentile(&samples, 0.99).as_nanos()
    );
    median
}

/// Times one call at a time; batches of 16 calls amortise the timer's own cost.
fn time_each(mut f: impl FnMut()) -> Vec<Duration> {
    const BATCH: u32 = 16;
    (0..SAMPLES / BATCH as usize)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..BATCH {
                f();
            }
            start.elapsed() / BATCH
        })
        .collect()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = runtime.block_on(async {
        let store = tollgate_store::SqliteStore::open(&dir.path().join("bench.db"))
            .await
            .expect("store");
        let store: Arc<dyn tollgate_store::Store> = Arc::new(store);
        tollgate_server::bootstrap(store.as_ref(), None, jiff::Timestamp::now())
            .await
            .expect("bootstrap");
        let engine = Arc::new(Engine::new(store.clone(), Arc::new(SystemClock)));
        let yaml = include_str!("../../../examples/catalogs/apex.yaml");
        let catalog = tollgate_core::catalog::parse_yaml(yaml).expect("apex catalog");
        let compiled = engine
            .apply_catalog(tollgate_server::DEFAULT_WORKSPACE, catalog)
            .await
            .expect("apply");
        let now = jiff::Timestamp::now();
        store
            .create_customer(&tollgate_store::CustomerRecord {
                workspace: tollgate_server::DEFAULT_WORKSPACE.into(),
                id: "bench".into(),
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
                id: "sub_bench".into(),
                customer: "bench".into(),
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
        engine
    });
    let request = |target: CheckTarget, subject: Option<&str>| CheckRequest {
        workspace: tollgate_server::DEFAULT_WORKSPACE.into(),
        customer: "bench".into(),
        target,
        quantity: Decimal::ONE,
        subject: subject.map(Into::into),
        consume: false,
        event_id: None,
        properties: Default::default(),
    };
    // Warm: load the customer's state.
    runtime
        .block_on(engine.check(&request(
            CheckTarget::Feature("advanced_analytics".into()),
            None,
        )))
        .expect("check");

    let map: HashMap<(String, String), u64> = (0..10_000)
        .map(|i| ((format!("ws_{}", i % 7), format!("customer_{i}")), i))
        .collect();
    let probe = ("ws_3".to_owned(), "customer_4242".to_owned());

    println!(
        "| path (median of {SAMPLES} calls)                  |    median |       p99 |          ratio |"
    );
    println!(
        "|----------------------------------------------|-----------|-----------|----------------|"
    );
    let floor = report(
        "bare HashMap<(String, String), _> lookup",
        time_each(|| {
            black_box(map.get(black_box(&probe)));
        }),
        None,
    );
    let feature = request(CheckTarget::Feature("advanced_analytics".into()), None);
    report(
        "engine.check: feature gate",
        time_each(|| {
            black_box(runtime.block_on(engine.check(&feature)).expect("check"));
        }),
        Some(floor),
    );
    let quota = request(CheckTarget::Meter("agent_runs".into()), Some("u1"));
    report(
        "engine.check: rolling 5h quota per user",
        time_each(|| {
            black_box(runtime.block_on(engine.check(&quota)).expect("check"));
        }),
        Some(floor),
    );
    for (name, req) in [
        ("engine.check polled once: feature gate", &feature),
        ("engine.check polled once: rolling 5h quota", &quota),
    ] {
        report(
            name,
            time_each(|| {
                black_box(
                    engine
                        .check(req)
                        .now_or_never()
                        .expect("a loaded customer's check never waits")
                        .expect("check"),
                );
            }),
            Some(floor),
        );
    }
}
