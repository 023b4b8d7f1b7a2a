//! The race of reading ahead, on a real SQLite store: a pending charge billed by another
//! invoice between the chunk's read and the bill run's write is billed once.

use std::sync::{Arc, Mutex};

use rust_decimal::Decimal;
use serde_json::json;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::pricing::{Charge, LineKind};
use tollgate_store::billing::PendingChargeRecord;
use tollgate_store::{CustomerRecord, SqliteStore, Store, SubscriptionRecord, SubscriptionStatus};

use super::*;
use crate::clock::Clock;

struct Movable(Arc<Mutex<jiff::Timestamp>>);

impl Clock for Movable {
    fn now(&self) -> jiff::Timestamp {
        *self.0.lock().unwrap()
    }
}

fn at(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

#[tokio::test]
async fn a_pending_charge_billed_between_read_and_write_is_billed_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
    let start = at("2026-11-01T00:00:00Z");
    crate::bootstrap(store.as_ref(), None, start).await.unwrap();
    let time = Arc::new(Mutex::new(start));
    let engine = Arc::new(Engine::new(store.clone(), Arc::new(Movable(time.clone()))));
    let ws = crate::DEFAULT_WORKSPACE;
    let catalog = tollgate_core::catalog::parse_yaml(include_str!(
        "../../../../../examples/catalogs/lexecon.yaml"
    ))
    .unwrap();
    engine.apply_catalog(ws, catalog).await.unwrap();
    store
        .create_customer(&CustomerRecord {
            workspace: ws.into(),
            id: "cus_1".into(),
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
    let sub = SubscriptionRecord {
        workspace: ws.into(),
        id: "sub_1".into(),
        customer: "cus_1".into(),
        plan: "startup".into(),
        catalog_version: 1,
        status: SubscriptionStatus::Active,
        addons: json!({}),
        started_at: start,
        billing_anchor: start,
        trial_end: None,
        canceled_at: None,
        ends_at: None,
    };
    store.create_subscription(&sub).await.unwrap();
    assert_eq!(
        bill_one(&engine, sub.clone())
            .await
            .unwrap()
            .invoices_created,
        1
    );

    // November is over; a proration waits for the next invoice.
    let now = at("2026-12-01T00:00:01Z");
    *time.lock().unwrap() = now;
    let charge = Charge {
        kind: LineKind::Proration,
        description: "Seats added mid-period".into(),
        quantity: Decimal::ONE,
        unit_price: None,
        amount: Decimal::new(1234, 2),
        period: None,
    };
    store
        .add_pending_charge(&PendingChargeRecord {
            workspace: ws.into(),
            id: "pc_1".into(),
            customer: "cus_1".into(),
            subscription: Some("sub_1".into()),
            charge: serde_json::to_value(&charge).unwrap(),
            created_at: at("2026-11-20T00:00:00Z"),
            invoice: None,
        })
        .await
        .unwrap();

    // The bill run reads the chunk ahead, with the charge still pending...
    let subs = vec![sub.clone()];
    let chunk = read_chunk(&engine, ws, &subs, None, true).await.unwrap();
    assert_eq!(chunk.pending.get("cus_1").map(Vec::len), Some(1));
    // ...and an API call bills it on an invoice of its own before the run writes.
    let catalog = engine.catalog(ws, 1).await.unwrap();
    crate::billing::invoices::invoice_pending_charges(
        store.as_ref(),
        &sub,
        &catalog.catalog,
        &["pc_1".to_owned()],
        now,
    )
    .await
    .unwrap();

    let mut report = BillRunReport::default();
    let mut batch = rate_chunk(&engine, &subs, Some(chunk), &mut report).await;
    flush(&engine, ws, &mut batch, &mut report).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.invoices_created, 1, "November's closing invoice");
    assert_eq!(report.invoices_existing, 1, "the opening one, counted once");

    let invoices = store
        .list_invoices(&WorkspaceId::from(ws), &CustomerId::from("cus_1"))
        .await
        .unwrap();
    let keys: Vec<&str> = invoices.iter().map(|i| i.dedupe_key.as_str()).collect();
    assert_eq!(
        keys.len(),
        3,
        "opening, the charge's own, closing: {keys:?}"
    );
    let billing_it: Vec<&str> = invoices
        .iter()
        .filter(|i| i.document.to_string().contains("Seats added mid-period"))
        .map(|i| i.dedupe_key.as_str())
        .collect();
    assert_eq!(billing_it.len(), 1, "billed once: {billing_it:?}");
    assert!(billing_it[0].contains(":change:"), "{billing_it:?}");
    let numbers: Vec<i64> = invoices.iter().map(|i| i.number).collect();
    assert_eq!(numbers, [1, 2, 3], "gapless");
}
