//! Forgetting idle customers' state changes no decision (issue 11): a customer evicted from a
//! node's memory is reloaded from the store on its next use with the same usage, so a quota
//! stays exact across the eviction; a customer whose request rate window still counts is kept.
//! On a real server over SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

#[macro_use]
mod common;

use std::time::Duration;

use common::{Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

const CATALOG: &str = r#"
currency: USD
meters:
  calls: { name: Calls, event: api.call, aggregation: count }
  runs: { name: Runs, event: agent.run, aggregation: count }
plans:
  quota:
    quotas:
      - { meter: calls, limit: 5, period: billing, enforcement: hard }
      - { meter: runs, limit: 4, window: 5h, per: subject }
  limited:
    rate_limits:
      - { limit: 2, per: day, scope: customer }
"#;

async fn usage_is_exact_across_an_eviction(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("evict", CATALOG).await;
    let engine = server.server.as_ref().unwrap().state.engine.clone();
    ws.customer("q", "quota", None, false).await;
    ws.customer("r", "limited", None, false).await;

    let consume = |meter: &str, quantity: u32, subject: Option<&str>| json!({"customer": "q", "meter": meter, "quantity": quantity, "consume": true, "subject": subject});
    assert_eq!(ws.check(consume("calls", 3, None)).await["allowed"], true);
    assert_eq!(
        ws.check(consume("runs", 3, Some("u1"))).await["allowed"],
        true
    );
    // Two of the rate-limited customer's two requests today.
    let gate = json!({"customer": "r", "meter": "calls", "quantity": 1});
    for _ in 0..2 {
        assert_eq!(ws.check(gate.clone()).await["allowed"], true);
    }

    // Nothing is idle for an hour yet.
    assert_eq!(engine.evict_idle(Duration::from_secs(3_600)), 0);
    let loaded = engine.loaded_customers();
    // Everything unused since now: `q` is forgotten, `r` is kept (its day window counts).
    let evicted = engine.evict_idle(Duration::ZERO);
    assert!(evicted >= 1, "q is forgotten");
    assert_eq!(engine.loaded_customers(), loaded - evicted);
    let (status, third) = ws.call(Method::POST, "/v1/check", Some(gate.clone())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{third}");
    assert_eq!(third["decision"]["reason"], "rate_limited", "{third}");

    // `q` reloads from the store: the calendar quota and the rolling window are where they were.
    let d = ws.check(consume("calls", 2, None)).await;
    assert_eq!(d["allowed"], true, "{d}");
    let d = ws.check(consume("calls", 1, None)).await;
    assert_eq!(d["allowed"], false, "{d}");
    assert_eq!(d["reason"], "quota_exceeded", "{d}");
    engine.evict_idle(Duration::ZERO);
    let d = ws.check(consume("runs", 2, Some("u1"))).await;
    assert_eq!(d["allowed"], false, "3 of 4 used in the window: {d}");
    let d = ws.check(consume("runs", 1, Some("u1"))).await;
    assert_eq!(d["allowed"], true, "{d}");
    let d = ws.check(consume("runs", 1, Some("u1"))).await;
    assert_eq!(d["allowed"], false, "{d}");
}
backend_tests!(usage_is_exact_across_an_eviction);
