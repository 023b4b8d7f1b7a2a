//! The bill run split across workers and nodes, on real stores: two engines (two nodes, each
//! with its own pool) running the same bill run at the same moment over one database bill each
//! subscription once per period, with the invoices a single run writes; on PostgreSQL, one
//! worker and four write the same invoices.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use common::{Backend, backend_tests};
use rust_decimal::Decimal;
use serde_json::json;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::pricing::{Charge, LineKind};
use tollgate_server::app::bill_run::{BillRunOptions, BillRunReport, bill_run};
use tollgate_server::auth::Principal;
use tollgate_server::clock::Clock;
use tollgate_server::engine::{Engine, EventIn};
use tollgate_store::billing::{CreditEntryRecord, PendingChargeRecord};
use tollgate_store::{
    CustomerRecord, PostgresStore, SqliteStore, Store, SubscriptionRecord, SubscriptionStatus,
    WorkspaceRecord,
};

/// Customers of each test: several chunks of the run's claims (500 customers each).
const CUSTOMERS: usize = 1_100;

struct Movable(Arc<Mutex<jiff::Timestamp>>);

impl Clock for Movable {
    fn now(&self) -> jiff::Timestamp {
        *self.0.lock().unwrap()
    }
}

fn at(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

/// A store of `backend`; SQLite's file is `dir/tollgate.db`, so two stores opened on one dir
/// share it as two processes would.
async fn store(backend: Backend, dir: &std::path::Path) -> Arc<dyn Store> {
    match backend {
        Backend::Sqlite => Arc::new(SqliteStore::open(&dir.join("tollgate.db")).await.unwrap()),
        Backend::Postgres => Arc::new(
            PostgresStore::connect(&common::database_url())
                .await
                .unwrap(),
        ),
    }
}

fn workspace_id() -> String {
    format!("ws_{}", tollgate_server::ids::new_id("brw"))
}

/// A workspace with the Lexecon catalog and [`CUSTOMERS`] customers on `startup` since Nov 1:
/// every 3rd with prepaid credit, every 4th with a proration pending, every 5th with a second
/// subscription, every 7th with usage in November.
async fn seed(engine: &Engine, ws: &str) {
    let store = engine.store();
    let start = at("2026-11-01T00:00:00Z");
    store
        .create_workspace(&WorkspaceRecord {
            id: ws.into(),
            name: ws.into(),
            created_at: start,
        })
        .await
        .unwrap();
    let catalog =
        tollgate_core::catalog::parse_yaml(include_str!("../../../examples/catalogs/lexecon.yaml"))
            .unwrap();
    engine.apply_catalog(ws, catalog).await.unwrap();
    for i in 0..CUSTOMERS {
        let customer = format!("c{i:05}");
        store
            .create_customer(&CustomerRecord {
                workspace: ws.into(),
                id: customer.clone(),
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
            .unwrap();
        let subs = if i % 5 == 0 { 2 } else { 1 };
        for n in 0..subs {
            store
                .create_subscription(&SubscriptionRecord {
                    workspace: ws.into(),
                    id: format!("sub_{customer}_{n}"),
                    customer: customer.clone(),
                    plan: "startup".into(),
                    catalog_version: 1,
                    status: SubscriptionStatus::Active,
                    addons: json!({}),
                    started_at: start,
                    billing_anchor: start,
                    trial_end: None,
                    canceled_at: None,
                    ends_at: None,
                })
                .await
                .unwrap();
        }
        if i % 3 == 0 {
            store
                .add_credit_entry(&CreditEntryRecord {
                    workspace: ws.into(),
                    id: format!("cr_{customer}"),
                    customer: customer.clone(),
                    amount_minor: 25_000,
                    currency: "USD".into(),
                    reason: "prepaid".into(),
                    invoice: None,
                    created_at: start,
                })
                .await
                .unwrap();
        }
        if i % 4 == 0 {
            let charge = Charge {
                kind: LineKind::Proration,
                description: format!("Seats added for {customer}"),
                quantity: Decimal::ONE,
                unit_price: None,
                amount: Decimal::new(1_234 + i as i64, 2),
                period: None,
            };
            store
                .add_pending_charge(&PendingChargeRecord {
                    workspace: ws.into(),
                    id: format!("pc_{customer}"),
                    customer: customer.clone(),
                    subscription: Some(format!("sub_{customer}_0")),
                    charge: serde_json::to_value(&charge).unwrap(),
                    created_at: at("2026-11-10T00:00:00Z"),
                    invoice: None,
                })
                .await
                .unwrap();
        }
    }
    let admin = Principal::Admin {
        workspace: ws.into(),
    };
    let events: Vec<EventIn> = (0..CUSTOMERS)
        .step_by(7)
        .flat_map(|i| {
            (0..(i % 11 + 1)).map(move |n| EventIn {
                id: Some(format!("e{i}_{n}")),
                customer: Some(format!("c{i:05}")),
                event_type: Some("decision.evaluated".into()),
                timestamp: Some("2026-11-15T00:00:00Z".into()),
                subject: None,
                properties: json!({"actor": format!("a{n}")})
                    .as_object()
                    .unwrap()
                    .clone(),
            })
        })
        .collect();
    engine.ingest(&admin, events).await.unwrap();
}

fn subscriptions() -> usize {
    CUSTOMERS + CUSTOMERS.div_ceil(5)
}

/// Every invoice of the workspace by key: (customer, total, credit used, amount due, lines).
async fn invoices(
    store: &dyn Store,
    ws: &str,
) -> BTreeMap<String, (String, i64, i64, i64, String)> {
    let mut out = BTreeMap::new();
    let mut numbers = BTreeSet::new();
    for i in 0..CUSTOMERS {
        let customer = format!("c{i:05}");
        for inv in store
            .list_invoices(&WorkspaceId::from(ws), &CustomerId::from(customer.as_str()))
            .await
            .unwrap()
        {
            assert!(numbers.insert(inv.number), "number {} twice", inv.number);
            let lines = inv.document["lines"].to_string();
            let row = (
                customer.clone(),
                inv.total_minor,
                inv.credit_applied_minor,
                inv.amount_due_minor,
                lines,
            );
            assert!(
                out.insert(inv.dedupe_key.clone(), row).is_none(),
                "{} twice",
                inv.dedupe_key
            );
        }
    }
    let count = i64::try_from(numbers.len()).unwrap();
    assert_eq!(
        numbers.into_iter().collect::<Vec<_>>(),
        (1..=count).collect::<Vec<_>>(),
        "numbers are gapless"
    );
    out
}

/// Runs `engines` at the same moment over `ws`, each with `workers`: the reports.
async fn run_together(engines: &[&Arc<Engine>], ws: &str, workers: usize) -> Vec<BillRunReport> {
    let options = BillRunOptions {
        workers: std::num::NonZeroUsize::new(workers).unwrap(),
    };
    let runs: Vec<_> = engines
        .iter()
        .map(|engine| {
            let (engine, ws) = (Arc::clone(engine), ws.to_owned());
            tokio::spawn(async move { bill_run(&engine, &ws, options, &|_, _, _| {}).await })
        })
        .collect();
    let mut reports = Vec::new();
    for run in runs {
        let report = run.await.unwrap().unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors.first());
        reports.push(report);
    }
    reports
}

backend_tests! {
    /// Two nodes start the same bill run at the same moment, twice (November's opening
    /// invoices, then its closing ones): each subscription is invoiced once per period, the
    /// created counts add up to one run's, and every invoice equals the one a single node's
    /// run writes in a workspace seeded the same.
    async fn two_nodes_at_once_bill_each_subscription_once(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let time = Arc::new(Mutex::new(at("2026-11-01T00:00:00Z")));
        let clock = || -> Arc<dyn Clock> { Arc::new(Movable(time.clone())) };
        let node_a = Arc::new(Engine::new(store(backend, dir.path()).await, clock()));
        let node_b = Arc::new(Engine::new(store(backend, dir.path()).await, clock()));
        let (shared, alone) = (workspace_id(), workspace_id());
        seed(&node_a, &shared).await;
        seed(&node_a, &alone).await;
        let workers = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 2,
        };
        let mut looked_at = Vec::new();
        for moment in ["2026-11-01T00:00:01Z", "2026-12-01T00:00:01Z"] {
            *time.lock().unwrap() = at(moment);
            let reports = run_together(&[&node_a, &node_b], &shared, workers).await;
            let single = run_together(&[&node_a], &alone, 1).await;
            let created: usize = reports.iter().map(|r| r.invoices_created).sum();
            assert_eq!(created, subscriptions(), "one invoice per subscription at {moment}");
            assert_eq!(single[0].invoices_created, subscriptions());
            looked_at.push(reports.iter().map(|r| r.subscriptions).collect::<Vec<_>>());
        }
        // How the work was split (not asserted: it depends on timing): printed for the log.
        println!("subscriptions each node billed, per run: {looked_at:?}");
        let together = invoices(node_a.store().as_ref(), &shared).await;
        let by_one = invoices(node_a.store().as_ref(), &alone).await;
        assert_eq!(together.len(), 2 * subscriptions());
        assert_eq!(together, by_one, "the same invoices as a single run's");
        // Each proration billed once, on its subscription's closing invoice.
        let prorations = together
            .values()
            .filter(|(.., lines)| lines.contains("Seats added for"))
            .count();
        assert_eq!(prorations, CUSTOMERS.div_ceil(4));
    }
}

/// On PostgreSQL, four workers write the invoices one worker writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(tollgate_pg),
    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn one_worker_and_four_write_the_same_invoices() {
    let dir = tempfile::tempdir().unwrap();
    let time = Arc::new(Mutex::new(at("2026-11-01T00:00:00Z")));
    let engine = Arc::new(Engine::new(
        store(Backend::Postgres, dir.path()).await,
        Arc::new(Movable(time.clone())),
    ));
    let (one, four) = (workspace_id(), workspace_id());
    seed(&engine, &one).await;
    seed(&engine, &four).await;
    for moment in ["2026-11-01T00:00:01Z", "2026-12-01T00:00:01Z"] {
        *time.lock().unwrap() = at(moment);
        let by_one = run_together(&[&engine], &one, 1).await;
        let by_four = run_together(&[&engine], &four, 4).await;
        assert_eq!(by_one[0].invoices_created, subscriptions());
        assert_eq!(by_four[0].invoices_created, subscriptions());
        assert_eq!(
            by_four[0].subscriptions,
            subscriptions(),
            "one run bills all"
        );
    }
    assert_eq!(
        invoices(engine.store().as_ref(), &one).await,
        invoices(engine.store().as_ref(), &four).await
    );
}
