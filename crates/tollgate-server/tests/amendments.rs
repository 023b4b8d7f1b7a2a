//! "Latest copy replaces" end to end, on a real server and both backends: a repeated event id on
//! a `latest_replaces` meter replaces the stored value as an audited amendment (the invoice, the
//! usage and the limits follow it, the ledger keeps both values), a `first_wins` meter is
//! unchanged, a customer key cannot lower its usage this way, a copy for another customer or
//! type is refused, and a closed period's event is not amended.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{Backend, TestServer, Workspace, backend_tests};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};

const CATALOG: &str = r#"
currency: USD
meters:
  tokens: { name: Tokens, event: llm.call, aggregation: sum, property: tokens, on_duplicate: latest_replaces }
  calls: { name: Calls, event: api.call, aggregation: count }
plans:
  metered:
    quotas:
      - { meter: tokens, limit: 1000, period: billing }
    prices:
      - { meter: tokens, model: per_unit, unit_amount: "0.01" }
      - { meter: calls, model: per_unit, unit_amount: "1.00" }
"#;

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string, got {v}"))
        .parse()
        .unwrap()
}

async fn send(ws: &Workspace<'_>, key: &str, events: Value) -> Value {
    let (status, report) = ws
        .server
        .call(
            key,
            Method::POST,
            "/v1/events",
            Some(json!({ "events": events })),
        )
        .await;
    assert!(status.is_success(), "{status} {report}");
    report
}

fn result(report: &Value) -> (&str, Option<&str>) {
    let r = &report["results"][0];
    (r["status"].as_str().unwrap(), r["code"].as_str())
}

