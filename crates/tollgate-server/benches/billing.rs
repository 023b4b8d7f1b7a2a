//! Billing at scale, measured (never asserted):
//! - the upcoming invoice of one customer with many events (read from aggregates, so its cost
//!   does not grow with the number of events);
//! - a bill run over many customers.
//!
//! `cargo bench -p tollgate-server --bench billing` (defaults: 10,000,000 events, 100,000
//! customers; override with `TOLLGATE_BENCH_EVENTS` and `TOLLGATE_BENCH_CUSTOMERS`). Runs on a
//! SQLite file in a temporary directory with `synchronous=FULL`, as the server does.
//!
//! The bill run is measured beside its baseline in the same run: two stores with the same
//! subscriptions, one billed by `bill_run` (chunked reads), the other by
//! `bill_run_per_subscription` (each subscription's rows read alone, the code before chunked
//! reads), interleaved; both must write the same invoices. `TOLLGATE_BENCH_BASELINE=0` skips
//! the baseline, `only` runs the baseline alone (to profile each path on its own).
//!
//! With `TOLLGATE_BENCH_DATABASE_URL` (a PostgreSQL database; the bench adds two fresh
//! workspaces to it), the same runs on PostgreSQL: one workspace billed by one worker, the
//! other by `TOLLGATE_BENCH_WORKERS` (default 4), one after the other for each run; both must
//! write the same invoices. `TOLLGATE_BENCH_SQLITE=0` skips the SQLite runs (not the upcoming
//! invoice).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_core::ids::{CustomerId, WorkspaceId};

use serde_json::json;
use tollgate_server::auth::Principal;
use tollgate_server::clock::Clock;
use tollgate_server::engine::{Engine, EventIn};

/// A clock frozen at the end of November 2026, so the run bills a closed period.
struct Frozen(jiff::Timestamp);

