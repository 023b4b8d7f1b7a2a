//! Event amendments ("latest copy replaces"): the amendment, its aggregate difference and its
//! domain event commit together; the event row stays as first written; a second amendment
//! computed from the same value conflicts and changes nothing.

use crate::Harness;
use crate::support::*;
use serde_json::json;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::amendments::EventAmendment;
use tollgate_store::outbox::{OutboxEvent, OutboxFilter};
use tollgate_store::*;

fn amendment(ws: &str, id: &str, seq: i64, old: i64, new: i64) -> EventAmendment {
    EventAmendment {
        workspace: ws.to_owned(),
        event_id: id.to_owned(),
        seq,
        customer: "cus_a".into(),
        event_type: "api_call".into(),
        old_properties: json!({ "tokens": old }),
        new_properties: json!({ "tokens": new }),
        amended_by: "admin".into(),
        amended_at: ts("2026-01-06T00:00:00Z"),
    }
}

fn amended_event(ws: &str, seq: i64) -> OutboxEvent {
    OutboxEvent {
        workspace: ws.to_owned(),
        id: fresh("evt"),
        customer: Some("cus_a".into()),
        event_type: "event.amended".into(),
        occurred_at: ts("2026-01-06T00:00:00Z"),
        data: json!({ "seq": seq }),
        created_at: ts("2026-01-06T00:00:00Z"),
        delivered_at: None,
        delivery_attempts: 0,
    }
}

pub(crate) async fn amendments_commit_with_their_difference(h: &Harness) {
    let ws = &h.ws;
    let wid = WorkspaceId::from(ws);
    let s = h.store.as_ref();
    h.customer(ws, "cus_a").await;
    assert_eq!(s.amendable_event(&wid, "e1").await.unwrap(), None);
    let first = item(ws, "e1", "cus_a", vec![add("tokens", "10")]);
    h.ingest(ws, std::slice::from_ref(&first)).await;

    let stored = s.amendable_event(&wid, "e1").await.unwrap().unwrap();
    assert_eq!(stored.event, first.event);
    assert_eq!(stored.latest, None);
    assert_eq!(stored.next_seq(), 1);
    assert_eq!(stored.current_properties(), &first.event.properties);

    // 10 -> 4: the difference lowers the total; the event row is untouched.
    let one = amendment(ws, "e1", 1, 10, 4);
    let change = IngestItem {
        event: first.event.clone(),
        updates: vec![add("tokens", "-6")],
    };
    let e1 = amended_event(ws, 1);
    s.amend_event(&one, &change, std::slice::from_ref(&e1))
        .await
        .unwrap();
    assert_eq!(value_of(h, ws, "cus_a", "tokens").await, Some(dec("4")));
    let stored = s.amendable_event(&wid, "e1").await.unwrap().unwrap();
    assert_eq!(
        stored.event, first.event,
        "the event row stays as first written"
    );
    assert_eq!(stored.latest.as_ref(), Some(&one));
    assert_eq!(stored.current_properties(), &json!({"tokens": 4}));
    assert_eq!(stored.next_seq(), 2);

    // A concurrent replacement computed from the same value (seq 1 again) changes nothing:
    // neither the total nor the outbox.
    let lost = amendment(ws, "e1", 1, 10, 50);
    let lost_change = IngestItem {
        event: first.event.clone(),
        updates: vec![add("tokens", "40")],
    };
    match s
        .amend_event(&lost, &lost_change, &[amended_event(ws, 99)])
        .await
    {
        Err(StoreError::AlreadyExists { kind, .. }) => assert_eq!(kind, "event amendment"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(value_of(h, ws, "cus_a", "tokens").await, Some(dec("4")));

    let two = amendment(ws, "e1", 2, 4, 7);
    let change = IngestItem {
        event: first.event.clone(),
        updates: vec![add("tokens", "3")],
    };
    let e2 = amended_event(ws, 2);
    s.amend_event(&two, &change, std::slice::from_ref(&e2))
        .await
        .unwrap();
    assert_eq!(value_of(h, ws, "cus_a", "tokens").await, Some(dec("7")));
    assert_eq!(
        s.event_amendments(&wid, "e1").await.unwrap(),
        vec![one.clone(), two.clone()]
    );
    assert_eq!(
        s.customer_amendments(
            &wid,
            &CustomerId::from("cus_a"),
            ts("2026-01-06T00:00:00Z"),
            ts("2026-01-07T00:00:00Z")
        )
        .await
        .unwrap(),
        vec![one, two]
    );
    assert!(
        s.customer_amendments(
            &wid,
            &CustomerId::from("cus_a"),
            ts("2026-01-07T00:00:00Z"),
            ts("2026-01-08T00:00:00Z")
        )
        .await
        .unwrap()
        .is_empty()
    );
    let filter = OutboxFilter {
        event_type: Some("event.amended".into()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        s.list_domain_events(&wid, &filter).await.unwrap(),
        vec![e1, e2],
        "the losing amendment's event was rolled back with it"
    );

    // An amendment of an event that is not stored is refused.
    let ghost = amendment(ws, "nope", 1, 1, 2);
    assert!(
        s.amend_event(
            &ghost,
            &IngestItem {
                event: event(ws, "nope", "cus_a", ts(PERIOD)),
                updates: vec![]
            },
            &[]
        )
        .await
        .is_err()
    );
    // Another workspace sees none of it.
    let other = WorkspaceId::from(fresh("ws").as_str());
    assert!(s.event_amendments(&other, "e1").await.unwrap().is_empty());
}
