//! The gateway on one node and consuming checks on another, over one PostgreSQL and one Redis:
//! requests in flight through the gateway are reserved in the shared counters at admission, so
//! both nodes together never admit more than a hard quota, and a failed upstream gives its units
//! back. Needs `TOLLGATE_TEST_DATABASE_URL` and `TOLLGATE_TEST_REDIS_URL` when the tests are
//! built (ignored otherwise, never passed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_server::clock::SystemClock;
use tollgate_server::gateway::{GatewayConfig, start_gateway};
use tollgate_server::{RedisFailureMode, RunningServer, ServerConfig};

const ADMIN_KEY: &str = "tg_admin_test_bootstrap_key_0123456789";
const CATALOG: &str = r#"
currency: USD
meters:
  api_calls: { event: api.call, aggregation: count }
plans:
  basic:
    quotas:
      - { meter: api_calls, limit: 10, period: billing }
"#;

fn url(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| panic!("{name} is unset: this test was built with it set"))
}

async fn node(dir: &std::path::Path) -> RunningServer {
    let config = ServerConfig {
        database_url: Some(url("TOLLGATE_TEST_DATABASE_URL")),
        admin_key: Some(ADMIN_KEY.into()),
        redis_url: Some(url("TOLLGATE_TEST_REDIS_URL")),
        redis_failure_mode: RedisFailureMode::FailClosed,
        ..ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir)
    };
    tollgate_server::start_with_clock(config, Arc::new(SystemClock))
        .await
        .expect("node starts")
}

