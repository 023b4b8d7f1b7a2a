//! The conformance suite: one set of behaviours every `Store` backend must show.
//!
//! Each case is an async fn over a [`Harness`]; the `conformance!` macro instantiates all of them
//! once for SQLite (a temporary file, always) and once for PostgreSQL (only when
//! `TOLLGATE_TEST_DATABASE_URL` is set; a set but unreachable URL fails loudly). Every case works
//! in a fresh random workspace, so the PostgreSQL cases run in parallel on one database.
//! Backend-specific promises (SQLite durability across reopen, PostgreSQL row-level security)
//! are tested at the end.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use tollgate_store::{
    AdminKeyRecord, AggregateOp, AggregateRow, AggregateUpdate, ApiKeyRecord, CustomerRecord,
    EventRecord, IngestItem, IngestOutcome, LevelPoint, PostgresStore, SqliteStore, Store,
    StoreError, SubscriptionRecord, SubscriptionStatus, TestClockRecord, WindowEntryRow,
    WorkspaceRecord,
};

const DATABASE_URL_VAR: &str = "TOLLGATE_TEST_DATABASE_URL";

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
        self.store.ingest(ws, items).await.unwrap()
    }

    async fn aggregates(&self, ws: &str, customer: &str, period: Timestamp) -> Vec<AggregateRow> {
        self.store.aggregates(ws, customer, period).await.unwrap()
    }
}

async fn sqlite_harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("tollgate.db"))
        .await
        .unwrap();
    Harness::new(Arc::new(store), Some(dir)).await
}

/// `None` (the case is skipped) when no database is configured.
async fn postgres_harness() -> Option<Harness> {
    let store = postgres_store().await?;
    Some(Harness::new(Arc::new(store), None).await)
}

