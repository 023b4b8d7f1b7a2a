//! Cases for ingest, each aggregate operation, window entries, level points and raw events.

use crate::Harness;
use crate::support::*;
use IngestOutcome::{Accepted, Duplicate};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::json;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::*;

pub(crate) async fn ingest_is_idempotent(h: &Harness) {
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
    assert_eq!(
        h.ingest(ws, &batch).await,
        vec![Duplicate, Accepted, Duplicate]
    );
    assert_eq!(value_of(h, ws, "cus_a", "calls").await, Some(dec("4")));

    // The stored event is the first one seen, not the duplicate's payload.
    let events = h
        .store
        .events(
            &WorkspaceId::from(ws),
            &CustomerId::from("cus_a"),
            Timestamp::UNIX_EPOCH,
            ts("2030-01-01T00:00:00Z"),
            100,
        )
        .await
        .unwrap();
    let ids: Vec<_> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["evt_1", "evt_2", "evt_3", "evt_4"]);
    assert_eq!(events[0], batch_event(ws, "evt_1"));
}

pub(crate) async fn concurrent_ingest_accepts_an_id_once(h: &Harness) {
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
                store.ingest(&WorkspaceId::from(&ws), &batch).await.unwrap()
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
    assert_eq!(
        shared_accepted, 1,
        "the shared event must be accepted exactly once"
    );
    assert_eq!(value_of(h, &h.ws, "cus_a", "calls").await, Some(dec("112")));
}

