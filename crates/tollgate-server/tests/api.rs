//! The API's contracts beyond the scenarios: ingest outcomes, idempotency, concurrency,
//! catalog versions, plan changes, key revocation, errors, OpenAPI, health and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{ADMIN_KEY, Backend, TestServer, backend_tests};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn a_batch_keeps_its_good_events_and_counts_duplicates_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("apex.yaml").await;
    let clock = ws.test_clock("2026-11-10T12:00:00Z").await;
    ws.customer("acme", "mid", Some(&clock), false).await;
    let (status, report) = ws
        .events(json!([
            {"id": "e1", "customer": "acme", "type": "cloud.cost", "timestamp": "2026-11-10T10:00:00Z", "properties": {"amount_usd": "100.10"}},
            {"id": "e2", "customer": "acme", "type": "cloud.cost", "timestamp": "2026-11-10T10:00:00Z", "properties": {"amount_usd": "lots"}},
            {"id": "e3", "customer": "ghost", "type": "cloud.cost", "properties": {"amount_usd": 1}},
            {"customer": "acme", "type": "cloud.cost", "properties": {"amount_usd": 1}},
            {"id": "e4", "customer": "acme", "type": "cloud.cost", "timestamp": "yesterday", "properties": {}},
            {"id": "e5", "customer": "acme", "type": "cloud.cost", "timestamp": "2026-11-11T10:00:00Z", "properties": {"amount_usd": 1}},
            {"id": "e1", "customer": "acme", "type": "cloud.cost", "timestamp": "2026-11-10T10:00:00Z", "properties": {"amount_usd": "100.10"}},
            {"id": "e6", "customer": "acme", "type": "cloud.cost", "timestamp": "2026-11-10T11:00:00Z", "properties": {"amount_usd": 0.2}}
        ]))
        .await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{report}");
    let codes: Vec<_> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap_or(r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            "accepted",
            "invalid_property",
            "unknown_customer",
            "missing_id",
            "invalid_timestamp",
            "timestamp_in_future",
            "duplicate",
            "accepted"
        ]
    );
    assert_eq!(report["results"][1]["index"], 1);
    assert!(
        report["results"][1]["message"]
            .as_str()
            .unwrap()
            .contains("amount_usd")
    );
    assert_eq!(
        (
            report["accepted"].as_u64(),
            report["duplicates"].as_u64(),
            report["rejected"].as_u64()
        ),
        (Some(2), Some(1), Some(5))
    );
    // Resending the whole batch changes nothing.
    let (_, again) = ws
        .events(json!([{"id": "e1", "customer": "acme", "type": "cloud.cost", "timestamp": "2026-11-10T10:00:00Z", "properties": {"amount_usd": "100.10"}}]))
        .await;
    assert_eq!(again["duplicates"], 1);
    let (_, usage) = ws.call(Method::GET, "/v1/customers/acme/usage", None).await;
    let spend = usage["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == "ai_spend")
        .unwrap();
    assert_eq!(spend["used"], "100.30");
}
backend_tests!(a_batch_keeps_its_good_events_and_counts_duplicates_once);