async fn postgres_store() -> Option<PostgresStore> {
    let Ok(url) = std::env::var(DATABASE_URL_VAR) else {
        eprintln!("{DATABASE_URL_VAR} is not set: PostgreSQL case skipped");
        return None;
    };
    match PostgresStore::connect_with(&url, 8).await {
        Ok(store) => Some(store),
        Err(e) => panic!("{DATABASE_URL_VAR} is set but PostgreSQL at {url} failed: {e}"),
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(&super::sqlite_harness().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    if let Some(h) = super::postgres_harness().await {
                        super::$case(&h).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    workspaces_and_admin_keys,
    catalog_versions,
    catalog_versions_are_gapless_under_concurrency,
    customers,
    subscriptions,
    api_keys,
    test_clocks,
    ingest_is_idempotent,
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
);

// ---------------------------------------------------------------------------------------------
// Builders.

fn fresh(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

const PERIOD: &str = "2026-01-01T00:00:00Z";

async fn create_workspace(store: &dyn Store, ws: &str) {
    store
        .create_workspace(&WorkspaceRecord {
            id: ws.to_owned(),
            name: format!("Workspace {ws}"),
            created_at: ts("2026-01-01T00:00:00.123456Z"),
        })
        .await
        .unwrap();
}

fn customer(ws: &str, id: &str) -> CustomerRecord {
    CustomerRecord {
        workspace: ws.to_owned(),
        id: id.to_owned(),
        name: Some(format!("Customer {id}")),
        email: Some(format!("{id}@example.com")),
        suspended: false,
        has_payment_method: true,
        test_clock: None,
        metadata: json!({"tier": "gold", "seats": 3}),
        created_at: ts("2026-01-02T03:04:05.678901Z"),
    }
}

fn event(ws: &str, id: &str, customer: &str, at: Timestamp) -> EventRecord {
    EventRecord {
        workspace: ws.to_owned(),
        id: id.to_owned(),
        customer: customer.to_owned(),
        event_type: "api_call".to_owned(),
        timestamp: at,
        subject: Some("alice".to_owned()),
        properties: json!({"tokens": 12, "model": "gpt-4", "nested": {"a": [1, 2]}}),
        received_at: at,
    }
}

fn update(meter: &str, op: AggregateOp) -> AggregateUpdate {
    AggregateUpdate {
        meter: meter.to_owned(),
        period_start: ts(PERIOD),
        subject: String::new(),
        group_key: String::new(),
        op,
    }
}

fn item(ws: &str, id: &str, customer: &str, updates: Vec<AggregateUpdate>) -> IngestItem {
    IngestItem {
        event: event(ws, id, customer, ts("2026-01-05T00:00:00Z")),
        updates,
    }
}

fn add(meter: &str, x: &str) -> AggregateUpdate {
    update(meter, AggregateOp::Add(dec(x)))
}

/// The value of the row `(meter, "", "")` in the test period.
async fn value_of(h: &Harness, ws: &str, customer: &str, meter: &str) -> Option<Decimal> {
    h.aggregates(ws, customer, ts(PERIOD))
        .await
        .into_iter()
        .find(|r| r.meter == meter && r.subject.is_empty() && r.group_key.is_empty())
        .map(|r| r.value)
}

fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, want_kind: &str) {
    match r {
        Err(StoreError::NotFound { kind, .. }) => assert_eq!(kind, want_kind),
        other => panic!("expected NotFound {{ kind: {want_kind:?} }}, got {other:?}"),
    }
}

fn assert_exists<T: std::fmt::Debug>(r: Result<T, StoreError>, want_kind: &str, want_id: &str) {
    match r {
        Err(StoreError::AlreadyExists { kind, id }) => {
            assert_eq!(kind, want_kind);
            assert_eq!(id, want_id);
        }
        other => panic!("expected AlreadyExists {{ kind: {want_kind:?} }}, got {other:?}"),
    }
}

use IngestOutcome::{Accepted, Duplicate};

// ---------------------------------------------------------------------------------------------
// Cases.

async fn workspaces_and_admin_keys(h: &Harness) {
    let s = h.store.as_ref();
    let w = s.get_workspace(&h.ws).await.unwrap().unwrap();
    assert_eq!(w.id, h.ws);
    assert_eq!(w.name, format!("Workspace {}", h.ws));
    assert_eq!(w.created_at, ts("2026-01-01T00:00:00.123456Z"));
    assert_eq!(s.get_workspace(&fresh("missing")).await.unwrap(), None);
    let again = s
        .create_workspace(&WorkspaceRecord {
            id: h.ws.clone(),
            name: "again".into(),
            created_at: Timestamp::UNIX_EPOCH,
        })
        .await;
    assert_exists(again, "workspace", &h.ws);

    let hash = fresh("hash");
    let key = AdminKeyRecord {
        workspace: h.ws.clone(),
        id: "admin_1".into(),
        secret_hash: hash.clone(),
        created_at: ts("2026-01-03T00:00:00Z"),
    };
    s.put_admin_key(&key).await.unwrap();
    assert_eq!(s.find_admin_key(&hash).await.unwrap(), Some(key.clone()));
    // Same hash again: left as it is.
    let twin = AdminKeyRecord {
        id: "admin_2".into(),
        created_at: ts("2026-02-03T00:00:00Z"),
        ..key.clone()
    };
    s.put_admin_key(&twin).await.unwrap();
    assert_eq!(s.find_admin_key(&hash).await.unwrap(), Some(key.clone()));
    assert_eq!(s.find_admin_key(&fresh("nope")).await.unwrap(), None);

    let orphan = AdminKeyRecord {
        workspace: fresh("missing"),
        secret_hash: fresh("hash"),
        ..key
    };
    assert_not_found(s.put_admin_key(&orphan).await, "workspace");
}

async fn catalog_versions(h: &Harness) {
    let s = h.store.as_ref();
    assert_eq!(s.latest_catalog(&h.ws).await.unwrap(), None);
    let at = ts("2026-01-04T00:00:00.000001Z");
    for n in 1..=3 {
        let v = s
            .add_catalog_version(&h.ws, &json!({"plans": [{"key": format!("p{n}")}]}), at)
            .await
            .unwrap();
        assert_eq!(v, n);
    }
    let latest = s.latest_catalog(&h.ws).await.unwrap().unwrap();
    assert_eq!(latest.version, 3);
    assert_eq!(latest.workspace, h.ws);
    assert_eq!(latest.catalog, json!({"plans": [{"key": "p3"}]}));
    assert_eq!(latest.created_at, at);
    let v2 = s.catalog_version(&h.ws, 2).await.unwrap().unwrap();
    assert_eq!(v2.catalog, json!({"plans": [{"key": "p2"}]}));
    assert_eq!(s.catalog_version(&h.ws, 9).await.unwrap(), None);
    assert_not_found(
        s.add_catalog_version(&fresh("missing"), &json!({}), at)
            .await,
        "workspace",
    );
}

async fn catalog_versions_are_gapless_under_concurrency(h: &Harness) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = h.store.clone();
            let ws = h.ws.clone();
            tokio::spawn(async move {
                store
                    .add_catalog_version(&ws, &json!({ "n": i }), Timestamp::UNIX_EPOCH)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for t in tasks {
        assert!(versions.insert(t.await.unwrap()), "a version was handed out twice");
    }
    assert_eq!(versions, (1..=16).collect::<BTreeSet<i64>>());
    let latest = h.store.latest_catalog(&h.ws).await.unwrap().unwrap();
    assert_eq!(latest.version, 16);
}

async fn customers(h: &Harness) {
    let s = h.store.as_ref();
    let mut a = customer(&h.ws, "cus_a");
    a.test_clock = Some("clock_1".into());
    s.create_customer(&a).await.unwrap();
    let mut b = customer(&h.ws, "cus_b");
    b.name = None;
    b.email = None;
    b.created_at = ts("2026-01-03T00:00:00Z");
    s.create_customer(&b).await.unwrap();

    assert_eq!(s.get_customer(&h.ws, "cus_a").await.unwrap(), Some(a.clone()));
    assert_eq!(s.get_customer(&h.ws, "cus_b").await.unwrap(), Some(b.clone()));
    assert_eq!(s.get_customer(&h.ws, "cus_zz").await.unwrap(), None);
    assert_eq!(s.list_customers(&h.ws).await.unwrap(), vec![a.clone(), b.clone()]);
    assert_exists(s.create_customer(&a).await, "customer", "cus_a");

    let updated = CustomerRecord {
        name: Some("Renamed".into()),
        email: None,
        suspended: true,
        has_payment_method: false,
        metadata: json!({"note": "moved"}),
        ..a.clone()
    };
    s.update_customer(&updated).await.unwrap();
    assert_eq!(s.get_customer(&h.ws, "cus_a").await.unwrap(), Some(updated));
    assert_not_found(s.update_customer(&customer(&h.ws, "cus_zz")).await, "customer");
    assert_not_found(
        s.create_customer(&customer(&fresh("missing"), "cus_a")).await,
        "workspace",
    );
}

fn subscription(ws: &str, id: &str, customer: &str, started: &str) -> SubscriptionRecord {
    SubscriptionRecord {
        workspace: ws.to_owned(),
        id: id.to_owned(),
        customer: customer.to_owned(),
        plan: "pro".into(),
        catalog_version: 1,
        status: SubscriptionStatus::Trialing,
        addons: json!({"extra_seats": 2}),
        started_at: ts(started),
        billing_anchor: ts(started),
        trial_end: Some(ts("2026-02-01T00:00:00Z")),
        canceled_at: None,
        ends_at: None,
    }
}

async fn subscriptions(h: &Harness) {
    let s = h.store.as_ref();
    h.customer(&h.ws, "cus_a").await;
    let first = subscription(&h.ws, "sub_1", "cus_a", "2026-01-01T00:00:00Z");
    let second = subscription(&h.ws, "sub_2", "cus_a", "2026-03-01T00:00:00Z");
    s.create_subscription(&first).await.unwrap();
    s.create_subscription(&second).await.unwrap();
    assert_eq!(s.get_subscription(&h.ws, "sub_1").await.unwrap(), Some(first.clone()));
    assert_eq!(s.get_subscription(&h.ws, "sub_9").await.unwrap(), None);
    assert_eq!(
        s.list_subscriptions(&h.ws, "cus_a").await.unwrap(),
        vec![second.clone(), first.clone()],
        "newest first"
    );
    assert_eq!(s.list_subscriptions(&h.ws, "cus_b").await.unwrap(), vec![]);
    assert_exists(s.create_subscription(&first).await, "subscription", "sub_1");
    assert_not_found(
        s.create_subscription(&subscription(&h.ws, "sub_3", "cus_zz", PERIOD))
            .await,
        "customer",
    );

    let canceled = SubscriptionRecord {
        plan: "team".into(),
        catalog_version: 2,
        status: SubscriptionStatus::Canceled,
        addons: json!({}),
        trial_end: None,
        canceled_at: Some(ts("2026-01-20T10:00:00.5Z")),
        ends_at: Some(ts("2026-02-01T00:00:00Z")),
        ..first.clone()
    };
    s.update_subscription(&canceled).await.unwrap();
    assert_eq!(s.get_subscription(&h.ws, "sub_1").await.unwrap(), Some(canceled));
    assert_not_found(
        s.update_subscription(&subscription(&h.ws, "sub_9", "cus_a", PERIOD))
            .await,
        "subscription",
    );
}

fn api_key(ws: &str, id: &str, customer: &str, created: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        workspace: ws.to_owned(),
        id: id.to_owned(),
        customer: customer.to_owned(),
        name: Some(format!("key {id}")),
        secret_hash: fresh("hash"),
        prefix: "tg_live_ab".into(),
        created_at: ts(created),
        revoked_at: None,
    }
}

async fn api_keys(h: &Harness) {
    let s = h.store.as_ref();
    h.customer(&h.ws, "cus_a").await;
    h.customer(&h.ws, "cus_b").await;
    let k1 = api_key(&h.ws, "key_1", "cus_a", "2026-01-01T00:00:00Z");
    let k2 = api_key(&h.ws, "key_2", "cus_a", "2026-01-02T00:00:00Z");
    s.create_api_key(&k1).await.unwrap();
    s.create_api_key(&k2).await.unwrap();
    assert_eq!(s.find_api_key(&k1.secret_hash).await.unwrap(), Some(k1.clone()));
    assert_eq!(s.find_api_key(&fresh("nope")).await.unwrap(), None);
    assert_eq!(
        s.list_api_keys(&h.ws, "cus_a").await.unwrap(),
        vec![k1.clone(), k2.clone()]
    );
    assert_eq!(s.list_api_keys(&h.ws, "cus_b").await.unwrap(), vec![]);

    assert_exists(s.create_api_key(&k1).await, "api_key", "key_1");
    let same_hash = ApiKeyRecord {
        id: "key_3".into(),
        ..k1.clone()
    };
    assert_exists(s.create_api_key(&same_hash).await, "api_key", "key_3");
    assert_not_found(
        s.create_api_key(&api_key(&h.ws, "key_4", "cus_zz", PERIOD))
            .await,
        "customer",
    );

    let at = ts("2026-01-10T12:00:00.000007Z");
    let revoked = s.revoke_api_key(&h.ws, "cus_a", "key_1", at).await.unwrap();
    assert_eq!(
        revoked,
        ApiKeyRecord {
            revoked_at: Some(at),
            ..k1.clone()
        }
    );
    assert_eq!(s.find_api_key(&k1.secret_hash).await.unwrap(), Some(revoked.clone()));
    // Revoking again keeps the first time.
    let again = s
        .revoke_api_key(&h.ws, "cus_a", "key_1", ts("2026-02-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(at));
    // Another customer's key, or no key at all.
    assert_not_found(s.revoke_api_key(&h.ws, "cus_b", "key_2", at).await, "api_key");
    assert_not_found(s.revoke_api_key(&h.ws, "cus_a", "key_9", at).await, "api_key");
    assert_eq!(
        s.find_api_key(&k2.secret_hash).await.unwrap().unwrap().revoked_at,
        None
    );
}

async fn test_clocks(h: &Harness) {
    let s = h.store.as_ref();
    let clock = TestClockRecord {
        workspace: h.ws.clone(),
        id: "clock_1".into(),
        name: Some("trial run".into()),
        frozen_time: ts("2026-01-01T00:00:00Z"),
        created_at: ts("2025-12-31T23:59:59.999999Z"),
    };
    s.create_test_clock(&clock).await.unwrap();
    assert_eq!(s.get_test_clock(&h.ws, "clock_1").await.unwrap(), Some(clock.clone()));
    assert_eq!(s.get_test_clock(&h.ws, "clock_9").await.unwrap(), None);
    assert_exists(s.create_test_clock(&clock).await, "test_clock", "clock_1");

    let later = ts("2026-03-15T08:30:00.25Z");
    s.set_test_clock_time(&h.ws, "clock_1", later).await.unwrap();
    assert_eq!(
        s.get_test_clock(&h.ws, "clock_1").await.unwrap().unwrap().frozen_time,
        later
    );
    assert_not_found(s.set_test_clock_time(&h.ws, "clock_9", later).await, "test_clock");
}

async fn ingest_is_idempotent(h: &Harness) {
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    assert_eq!(h.ingest(ws, &[]).await, vec![]);

    let mut repeated = item(ws, "evt_1", "cus_a", vec![add("calls", "1")]);
    repeated.event.properties = json!({"second": true});
    let batch = vec![
        item(ws, "evt_1", "cus_a", vec![add("calls", "1")]),
        item(ws, "evt_2", "cus_a", vec![add("calls", "1")]),
        repeated,
        item(ws, "evt_3", "cus_a", vec![add("calls", "1")]),
    ];
    assert_eq!(
        h.ingest(ws, &batch).await,
        vec![Accepted, Accepted, Duplicate, Accepted]
    );
    assert_eq!(value_of(h, ws, "cus_a", "calls").await, Some(dec("3")));

    let batch = vec![
        item(ws, "evt_2", "cus_a", vec![add("calls", "1")]),
        item(ws, "evt_4", "cus_a", vec![add("calls", "1")]),
        item(ws, "evt_4", "cus_a", vec![add("calls", "1")]),
    ];
    assert_eq!(h.ingest(ws, &batch).await, vec![Duplicate, Accepted, Duplicate]);
    assert_eq!(value_of(h, ws, "cus_a", "calls").await, Some(dec("4")));

    // The stored event is the first one seen, not the duplicate's payload.
    let events = h
        .store
        .events(ws, "cus_a", Timestamp::UNIX_EPOCH, ts("2030-01-01T00:00:00Z"), 100)
        .await
        .unwrap();
    let ids: Vec<_> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["evt_1", "evt_2", "evt_3", "evt_4"]);
    assert_eq!(events[0], batch_event(ws, "evt_1"));
}

fn batch_event(ws: &str, id: &str) -> EventRecord {
    item(ws, id, "cus_a", vec![]).event
}

async fn concurrent_ingest_accepts_an_id_once(h: &Harness) {
    h.customer(&h.ws, "cus_a").await;
    // Every task sends the shared event plus one of its own.
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = h.store.clone();
            let ws = h.ws.clone();
            tokio::spawn(async move {
                let batch = vec![
                    item(&ws, &format!("own_{i}"), "cus_a", vec![add("calls", "1")]),
                    item(&ws, "shared", "cus_a", vec![add("calls", "100")]),
                ];
                store.ingest(&ws, &batch).await.unwrap()
            })
        })
        .collect();
    let mut shared_accepted = 0;
    for t in tasks {
        let outcomes = t.await.unwrap();
        assert_eq!(outcomes[0], Accepted);
        if outcomes[1] == Accepted {
            shared_accepted += 1;
        }
    }
    assert_eq!(shared_accepted, 1, "the shared event must be accepted exactly once");
    assert_eq!(value_of(h, &h.ws, "cus_a", "calls").await, Some(dec("112")));
}

async fn aggregate_add_and_max(h: &Harness) {
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    let mut grouped = add("tokens", "5");
    grouped.subject = "alice".into();
    grouped.group_key = "model=gpt-4".into();
    let mut next_period = add("tokens", "1000");
    next_period.period_start = ts("2026-02-01T00:00:00Z");
    let batch = vec![
        item(ws, "e1", "cus_a", vec![add("tokens", "1.5"), update("peak", AggregateOp::Max(dec("3")))]),
        item(ws, "e2", "cus_a", vec![add("tokens", "2.25"), update("peak", AggregateOp::Max(dec("7")))]),
        item(ws, "e3", "cus_a", vec![grouped, next_period]),
    ];
    assert_eq!(h.ingest(ws, &batch).await, vec![Accepted; 3]);
    let batch = vec![item(
        ws,
        "e4",
        "cus_a",
        vec![
            add("tokens", "0.000001"),
            update("peak", AggregateOp::Max(dec("5"))),
            update("floor", AggregateOp::Max(dec("-2.5"))),
        ],
    )];
    h.ingest(ws, &batch).await;

    assert_eq!(value_of(h, ws, "cus_a", "tokens").await, Some(dec("3.750001")));
    assert_eq!(value_of(h, ws, "cus_a", "peak").await, Some(dec("7")));
    assert_eq!(value_of(h, ws, "cus_a", "floor").await, Some(dec("-2.5")));
    let rows = h.aggregates(ws, "cus_a", ts(PERIOD)).await;
    let grouped = rows
        .iter()
        .find(|r| r.subject == "alice")
        .expect("the subject's own row");
    assert_eq!(grouped.group_key, "model=gpt-4");
    assert_eq!(grouped.value, dec("5"));
    assert_eq!(grouped.period_start, ts(PERIOD));
    assert_eq!(grouped.updated_at, None);
    assert!(rows.iter().all(|r| r.period_start == ts(PERIOD)));
    let february = h.aggregates(ws, "cus_a", ts("2026-02-01T00:00:00Z")).await;
    assert_eq!(february.len(), 1);
    assert_eq!(february[0].value, dec("1000"));
    assert_eq!(h.aggregates(ws, "cus_b", ts(PERIOD)).await, vec![]);
}

async fn aggregate_latest(h: &Harness) {
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    let latest = |v: &str, at: &str| {
        update(
            "plan_seats",
            AggregateOp::Latest {
                value: dec(v),
                at: ts(at),
            },
        )
    };
    // Within one batch the latest `at` wins, whatever the order.
    let batch = vec![
        item(ws, "e1", "cus_a", vec![latest("10", "2026-01-05T00:00:00Z")]),
        item(ws, "e2", "cus_a", vec![latest("4", "2026-01-03T00:00:00Z")]),
    ];
    h.ingest(ws, &batch).await;
    let get = || async {
        h.aggregates(ws, "cus_a", ts(PERIOD))
            .await
            .into_iter()
            .find(|r| r.meter == "plan_seats")
            .map(|r| (r.value, r.updated_at))
    };
    assert_eq!(get().await, Some((dec("10"), Some(ts("2026-01-05T00:00:00Z")))));
    // An older value never replaces a newer one.
    h.ingest(ws, &[item(ws, "e3", "cus_a", vec![latest("1", "2026-01-04T00:00:00Z")])])
        .await;
    assert_eq!(get().await, Some((dec("10"), Some(ts("2026-01-05T00:00:00Z")))));
    // An equally new one does.
    h.ingest(ws, &[item(ws, "e4", "cus_a", vec![latest("12", "2026-01-05T00:00:00Z")])])
        .await;
    assert_eq!(get().await, Some((dec("12"), Some(ts("2026-01-05T00:00:00Z")))));
    // So does a newer one; equal times within a batch go to the last.
    let batch = vec![
        item(ws, "e5", "cus_a", vec![latest("20", "2026-01-06T00:00:00.000001Z")]),
        item(ws, "e6", "cus_a", vec![latest("21", "2026-01-06T00:00:00.000001Z")]),
    ];
    h.ingest(ws, &batch).await;
    assert_eq!(
        get().await,
        Some((dec("21"), Some(ts("2026-01-06T00:00:00.000001Z"))))
    );
}

async fn aggregate_unique(h: &Harness) {
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    let uniq = |v: &str| update("users", AggregateOp::Unique(v.to_owned()));
    let batch = vec![
        item(ws, "e1", "cus_a", vec![uniq("u1")]),
        item(ws, "e2", "cus_a", vec![uniq("u2")]),
        item(ws, "e3", "cus_a", vec![uniq("u1")]),
    ];
    h.ingest(ws, &batch).await;
    assert_eq!(value_of(h, ws, "cus_a", "users").await, Some(dec("2")));
    let batch = vec![
        item(ws, "e4", "cus_a", vec![uniq("u2")]),
        item(ws, "e5", "cus_a", vec![uniq("u3")]),
        // A duplicate event brings nothing, not even a new value.
        item(ws, "e1", "cus_a", vec![uniq("u9")]),
    ];
    assert_eq!(h.ingest(ws, &batch).await, vec![Accepted, Accepted, Duplicate]);
    assert_eq!(value_of(h, ws, "cus_a", "users").await, Some(dec("3")));
    // The same value counts again in another row (period or subject).
    let mut other_period = uniq("u1");
    other_period.period_start = ts("2026-02-01T00:00:00Z");
    let mut other_subject = uniq("u1");
    other_subject.subject = "team-a".into();
    h.ingest(ws, &[item(ws, "e6", "cus_a", vec![other_period, other_subject])])
        .await;
    assert_eq!(value_of(h, ws, "cus_a", "users").await, Some(dec("3")));
    let feb = h.aggregates(ws, "cus_a", ts("2026-02-01T00:00:00Z")).await;
    assert_eq!(feb[0].value, dec("1"));
    let jan = h.aggregates(ws, "cus_a", ts(PERIOD)).await;
    assert_eq!(
        jan.iter().find(|r| r.subject == "team-a").unwrap().value,
        dec("1")
    );
}

async fn aggregate_level_and_points(h: &Harness) {
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    let level = |v: &str, at: &str| {
        update(
            "seats",
            AggregateOp::Level {
                value: dec(v),
                at: ts(at),
            },
        )
    };
    let batch = vec![
        item(ws, "e1", "cus_a", vec![level("5", "2026-01-01T00:00:00Z")]),
        item(ws, "e2", "cus_a", vec![level("8", "2026-01-03T00:00:00Z")]),
    ];
    h.ingest(ws, &batch).await;
    // A late, older point is kept as a point but does not become the current level.
    let mut other_series = level("1", "2025-12-20T00:00:00Z");
    other_series.subject = "bob".into();
    let batch = vec![
        item(ws, "e3", "cus_a", vec![level("6", "2026-01-02T00:00:00Z")]),
        item(ws, "e4", "cus_a", vec![other_series]),
    ];
    h.ingest(ws, &batch).await;
    let row = h
        .aggregates(ws, "cus_a", ts(PERIOD))
        .await
        .into_iter()
        .find(|r| r.meter == "seats" && r.subject.is_empty())
        .unwrap();
    assert_eq!(row.value, dec("8"));
    assert_eq!(row.updated_at, Some(ts("2026-01-03T00:00:00Z")));

    let point = |subject: &str, at: &str, v: &str| LevelPoint {
        meter: "seats".into(),
        subject: subject.into(),
        group_key: String::new(),
        at: ts(at),
        value: dec(v),
    };
    // From Jan 2: opening points of both series (the last before `from`), then the range.
    let got = h
        .store
        .level_points(ws, "cus_a", ts("2026-01-02T00:00:00Z"), ts("2026-01-04T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            point("bob", "2025-12-20T00:00:00Z", "1"),
            point("", "2026-01-01T00:00:00Z", "5"),
            point("", "2026-01-02T00:00:00Z", "6"),
            point("", "2026-01-03T00:00:00Z", "8"),
        ]
    );
    // `to` is exclusive; the opening point is only the last one before `from`.
    let got = h
        .store
        .level_points(ws, "cus_a", ts("2026-01-02T12:00:00Z"), ts("2026-01-03T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            point("bob", "2025-12-20T00:00:00Z", "1"),
            point("", "2026-01-02T00:00:00Z", "6"),
        ]
    );
    assert_eq!(
        h.store
            .level_points(ws, "cus_b", ts(PERIOD), ts("2027-01-01T00:00:00Z"))
            .await
            .unwrap(),
        vec![]
    );
}

async fn window_entries_and_prune(h: &Harness) {
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    let entry = |q: &str, at: &str| {
        let mut u = update(
            "runs",
            AggregateOp::WindowEntry {
                quantity: dec(q),
                at: ts(at),
            },
        );
        u.subject = "alice".into();
        u
    };
    let batch = vec![
        item(ws, "e1", "cus_a", vec![entry("1", "2026-01-05T01:00:00Z")]),
        item(ws, "e2", "cus_a", vec![entry("2.5", "2026-01-05T02:00:00Z")]),
        item(ws, "e3", "cus_a", vec![entry("1", "2026-01-05T03:00:00Z")]),
        item(ws, "e1", "cus_a", vec![entry("50", "2026-01-05T03:00:00Z")]),
    ];
    h.ingest(ws, &batch).await;
    let other = h.other_workspace().await;
    h.customer(&other, "cus_a").await;
    h.ingest(&other, &[item(&other, "e1", "cus_a", vec![entry("7", "2026-01-05T01:00:00Z")])])
        .await;

    let row = |q: &str, at: &str| WindowEntryRow {
        meter: "runs".into(),
        subject: "alice".into(),
        group_key: String::new(),
        at: ts(at),
        quantity: dec(q),
    };
    let since = h
        .store
        .window_entries(ws, "cus_a", ts("2026-01-05T02:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        since,
        vec![row("2.5", "2026-01-05T02:00:00Z"), row("1", "2026-01-05T03:00:00Z")]
    );
    let pruned = h
        .store
        .prune_window_entries(ws, ts("2026-01-05T03:00:00Z"))
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    let left = h
        .store
        .window_entries(ws, "cus_a", Timestamp::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(left, vec![row("1", "2026-01-05T03:00:00Z")]);
    // Pruning one workspace leaves the others alone.
    let theirs = h
        .store
        .window_entries(&other, "cus_a", Timestamp::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(theirs, vec![row("7", "2026-01-05T01:00:00Z")]);
    // Window entries do not create aggregate rows.
    assert_eq!(h.aggregates(ws, "cus_a", ts(PERIOD)).await, vec![]);
}

async fn events_range_order_and_limit(h: &Harness) {
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    h.customer(ws, "cus_b").await;
    let mut batch = Vec::new();
    // Sent out of order; two share a timestamp (ordered by id then).
    for (id, at) in [
        ("e3", "2026-01-03T00:00:00Z"),
        ("e1", "2026-01-01T00:00:00Z"),
        ("e2b", "2026-01-02T00:00:00Z"),
        ("e2a", "2026-01-02T00:00:00Z"),
        ("e4", "2026-01-04T00:00:00Z"),
    ] {
        let mut it = item(ws, id, "cus_a", vec![]);
        it.event.timestamp = ts(at);
        batch.push(it);
    }
    let mut plain = item(ws, "b1", "cus_b", vec![]);
    plain.event.subject = None;
    plain.event.properties = json!(null);
    plain.event.timestamp = ts("2026-01-02T00:00:00Z");
    batch.push(plain.clone());
    h.ingest(ws, &batch).await;

    let events = |customer: &'static str, from: &'static str, to: &'static str, limit| async move {
        h.store
            .events(ws, customer, ts(from), ts(to), limit)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        events("cus_a", "2026-01-02T00:00:00Z", "2026-01-04T00:00:00Z", 10).await,
        ["e2a", "e2b", "e3"]
    );
    assert_eq!(
        events("cus_a", "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z", 2).await,
        ["e1", "e2a"]
    );
    assert_eq!(
        events("cus_a", "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z", 0).await,
        Vec::<String>::new()
    );
    let stored = h
        .store
        .events(ws, "cus_b", Timestamp::UNIX_EPOCH, ts("2030-01-01T00:00:00Z"), 10)
        .await
        .unwrap();
    assert_eq!(stored, vec![plain.event]);
}

async fn workspace_isolation(h: &Harness) {
    let s = h.store.as_ref();
    let a = &h.ws;
    let b = &h.other_workspace().await;
    h.customer(a, "cus_a").await;
    s.create_subscription(&subscription(a, "sub_1", "cus_a", PERIOD))
        .await
        .unwrap();
    let key = api_key(a, "key_1", "cus_a", PERIOD);
    s.create_api_key(&key).await.unwrap();
    s.create_test_clock(&TestClockRecord {
        workspace: a.clone(),
        id: "clock_1".into(),
        name: None,
        frozen_time: ts(PERIOD),
        created_at: ts(PERIOD),
    })
    .await
    .unwrap();
    s.add_catalog_version(a, &json!({"a": 1}), ts(PERIOD))
        .await
        .unwrap();
    let every_op = vec![
        add("calls", "1"),
        update("peak", AggregateOp::Max(dec("2"))),
        update("users", AggregateOp::Unique("u1".into())),
        update(
            "seats",
            AggregateOp::Level {
                value: dec("3"),
                at: ts("2026-01-02T00:00:00Z"),
            },
        ),
        update(
            "runs",
            AggregateOp::WindowEntry {
                quantity: dec("1"),
                at: ts("2026-01-02T00:00:00Z"),
            },
        ),
    ];
    h.ingest(a, &[item(a, "evt_1", "cus_a", every_op.clone())])
        .await;

    // B sees none of it.
    let far = ts("2030-01-01T00:00:00Z");
    assert_eq!(s.get_customer(b, "cus_a").await.unwrap(), None);
    assert_eq!(s.list_customers(b).await.unwrap(), vec![]);
    assert_eq!(s.get_subscription(b, "sub_1").await.unwrap(), None);
    assert_eq!(s.list_subscriptions(b, "cus_a").await.unwrap(), vec![]);
    assert_eq!(s.list_api_keys(b, "cus_a").await.unwrap(), vec![]);
    assert_eq!(s.get_test_clock(b, "clock_1").await.unwrap(), None);
    assert_eq!(s.latest_catalog(b).await.unwrap(), None);
    assert_eq!(s.catalog_version(b, 1).await.unwrap(), None);
    assert_eq!(h.aggregates(b, "cus_a", ts(PERIOD)).await, vec![]);
    assert_eq!(s.window_entries(b, "cus_a", Timestamp::UNIX_EPOCH).await.unwrap(), vec![]);
    assert_eq!(
        s.level_points(b, "cus_a", Timestamp::UNIX_EPOCH, far).await.unwrap(),
        vec![]
    );
    assert_eq!(
        s.events(b, "cus_a", Timestamp::UNIX_EPOCH, far, 10).await.unwrap(),
        vec![]
    );
    // ... and cannot change it.
    assert_not_found(s.update_customer(&customer(b, "cus_a")).await, "customer");
    assert_not_found(
        s.update_subscription(&subscription(b, "sub_1", "cus_a", PERIOD))
            .await,
        "subscription",
    );
    assert_not_found(s.revoke_api_key(b, "cus_a", "key_1", far).await, "api_key");
    assert_not_found(s.set_test_clock_time(b, "clock_1", far).await, "test_clock");
    assert_not_found(
        s.create_subscription(&subscription(b, "sub_2", "cus_a", PERIOD))
            .await,
        "customer",
    );
    assert_eq!(s.prune_window_entries(b, far).await.unwrap(), 0);

    // Ids are per workspace: the same customer and event ids are new in B.
    h.customer(b, "cus_a").await;
    assert_eq!(
        h.ingest(b, &[item(b, "evt_1", "cus_a", every_op)]).await,
        vec![Accepted]
    );
    assert_eq!(value_of(h, b, "cus_a", "users").await, Some(dec("1")));
    assert_eq!(value_of(h, a, "cus_a", "calls").await, Some(dec("1")));
    assert_eq!(s.list_customers(a).await.unwrap().len(), 1);
    // The key lookup still names the key's own workspace.
    assert_eq!(s.find_api_key(&key.secret_hash).await.unwrap(), Some(key));
    assert_eq!(s.window_entries(a, "cus_a", Timestamp::UNIX_EPOCH).await.unwrap().len(), 1);
}

async fn timestamps_round_trip_to_the_microsecond(h: &Harness) {
    let ws = &h.ws;
    for (i, at) in [
        "1969-07-20T20:17:40.000001Z",
        "1970-01-01T00:00:00Z",
        "2026-06-30T23:59:59.999999Z",
        "9999-12-30T00:00:00.999999Z",
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = customer(ws, &format!("cus_{i}"));
        c.created_at = ts(at);
        h.store.create_customer(&c).await.unwrap();
        assert_eq!(
            h.store.get_customer(ws, &c.id).await.unwrap().unwrap().created_at,
            ts(at)
        );
        let mut it = item(ws, &format!("e{i}"), &c.id, vec![]);
        it.event.timestamp = ts(at);
        it.event.received_at = ts(at);
        h.ingest(ws, &[it.clone()]).await;
        let got = h
            .store
            .events(ws, &c.id, ts(at), ts(at) + jiff::SignedDuration::from_micros(1), 1)
            .await
            .unwrap();
        assert_eq!(got, vec![it.event]);
    }
}

/// Batches of 1,000 over many customers and rows; prints the rate (with `--nocapture`), asserts
/// only the totals.
async fn large_batches(h: &Harness) {
    let ws = &h.ws;
    let batches: usize = std::env::var("TOLLGATE_STORE_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let (size, customers) = (1_000, 50);
    let mut items = Vec::with_capacity(batches * size);
    for n in 0..batches * size {
        let c = format!("cus_{}", n % customers);
        let mut grouped = add("tokens", "0.5");
        grouped.group_key = format!("model=m{}", n % 3);
        items.push(item(ws, &format!("evt_{n}"), &c, vec![add("calls", "1"), grouped]));
    }
    let (start, cpu) = (std::time::Instant::now(), process_cpu_seconds());
    for chunk in items.chunks(size) {
        let outcomes = h.ingest(ws, chunk).await;
        assert!(outcomes.iter().all(|o| *o == Accepted));
    }
    let (elapsed, cpu) = (start.elapsed(), process_cpu_seconds() - cpu);
    eprintln!(
        "{}: ingested {} events in batches of {size} in {elapsed:?} ({:.0} events/s); \
         process CPU {cpu:.2} s ({:.0} events per CPU second, any test running alongside included)",
        h.store.backend(),
        items.len(),
        items.len() as f64 / elapsed.as_secs_f64(),
        items.len() as f64 / cpu,
    );
    // All again: every one a duplicate, nothing changes.
    let outcomes = h.ingest(ws, &items[..size]).await;
    assert!(outcomes.iter().all(|o| *o == Duplicate));
    let per_customer = (batches * size / customers) as i64;
    assert_eq!(
        value_of(h, ws, "cus_7", "calls").await,
        Some(Decimal::from(per_customer))
    );
    let tokens: Decimal = h
        .aggregates(ws, "cus_7", ts(PERIOD))
        .await
        .iter()
        .filter(|r| r.meter == "tokens")
        .map(|r| r.value)
        .sum();
    assert_eq!(tokens, Decimal::from(per_customer) / Decimal::from(2));
}

/// User plus system CPU time of this process (Linux; 0 elsewhere), to read a rate on a busy
/// machine where wall time mostly measures the other processes.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime
    // are fields 14 and 15, in clock ticks (100 per second on Linux).
    let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0
}

// ---------------------------------------------------------------------------------------------
// SQLite only.

/// What `ingest` acknowledged is in the file: after a clean close, and after the store is
/// dropped without closing (connections abandoned as a crash would leave them; the WAL holds
/// the commits).
#[tokio::test]
async fn sqlite_data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable.db");
    let ws = fresh("ws");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        create_workspace(&store, &ws).await;
        store.create_customer(&customer(&ws, "cus_a")).await.unwrap();
        store
            .ingest(&ws, &[item(&ws, "e1", "cus_a", vec![add("calls", "2")])])
            .await
            .unwrap();
        store.close().await;
    }
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .ingest(&ws, &[item(&ws, "e2", "cus_a", vec![add("calls", "3")])])
            .await
            .unwrap();
        // Not closed: the pools are leaked with their connections open.
        std::mem::forget(store);
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let rows = store.aggregates(&ws, "cus_a", ts(PERIOD)).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].value, dec("5"));
    let outcomes = store
        .ingest(&ws, &[item(&ws, "e1", "cus_a", vec![add("calls", "2")])])
        .await
        .unwrap();
    assert_eq!(outcomes, vec![Duplicate]);
    assert!(store.get_customer(&ws, "cus_a").await.unwrap().is_some());
}

