//! The in-process check allocates nothing in the steady state (customer loaded, nothing
//! recorded): a counting global allocator counts every allocation made while `Engine::check`
//! runs, for a feature gate, a rolling-window quota per user, a calendar-period quota and a
//! request rate limit.
//!
//! Allocations are counted per thread (only the thread that runs the checks), so the runtime's
//! or the test harness's other threads cannot make the count flaky. The checks are polled once
//! with no runtime (`now_or_never`): a check of a loaded customer never waits, and a check that
//! would wait fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use futures_util::FutureExt;
use rust_decimal::Decimal;
use serde_json::json;
use tollgate_server::clock::SystemClock;
use tollgate_server::engine::{CheckRequest, CheckTarget, Engine};

/// Counts allocations (and reallocations) of the current thread while `COUNTING` is on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator also runs while thread locals are torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// const-initialized thread locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(Cell::get)
}

/// A plan with each kind of limit a check decides; the limits are far away so every check is
/// admitted (a denial builds its upgrade hint, which may allocate).
const CATALOG: &str = r#"
currency: USD
meters:
  runs: { event: run, aggregation: count }
  calls: { event: call, aggregation: count }
  tokens: { event: call, aggregation: sum, property: tokens }
features:
  sso: switch
  seats: limit
plans:
  pro:
    features: { sso: true, seats: 10 }
    rate_limits:
      - { limit: 1000000000, per: minute, scope: customer }
      - { limit: 1000000000, per: minute, scope: subject }
    quotas:
      - { meter: runs, limit: 1000000000, window: 5h, per: subject }
      - { meter: calls, limit: 1000000000, period: billing, enforcement: hard }
"#;

const CHECKS: usize = 1_000;

#[test]
fn a_check_of_a_loaded_customer_allocates_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = runtime.block_on(async {
        let store = tollgate_store::SqliteStore::open(&dir.path().join("alloc.db"))
            .await
            .unwrap();
        let store: Arc<dyn tollgate_store::Store> = Arc::new(store);
        tollgate_server::bootstrap(store.as_ref(), None, jiff::Timestamp::now())
            .await
            .unwrap();
        let engine = Engine::new(store.clone(), Arc::new(SystemClock));
        let catalog = tollgate_core::catalog::parse_yaml(CATALOG).unwrap();
        let compiled = engine
            .apply_catalog(tollgate_server::DEFAULT_WORKSPACE, catalog)
            .await
            .unwrap();
        let now = jiff::Timestamp::now();
        store
            .create_customer(&tollgate_store::CustomerRecord {
                workspace: tollgate_server::DEFAULT_WORKSPACE.into(),
                id: "acme".into(),
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
            .unwrap();
        store
            .create_subscription(&tollgate_store::SubscriptionRecord {
                workspace: tollgate_server::DEFAULT_WORKSPACE.into(),
                id: "sub_acme".into(),
                customer: "acme".into(),
                plan: "pro".into(),
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
            .unwrap();
        engine
    });
    let request = |target: CheckTarget, subject: Option<&str>| CheckRequest {
        workspace: tollgate_server::DEFAULT_WORKSPACE.into(),
        customer: "acme".into(),
        target,
        quantity: Decimal::ONE,
        subject: subject.map(Into::into),
        consume: false,
        event_id: None,
        properties: Default::default(),
    };
    // Some usage in the rolling window and the period, recorded by consuming checks, so the
    // checks below read real counters (not only empty ones).
    for (meter, user) in [("runs", "u1"), ("runs", "u1"), ("calls", "u1")] {
        let mut consume = request(CheckTarget::Meter(meter.into()), Some(user));
        consume.consume = true;
        let outcome = runtime.block_on(engine.check(&consume)).unwrap();
        assert!(outcome.decision.allowed, "{:?}", outcome.decision);
    }
    let cases = [
        (
            "feature gate",
            request(CheckTarget::Feature("sso".into()), None),
        ),
        (
            "limit feature",
            request(CheckTarget::Feature("seats".into()), None),
        ),
        (
            "rolling 5h quota per user",
            request(CheckTarget::Meter("runs".into()), Some("u1")),
        ),
        (
            "calendar period quota",
            request(CheckTarget::Meter("calls".into()), Some("u1")),
        ),
        (
            "meter without a quota",
            request(CheckTarget::Meter("tokens".into()), None),
        ),
    ];
    for (name, req) in &cases {
        let check = || {
            engine
                .check(req)
                .now_or_never()
                .unwrap_or_else(|| panic!("{name}: the check waited"))
                .unwrap()
        };
        // Warm: the first check of each kind may create its counters (a new subject's rate
        // window); what is measured is every check after it.
        let first = check();
        assert!(first.decision.allowed, "{name}: {:?}", first.decision);
        assert!(
            first.rate_limit.is_some(),
            "{name}: the rate limits counted"
        );
        let mut last = None;
        let n = allocations(|| {
            for _ in 0..CHECKS {
                last = Some(check());
            }
        });
        let last = last.unwrap();
        assert!(last.decision.allowed, "{name}: {:?}", last.decision);
        assert_eq!(n, 0, "{name}: {n} allocations in {CHECKS} checks");
    }
    // The counter is real: the same loop with a request built per check allocates.
    let (_, req) = &cases[0];
    let n = allocations(|| {
        for _ in 0..10 {
            let owned = req.clone();
            drop(engine.check(&owned).now_or_never());
        }
    });
    assert!(n >= 10, "cloning a request allocates ({n})");
    // The rolling quota still counts what was recorded (2 runs of u1), so the checks above read
    // the real window.
    let runs = engine
        .check(&cases[2].1)
        .now_or_never()
        .unwrap()
        .unwrap()
        .decision;
    assert_eq!(runs.used, Some(Decimal::from(2)), "{runs:?}");
}