impl Clock for Frozen {
    fn now(&self) -> jiff::Timestamp {
        self.0
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

async fn setup(now: jiff::Timestamp) -> (tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = tollgate_store::SqliteStore::open(&dir.path().join("bench.db"))
        .await
        .expect("store");
    let store: Arc<dyn tollgate_store::Store> = Arc::new(store);
    tollgate_server::bootstrap(store.as_ref(), None, now)
        .await
        .expect("bootstrap");
    let engine = Arc::new(Engine::new(store, Arc::new(Frozen(now))));
    let catalog =
        tollgate_core::catalog::parse_yaml(include_str!("../../../examples/catalogs/lexecon.yaml"))
            .expect("catalog");
    engine
        .apply_catalog(tollgate_server::DEFAULT_WORKSPACE, catalog)
        .await
        .expect("apply");
    (dir, engine)
}

/// A clock the benchmark moves.
struct Movable(Arc<std::sync::Mutex<jiff::Timestamp>>);

impl Clock for Movable {
    fn now(&self) -> jiff::Timestamp {
        *self.0.lock().expect("clock")
    }
}

async fn setup_with_clock(
    clock: Arc<std::sync::Mutex<jiff::Timestamp>>,
) -> (tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = tollgate_store::SqliteStore::open(&dir.path().join("bench.db"))
        .await
        .expect("store");
    let store: Arc<dyn tollgate_store::Store> = Arc::new(store);
    let now = *clock.lock().expect("clock");
    tollgate_server::bootstrap(store.as_ref(), None, now)
        .await
        .expect("bootstrap");
    let engine = Arc::new(Engine::new(store, Arc::new(Movable(clock))));
    let catalog =
        tollgate_core::catalog::parse_yaml(include_str!("../../../examples/catalogs/lexecon.yaml"))
            .expect("catalog");
    engine
        .apply_catalog(tollgate_server::DEFAULT_WORKSPACE, catalog)
        .await
        .expect("apply");
    (dir, engine)
}

async fn subscribe(engine: &Engine, customer: &str, version: i64, start: jiff::Timestamp) {
    subscribe_in(
        engine,
        tollgate_server::DEFAULT_WORKSPACE,
        customer,
        version,
        start,
    )
    .await;
}

async fn subscribe_in(
    engine: &Engine,
    ws: &str,
    customer: &str,
    version: i64,
    start: jiff::Timestamp,
) {
    let store = engine.store();
    store
        .create_customer(&tollgate_store::CustomerRecord {
            workspace: ws.into(),
            id: customer.into(),
            name: None,
            email: None,
            suspended: false,
            has_payment_method: true,
            test_clock: None,
            metadata: json!({}),
            created_at: start,
            address: serde_json::Value::Null,
            tax_ids: json!([]),
            archived_at: None,
        })
        .await
        .expect("customer");
    store
        .create_subscription(&tollgate_store::SubscriptionRecord {
            workspace: ws.into(),
            id: format!("sub_{customer}"),
            customer: customer.into(),
            plan: "startup".into(),
            catalog_version: version,
            status: tollgate_store::SubscriptionStatus::Active,
            addons: json!({}),
            started_at: start,
            billing_anchor: start,
            trial_end: None,
            canceled_at: None,
            ends_at: None,
        })
        .await
        .expect("subscription");
}

fn median(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[(samples.len() * 99) / 100],
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let events = env_count("TOLLGATE_BENCH_EVENTS", 10_000_000);
    let customers = env_count("TOLLGATE_BENCH_CUSTOMERS", 100_000);
    let start: jiff::Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
    let late_november: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
    runtime.block_on(async {
        // 1. One customer with `events` decisions.
        let (_dir, engine) = setup(late_november).await;
        subscribe(&engine, "heavy", 1, start).await;
        let admin = Principal::Admin { workspace: tollgate_server::DEFAULT_WORKSPACE.into() };
        let began = Instant::now();
        let mut sent = 0;
        while sent < events {
            let n = (events - sent).min(10_000);
            let batch: Vec<EventIn> = (sent..sent + n)
                .map(|i| EventIn {
                    id: Some(format!("e{i}")),
                    customer: Some("heavy".into()),
                    event_type: Some("decision.evaluated".into()),
                    timestamp: Some("2026-11-15T00:00:00Z".into()),
                    subject: None,
                    properties: json!({"actor": format!("a{}", i % 1000)}).as_object().unwrap().clone(),
                })
                .collect();
            let report = engine.ingest(&admin, batch).await.expect("ingest");
            assert_eq!(report.accepted, n);
            sent += n;
        }
        let ingest = began.elapsed();
        println!("ingested {events} events for one customer in {:.1} s ({:.0} events/s, in-process, batches of 10,000)",
            ingest.as_secs_f64(), events as f64 / ingest.as_secs_f64());
        let store = engine.store().clone();
        let sub = store.list_subscriptions(&WorkspaceId::from(tollgate_server::DEFAULT_WORKSPACE), &CustomerId::from("heavy")).await.unwrap().remove(0);
        let catalog = engine.catalog(tollgate_server::DEFAULT_WORKSPACE, 1).await.unwrap();
        let mut samples = Vec::new();
        let mut total = String::new();
        for _ in 0..200 {
            let t = Instant::now();
            let draft = tollgate_server::billing::upcoming_invoice(store.as_ref(), &sub, &catalog.catalog, late_november).await.unwrap();
            samples.push(t.elapsed());
            total = draft.total.to_decimal().to_string();
        }
        let (p50, p99) = median(samples);
        println!("| upcoming invoice, 1 customer, {events} events | p50 {:.3} ms | p99 {:.3} ms | total {total} |",
            p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3);

        // 2. The monthly bill run over `customers` subscriptions: November's opening invoices
        //    are made by a first run; the second closes November (one invoice each). Each run
        //    is timed on a store of its own, the baseline (per-subscription reads) first.
        // `0`: no baseline; `only`: the baseline alone (to profile one path at a time).
        if let Ok(url) = std::env::var("TOLLGATE_BENCH_DATABASE_URL") {
            postgres_runs(&url, customers, start).await;
        }
        if std::env::var("TOLLGATE_BENCH_SQLITE").is_ok_and(|v| v == "0") {
            return;
        }
        let choice = std::env::var("TOLLGATE_BENCH_BASELINE").unwrap_or_default();
        let baseline = choice != "0";
        let chunked = choice != "only";
        let clock = Arc::new(std::sync::Mutex::new(start));
        let (_dir2, engine) = setup_with_clock(clock.clone()).await;
        let (_dir3, old_engine) = setup_with_clock(clock.clone()).await;
        let began = Instant::now();
        for i in 0..customers {
            if chunked {
                subscribe(&engine, &format!("c{i}"), 1, start).await;
            }
            if baseline {
                subscribe(&old_engine, &format!("c{i}"), 1, start).await;
            }
        }
        let stores = usize::from(baseline) + usize::from(chunked);
        println!("created {customers} customers and subscriptions in {stores} store(s) in {:.1} s (one transaction each)", began.elapsed().as_secs_f64());
        println!("load average before the runs: {}", load_average());
        let ws = tollgate_server::DEFAULT_WORKSPACE;
        for (name, at) in [("bill run (opening invoices)", None), ("monthly bill run (closing invoices)", Some("2026-12-01T00:00:01Z"))] {
            if let Some(at) = at {
                *clock.lock().unwrap() = at.parse().unwrap();
            }
            let mut old = None;
            if baseline {
                let began = Instant::now();
                let report = tollgate_server::app::bill_run::bill_run_per_subscription(&old_engine, ws, &|_, _, _| {}).await.unwrap();
                let run = began.elapsed();
                assert!(report.errors.is_empty(), "{:?}", report.errors.first());
                println!("| {name}, {customers} subscriptions, per-subscription reads (before) | {:.1} s | {} invoices | {:.0} invoices/s |",
                    run.as_secs_f64(), report.invoices_created, report.invoices_created as f64 / run.as_secs_f64());
                old = Some(report.invoices_created);
            }
            if !chunked {
                continue;
            }
            let began = Instant::now();
            let report = tollgate_server::app::bill_run::bill_run(&engine, ws, tollgate_server::app::bill_run::BillRunOptions::default(), &|_, _, _| {}).await.unwrap();
            let run = began.elapsed();
            assert!(report.errors.is_empty(), "{:?}", report.errors.first());
            assert_eq!(report.invoices_created, customers, "one invoice per subscription");
            println!("| {name}, {customers} subscriptions, chunked reads (after) | {:.1} s | {} invoices | {:.0} invoices/s |",
                run.as_secs_f64(), report.invoices_created, report.invoices_created as f64 / run.as_secs_f64());
            if let Some(old) = old {
                assert_eq!(old, report.invoices_created, "both runs write the same invoices");
            }
        }
        println!("load average after the runs: {}", load_average());
        // The same invoices, line for line, on both stores (a sample of customers).
        if baseline && chunked {
            for i in (0..customers).step_by((customers / 20).max(1)) {
                let customer = CustomerId::from(format!("c{i}").as_str());
                let ws = WorkspaceId::from(tollgate_server::DEFAULT_WORKSPACE);
                let new = engine.store().list_invoices(&ws, &customer).await.unwrap();
                let old = old_engine.store().list_invoices(&ws, &customer).await.unwrap();
                assert_eq!(new.len(), old.len());
                for (n, o) in new.iter().zip(&old) {
                    assert_eq!((&n.dedupe_key, n.total_minor, n.amount_due_minor, &n.document), (&o.dedupe_key, o.total_minor, o.amount_due_minor, &o.document));
                }
            }
            println!("checked: both stores hold the same invoices (every {}th customer compared)", (customers / 20).max(1));
        }
    });
}

/// The bill runs on PostgreSQL: two fresh workspaces with `customers` subscriptions each, one
/// billed by one worker and the other by `TOLLGATE_BENCH_WORKERS`, run after run.
async fn postgres_runs(url: &str, customers: usize, start: jiff::Timestamp) {
    let workers = env_count("TOLLGATE_BENCH_WORKERS", 4);
    let clock = Arc::new(std::sync::Mutex::new(start));
    let store: Arc<dyn tollgate_store::Store> = Arc::new(
        tollgate_store::PostgresStore::connect(url)
            .await
            .expect("PostgreSQL"),
    );
    let engine = Arc::new(Engine::new(store.clone(), Arc::new(Movable(clock.clone()))));
    let catalog =
        tollgate_core::catalog::parse_yaml(include_str!("../../../examples/catalogs/lexecon.yaml"))
            .expect("catalog");
    let suffix = std::process::id();
    let spaces = [
        (1, format!("bench_w1_{suffix}")),
        (workers, format!("bench_w{workers}_{suffix}")),
    ];
    let began = Instant::now();
    for (_, ws) in &spaces {
        store
            .create_workspace(&tollgate_store::WorkspaceRecord {
                id: ws.clone(),
                name: ws.clone(),
                created_at: start,
            })
            .await
            .expect("workspace");
        engine
            .apply_catalog(ws, catalog.clone())
            .await
            .expect("apply");
        // Eight writers at once: the setup is not what is measured.
        let mut tasks = Vec::new();
        for part in 0..8 {
            let (engine, ws) = (engine.clone(), ws.clone());
            tasks.push(tokio::spawn(async move {
                for i in (part..customers).step_by(8) {
                    subscribe_in(&engine, &ws, &format!("c{i}"), 1, start).await;
                }
            }));
        }
        for t in tasks {
            t.await.expect("setup");
        }
    }
    println!(
        "PostgreSQL: created {customers} customers and subscriptions in 2 workspaces in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    println!("load average before the runs: {}", load_average());
    for (name, at) in [
        ("bill run (opening invoices)", None),
        (
            "monthly bill run (closing invoices)",
            Some("2026-12-01T00:00:01Z"),
        ),
    ] {
        if let Some(at) = at {
            *clock.lock().unwrap() = at.parse().unwrap();
        }
        for (n, ws) in &spaces {
            let options = tollgate_server::app::bill_run::BillRunOptions {
                workers: std::num::NonZeroUsize::new(*n).expect("workers"),
            };
            let began = Instant::now();
            let report =
                tollgate_server::app::bill_run::bill_run(&engine, ws, options, &|_, _, _| {})
                    .await
                    .unwrap();
            let run = began.elapsed();
            assert!(report.errors.is_empty(), "{:?}", report.errors.first());
            assert_eq!(
                report.invoices_created, customers,
                "one invoice per subscription"
            );
            println!(
                "| PostgreSQL {name}, {customers} subscriptions, {n} worker(s) | {:.1} s | {} invoices | {:.0} invoices/s |",
                run.as_secs_f64(),
                report.invoices_created,
                report.invoices_created as f64 / run.as_secs_f64()
            );
        }
    }
    println!("load average after the runs: {}", load_average());
    for i in (0..customers).step_by((customers / 20).max(1)) {
        let customer = CustomerId::from(format!("c{i}").as_str());
        let one = store
            .list_invoices(&WorkspaceId::from(spaces[0].1.as_str()), &customer)
            .await
            .unwrap();
        let many = store
            .list_invoices(&WorkspaceId::from(spaces[1].1.as_str()), &customer)
            .await
            .unwrap();
        assert_eq!(one.len(), many.len());
        for (a, b) in one.iter().zip(&many) {
            assert_eq!(
                (
                    &a.dedupe_key,
                    a.total_minor,
                    a.amount_due_minor,
                    &a.document["lines"]
                ),
                (
                    &b.dedupe_key,
                    b.total_minor,
                    b.amount_due_minor,
                    &b.document["lines"]
                )
            );
        }
    }
    println!(
        "checked: both workspaces hold the same invoices (every {}th customer compared)",
        (customers / 20).max(1)
    );
}

/// `/proc/loadavg`'s three averages, as printed beside each figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