#[tokio::test]
async fn sqlite_in_memory_store_works() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let ws = fresh("ws");
    create_workspace(&store, &ws).await;
    store.create_customer(&customer(&ws, "cus_a")).await.unwrap();
    let outcomes = store
        .ingest(&ws, &[item(&ws, "e1", "cus_a", vec![add("calls", "1")])])
        .await
        .unwrap();
    assert_eq!(outcomes, vec![Accepted]);
    assert_eq!(store.list_customers(&ws).await.unwrap().len(), 1);
    assert_eq!(store.backend(), "sqlite");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL only.

/// Row-level security holds even for a query with no workspace filter at all: as
/// `tollgate_app` with the workspace set to A, a bare `SELECT` sees A's rows and none of B's;
/// with no workspace set it sees nothing; and it cannot write a row into B.
#[tokio::test]
async fn postgres_row_level_security_hides_other_workspaces() {
    let Some(store) = postgres_store().await else {
        return;
    };
    let (a, b) = (fresh("ws"), fresh("ws"));
    for ws in [&a, &b] {
        create_workspace(&store, ws).await;
        store.create_customer(&customer(ws, "cus_a")).await.unwrap();
        let ops = vec![add("calls", "1"), update("users", AggregateOp::Unique("u".into()))];
        store.ingest(ws, &[item(ws, "e1", "cus_a", ops)]).await.unwrap();
    }
    let url = std::env::var(DATABASE_URL_VAR).unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE tollgate_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("SELECT set_config('tollgate.workspace', $1, true)")
        .bind(&a)
        .execute(&mut *tx)
        .await
        .unwrap();
    for table in [
        "workspaces",
        "customers",
        "events",
        "aggregates",
        "aggregate_uniques",
    ] {
        let sql = format!("SELECT workspace FROM {table}");
        let seen: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert!(!seen.is_empty(), "{table}: A's own rows are visible");
        assert!(seen.iter().all(|w| *w == a), "{table}: saw {seen:?}");
    }
    let write = sqlx::query(
        "INSERT INTO customers (workspace, id, suspended, has_payment_method, metadata, created_at) \
         VALUES ($1, 'intruder', false, false, '{}', 0)",
    )
    .bind(&b)
    .execute(&mut *tx)
    .await;
    assert!(write.is_err(), "a row for B must be rejected while scoped to A");
    drop(tx);

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE tollgate_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    let unscoped: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(unscoped, 0, "no workspace set, no rows");
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(keys, 0, "key rows only show to a lookup naming their hash");
}
