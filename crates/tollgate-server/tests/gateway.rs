//! The gateway end to end, on real sockets: a tollgate server, the gateway in front of a real
//! upstream app (plain HTTP and OpenAI-compatible, JSON and SSE), and a client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;
mod support;

use std::time::Duration;

use common::{ADMIN_KEY, Backend, TestServer};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{COMPLETION_TOKENS, PROMPT_TOKENS, Upstream};
use tollgate_server::gateway::{GatewayConfig, RunningGateway, start_gateway};

const CATALOG: &str = r#"
currency: USD
meters:
  api_calls: { event: api.call, aggregation: count }
  pings: { event: ping, aggregation: count }
  prompt_tokens: { event: llm.tokens, aggregation: sum, property: prompt_tokens }
  completion_tokens: { event: llm.tokens, aggregation: sum, property: completion_tokens }
features:
  reports: switch
plans:
  free:
    name: Free
    features: { reports: false }
    rate_limits:
      - { limit: 5, per: minute, scope: customer }
    quotas:
      - { meter: api_calls, limit: 3, period: billing }
  basic:
    name: Basic
    base: { amount: "10.00", interval: month }
    features: { reports: false }
    rate_limits:
      - { limit: 1000, per: minute, scope: customer }
    quotas:
      - { meter: api_calls, limit: 3, period: billing }
  pro:
    name: Pro
    base: { amount: "50.00", interval: month }
    features: { reports: true }
    rate_limits:
      - { limit: 1000, per: minute, scope: customer }
    quotas:
      - { meter: api_calls, limit: 1000, period: billing }
      - { meter: completion_tokens, limit: 100, period: billing }
"#;

const ROUTES: &str = r#"
[[gateway.routes]]
method = "GET"
path = "/reports/{id}"
feature = "reports"

[[gateway.routes]]
path = "/ping"
meter = "pings"

[[gateway.routes]]
path = "/slow"
meter = "api_calls"

[[gateway.routes]]
path = "/fail"
meter = "api_calls"

[[gateway.routes]]
method = "POST"
path = "/v1/chat/completions"
meter = "api_calls"
openai = true

[[gateway.routes]]
path = "/echo/*"
meter = "api_calls"
"#;

/// A server with the test catalog, an upstream, and a gateway between client and upstream.
struct Env {
    server: TestServer,
    admin: String,
    upstream: Upstream,
    /// Kept: dropping it stops the gateway.
    _gateway: RunningGateway,
    base: String,
    http: reqwest::Client,
}

impl Env {
    /// `top` goes under `[gateway]`, `tail` after the routes (e.g. `[gateway.openai]`).
    async fn start(top: &str, tail: &str) -> Env {
        let upstream = Upstream::start().await;
        Env::start_with_upstream(upstream, "http://UPSTREAM", top, tail).await
    }

