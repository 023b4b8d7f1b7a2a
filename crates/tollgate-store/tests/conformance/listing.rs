//! Cases for keyset paging: customer pages and the event query behind `GET /v1/events`.

use crate::Harness;
use crate::support::*;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::*;

pub(crate) async fn customer_pages_follow_creation_order(h: &Harness) {
    let ws = &h.ws;
    let wid = WorkspaceId::from(ws.as_str());
    // Created out of id order; two share a creation time (then ordered by id).
    for (id, at) in [
        ("c3", "2026-01-03T00:00:00Z"),
        ("c1", "2026-01-01T00:00:00Z"),
        ("c2b", "2026-01-02T00:00:00Z"),
        ("c2a", "2026-01-02T00:00:00Z"),
    ] {
        let mut c = customer(ws, id);
        c.created_at = ts(at);
        h.store.create_customer(&c).await.unwrap();
    }
    let other = h.other_workspace().await;
    h.customer(&other, "c0").await;

    let page = |after: Option<(&'static str, &'static str)>, limit| {
        let wid = wid.clone();
        async move {
            let after = after.map(|(at, id)| After { at: ts(at), id });
            h.store
                .customers_page(&wid, after, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(None, 10).await, ["c1", "c2a", "c2b", "c3"]);
    assert_eq!(page(None, 2).await, ["c1", "c2a"]);
    assert_eq!(
        page(Some(("2026-01-02T00:00:00Z", "c2a")), 2).await,
        ["c2b", "c3"]
    );
    assert_eq!(
        page(Some(("2026-01-03T00:00:00Z", "c3")), 2).await,
        Vec::<String>::new()
    );
    assert_eq!(page(None, 0).await, Vec::<String>::new());
    assert_eq!(page(None, -5).await, Vec::<String>::new());
}

pub(crate) async fn event_queries_filter_and_page(h: &Harness) {
    let ws = &h.ws;
    let wid = WorkspaceId::from(ws.as_str());
    h.customer(ws, "cus_a").await;
    h.customer(ws, "cus_b").await;
    let mut batch = Vec::new();
    for (id, customer, kind, subject, at) in [
        (
            "e3",
            "cus_a",
            "api_call",
            Some("alice"),
            "2026-01-03T00:00:00Z",
        ),
        (
            "e1",
            "cus_a",
            "api_call",
            Some("bob"),
            "2026-01-01T00:00:00Z",
        ),
        (
            "e2b",
            "cus_b",
            "tokens",
            Some("alice"),
            "2026-01-02T00:00:00Z",
        ),
        ("e2a", "cus_a", "tokens", None, "2026-01-02T00:00:00Z"),
        ("e4", "cus_b", "api_call", None, "2026-01-04T00:00:00Z"),
    ] {
        let mut it = item(ws, id, customer, vec![]);
        it.event.timestamp = ts(at);
        it.event.event_type = kind.to_owned();
        it.event.subject = subject.map(str::to_owned);
        batch.push(it);
    }
    h.ingest(ws, &batch).await;
    let other = h.other_workspace().await;
    h.customer(&other, "cus_a").await;
    h.ingest(&other, &[item(&other, "x1", "cus_a", vec![])])
        .await;

    let query = |filter: EventFilter, after: Option<(&'static str, &'static str)>, limit| {
        let wid = wid.clone();
        async move {
            let after = after.map(|(at, id)| After { at: ts(at), id });
            h.store
                .query_events(&wid, &filter, after, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    let all = EventFilter::default();
    assert_eq!(
        query(all.clone(), None, 10).await,
        ["e1", "e2a", "e2b", "e3", "e4"]
    );
    assert_eq!(
        query(all.clone(), Some(("2026-01-02T00:00:00Z", "e2a")), 2).await,
        ["e2b", "e3"]
    );
    let of = |customer: Option<&str>, kind: Option<&str>, subject: Option<&str>| EventFilter {
        customer: customer.map(str::to_owned),
        event_type: kind.map(str::to_owned),
        subject: subject.map(str::to_owned),
        ..EventFilter::default()
    };
    assert_eq!(
        query(of(Some("cus_a"), None, None), None, 10).await,
        ["e1", "e2a", "e3"]
    );
    assert_eq!(
        query(of(None, Some("tokens"), None), None, 10).await,
        ["e2a", "e2b"]
    );
    assert_eq!(
        query(of(None, None, Some("alice")), None, 10).await,
        ["e2b", "e3"]
    );
    assert_eq!(
        query(of(Some("cus_b"), Some("api_call"), None), None, 10).await,
        ["e4"]
    );
    let range = EventFilter {
        from: Some(ts("2026-01-02T00:00:00Z")),
        to: Some(ts("2026-01-04T00:00:00Z")),
        ..EventFilter::default()
    };
    assert_eq!(query(range, None, 10).await, ["e2a", "e2b", "e3"]);
    assert_eq!(
        query(of(Some("nobody"), None, None), None, 10).await,
        Vec::<String>::new()
    );
}