/// Batches of one customer run side by side (and share commits on SQLite): every event is
/// counted once across them, an id sent by several batches is accepted by exactly one, and a
/// correction (which runs alone) is decided against the usage the others left.
async fn concurrent_batches_of_one_customer_count_each_event_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("apex.yaml").await;
    ws.customer("acme", "mid", None, false).await;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..12 {
        let mut events: Vec<_> = (0..20)
            .map(|i| json!({"id": format!("t{t}-{i}"), "customer": "acme", "type": "cloud.cost", "properties": {"amount_usd": 1}}))
            .collect();
        events.extend((0..5).map(|i| json!({"id": format!("shared-{i}"), "customer": "acme", "type": "cloud.cost", "properties": {"amount_usd": 1}})));
        if t == 6 {
            events.push(json!({"id": "correction", "customer": "acme", "type": "cloud.cost", "properties": {"amount_usd": -1}}));
        }
        let (http, url, key) = (
            server.http.clone(),
            format!("{}/v1/events", server.base),
            ws.key.clone(),
        );
        set.spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(key)
                .json(&json!({"events": events}))
                .send()
                .await
                .expect("events");
            assert!(resp.status().is_success(), "{}", resp.status());
            resp.json::<serde_json::Value>().await.expect("json")
        });
    }
    let reports = set.join_all().await;
    let status_of = |id: &str| -> Vec<String> {
        reports
            .iter()
            .flat_map(|r| r["results"].as_array().unwrap())
            .filter(|r| r["id"] == id)
            .map(|r| r["status"].as_str().unwrap().to_owned())
            .collect()
    };
    for i in 0..5 {
        let statuses = status_of(&format!("shared-{i}"));
        assert_eq!(statuses.len(), 12);
        assert_eq!(
            statuses.iter().filter(|s| *s == "accepted").count(),
            1,
            "shared-{i}: {statuses:?}"
        );
    }
    let corrected = status_of("correction") == ["accepted"];
    let (_, usage) = ws.call(Method::GET, "/v1/customers/acme/usage", None).await;
    let spend = usage["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == "ai_spend")
        .unwrap();
    let expected = 12 * 20 + 5 - i32::from(corrected);
    assert_eq!(spend["used"], expected.to_string(), "{usage}");
}
backend_tests!(concurrent_batches_of_one_customer_count_each_event_once);

