//! Hostile input cannot hurt: each defect found by probing the API as an attacker holding one
//! customer key (or as a careless operator) has a test here, on every backend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{ADMIN_KEY, Backend, TestServer, Workspace, backend_tests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_core::ids::{CustomerId, WorkspaceId};

/// A catalog with a hard calendar quota on a sum meter, a sum meter that takes corrections and
/// a count meter.
const CATALOG: &str = r#"
currency: USD
meters:
  tokens: { event: llm.tokens, aggregation: sum, property: n }
  fixes: { event: llm.fix, aggregation: sum, property: n, corrections: true }
  calls: { event: api.call, aggregation: count }
plans:
  basic:
    quotas:
      - { meter: tokens, limit: 1000, period: billing }
      - { meter: fixes, limit: 1000, period: billing }
      - { meter: calls, limit: 100, period: billing }
"#;

async fn workspace(server: &TestServer) -> Workspace<'_> {
    server.workspace_with("hostile", CATALOG).await
}

async fn as_customer(
    ws: &Workspace<'_>,
    key: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    ws.server.call(key, method, path, Some(body)).await
}

fn codes(report: &Value) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["code"]
                .as_str()
                .unwrap_or(r["status"].as_str().unwrap())
                .to_owned()
        })
        .collect()
}

async fn a_customer_key_cannot_lift_its_quota_with_a_negative_quantity(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = workspace(&server).await;
    let key = ws.customer("neg", "basic", None, false).await;
    let (status, report) = as_customer(&ws, &key, Method::POST, "/v1/events",
            json!({"events": [{"id": "n1", "customer": "neg", "type": "llm.tokens", "properties": {"n": "-1000000"}}]})).await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{report}");
    assert_eq!(codes(&report), ["negative_quantity"]);
    let (status, d) = as_customer(
        &ws,
        &key,
        Method::POST,
        "/v1/check",
        json!({"meter": "tokens", "quantity": 500000, "consume": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["allowed"], false, "{d}");
    assert_eq!(d["reason"], "quota_exceeded", "{d}");
    // Not from an admin key either, on a meter without corrections.
    let (_, report) = ws
        .events(
            json!([{"id": "n2", "customer": "neg", "type": "llm.tokens", "properties": {"n": -5}}]),
        )
        .await;
    assert_eq!(codes(&report), ["negative_quantity"]);
    // A meter that takes corrections: admin only, and never below zero.
    let (_, report) = as_customer(
        &ws,
        &key,
        Method::POST,
        "/v1/events",
        json!({"events": [{"id": "f0", "type": "llm.fix", "properties": {"n": "-1"}}]}),
    )
    .await;
    assert_eq!(codes(&report), ["negative_quantity"]);
    let (_, report) = ws
        .events(json!([
            {"id": "f1", "customer": "neg", "type": "llm.fix", "properties": {"n": "-1"}},
            {"id": "f2", "customer": "neg", "type": "llm.fix", "properties": {"n": "10"}}
        ]))
        .await;
    assert_eq!(
        codes(&report),
        ["correction_below_zero", "accepted"],
        "{report}"
    );
    // Corrections in one batch add up against the total before the batch.
    let (_, report) = ws
        .events(json!([
            {"id": "f3", "customer": "neg", "type": "llm.fix", "properties": {"n": "-4"}},
            {"id": "f4", "customer": "neg", "type": "llm.fix", "properties": {"n": "-7"}}
        ]))
        .await;
    assert_eq!(
        codes(&report),
        ["accepted", "correction_below_zero"],
        "{report}"
    );
    let d = ws
        .check(json!({"customer": "neg", "meter": "fixes", "quantity": 0}))
        .await;
    assert_eq!(d["used"], "6", "{d}");
    // The check path refuses negatives as before.
    let (status, p) = as_customer(
        &ws,
        &key,
        Method::POST,
        "/v1/check",
        json!({"meter": "tokens", "quantity": "-5", "consume": true}),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_quantity"))
    );
}
backend_tests!(a_customer_key_cannot_lift_its_quota_with_a_negative_quantity);

async fn huge_and_tiny_quantities_are_refused_before_anything_is_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = workspace(&server).await;
    let key = ws.customer("big", "basic", None, false).await;
    let (status, report) = as_customer(&ws, &key, Method::POST, "/v1/events", json!({"events": [
            {"id": "b1", "type": "llm.tokens", "properties": {"n": "79228162514264337593543950335"}},
            {"id": "b2", "type": "llm.tokens", "properties": {"n": 79228162514264337593543950335_f64}},
            {"id": "b3", "type": "llm.tokens", "properties": {"n": "1000000000001"}},
            {"id": "b4", "type": "llm.tokens", "properties": {"n": "1e-40"}},
            {"id": "b5", "type": "llm.tokens", "properties": {"n": 1e-40}},
            {"id": "b6", "type": "api.call", "properties": {"tollgate.quantity": "1e13"}},
            {"id": "b7", "type": "llm.tokens", "properties": {"n": "1000000000000"}}
        ]})).await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{report}");
    assert_eq!(
        codes(&report),
        [
            "quantity_out_of_range",
            "quantity_out_of_range",
            "quantity_out_of_range",
            "quantity_too_precise",
            "quantity_too_precise",
            "quantity_out_of_range",
            "accepted"
        ],
        "{report}"
    );
    // The customer still answers: checks, usage, the upcoming invoice.
    let d = ws
        .check(json!({"customer": "big", "meter": "tokens", "quantity": 1}))
        .await;
    assert_eq!(
        (d["allowed"].as_bool(), d["used"].as_str()),
        (Some(false), Some("1000000000000")),
        "{d}"
    );
    let (status, usage) = as_customer(
        &ws,
        &key,
        Method::GET,
        "/v1/customers/big/usage",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let (status, upcoming) = ws
        .call(Method::GET, "/v1/customers/big/invoices/upcoming", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{upcoming}");
    for (q, code) in [
        (
            json!("79228162514264337593543950335"),
            "quantity_out_of_range",
        ),
        (json!(1e300), "quantity_out_of_range"),
        (json!("1e-40"), "quantity_too_precise"),
        (json!("lots"), "invalid_quantity"),
    ] {
        let (status, p) = as_customer(
            &ws,
            &key,
            Method::POST,
            "/v1/check",
            json!({"meter": "calls", "quantity": q, "consume": true}),
        )
        .await;
        assert_eq!(
            (status, p["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{q}: {p}"
        );
    }
}
backend_tests!(huge_and_tiny_quantities_are_refused_before_anything_is_stored);

async fn a_retried_consuming_check_answers_the_original_decision(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = workspace(&server).await;
    ws.customer("retry", "basic", None, false).await;
    let mut first = Vec::new();
    for i in 0..100 {
        let d = ws.check(json!({"customer": "retry", "meter": "calls", "consume": true, "event_id": format!("c{i}")})).await;
        assert_eq!(d["allowed"], true, "{d}");
        first.push(d);
    }
    // The quota is full; every retry still gets its original answer.
    for (i, original) in first.iter().enumerate() {
        let d = ws.check(json!({"customer": "retry", "meter": "calls", "consume": true, "event_id": format!("c{i}")})).await;
        assert_eq!(&d, original, "retry of c{i}");
    }
    // A retry says it is one (`Idempotent-Replayed: true`); a first answer does not.
    let replay = |id: &str| {
        server.call_full(
            &ws.key,
            Method::POST,
            "/v1/check",
            Some(json!({"customer": "retry", "meter": "calls", "consume": true, "event_id": id})),
        )
    };
    let (_, headers, _) = replay("c3").await;
    assert_eq!(headers["idempotent-replayed"], "true");
    let (_, headers, denied) = replay("never-seen").await;
    assert_eq!(denied["allowed"], false);
    assert!(headers.get("idempotent-replayed").is_none(), "{headers:?}");
    // A node that never saw the original (here: a fresh engine on the same store, as after a
    // restart) finds its event and answers allowed, counting it once.
    let engine = server.server.as_ref().unwrap().state.engine.clone();
    let fresh = tollgate_server::engine::Engine::new(
        engine.store().clone(),
        std::sync::Arc::new(tollgate_server::clock::SystemClock),
    );
    let again = fresh
        .check(&tollgate_server::engine::CheckRequest {
            workspace: ws.id.clone(),
            customer: "retry".into(),
            target: tollgate_server::engine::CheckTarget::Meter("calls".into()),
            quantity: rust_decimal::Decimal::ONE,
            subject: None,
            consume: true,
            event_id: Some("c7".into()),
            properties: Default::default(),
        })
        .await
        .unwrap();
    assert!(again.decision.allowed, "{:?}", again.decision);
    assert!(again.replayed, "found stored: a replay");
    assert_eq!(again.decision.used, Some(rust_decimal::Decimal::from(100)));
    let d = ws
        .check(json!({"customer": "retry", "meter": "calls", "consume": true, "event_id": "c100"}))
        .await;
    assert_eq!(d["allowed"], false, "{d}");
    assert_eq!(d["used"], "100", "{d}");

    // The same ids in flight three times at once admit exactly the quota.
    ws.customer("burst", "basic", None, false).await;
    let ws = &ws;
    let answers = futures_join_all((0..300).map(|n| async move {
            ws.check(json!({"customer": "burst", "meter": "calls", "consume": true, "event_id": format!("b{}", n % 100)})).await
        })).await;
    assert!(answers.iter().all(|d| d["allowed"] == true), "{answers:?}");
    let d = ws
        .check(json!({"customer": "burst", "meter": "calls", "quantity": 0}))
        .await;
    assert_eq!(d["used"], "100", "{d}");
}
backend_tests!(a_retried_consuming_check_answers_the_original_decision);

async fn futures_join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(f);
    }
    let mut out = Vec::with_capacity(set.len());
    let mut pinned: Vec<_> = set.into_iter().map(Box::pin).collect();
    // Poll all of them concurrently on this task.
    let results = std::sync::Mutex::new(Vec::new());
    {
        let polls = pinned.iter_mut().enumerate().map(|(i, f)| {
            let results = &results;
            async move {
                let v = f.await;
                results.lock().unwrap().push((i, v));
            }
        });
        let all: Vec<_> = polls.collect();
        join_vec(all).await;
    }
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    out.extend(results.into_iter().map(|(_, v)| v));
    out
}

async fn join_vec<F: Future<Output = ()>>(futures: Vec<F>) {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for slot in futures.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    pending = true;
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
}

async fn nul_characters_are_refused_alike_on_every_backend(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = workspace(&server).await;
    ws.customer("nul", "basic", None, false).await;
    let bad = [
        (
            "/v1/events",
            json!({"events": [{"id": "a\u{0}b", "customer": "nul", "type": "api.call"}]}),
        ),
        (
            "/v1/events",
            json!({"events": [{"id": "p1", "customer": "nul", "type": "api.call", "properties": {"k\u{0}": 1}}]}),
        ),
        (
            "/v1/events",
            json!({"events": [{"id": "p2", "customer": "nul", "type": "api.call", "properties": {"k": "v\u{0}"}}]}),
        ),
        ("/v1/customers", json!({"id": "named", "name": "a\u{0}b"})),
        (
            "/v1/customers",
            json!({"id": "meta", "metadata": {"k": "\u{0}"}}),
        ),
        (
            "/v1/check",
            json!({"customer": "nul", "meter": "calls", "consume": true, "event_id": "x\u{0}"}),
        ),
    ];
    for (path, body) in bad {
        let (status, p) = ws.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(
            (status, p["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("nul_byte")),
            "{path} {body}: {p}"
        );
    }
    let (status, p) = server
        .call(
            ADMIN_KEY,
            Method::POST,
            "/v1/workspaces",
            Some(json!({"id": "wsnul", "name": "x\u{0}"})),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("nul_byte")),
        "{p}"
    );
    let (status, p) = ws.call(Method::GET, "/v1/customers/a%00b", None).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("nul_byte")),
        "{p}"
    );
    // Nothing was stored.
    let d = ws
        .check(json!({"customer": "nul", "meter": "calls", "quantity": 0}))
        .await;
    assert_eq!(d["used"], "0", "{d}");
    let (status, _) = ws.call(Method::GET, "/v1/customers/named", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
backend_tests!(nul_characters_are_refused_alike_on_every_backend);

async fn the_isolation_matrix_is_consistent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = workspace(&server).await;
    let key = ws.customer("iso", "basic", None, false).await;
    let (status, _) = as_customer(&ws, &key, Method::GET, "/v1/catalog", Value::Null).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, p) = as_customer(
        &ws,
        &key,
        Method::POST,
        "/v1/quotes",
        json!({"plan": "basic"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
    for path in ["credits", "invoices", "keys", "subscriptions"] {
        let (status, p) = ws
            .call(Method::GET, &format!("/v1/customers/ghost/{path}"), None)
            .await;
        assert_eq!(
            (status, p["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}: {p}"
        );
    }
}
backend_tests!(the_isolation_matrix_is_consistent);

async fn bad_requests_are_problems_with_stable_codes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = workspace(&server).await;
    let (status, p) = ws
        .call(
            Method::POST,
            "/v1/customers",
            Some(json!({"id": "m", "metadata": "not an object"})),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json")),
        "{p}"
    );
    assert!(p["detail"].as_str().unwrap().contains("metadata"), "{p}");
    let page = reqwest::get(format!("{}/", server.base)).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("/openapi.json"));
    let (status, p) = ws.call(Method::GET, "/v1/nowhere", None).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_route")),
        "{p}"
    );
    let (status, p) = ws.call(Method::DELETE, "/v1/customers", None).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")),
        "{p}"
    );
    let http = reqwest::Client::new();
    let send = |ct: Option<&'static str>, body: &'static str| {
        let mut r = http
            .post(format!("{}/v1/customers", server.base))
            .bearer_auth(&ws.key)
            .body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    let r = send(Some("application/json"), "{not json").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_json");
    let r = send(Some("text/plain"), "{}").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // What `curl -d` sends (a form label on a JSON body) is read as JSON.
    let r = send(
        Some("application/x-www-form-urlencoded"),
        r#"{"id": "curl"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // No Content-Type at all is read as JSON too.
    let r = send(None, r#"{"id": "bare"}"#).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Amounts below a currency's minor unit and prices below the engine's precision.
    ws.customer("money", "basic", None, false).await;
    let (status, p) = ws
        .call(
            Method::POST,
            "/v1/customers/money/credits",
            Some(json!({"amount": "0.0000000000000000000000000001"})),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("amount_too_precise")),
        "{p}"
    );
    let tiny = CATALOG.replace(
        "calls: { event: api.call, aggregation: count }",
        "calls: { event: api.call, aggregation: count }\n  extra: { event: x, aggregation: count }",
    ) + "      \n    prices:\n      - { meter: calls, model: per_unit, unit_amount: \"1e-40\" }\n";
    let (status, p) = ws
        .call(Method::PUT, "/v1/catalog", Some(json!({"yaml": tiny})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(p.to_string().contains("28 decimal digits"), "{p}");
    // A hostile catalog is refused by its shape, quickly, with a path.
    let (status, p) = ws
        .call(
            Method::PUT,
            "/v1/catalog",
            Some(json!({"yaml": "[".repeat(100_000)})),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_catalog")),
        "{p}"
    );
    // Corrections only on sum meters.
    let (status, p) = ws.call(Method::PUT, "/v1/catalog", Some(json!({"yaml": CATALOG.replace("aggregation: count }", "aggregation: count, corrections: true }")}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(p.to_string().contains("meters.calls.corrections"), "{p}");
}
backend_tests!(bad_requests_are_problems_with_stable_codes);

async fn a_bill_run_answers_with_a_run_to_poll(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = workspace(&server).await;
    ws.customer("br", "basic", None, false).await;
    let run = ws.post("/v1/bill_runs", json!({})).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["subscriptions"], 1, "{run}");
    let id = run["id"].as_str().unwrap();
    assert!(id.starts_with("br_"), "{run}");
    let (status, polled) = ws
        .call(Method::GET, &format!("/v1/bill_runs/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(polled, run);
    // Another workspace cannot see it.
    let other = workspace(&server).await;
    let (status, _) = other
        .call(Method::GET, &format!("/v1/bill_runs/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
backend_tests!(a_bill_run_answers_with_a_run_to_poll);

/// The running server's store, to look under the API.
fn store(server: &TestServer) -> std::sync::Arc<dyn tollgate_store::Store> {
    server.server.as_ref().unwrap().state.engine.store().clone()
}

async fn every_aggregate_can_be_rebuilt_from_the_raw_events(backend: Backend) {
    use rust_decimal::Decimal;
    use std::collections::BTreeMap;
    let server = TestServer::start(backend).await;
    let ws = workspace(&server).await;
    ws.customer("re", "basic", None, false).await;
    // A consuming check of 7 units on a count meter, plain events, a check on a sum meter,
    // and an admin correction.
    ws.check(json!({"customer": "re", "meter": "calls", "quantity": 7, "consume": true}))
        .await;
    ws.check(json!({"customer": "re", "meter": "tokens", "quantity": "12.5", "consume": true, "subject": "u1"})).await;
    let (status, report) = ws.events(json!([
            {"id": "r1", "customer": "re", "type": "api.call"},
            {"id": "r2", "customer": "re", "type": "api.call", "properties": {"tollgate.quantity": 3}},
            {"id": "r3", "customer": "re", "type": "llm.tokens", "properties": {"n": "100"}},
            {"id": "r4", "customer": "re", "type": "llm.fix", "properties": {"n": "9"}}
        ])).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (status, report) = ws
        .events(json!([
            {"id": "r5", "customer": "re", "type": "llm.fix", "properties": {"n": "-2.5"}}
        ]))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");

    let store = store(&server);
    let catalog = tollgate_core::catalog::parse_yaml(CATALOG).unwrap();
    let from: jiff::Timestamp = "2000-01-01T00:00:00Z".parse().unwrap();
    let to: jiff::Timestamp = "2100-01-01T00:00:00Z".parse().unwrap();
    let events = store
        .events(
            &WorkspaceId::from(&ws.id),
            &CustomerId::from("re"),
            from,
            to,
            1000,
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 7);
    let mut rebuilt: BTreeMap<String, Decimal> = BTreeMap::new();
    for e in &events {
        let event = tollgate_core::event::Event {
            event_type: e.event_type.clone(),
            timestamp: e.timestamp,
            subject: e.subject.clone(),
            properties: e.properties.as_object().unwrap().clone(),
        };
        for (key, meter) in &catalog.meters {
            if let Some(c) = tollgate_core::meter::contribution(key, meter, &event).unwrap()
                && let tollgate_core::meter::ContributionValue::Add(x) = c.value
            {
                *rebuilt.entry(key.clone()).or_default() += x;
            }
        }
    }
    // The first period of a calendar subscription starts with it (docs/BILLING-PERIODS.md).
    let month = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .first_of_month()
        .unwrap()
        .start_of_day()
        .unwrap()
        .timestamp();
    let started = store
        .list_subscriptions(&WorkspaceId::from(&ws.id), &CustomerId::from("re"))
        .await
        .unwrap()[0]
        .started_at;
    let period = month.max(started);
    let mut stored: BTreeMap<String, Decimal> = BTreeMap::new();
    for row in store
        .aggregates(&WorkspaceId::from(&ws.id), &CustomerId::from("re"), period)
        .await
        .unwrap()
    {
        if row.subject.is_empty() {
            *stored.entry(row.meter).or_default() += row.value;
        }
    }
    let normalized = |m: BTreeMap<String, Decimal>| -> BTreeMap<String, String> {
        m.into_iter()
            .map(|(k, v)| (k, v.normalize().to_string()))
            .collect()
    };
    assert_eq!(
        normalized(rebuilt.clone()),
        normalized(stored),
        "rebuilt from raw events vs stored aggregates"
    );
    assert_eq!(rebuilt["calls"], Decimal::from(11));
    assert_eq!(rebuilt["fixes"].normalize(), Decimal::new(65, 1));
}
backend_tests!(every_aggregate_can_be_rebuilt_from_the_raw_events);

async fn a_quantity_stored_before_the_bounds_does_not_break_its_customer(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = workspace(&server).await;
    let clock = ws.test_clock("2026-11-10T12:00:00Z").await;
    ws.customer("old", "basic", Some(&clock), false).await;
    // Written straight to the store, as wave 1's ingest accepted it.
    let at: jiff::Timestamp = "2026-11-10T11:00:00Z".parse().unwrap();
    // The first period of this calendar subscription starts when it does.
    let period: jiff::Timestamp = "2026-11-10T12:00:00Z".parse().unwrap();
    let huge = rust_decimal::Decimal::MAX;
    let item = tollgate_store::IngestItem {
        event: tollgate_store::EventRecord {
            workspace: ws.id.clone(),
            id: "legacy".into(),
            customer: "old".into(),
            event_type: "llm.tokens".into(),
            timestamp: at,
            subject: None,
            properties: json!({"n": huge.to_string()}),
            received_at: at,
        },
        updates: vec![tollgate_store::AggregateUpdate {
            meter: "tokens".into(),
            period_start: period,
            subject: String::new(),
            group_key: String::new(),
            op: tollgate_store::AggregateOp::Add(huge),
        }],
    };
    store(&server)
        .ingest(&WorkspaceId::from(&ws.id), &[item])
        .await
        .unwrap();
    // Checks and usage answer (the customer is over its quota), and so does the clock.
    let d = ws
        .check(json!({"customer": "old", "meter": "tokens", "quantity": 1}))
        .await;
    assert_eq!(d["allowed"], false, "{d}");
    let (status, usage) = ws.call(Method::GET, "/v1/customers/old/usage", None).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let (status, upcoming) = ws
        .call(Method::GET, "/v1/customers/old/invoices/upcoming", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{upcoming}");
    let run = ws.post("/v1/bill_runs", json!({})).await;
    assert_eq!(run["errors"], json!([]), "{run}");
    ws.advance(&clock, "2026-11-20T00:00:00Z").await;
    let d = ws
        .check(json!({"customer": "old", "meter": "calls", "quantity": 1, "consume": true}))
        .await;
    assert_eq!(d["allowed"], true, "{d}");
}
backend_tests!(a_quantity_stored_before_the_bounds_does_not_break_its_customer);

/// A consuming check records an event its meter reads: the meter's filter values win over
/// the caller's properties, so what the answer counted is what is stored.
async fn a_consuming_check_counts_what_it_answers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("apex.yaml").await;
    ws.customer("lvl", "free", None, false).await;
    for _ in 0..3 {
        let d = ws
            .check(json!({"customer": "lvl", "meter": "agent_runs", "subject": "u1", "consume": true, "properties": {"level": "junior"}}))
            .await;
        assert_eq!(d["allowed"], true, "{d}");
    }
    let d = ws
        .check(json!({"customer": "lvl", "meter": "agent_runs", "subject": "u1", "consume": true}))
        .await;
    assert_eq!(
        (d["allowed"].as_bool(), d["used"].as_str()),
        (Some(false), Some("3")),
        "{d}"
    );
}
backend_tests!(a_consuming_check_counts_what_it_answers);

/// JSON numbers are read from their text: a quantity with more digits than an f64 keeps is
/// counted exactly, in events and in checks.
async fn json_numbers_never_pass_through_a_float(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = workspace(&server).await;
    ws.customer("exact", "basic", None, false).await;
    let body: Value = serde_json::from_str(
        r#"{"events": [{"id": "x1", "customer": "exact", "type": "llm.fix", "properties": {"n": 123.123456789012345678}}]}"#,
    )
    .unwrap();
    let (status, report) = ws.call(Method::POST, "/v1/events", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let check: Value = serde_json::from_str(
        r#"{"customer": "exact", "meter": "fixes", "quantity": 0.000000000000000001, "consume": true}"#,
    )
    .unwrap();
    let d = ws.check(check).await;
    assert_eq!(d["used"], "123.123456789012345679", "{d}");
}
backend_tests!(json_numbers_never_pass_through_a_float);

/// A panic inside a handler answers a 500 problem and the server goes on answering.
#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_goes_on() {
    let app = axum::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async {
                let empty: Vec<u8> = Vec::new();
                format!("{}", empty[1])
            }),
        )
        .layer(tollgate_server::api::catch_panics());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let r = http
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "internal");
    }
}

/// Random bearer keys are refused without being remembered: the key cache holds only keys the
/// store holds, so a caller cannot grow a node's memory by sending made-up secrets. A known key
/// is cached; a revoked one stays refused.
async fn unknown_keys_are_not_remembered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = workspace(&server).await;
    let key = ws.customer("known", "basic", None, false).await;
    let engine = server.server.as_ref().unwrap().state.engine.clone();
    let gate = json!({"meter": "calls", "quantity": 1});
    let (status, _) = as_customer(&ws, &key, Method::POST, "/v1/check", gate.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let cached = engine.cached_keys();
    for i in 0..200 {
        let made_up = format!("tg_live_made_up_{i:04}_{}", "x".repeat(24));
        let (status, body) =
            as_customer(&ws, &made_up, Method::POST, "/v1/check", gate.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    assert_eq!(engine.cached_keys(), cached, "no made-up key was cached");
    let (status, _) = as_customer(&ws, &key, Method::POST, "/v1/check", gate).await;
    assert_eq!(status, StatusCode::OK, "the known key still works");
}
backend_tests!(unknown_keys_are_not_remembered);
