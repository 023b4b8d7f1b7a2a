//! Builders and assertions shared by the cases.

use crate::Harness;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::json;
use tollgate_store::*;

pub(crate) fn fresh(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

pub(crate) fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub(crate) fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub(crate) const PERIOD: &str = "2026-01-01T00:00:00Z";

pub(crate) async fn create_workspace(store: &dyn Store, ws: &str) {
    store
        .create_workspace(&WorkspaceRecord {
            id: ws.to_owned(),
            name: format!("Workspace {ws}"),
            created_at: ts("2026-01-01T00:00:00.123456Z"),
        })
        .await
        .unwrap();
}

pub(crate) fn customer(ws: &str, id: &str) -> CustomerRecord {
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
        address: json!({"line1": "1 Rue de la Paix", "city": "Paris", "country": "FR"}),
        tax_ids: json!([{"type": "eu_vat", "value": "FR12345678901"}]),
        archived_at: None,
    }
}

pub(crate) fn event(ws: &str, id: &str, customer: &str, at: Timestamp) -> EventRecord {
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

pub(crate) fn update(meter: &str, op: AggregateOp) -> AggregateUpdate {
    AggregateUpdate {
        meter: meter.to_owned(),
        period_start: ts(PERIOD),
        subject: String::new(),
        group_key: String::new(),
        op,
    }
}

pub(crate) fn item(
    ws: &str,
    id: &str,
    customer: &str,
    updates: Vec<AggregateUpdate>,
) -> IngestItem {
    IngestItem {
        event: event(ws, id, customer, ts("2026-01-05T00:00:00Z")),
        updates,
    }
}

pub(crate) fn add(meter: &str, x: &str) -> AggregateUpdate {
    update(meter, AggregateOp::Add(dec(x)))
}

/// The value of the row `(meter, "", "")` in the test period.
pub(crate) async fn value_of(
    h: &Harness,
    ws: &str,
    customer: &str,
    meter: &str,
) -> Option<Decimal> {
    h.aggregates(ws, customer, ts(PERIOD))
        .await
        .into_iter()
        .find(|r| r.meter == meter && r.subject.is_empty() && r.group_key.is_empty())
        .map(|r| r.value)
}

pub(crate) fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, want_kind: &str) {
    match r {
        Err(StoreError::NotFound { kind, .. }) => assert_eq!(kind, want_kind),
        other => panic!("expected NotFound {{ kind: {want_kind:?} }}, got {other:?}"),
    }
}

pub(crate) fn assert_exists<T: std::fmt::Debug>(
    r: Result<T, StoreError>,
    want_kind: &str,
    want_id: &str,
) {
    match r {
        Err(StoreError::AlreadyExists { kind, id }) => {
            assert_eq!(kind, want_kind);
            assert_eq!(id, want_id);
        }
        other => panic!("expected AlreadyExists {{ kind: {want_kind:?} }}, got {other:?}"),
    }
}

pub(crate) fn subscription(
    ws: &str,
    id: &str,
    customer: &str,
    started: &str,
) -> SubscriptionRecord {
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

pub(crate) fn api_key(ws: &str, id: &str, customer: &str, created: &str) -> ApiKeyRecord {
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

pub(crate) fn batch_event(ws: &str, id: &str) -> EventRecord {
    item(ws, id, "cus_a", vec![]).event
}

/// User plus system CPU time of this process (Linux; 0 elsewhere), to read a rate on a busy
/// machine where wall time mostly measures the other processes.
pub(crate) fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime
    // are fields 14 and 15, in clock ticks (100 per second on Linux).
    let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0
}

/// An open invoice of 1,000 minor units; `number` is left for the store to assign.
pub(crate) fn invoice(ws: &str, id: &str, customer: &str, key: &str) -> billing::InvoiceRecord {
    billing::InvoiceRecord {
        workspace: ws.to_owned(),
        id: id.to_owned(),
        number: 0,
        customer: customer.to_owned(),
        subscription: key.split_once(':').map(|(sub, _)| sub.to_owned()),
        dedupe_key: key.to_owned(),
        status: billing::InvoiceStatus::Open,
        currency: "EUR".into(),
        period_start: Some(ts("2026-01-01T00:00:00Z")),
        period_end: Some(ts("2026-02-01T00:00:00Z")),
        total_minor: 1_000,
        credit_applied_minor: 0,
        amount_due_minor: 1_000,
        document: json!({"lines": [{"description": "Pro", "amount": "10.00"}], "note": null}),
        created_at: ts("2026-02-01T00:00:00.000001Z"),
        paid_at: None,
        voided_at: None,
    }
}

pub(crate) fn credit_note(
    ws: &str,
    id: &str,
    invoice: &str,
    amount_minor: i64,
) -> billing::CreditNoteRecord {
    billing::CreditNoteRecord {
        workspace: ws.to_owned(),
        id: id.to_owned(),
        number: 0,
        invoice: invoice.to_owned(),
        customer: "cus_a".into(),
        amount_minor,
        currency: "EUR".into(),
        reason: Some("goodwill".into()),
        created_at: ts("2026-02-02T00:00:00Z"),
        method: billing::CreditNoteMethod::Refund,
    }
}

pub(crate) fn credit(
    ws: &str,
    id: &str,
    customer: &str,
    amount_minor: i64,
) -> billing::CreditEntryRecord {
    billing::CreditEntryRecord {
        workspace: ws.to_owned(),
        id: id.to_owned(),
        customer: customer.to_owned(),
        amount_minor,
        currency: "EUR".into(),
        reason: "grant".into(),
        invoice: None,
        created_at: ts("2026-01-02T00:00:00Z"),
    }
}

pub(crate) fn pending_charge(
    ws: &str,
    id: &str,
    customer: &str,
    created: &str,
) -> billing::PendingChargeRecord {
    billing::PendingChargeRecord {
        workspace: ws.to_owned(),
        id: id.to_owned(),
        customer: customer.to_owned(),
        subscription: Some("sub_1".into()),
        charge: json!({"description": "Proration", "amount": "3.33", "quantity": "1"}),
        created_at: ts(created),
        invoice: None,
    }
}

pub(crate) fn redemption(ws: &str, id: &str, customer: &str) -> billing::CouponRedemptionRecord {
    billing::CouponRedemptionRecord {
        workspace: ws.to_owned(),
        id: id.to_owned(),
        customer: customer.to_owned(),
        coupon: "WELCOME".into(),
        applied: 0,
        created_at: ts("2026-01-05T00:00:00Z"),
    }
}

pub(crate) fn scheduled(
    ws: &str,
    id: &str,
    subscription: &str,
    plan: &str,
) -> billing::ScheduledChangeRecord {
    billing::ScheduledChangeRecord {
        workspace: ws.to_owned(),
        id: id.to_owned(),
        subscription: subscription.to_owned(),
        customer: "cus_a".into(),
        plan: plan.to_owned(),
        addons: json!({"extra_seats": 1}),
        effective_at: ts("2026-02-01T00:00:00Z"),
        created_at: ts("2026-01-15T00:00:00.5Z"),
        applied_at: None,
    }
}