#[tokio::test]
async fn bad_requests_are_problems_with_stable_codes() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, headers, body) = server
        .call_full("nope", Method::GET, "/v1/customers", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["code"], "unauthorized");
    let resp = server
        .http
        .post(format!("{}/v1/events", server.base))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "invalid_json");
    let ws = server.workspace("apex.yaml").await;
    let (status, body) = ws
        .call(
            Method::POST,
            "/v1/check",
            Some(json!({"customer": "x", "feature": "a", "meter": "b"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    let (status, body) = ws
        .call(
            Method::POST,
            "/v1/customers",
            Some(json!({"id": "bad id!"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_id"))
    );
    ws.post("/v1/customers", json!({"id": "dup"})).await;
    let (status, body) = ws
        .call(Method::POST, "/v1/customers", Some(json!({"id": "dup"})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_exists"))
    );
    let (status, body) = ws
        .call(
            Method::POST,
            "/v1/customers/dup/subscriptions",
            Some(json!({"plan": "platinum"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_plan"))
    );
}

#[tokio::test]
async fn an_invalid_catalog_is_refused_with_every_error_and_changes_nothing() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ws = server.workspace("apex.yaml").await;
    let yaml = "currency: USD\nmeters:\n  runs: { event: run, aggregation: average }\nplans:\n  free:\n    quotas:\n      - { meter: runs, limit: 3, window: 5 hrs }\n      - { meter: nope, limit: 1, period: billing }\n";
    let (status, body) = ws
        .call(Method::PUT, "/v1/catalog", Some(json!({"yaml": yaml})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "invalid_catalog");
    let paths: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.iter().any(|p| p.starts_with("meters.runs")),
        "{paths:?}"
    );
    assert!(paths.contains(&"plans.free.quotas[0].window"), "{paths:?}");
    assert!(
        paths.iter().any(|p| p.starts_with("plans.free.quotas[1]")),
        "{paths:?}"
    );
    let (_, current) = ws.call(Method::GET, "/v1/catalog", None).await;
    assert_eq!(current["version"], 1);
}

async fn concurrent_consuming_checks_never_overshoot_a_limit(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    let key = ws.customer("busy", "free", None, false).await;
    let body = json!({"meter": "generations", "consume": true, "properties": {"tier": "T1", "model": "standard"}});
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (http, url, key, body) = (
            server.http.clone(),
            format!("{}/v1/check", server.base),
            key.clone(),
            body.clone(),
        );
        set.spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .expect("check");
            let status = resp.status();
            (
                status,
                resp.json::<serde_json::Value>().await.expect("json"),
            )
        });
    }
    let answers = set.join_all().await;
    let allowed = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::OK && b["allowed"] == true)
        .count();
    assert_eq!(
        allowed, 10,
        "exactly the free plan's 10 generations are admitted"
    );
    let (_, usage) = server
        .call(&key, Method::GET, "/v1/customers/busy/usage", None)
        .await;
    let gens = usage["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == "generations")
        .unwrap();
    assert_eq!(gens["used"], "10");
}
backend_tests!(concurrent_consuming_checks_never_overshoot_a_limit);

async fn a_new_catalog_version_changes_nothing_until_the_subscription_moves(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    ws.customer("old", "free", None, false).await;
    let yaml = std::fs::read_to_string(format!(
        "{}/../../examples/catalogs/qlp.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let raised = yaml.replacen("limit: 10,", "limit: 20,", 1);
    assert_ne!(
        raised, yaml,
        "the qlp catalog's free quota is written as `limit: 10,`"
    );
    let (status, applied) = ws
        .call(Method::PUT, "/v1/catalog", Some(json!({"yaml": raised})))
        .await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied["version"], 2);
    assert!(!applied["changes"].as_array().unwrap().is_empty());
    ws.customer("new", "free", None, false).await;
    let generations = |c: &str| json!({"customer": c, "meter": "generations", "quantity": 15});
    assert_eq!(
        ws.check(generations("old")).await["allowed"],
        false,
        "v1 keeps 10"
    );
    assert_eq!(
        ws.check(generations("new")).await["allowed"],
        true,
        "v2 has 20"
    );
    let (_, subs) = ws
        .call(Method::GET, "/v1/customers/old/subscriptions", None)
        .await;
    assert_eq!(subs["data"][0]["catalog_version"], 1);
    let sub_id = subs["data"][0]["id"].as_str().unwrap();
    let moved = ws
        .post(
            &format!("/v1/customers/old/subscriptions/{sub_id}/change"),
            json!({"plan": "free"}),
        )
        .await;
    assert_eq!(moved["catalog_version"], 2);
    assert_eq!(
        ws.check(generations("old")).await["allowed"],
        true,
        "moved to v2"
    );
}
backend_tests!(a_new_catalog_version_changes_nothing_until_the_subscription_moves);

#[tokio::test]
async fn plan_changes_cancellations_and_revocations_apply_at_once() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ws = server.workspace("apex.yaml").await;
    let key = ws.customer("acme", "free", None, false).await;
    let gate = json!({"customer": "acme", "feature": "advanced_optimization"});
    assert_eq!(ws.check(gate.clone()).await["allowed"], false);
    let (_, subs) = ws
        .call(Method::GET, "/v1/customers/acme/subscriptions", None)
        .await;
    let sub = subs["data"][0]["id"].as_str().unwrap().to_owned();
    ws.post(
        &format!("/v1/customers/acme/subscriptions/{sub}/change"),
        json!({"plan": "early"}),
    )
    .await;
    assert_eq!(ws.check(gate.clone()).await["allowed"], true);
    let canceled = ws
        .post(
            &format!("/v1/customers/acme/subscriptions/{sub}/cancel"),
            json!({"immediately": true}),
        )
        .await;
    // Canceled at once: it ends now, its last invoice is billed, and it is over.
    assert_eq!(canceled["status"], "expired", "{canceled}");
    assert_eq!(ws.check(gate).await["reason"], "no_subscription");
    let keys = ws
        .call(Method::GET, "/v1/customers/acme/keys", None)
        .await
        .1;
    let key_id = keys["data"][0]["id"].as_str().unwrap();
    let (status, _) = server
        .call(&key, Method::GET, "/v1/customers/acme/usage", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    ws.post(
        &format!("/v1/customers/acme/keys/{key_id}/revoke"),
        json!({}),
    )
    .await;
    let (status, body) = server
        .call(&key, Method::GET, "/v1/customers/acme/usage", None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
}

#[tokio::test]
async fn openapi_health_and_metrics_are_served() {
    let server = TestServer::start(Backend::Sqlite).await;
    let doc: serde_json::Value = reqwest::get(format!("{}/openapi.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/check",
        "/v1/events",
        "/v1/catalog",
        "/v1/customers/{id}/usage",
        "/v1/test_clocks/{id}/advance",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    let health: serde_json::Value = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"], "sqlite");
    let ws = server.workspace("apex.yaml").await;
    ws.customer("m", "free", None, false).await;
    ws.check(json!({"customer": "m", "feature": "basic_chat"}))
        .await;
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tollgate_checks_total"), "{metrics}");
}

/// The served contract is the committed one (`docs/openapi.json`), so every change to the API's
/// shape is reviewed as a diff. `UPDATE_OPENAPI=1 cargo test -p tollgate-server --test api
/// openapi_is_the_committed_contract` rewrites the file after an intended change.
#[test]
fn openapi_is_the_committed_contract() {
    let served = tollgate_server::api::openapi::document();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &served).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == served,
        "docs/openapi.json is not the served contract; rerun with UPDATE_OPENAPI=1 and review the diff"
    );
}

/// `Idempotency-Key` on every mutating POST: the same key and request answer the stored answer
/// (nothing runs twice), the same key with another request is refused, keys are per caller.
async fn idempotency_keys_replay_the_first_answer(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("apex.yaml").await;
    let http = reqwest::Client::new();
    let post = |path: &str, key: &str, body: serde_json::Value| {
        http.post(format!("{}{path}", server.base))
            .bearer_auth(&ws.key)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = post("/v1/customers", "k-1", json!({"id": "idem"}))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_body: serde_json::Value = first.json().await.unwrap();
    let again = post("/v1/customers", "k-1", json!({"id": "idem"}))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), first_body);
    // The same key for another request is an error, not the first answer.
    let other = post("/v1/customers", "k-1", json!({"id": "other"}))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        other.json::<serde_json::Value>().await.unwrap()["code"],
        "idempotency_key_reused"
    );
    // Money granted once however often the request is retried.
    for _ in 0..3 {
        let r = post(
            "/v1/customers/idem/credits",
            "k-2",
            json!({"amount": "10.00"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let (_, balance) = ws
        .call(Method::GET, "/v1/customers/idem/credits", None)
        .await;
    assert_eq!(balance["balance"], "10.00", "{balance}");
    // Without a key, each request runs.
    let (status, _) = ws
        .call(
            Method::POST,
            "/v1/customers/idem/credits",
            Some(json!({"amount": "1.00"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, balance) = ws
        .call(Method::GET, "/v1/customers/idem/credits", None)
        .await;
    assert_eq!(balance["balance"], "11.00", "{balance}");
}
backend_tests!(idempotency_keys_replay_the_first_answer);

/// The catalog file itself is accepted with `Content-Type: application/yaml`, as the JSON
/// forms are, and its mistakes come back with their paths.
async fn a_catalog_can_be_put_as_raw_yaml(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("apex.yaml").await;
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/catalogs/qlp.yaml"
    ))
    .unwrap();
    let put = |body: String| {
        reqwest::Client::new()
            .put(format!("{}/v1/catalog", server.base))
            .bearer_auth(&ws.key)
            .header("content-type", "application/yaml")
            .body(body)
            .send()
    };
    let r = put(yaml).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["version"], 2, "{body}");
    let r = put("currency: USD\nmeters:\n  m: { event: x, aggregation: total }\n".into())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["path"], "meters.m.aggregation",
        "{problem}"
    );
}
backend_tests!(a_catalog_can_be_put_as_raw_yaml);