async fn used(ws: &Workspace<'_>, customer: &str, meter: &str) -> Decimal {
    let (status, usage) = ws
        .call(
            Method::GET,
            &format!("/v1/customers/{customer}/usage"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let m = usage["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == meter)
        .unwrap_or_else(|| panic!("{usage}"));
    dec(&m["used"])
}

/// Whether 200 more tokens fit the 1,000-token quota now.
async fn room_for_200(ws: &Workspace<'_>) -> bool {
    let d = ws
        .check(json!({"customer": "acme", "meter": "tokens", "quantity": 200}))
        .await;
    d["allowed"].as_bool().unwrap()
}

fn tokens(id: &str, customer: &str, n: i64) -> Value {
    json!([{ "id": id, "customer": customer, "type": "llm.call", "properties": { "tokens": n } }])
}

async fn latest_copy_replaces_as_an_audited_amendment(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("amend", CATALOG).await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    let key = ws.customer("acme", "metered", Some(&clock), false).await;
    ws.customer("beta", "metered", Some(&clock), false).await;
    let keys = ws
        .call(Method::GET, "/v1/customers/acme/keys", None)
        .await
        .1;
    let key_id = keys["data"][0]["id"].as_str().unwrap().to_owned();
    ws.advance(&clock, "2026-11-10T00:00:00Z").await;

    let first = send(&ws, &ws.key, tokens("t1", "acme", 100)).await;
    assert_eq!(result(&first), ("accepted", None), "{first}");
    let call = json!([{ "id": "c1", "customer": "acme", "type": "api.call", "properties": { "path": "/a" } }]);
    send(&ws, &ws.key, call).await;
    assert_eq!(used(&ws, "acme", "tokens").await, Decimal::from(100));
    assert!(room_for_200(&ws).await, "100 + 200 fits 1,000");

    // The customer's own key raises its usage by a replacement: amended, and counted at once.
    let raised = send(&ws, &key, tokens("t1", "acme", 900)).await;
    assert_eq!(result(&raised), ("amended", None), "{raised}");
    assert_eq!(raised["amended"], 1, "{raised}");
    assert_eq!(used(&ws, "acme", "tokens").await, Decimal::from(900));
    assert!(!room_for_200(&ws).await, "900 + 200 does not fit 1,000");

    // The same copy again is a plain retry: a duplicate, nothing changes.
    let retry = send(&ws, &key, tokens("t1", "acme", 900)).await;
    assert_eq!(result(&retry), ("duplicate", None), "{retry}");

    // A customer key cannot lower its usage (and so lift its quota) by a replacement.
    let lowered = send(&ws, &key, tokens("t1", "acme", 50)).await;
    assert_eq!(
        result(&lowered),
        ("rejected", Some("replacement_lowers_usage")),
        "{lowered}"
    );
    assert_eq!(used(&ws, "acme", "tokens").await, Decimal::from(900));

    // An admin key may: the counters come down by the difference.
    let corrected = send(&ws, &ws.key, tokens("t1", "acme", 300)).await;
    assert_eq!(result(&corrected), ("amended", None), "{corrected}");
    assert_eq!(used(&ws, "acme", "tokens").await, Decimal::from(300));
    assert!(room_for_200(&ws).await, "300 + 200 fits 1,000 again");

    // The id belongs to acme's event: a copy for another customer, or of another type, is
    // refused, not applied.
    let stranger = send(&ws, &ws.key, tokens("t1", "beta", 5)).await;
    assert_eq!(
        result(&stranger),
        ("rejected", Some("duplicate_id_mismatch")),
        "{stranger}"
    );
    let retyped = send(&ws, &ws.key, tokens("c1", "acme", 5)).await;
    assert_eq!(
        result(&retyped),
        ("rejected", Some("duplicate_id_mismatch")),
        "{retyped}"
    );
    assert_eq!(used(&ws, "beta", "tokens").await, Decimal::ZERO);

    // A `first_wins` meter is unchanged: the second copy is a duplicate and counts nothing.
    let again = json!([{ "id": "c1", "customer": "acme", "type": "api.call", "properties": { "path": "/b" } }]);
    let again = send(&ws, &ws.key, again).await;
    assert_eq!(result(&again), ("duplicate", None), "{again}");
    assert_eq!(used(&ws, "acme", "calls").await, Decimal::ONE);

    // The audit record: the event as first written, and each amendment with the value it
    // replaced, who sent it and when.
    let (status, history) = ws
        .call(Method::GET, "/v1/events/amendments?event=t1", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["event"]["properties"], json!({"tokens": 100}));
    assert_eq!(history["current_properties"], json!({"tokens": 300}));
    let amendments = history["amendments"].as_array().unwrap();
    let summary: Vec<(i64, Value, Value, &str)> = amendments
        .iter()
        .map(|a| {
            (
                a["seq"].as_i64().unwrap(),
                a["old_properties"].clone(),
                a["new_properties"].clone(),
                a["amended_by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                1,
                json!({"tokens": 100}),
                json!({"tokens": 900}),
                key_id.as_str()
            ),
            (2, json!({"tokens": 900}), json!({"tokens": 300}), "admin"),
        ]
    );
    assert_eq!(amendments[0]["amended_at"], "2026-11-10T00:00:00Z");
    // The customer's key sees its own event's history; another customer's is 404.
    let (status, own) = server
        .call(&key, Method::GET, "/v1/events/amendments?event=t1", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let beta_key = ws.post("/v1/customers/beta/keys", json!({})).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = server
        .call(
            &beta_key,
            Method::GET,
            "/v1/events/amendments?event=t1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The ledger holds both: the event as first written, and each amendment as its own entry.
    let (status, sealed) = ws.call(Method::POST, "/v1/ledger/seal", None).await;
    assert_eq!(status, StatusCode::OK, "{sealed}");
    let (status, proof) = ws
        .call(Method::GET, "/v1/ledger/proof?event=t1", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let entry: Value = serde_json::from_str(proof["entry"].as_str().unwrap()).unwrap();
    assert_eq!(entry["body"], json!({"tokens": 100}), "{entry}");
    let (status, page) = ws
        .call(
            Method::GET,
            "/v1/domain_events?type=event.amended&limit=100",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let amended = page["data"].as_array().unwrap();
    assert_eq!(amended.len(), 2, "{page}");
    let mut logged = Vec::new();
    for a in amended {
        let (status, proof) = ws
            .call(
                Method::GET,
                &format!("/v1/ledger/proof?action={}", a["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{proof}");
        let entry: Value = serde_json::from_str(proof["entry"].as_str().unwrap()).unwrap();
        assert_eq!(entry["type"], "event.amended", "{entry}");
        assert_eq!(entry["body"]["event"], "t1", "{entry}");
        logged.push((
            entry["body"]["old_properties"].clone(),
            entry["body"]["new_properties"].clone(),
        ));
    }
    assert_eq!(
        logged,
        vec![
            (json!({"tokens": 100}), json!({"tokens": 900})),
            (json!({"tokens": 900}), json!({"tokens": 300})),
        ]
    );

    // The period's invoice rates the latest value: 300 tokens x 0.01 and 1 call x 1.00.
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    let run = ws.post("/v1/bill_runs", json!({})).await;
    assert_eq!(run["errors"], json!([]), "{run}");
    let (status, list) = ws
        .call(Method::GET, "/v1/customers/acme/invoices?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let invoice = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| {
            i["lines"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["kind"] == json!({"type": "usage", "meter": "tokens"}))
        })
        .unwrap_or_else(|| panic!("{list:#}"))
        .clone();
    let line = invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == json!({"type": "usage", "meter": "tokens"}))
        .unwrap();
    assert_eq!(dec(&line["quantity"]), Decimal::from(300), "{line}");
    assert_eq!(invoice["total"], "4.00", "{invoice:#}");

    // The period is closed and invoiced: a replacement of its event is refused, not applied.
    let late = send(&ws, &ws.key, tokens("t1", "acme", 700)).await;
    assert_eq!(
        result(&late),
        ("rejected", Some("event_already_invoiced")),
        "{late}"
    );
    let (_, history) = ws
        .call(Method::GET, "/v1/events/amendments?event=t1", None)
        .await;
    assert_eq!(history["amendments"].as_array().unwrap().len(), 2);
}
backend_tests!(latest_copy_replaces_as_an_audited_amendment);

/// Two copies of one id in one batch: the second replaces the first as soon as it is stored.
async fn a_later_copy_in_the_same_batch_replaces_the_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("amend_batch", CATALOG).await;
    ws.customer("acme", "metered", None, false).await;
    let batch = json!([
        { "id": "b1", "customer": "acme", "type": "llm.call", "properties": { "tokens": 10 } },
        { "id": "b1", "customer": "acme", "type": "llm.call", "properties": { "tokens": 40 } },
        { "id": "b1", "customer": "acme", "type": "llm.call", "properties": { "tokens": 40 } },
    ]);
    let report = send(&ws, &ws.key, batch).await;
    let statuses: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "amended", "duplicate"], "{report}");
    assert_eq!(
        (
            &report["accepted"],
            &report["amended"],
            &report["duplicates"]
        ),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(used(&ws, "acme", "tokens").await, Decimal::from(40));
}
backend_tests!(a_later_copy_in_the_same_batch_replaces_the_first);

/// The catalog refuses `latest_replaces` where a replacement cannot be taken back exactly.
async fn the_catalog_says_where_latest_replaces_applies(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("amend_catalog", CATALOG).await;
    for (yaml, path) in [
        (
            CATALOG.replace(
                "aggregation: sum, property: tokens",
                "aggregation: max, property: tokens",
            ),
            "meters.tokens.on_duplicate",
        ),
        (
            CATALOG.replace(
                "calls: { name: Calls, event: api.call, aggregation: count }",
                "calls: { name: Calls, event: llm.call, aggregation: count }",
            ),
            "meters.calls.on_duplicate",
        ),
    ] {
        let (status, body) = ws
            .call(Method::PUT, "/v1/catalog", Some(json!({ "yaml": yaml })))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["path"] == path),
            "{path}: {body}"
        );
    }
}
backend_tests!(the_catalog_says_where_latest_replaces_applies);

/// With Redis, two nodes share the counters: a replacement on one node moves the shared
/// counter by its difference, so the other node's checks see it at once, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_URL to run on PostgreSQL and Redis"
)]
async fn a_replacement_moves_the_shared_counters_of_every_node() {
    let redis = std::env::var("TOLLGATE_TEST_REDIS_URL").expect("Redis URL");
    let with_redis = |c: &mut tollgate_server::ServerConfig| c.redis_url = Some(redis.clone());
    let a = TestServer::start_with(Backend::Postgres, with_redis).await;
    let b = TestServer::start_with(Backend::Postgres, with_redis).await;
    let ws = a.workspace_with("amend_shared", CATALOG).await;
    let key = ws.customer("acme", "metered", None, false).await;
    let on = |status: &str, report: &Value| {
        assert_eq!(report["results"][0]["status"], status, "{report}")
    };
    on("accepted", &send_on(&a, &ws.key, 100).await);
    assert!(room_on(&b, &ws.key).await, "100 + 200 fits 1,000");
    on("amended", &send_on(&b, &key, 900).await);
    assert!(
        !room_on(&a, &ws.key).await,
        "node a sees node b's raise: 900 + 200"
    );
    on("amended", &send_on(&a, &ws.key, 300).await);
    assert!(
        room_on(&b, &ws.key).await,
        "node b sees node a's cut: 300 + 200"
    );
}

/// Whether 200 more tokens fit acme's quota, asked of `server`.
async fn room_on(server: &TestServer, key: &str) -> bool {
    let (status, d) = server
        .call(
            key,
            Method::POST,
            "/v1/check",
            Some(json!({"customer": "acme", "meter": "tokens", "quantity": 200})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    d["allowed"].as_bool().unwrap()
}

/// Event `t1` with `n` tokens, sent to `server` with `key`.
async fn send_on(server: &TestServer, key: &str, n: i64) -> Value {
    let (status, report) = server
        .call(
            key,
            Method::POST,
            "/v1/events",
            Some(json!({ "events": tokens("t1", "acme", n) })),
        )
        .await;
    assert!(status.is_success(), "{report}");
    report
}