    async fn start_with_upstream(
        upstream: Upstream,
        upstream_url: &str,
        top: &str,
        tail: &str,
    ) -> Env {
        let server = TestServer::start(Backend::Sqlite).await;
        let ws = format!("ws_{}", uuid::Uuid::now_v7().simple());
        let (status, body) = server
            .call(
                ADMIN_KEY,
                Method::POST,
                "/v1/workspaces",
                Some(json!({"id": ws, "name": "gw"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let admin = body["admin_key"].as_str().unwrap().to_owned();
        let (status, body) = server
            .call(
                &admin,
                Method::PUT,
                "/v1/catalog",
                Some(json!({"yaml": CATALOG})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let upstream_url = upstream_url.replace("UPSTREAM", &upstream.addr.to_string());
        let toml = format!(
            "[gateway]\nlisten = \"127.0.0.1:0\"\nupstream = \"{upstream_url}\"\nworkspace = \"{ws}\"\n\
             upstream_timeout = \"1s\"\nsubject_header = \"x-user\"\n{top}\n{ROUTES}\n{tail}\n"
        );
        let config = GatewayConfig::from_toml(&toml).expect("gateway config");
        let engine = server.server.as_ref().unwrap().state.engine.clone();
        let gateway = start_gateway(engine, config).await.expect("gateway starts");
        let base = format!("http://{}", gateway.addr);
        Env {
            server,
            admin,
            upstream,
            _gateway: gateway,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.server.call(&self.admin, method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// A customer on `plan`; returns its key.
    async fn customer(&self, id: &str, plan: &str) -> String {
        self.admin(Method::POST, "/v1/customers", Some(json!({"id": id})))
            .await;
        let sub = json!({"plan": plan, "trial": false});
        self.admin(
            Method::POST,
            &format!("/v1/customers/{id}/subscriptions"),
            Some(sub),
        )
        .await;
        let key = self
            .admin(
                Method::POST,
                &format!("/v1/customers/{id}/keys"),
                Some(json!({})),
            )
            .await;
        key["secret"].as_str().unwrap().to_owned()
    }

    fn request(&self, method: Method, path: &str, key: Option<&str>) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
        let resp = req.send().await.expect("gateway answers");
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, key: &str) -> (StatusCode, HeaderMap, Value) {
        self.send(self.request(Method::GET, path, Some(key))).await
    }

    /// A meter's `used` for a customer, once it reaches `want` (usage is recorded just after the
    /// answer), or whatever it is after two seconds.
    async fn used(&self, customer: &str, meter: &str, want: &str) -> String {
        let mut last = String::new();
        for _ in 0..40 {
            let usage = self
                .admin(
                    Method::GET,
                    &format!("/v1/customers/{customer}/usage"),
                    None,
                )
                .await;
            let found = usage["meters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["meter"] == meter)
                .cloned();
            last = found.map_or("0".into(), |m| m["used"].as_str().unwrap_or("0").to_owned());
            if last == want {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last
    }
}

fn is_problem(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .is_some_and(|v| v == "application/problem+json")
}

fn has_rate_limit_headers(headers: &HeaderMap) -> bool {
    [
        "ratelimit-policy",
        "ratelimit",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ]
    .iter()
    .all(|h| headers.contains_key(*h))
}

#[tokio::test]
async fn forwards_with_the_key_stripped_and_the_customer_named() {
    let env = Env::start("", "").await;
    let key = env.customer("acme", "pro").await;

    let req = env
        .request(Method::GET, "/echo/hello?x=1&y=2", Some(&key))
        .header("x-user", "alice")
        .header("x-tollgate-customer", "someone-else")
        .header("x-tollgate-plan", "enterprise");
    let (status, headers, body) = env.send(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["path"], "/echo/hello");
    assert_eq!(body["query"], "x=1&y=2");
    let seen = &body["headers"];
    assert!(
        seen.get("authorization").is_none(),
        "the key reached the upstream: {seen}"
    );
    assert_eq!(seen["x-tollgate-customer"], "acme");
    assert_eq!(seen["x-tollgate-plan"], "pro");
    assert_eq!(seen["x-tollgate-subject"], "alice");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert!(
        seen["x-tollgate-request-id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert!(has_rate_limit_headers(&headers), "{headers:?}");
    assert_eq!(headers["ratelimit-policy"], "\"default\";q=1000;w=60");

    // `X-API-Key` works too, and the request body streams through.
    let req = env
        .request(Method::POST, "/echo/upload", None)
        .header("x-api-key", &key)
        .body("a body of bytes");
    let (status, _, body) = env.send(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["method"], "POST");
    assert_eq!(body["body"], "a body of bytes");
    assert!(body["headers"].get("x-api-key").is_none());
    assert!(body["headers"].get("x-tollgate-subject").is_none());

    assert_eq!(env.used("acme", "api_calls", "2").await, "2");
}

#[tokio::test]
async fn refusals_are_problem_json_with_the_right_status() {
    let env = Env::start("", "").await;
    let key = env.customer("acme", "free").await;

    // 401: no key, an unknown key, an admin key, a revoked key.
    let (status, headers, body) = env.send(env.request(Method::GET, "/echo/x", None)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    assert!(is_problem(&headers));
    let (status, _, _) = env
        .get("/echo/x", "tg_live_not_a_real_key_at_all_000000")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = env.get("/echo/x", &env.admin).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let other = env.customer("other", "pro").await;
    let keys = env
        .admin(Method::GET, "/v1/customers/other/keys", None)
        .await;
    let key_id = keys["data"][0]["id"].as_str().unwrap().to_owned();
    env.admin(
        Method::POST,
        &format!("/v1/customers/other/keys/{key_id}/revoke"),
        None,
    )
    .await;
    let (status, headers, body) = env.get("/echo/x", &other).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(is_problem(&headers));

    // 403: a feature not in the plan, naming the plan that has it.
    let (status, headers, body) = env.get("/reports/7", &key).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(is_problem(&headers));
    assert_eq!(body["code"], "feature_not_in_plan");
    assert_eq!(body["upgrade"]["plan"], "pro");
    assert!(body["detail"].as_str().unwrap().contains("pro"), "{body}");
    assert!(
        has_rate_limit_headers(&headers),
        "refusals carry the rate limit too: {headers:?}"
    );

    // 402: suspended.
    env.admin(Method::POST, "/v1/customers/acme/suspend", None)
        .await;
    let (status, headers, body) = env.get("/echo/x", &key).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert!(is_problem(&headers));
    assert_eq!(body["code"], "customer_suspended");

    // None of these reached the upstream.
    assert_eq!(env.upstream.requests(), 0);
}

#[tokio::test]
async fn limits_answer_429_with_retry_after() {
    let env = Env::start("", "").await;

    // A quota of 3 calls per period.
    let key = env.customer("quota", "basic").await;
    for _ in 0..3 {
        let (status, _, body) = env.get("/echo/x", &key).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) = env.get("/echo/x", &key).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(is_problem(&headers));
    assert_eq!(body["code"], "quota_exceeded");
    assert_eq!(body["upgrade"]["plan"], "pro");
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(has_rate_limit_headers(&headers));

    // A rate limit of 5 requests per minute.
    let key = env.customer("rate", "free").await;
    for i in 0..5 {
        let (status, headers, body) = env.get("/ping", &key).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["x-ratelimit-remaining"], (4 - i).to_string());
    }
    let (status, headers, body) = env.get("/ping", &key).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(
        headers["ratelimit"].to_str().unwrap().split(';').nth(1),
        Some("r=0")
    );
    assert_eq!(env.upstream.requests(), 3 + 5);
}

#[tokio::test]
async fn concurrent_requests_never_overshoot_a_quota() {
    let env = Env::start("", "").await;
    let key = env.customer("burst", "basic").await;
    // Each answer takes 300 ms: all twelve are in flight before any is billed.
    let calls = (0..12).map(|_| env.get("/echo/wait", &key));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        9
    );
    assert_eq!(env.used("burst", "api_calls", "3").await, "3");
}

#[tokio::test]
async fn upstream_failures_are_not_billed_and_give_the_units_back() {
    let env = Env::start("", "").await;
    let key = env.customer("acme", "basic").await;
    for _ in 0..3 {
        let (status, _, _) = env.get("/fail", &key).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    let (status, headers, body) = env.get("/slow", &key).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(is_problem(&headers));
    assert_eq!(body["code"], "upstream_timeout");
    assert!(has_rate_limit_headers(&headers));
    // The quota of 3 is untouched: all three still go through.
    for _ in 0..3 {
        let (status, _, body) = env.get("/echo/x", &key).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(env.used("acme", "api_calls", "3").await, "3");
}

#[tokio::test]
async fn meter_failures_bills_them() {
    let env = Env::start("meter_failures = true", "").await;
    let key = env.customer("acme", "pro").await;
    let (status, _, _) = env.get("/fail", &key).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(env.used("acme", "api_calls", "1").await, "1");
}

#[tokio::test]
async fn a_closed_upstream_port_gives_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let env = Env::start_with_upstream(Upstream::start().await, &url, "", "").await;
    let key = env.customer("acme", "pro").await;
    let (status, headers, body) = env.get("/echo/x", &key).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(is_problem(&headers));
    assert_eq!(body["code"], "upstream_unavailable");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.used("acme", "api_calls", "0").await, "0");
}

#[tokio::test]
async fn unmatched_routes_are_refused_by_default() {
    let env = Env::start("", "").await;
    let key = env.customer("acme", "pro").await;
    let (status, headers, body) = env.get("/public/health", &key).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(is_problem(&headers));
    assert_eq!(body["code"], "route_not_found");
    // A route's method matters too.
    let (status, _, _) = env
        .send(env.request(Method::DELETE, "/reports/1", Some(&key)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(env.upstream.requests(), 0);
}

#[tokio::test]
async fn unmatched_routes_can_pass_through_unmetered() {
    let env = Env::start("unmatched = \"pass_through\"", "").await;
    let key = env.customer("acme", "pro").await;
    let (status, _, body) = env
        .send(env.request(Method::GET, "/public/health", None))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Credentials and spoofed identity never reach the upstream, even here.
    let req = env
        .request(Method::GET, "/public/health", Some(&key))
        .header("x-tollgate-customer", "acme");
    let (status, _, body) = env.send(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["headers"].get("authorization").is_none());
    assert!(body["headers"].get("x-tollgate-customer").is_none());
}

fn chat_body(stream: bool) -> Value {
    json!({"model": "gpt-test", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn tokens_are_metered_from_json_answers() {
    let env = Env::start("", "").await;
    let key = env.customer("acme", "pro").await;
    let req = env
        .request(Method::POST, "/v1/chat/completions", Some(&key))
        .json(&chat_body(false));
    let (status, _, body) = env.send(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["usage"]["prompt_tokens"], PROMPT_TOKENS);
    assert_eq!(
        env.used("acme", "prompt_tokens", &PROMPT_TOKENS.to_string())
            .await,
        PROMPT_TOKENS.to_string()
    );
    assert_eq!(
        env.used("acme", "completion_tokens", "17").await,
        COMPLETION_TOKENS.to_string()
    );
    assert_eq!(env.used("acme", "api_calls", "1").await, "1");
}

#[tokio::test]
async fn streamed_answers_pass_through_unbuffered_and_their_tokens_are_metered() {
    let env = Env::start("", "").await;
    let key = env.customer("acme", "pro").await;
    let req = env
        .request(Method::POST, "/v1/chat/completions", Some(&key))
        .json(&chat_body(true));
    let mut resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let first = resp.chunk().await.unwrap().expect("a first chunk");
    assert!(
        String::from_utf8_lossy(&first).contains("part0"),
        "{first:?}"
    );
    assert!(
        !env.upstream
            .seen
            .stream_done
            .load(std::sync::atomic::Ordering::SeqCst),
        "the stream was buffered"
    );
    let mut rest = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("part2") && rest.contains("[DONE]"), "{rest}");
    // The client did not ask for usage; the gateway did, so the stream could be metered.
    assert!(
        env.upstream
            .seen
            .include_usage
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    assert_eq!(
        env.used("acme", "completion_tokens", "17").await,
        COMPLETION_TOKENS.to_string()
    );
    assert_eq!(
        env.used("acme", "prompt_tokens", "11").await,
        PROMPT_TOKENS.to_string()
    );
}

#[tokio::test]
async fn a_stream_abandoned_by_the_client_is_still_metered() {
    let env = Env::start("", "").await;
    let key = env.customer("acme", "pro").await;
    let req = env
        .request(Method::POST, "/v1/chat/completions", Some(&key))
        .json(&chat_body(true));
    let mut resp = req.send().await.unwrap();
    resp.chunk().await.unwrap().expect("a first chunk");
    drop(resp);
    assert_eq!(
        env.used("acme", "completion_tokens", "17").await,
        COMPLETION_TOKENS.to_string()
    );
}

#[tokio::test]
async fn an_exhausted_token_quota_refuses_before_forwarding() {
    let env = Env::start(
        "",
        "[gateway.openai]\ncheck_meters = [\"completion_tokens\"]",
    )
    .await;
    let key = env.customer("acme", "pro").await;
    let spent = json!({"events": [{"id": "e1", "customer": "acme", "type": "llm.tokens",
        "properties": {"model": "gpt-test", "completion_tokens": 100}}]});
    env.admin(Method::POST, "/v1/events", Some(spent)).await;
    let req = env
        .request(Method::POST, "/v1/chat/completions", Some(&key))
        .json(&chat_body(false));
    let (status, headers, body) = env.send(req).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "quota_exceeded");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(env.upstream.requests(), 0);
}

#[tokio::test]
async fn a_bad_config_is_refused_before_serving() {
    let bad = [
        "[gateway]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:1\"\nbogus = 1\n",
        "[gateway]\nlisten = \"127.0.0.1:0\"\nupstream = \"ftp://x\"\n",
        "[gateway]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://x\"\n[[gateway.routes]]\npath = \"/a\"\n",
        "[gateway]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://x\"\n[[gateway.routes]]\npath = \"a*\"\nmeter = \"m\"\n",
        "[gateway]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://x\"\n[[gateway.routes]]\npath = \"/a\"\nmeter = \"m\"\ncost = 0.5\n",
        "listen = \"127.0.0.1:0\"\n",
    ];
    for text in bad {
        assert!(GatewayConfig::from_toml(text).is_err(), "accepted: {text}");
    }
    let good = "data_dir = \"x\"\n[gateway]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:9/api\"\n\
                upstream_timeout = \"250ms\"\n[[gateway.routes]]\npath = \"/a\"\nmeter = \"m\"\ncost = \"0.5\"\n";
    let config = GatewayConfig::from_toml(good).unwrap();
    assert_eq!(config.upstream_timeout, Duration::from_millis(250));
    assert_eq!(
        config.upstream.join("/v1/x?y=1").unwrap().to_string(),
        "http://127.0.0.1:9/api/v1/x?y=1"
    );
}