pub(crate) async fn aggregate_add_and_max(h: &Harness) {
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    let mut grouped = add("tokens", "5");
    grouped.subject = "alice".into();
    grouped.group_key = "model=gpt-4".into();
    let mut next_period = add("tokens", "1000");
    next_period.period_start = ts("2026-02-01T00:00:00Z");
    let batch = vec![
        item(
            ws,
            "e1",
            "cus_a",
            vec![
                add("tokens", "1.5"),
                update("peak", AggregateOp::Max(dec("3"))),
            ],
        ),
        item(
            ws,
            "e2",
            "cus_a",
            vec![
                add("tokens", "2.25"),
                update("peak", AggregateOp::Max(dec("7"))),
            ],
        ),
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

    assert_eq!(
        value_of(h, ws, "cus_a", "tokens").await,
        Some(dec("3.750001"))
    );
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

pub(crate) async fn aggregate_latest(h: &Harness) {
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
        item(
            ws,
            "e1",
            "cus_a",
            vec![latest("10", "2026-01-05T00:00:00Z")],
        ),
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
    assert_eq!(
        get().await,
        Some((dec("10"), Some(ts("2026-01-05T00:00:00Z"))))
    );
    // An older value never replaces a newer one.
    h.ingest(
        ws,
        &[item(
            ws,
            "e3",
            "cus_a",
            vec![latest("1", "2026-01-04T00:00:00Z")],
        )],
    )
    .await;
    assert_eq!(
        get().await,
        Some((dec("10"), Some(ts("2026-01-05T00:00:00Z"))))
    );
    // An equally new one does.
    h.ingest(
        ws,
        &[item(
            ws,
            "e4",
            "cus_a",
            vec![latest("12", "2026-01-05T00:00:00Z")],
        )],
    )
    .await;
    assert_eq!(
        get().await,
        Some((dec("12"), Some(ts("2026-01-05T00:00:00Z"))))
    );
    // So does a newer one; equal times within a batch go to the last.
    let batch = vec![
        item(
            ws,
            "e5",
            "cus_a",
            vec![latest("20", "2026-01-06T00:00:00.000001Z")],
        ),
        item(
            ws,
            "e6",
            "cus_a",
            vec![latest("21", "2026-01-06T00:00:00.000001Z")],
        ),
    ];
    h.ingest(ws, &batch).await;
    assert_eq!(
        get().await,
        Some((dec("21"), Some(ts("2026-01-06T00:00:00.000001Z"))))
    );
}

pub(crate) async fn aggregate_unique(h: &Harness) {
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
    assert_eq!(
        h.ingest(ws, &batch).await,
        vec![Accepted, Accepted, Duplicate]
    );
    assert_eq!(value_of(h, ws, "cus_a", "users").await, Some(dec("3")));
    // The same value counts again in another row (period or subject).
    let mut other_period = uniq("u1");
    other_period.period_start = ts("2026-02-01T00:00:00Z");
    let mut other_subject = uniq("u1");
    other_subject.subject = "team-a".into();
    h.ingest(
        ws,
        &[item(ws, "e6", "cus_a", vec![other_period, other_subject])],
    )
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

pub(crate) async fn aggregate_level_and_points(h: &Harness) {
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
        .level_points(
            &WorkspaceId::from(ws),
            &CustomerId::from("cus_a"),
            ts("2026-01-02T00:00:00Z"),
            ts("2026-01-04T00:00:00Z"),
        )
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
        .level_points(
            &WorkspaceId::from(ws),
            &CustomerId::from("cus_a"),
            ts("2026-01-02T12:00:00Z"),
            ts("2026-01-03T00:00:00Z"),
        )
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
            .level_points(
                &WorkspaceId::from(ws),
                &CustomerId::from("cus_b"),
                ts(PERIOD),
                ts("2027-01-01T00:00:00Z")
            )
            .await
            .unwrap(),
        vec![]
    );
}

pub(crate) async fn window_entries_and_prune(h: &Harness) {
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
        item(
            ws,
            "e2",
            "cus_a",
            vec![entry("2.5", "2026-01-05T02:00:00Z")],
        ),
        item(ws, "e3", "cus_a", vec![entry("1", "2026-01-05T03:00:00Z")]),
        item(ws, "e1", "cus_a", vec![entry("50", "2026-01-05T03:00:00Z")]),
    ];
    h.ingest(ws, &batch).await;
    let other = h.other_workspace().await;
    h.customer(&other, "cus_a").await;
    h.ingest(
        &other,
        &[item(
            &other,
            "e1",
            "cus_a",
            vec![entry("7", "2026-01-05T01:00:00Z")],
        )],
    )
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
        .window_entries(
            &WorkspaceId::from(ws),
            &CustomerId::from("cus_a"),
            ts("2026-01-05T02:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(
        since,
        vec![
            row("2.5", "2026-01-05T02:00:00Z"),
            row("1", "2026-01-05T03:00:00Z")
        ]
    );
    let pruned = h
        .store
        .prune_window_entries(&WorkspaceId::from(ws), ts("2026-01-05T03:00:00Z"))
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    let left = h
        .store
        .window_entries(
            &WorkspaceId::from(ws),
            &CustomerId::from("cus_a"),
            Timestamp::UNIX_EPOCH,
        )
        .await
        .unwrap();
    assert_eq!(left, vec![row("1", "2026-01-05T03:00:00Z")]);
    // Pruning one workspace leaves the others alone.
    let theirs = h
        .store
        .window_entries(
            &WorkspaceId::from(&other),
            &CustomerId::from("cus_a"),
            Timestamp::UNIX_EPOCH,
        )
        .await
        .unwrap();
    assert_eq!(theirs, vec![row("7", "2026-01-05T01:00:00Z")]);
    // Window entries do not create aggregate rows.
    assert_eq!(h.aggregates(ws, "cus_a", ts(PERIOD)).await, vec![]);
}

pub(crate) async fn events_range_order_and_limit(h: &Harness) {
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
            .events(
                &WorkspaceId::from(ws),
                &CustomerId::from(customer),
                ts(from),
                ts(to),
                limit,
            )
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
        .events(
            &WorkspaceId::from(ws),
            &CustomerId::from("cus_b"),
            Timestamp::UNIX_EPOCH,
            ts("2030-01-01T00:00:00Z"),
            10,
        )
        .await
        .unwrap();
    assert_eq!(stored, vec![plain.event.clone()]);
    // One event by id, in its workspace only.
    assert_eq!(
        h.store
            .get_event(&WorkspaceId::from(ws), "b1")
            .await
            .unwrap(),
        Some(plain.event)
    );
    assert_eq!(
        h.store
            .get_event(&WorkspaceId::from(ws), "nope")
            .await
            .unwrap(),
        None
    );
    let other = h.other_workspace().await;
    assert_eq!(
        h.store
            .get_event(&WorkspaceId::from(&other), "b1")
            .await
            .unwrap(),
        None
    );
}

pub(crate) async fn timestamps_round_trip_to_the_microsecond(h: &Harness) {
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
            h.store
                .get_customer(&WorkspaceId::from(ws), &c.id)
                .await
                .unwrap()
                .unwrap()
                .created_at,
            ts(at)
        );
        let mut it = item(ws, &format!("e{i}"), &c.id, vec![]);
        it.event.timestamp = ts(at);
        it.event.received_at = ts(at);
        h.ingest(ws, &[it.clone()]).await;
        let got = h
            .store
            .events(
                &WorkspaceId::from(ws),
                &CustomerId::from(&c.id),
                ts(at),
                ts(at) + jiff::SignedDuration::from_micros(1),
                1,
            )
            .await
            .unwrap();
        assert_eq!(got, vec![it.event]);
    }
}

/// Batches of 1,000 over many customers and rows; prints the rate (with `--nocapture`), asserts
/// only the totals.
pub(crate) async fn large_batches(h: &Harness) {
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
        items.push(item(
            ws,
            &format!("evt_{n}"),
            &c,
            vec![add("calls", "1"), grouped],
        ));
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