/// An upstream whose `/slow` answers after 600 ms and whose `/fail` answers 500 after 600 ms,
/// so gateway requests stay in flight while the other node is asked.
async fn upstream() -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                "ok"
            }),
        )
        .route(
            "/fail",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                (StatusCode::INTERNAL_SERVER_ERROR, "down")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Two nodes on one PostgreSQL and one Redis, with a fresh workspace and `catalog` applied.
struct TwoNodes {
    n0: RunningServer,
    b0: String,
    b1: String,
    http: reqwest::Client,
    ws: String,
    admin: String,
    _nodes: (RunningServer, tempfile::TempDir, tempfile::TempDir),
}

impl TwoNodes {
    async fn start(catalog: &str) -> TwoNodes {
        let (dir0, dir1) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (n0, n1) = (node(dir0.path()).await, node(dir1.path()).await);
        let (b0, b1) = (format!("http://{}", n0.addr), format!("http://{}", n1.addr));
        let http = reqwest::Client::new();
        let ws = format!("ws_{}", uuid::Uuid::now_v7().simple());
        let (status, body) = call(
            &http,
            &b0,
            ADMIN_KEY,
            Method::POST,
            "/v1/workspaces",
            Some(json!({"id": ws, "name": "two nodes"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let admin = body["admin_key"].as_str().unwrap().to_owned();
        let (status, body) = call(
            &http,
            &b0,
            &admin,
            Method::PUT,
            "/v1/catalog",
            Some(json!({"yaml": catalog})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        TwoNodes {
            n0,
            b0,
            b1,
            http,
            ws,
            admin,
            _nodes: (n1, dir0, dir1),
        }
    }

    /// A customer on plan `basic`, made through node 0; its key.
    async fn customer(&self, id: &str) -> String {
        let (http, b0, admin) = (&self.http, &self.b0, &self.admin);
        let customers = "/v1/customers".to_owned();
        let (status, body) = call(
            http,
            b0,
            admin,
            Method::POST,
            &customers,
            Some(json!({"id": id})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let subscriptions = format!("/v1/customers/{id}/subscriptions");
        let plan = json!({"plan": "basic"});
        let (status, body) = call(http, b0, admin, Method::POST, &subscriptions, Some(plan)).await;
        assert!(status.is_success(), "{body}");
        let keys = format!("/v1/customers/{id}/keys");
        let (_, key) = call(http, b0, admin, Method::POST, &keys, Some(json!({}))).await;
        key["secret"].as_str().unwrap().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_URL to run on PostgreSQL and Redis"
)]
async fn gateway_requests_in_flight_and_checks_on_another_node_share_one_quota() {
    let nodes = TwoNodes::start(CATALOG).await;
    let (key1, key2) = (nodes.customer("c1").await, nodes.customer("c2").await);
    let (http, b1, ws, n0) = (&nodes.http, &nodes.b1, &nodes.ws, &nodes.n0);

    let up = upstream().await;
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://{up}\"\nworkspace = \"{ws}\"\nupstream_timeout = \"5s\"\n\
         [[gateway.routes]]\npath = \"/slow\"\nmeter = \"api_calls\"\n\
         [[gateway.routes]]\npath = \"/fail\"\nmeter = \"api_calls\"\n"
    );
    let gateway = start_gateway(
        n0.state.engine.clone(),
        GatewayConfig::from_toml(&toml).unwrap(),
    )
    .await
    .expect("gateway starts");
    let gw = format!("http://{}", gateway.addr);

    // 10 requests through the gateway on node 0, held upstream; meanwhile 10 consuming checks on
    // node 1 for the same customer and meter. The quota is 10: exactly 10 in all get through.
    let through_gateway = (0..10)
        .map(|_| {
            let (http, gw, key) = (http.clone(), gw.clone(), key1.clone());
            tokio::spawn(async move {
                http.get(format!("{gw}/slow"))
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect::<Vec<_>>();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut checks_allowed = 0;
    for i in 0..10 {
        let (status, d) = call(
            http,
            b1,
            &key1,
            Method::POST,
            "/v1/check",
            Some(json!({"meter": "api_calls", "consume": true, "event_id": format!("n1-{i}")})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{d}");
        checks_allowed += usize::from(d["allowed"] == true);
    }
    let mut gateway_ok = 0;
    for t in through_gateway {
        gateway_ok += usize::from(t.await.unwrap() == StatusCode::OK);
    }
    assert_eq!(
        gateway_ok + checks_allowed,
        10,
        "gateway {gateway_ok} + checks {checks_allowed}"
    );
    assert_eq!(
        checks_allowed, 0,
        "the gateway's requests were admitted first"
    );

    // A failed upstream bills nothing and gives its units back on every node.
    let failing = (0..10)
        .map(|_| {
            let (http, gw, key) = (http.clone(), gw.clone(), key2.clone());
            tokio::spawn(async move {
                http.get(format!("{gw}/fail"))
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect::<Vec<_>>();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (_, d) = call(
        http,
        b1,
        &key2,
        Method::POST,
        "/v1/check",
        Some(json!({"meter": "api_calls", "consume": true, "event_id": "during"})),
    )
    .await;
    assert_eq!(
        d["allowed"], false,
        "while 10 are in flight the quota is full: {d}"
    );
    for t in failing {
        assert_eq!(t.await.unwrap(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    // Give-backs run right after the answers; allow them a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut after = 0;
    for i in 0..12 {
        let (_, d) = call(
            http,
            b1,
            &key2,
            Method::POST,
            "/v1/check",
            Some(json!({"meter": "api_calls", "consume": true, "event_id": format!("after-{i}")})),
        )
        .await;
        after += usize::from(d["allowed"] == true);
    }
    assert_eq!(after, 10, "the failed requests' units came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_URL to run on PostgreSQL and Redis"
)]
async fn negative_and_out_of_range_quantities_never_reach_the_shared_counters() {
    let catalog = "currency: USD\nmeters:\n  tokens: { event: llm.tokens, aggregation: sum, property: n }\n\
                   plans:\n  basic:\n    quotas:\n      - { meter: tokens, limit: 1000, period: billing }\n";
    let nodes = TwoNodes::start(catalog).await;
    let key = nodes.customer("neg").await;
    let (http, b0, b1) = (&nodes.http, &nodes.b0, &nodes.b1);
    // Fill the quota through node 1's shared counters.
    let (_, d) = call(
        http,
        b1,
        &key,
        Method::POST,
        "/v1/check",
        Some(json!({"meter": "tokens", "quantity": 1000, "consume": true})),
    )
    .await;
    assert_eq!(d["allowed"], true, "{d}");
    // On node 0: a negative event and one above the shared counters' range are refused.
    let (status, report) = call(
        http,
        b0,
        &key,
        Method::POST,
        "/v1/events",
        Some(json!({"events": [
            {"id": "n1", "type": "llm.tokens", "properties": {"n": "-1000000"}},
            {"id": "n2", "type": "llm.tokens", "properties": {"n": "9300000000000"}}
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{report}");
    let codes: Vec<_> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].clone())
        .collect();
    assert_eq!(
        codes,
        [json!("negative_quantity"), json!("quantity_out_of_range")],
        "{report}"
    );
    // Neither node admits more.
    for base in [&b0, &b1] {
        let (_, d) = call(
            http,
            base,
            &key,
            Method::POST,
            "/v1/check",
            Some(json!({"meter": "tokens", "quantity": 1, "consume": true})),
        )
        .await;
        assert_eq!(
            (d["allowed"].as_bool(), d["used"].as_str()),
            (Some(false), Some("1000")),
            "{d}"
        );
    }
}
