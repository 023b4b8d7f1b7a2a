//! Two Tollgate nodes on one PostgreSQL and one Redis: limits stay exact when both take load at
//! once, and a change made on one node is enforced by the other within a second.
//!
//! Needs `TOLLGATE_TEST_DATABASE_URL` and `TOLLGATE_TEST_REDIS_URL` both set when the tests are
//! built (`build.rs` turns them into `cfg(tollgate_pg)` and `cfg(tollgate_redis)`); without them
//! the runner lists these tests as ignored, and with them they run and fail loudly if a service
//! is unreachable. Every test works in a fresh workspace, so tests
//! share the database; both nodes of a test share one injected clock, so windows are controlled.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_server::clock::Clock;
use tollgate_server::{RedisFailureMode, RunningServer, ServerConfig};

const ADMIN_KEY: &str = "tg_admin_test_bootstrap_key_0123456789";
/// Concurrent consuming checks per hammer, split evenly across the two nodes.
const HAMMER: usize = 200;

/// A clock both nodes read; tests move it.
struct SharedClock(AtomicI64);

impl Clock for SharedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_second(self.0.load(Ordering::SeqCst)).expect("valid time")
    }
}

impl SharedClock {
    fn at(time: &str) -> Arc<Self> {
        Arc::new(SharedClock(AtomicI64::new(
            time.parse::<Timestamp>().unwrap().as_second(),
        )))
    }

    fn set(&self, time: &str) {
        self.0.store(
            time.parse::<Timestamp>().unwrap().as_second(),
            Ordering::SeqCst,
        );
    }
}

/// A service URL from the environment; panics when it is unset, since these tests must not pass
/// without the services they test.
fn env_url(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{name} is unset: the multinode tests need it"))
}

/// The database URL, and the Redis URL (`TOLLGATE_TEST_REDIS_URL`) checked to answer PING.
async fn urls() -> (String, String) {
    let (db, redis_url) = (
        env_url("TOLLGATE_TEST_DATABASE_URL"),
        env_url("TOLLGATE_TEST_REDIS_URL"),
    );
    let client =
        redis::Client::open(redis_url.as_str()).expect("TOLLGATE_TEST_REDIS_URL is a Redis URL");
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .unwrap_or_else(|_| panic!("Redis at {redis_url} did not answer"))
    .unwrap_or_else(|e| panic!("Redis at {redis_url} is unreachable: {e}"));
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .expect("Redis answers PING");
    assert_eq!(pong, "PONG");
    (db, redis_url)
}

/// The Redis Cluster's URL (`TOLLGATE_TEST_REDIS_CLUSTER_URL`), checked to be a healthy cluster.
async fn cluster_url() -> String {
    let url = env_url("TOLLGATE_TEST_REDIS_CLUSTER_URL");
    let pong = tokio::time::timeout(
        Duration::from_secs(5),
        tollgate_server::counters::ping(&url),
    )
    .await
    .unwrap_or_else(|_| panic!("the Redis Cluster at {url} did not answer"))
    .unwrap_or_else(|e| panic!("the Redis Cluster at {url} is not usable: {e}"));
    assert!(pong.starts_with("PONG"), "{pong}");
    url
}

struct Node {
    server: RunningServer,
    base: String,
    _dir: tempfile::TempDir,
}

async fn node(db: &str, redis_url: &str, mode: RedisFailureMode, clock: Arc<SharedClock>) -> Node {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = ServerConfig {
        database_url: Some(db.to_owned()),
        admin_key: Some(ADMIN_KEY.into()),
        redis_url: Some(redis_url.to_owned()),
        redis_failure_mode: mode,
        ..ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path())
    };
    let server = tollgate_server::start_with_clock(config, clock)
        .await
        .expect("node starts (is PostgreSQL up?)");
    let base = format!("http://{}", server.addr);
    Node {
        server,
        base,
        _dir: dir,
    }
}

/// Nodes on one store and one Redis, with a fresh workspace and a catalog applied.
struct Cluster {
    nodes: Vec<Node>,
    clock: Arc<SharedClock>,
    http: reqwest::Client,
    /// The workspace's admin key.
    key: String,
    /// The workspace's id.
    workspace: String,
}

impl Cluster {
    /// [`Cluster::start`] on `redis` (a Redis Cluster's URL), or the test Redis when `None`.
    async fn start_on(redis: Option<&str>, catalog: &str, nodes: usize) -> Cluster {
        Cluster::start(catalog, nodes, redis, RedisFailureMode::FailClosed).await
    }

    async fn start(
        catalog: &str,
        nodes: usize,
        redis_url: Option<&str>,
        mode: RedisFailureMode,
    ) -> Cluster {
        let (db, redis_url) = match redis_url {
            Some(url) => (env_url("TOLLGATE_TEST_DATABASE_URL"), url.to_owned()),
            None => urls().await,
        };
        let clock = SharedClock::at("2026-11-10T09:00:10Z");
        let mut started = Vec::new();
        for _ in 0..nodes {
            started.push(node(&db, &redis_url, mode, clock.clone()).await);
        }
        let mut cluster = Cluster {
            nodes: started,
            clock,
            http: reqwest::Client::new(),
            key: ADMIN_KEY.into(),
            workspace: String::new(),
        };
        let id = format!("ws_{}", uuid::Uuid::now_v7().simple());
        cluster.workspace = id.clone();
        let body = cluster
            .post(0, "/v1/workspaces", json!({"id": id, "name": catalog}))
            .await;
        cluster.key = body["admin_key"].as_str().unwrap().to_owned();
        let yaml = std::fs::read_to_string(format!(
            "{}/../../examples/catalogs/{catalog}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("catalog file");
        let (status, body) = cluster
            .call(
                0,
                &cluster.key,
                Method::PUT,
                "/v1/catalog",
                Some(json!({"yaml": yaml})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        cluster
    }

    async fn call(
        &self,
        node: usize,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.nodes[node].base, path))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A POST with the workspace's admin key that must succeed.
    async fn post(&self, node: usize, path: &str, body: Value) -> Value {
        let key = if path == "/v1/workspaces" {
            ADMIN_KEY
        } else {
            &self.key
        };
        let (status, body) = self.call(node, key, Method::POST, path, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    /// A customer on `plan` (created through node 0); returns its API key.
    async fn customer(&self, id: &str, plan: &str) -> String {
        self.post(0, "/v1/customers", json!({"id": id})).await;
        self.post(
            0,
            &format!("/v1/customers/{id}/subscriptions"),
            json!({"plan": plan, "trial": false}),
        )
        .await;
        self.post(0, &format!("/v1/customers/{id}/keys"), json!({}))
            .await["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `n` checks at once, alternating between the nodes; each answer's status and body.
    async fn hammer(&self, n: usize, body: Value) -> Vec<(StatusCode, Value)> {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (http, key, body) = (self.http.clone(), self.key.clone(), body.clone());
                let url = format!("{}/v1/check", self.nodes[i % self.nodes.len()].base);
                tokio::spawn(async move {
                    let resp = http
                        .post(url)
                        .bearer_auth(key)
                        .json(&body)
                        .send()
                        .await
                        .expect("request");
                    let status = resp.status();
                    (status, resp.json::<Value>().await.expect("json"))
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(n);
        for t in tasks {
            answers.push(t.await.expect("task"));
        }
        answers
    }

    async fn stop(self) {
        for n in self.nodes {
            n.server.stop().await.expect("node stops");
        }
    }
}

/// How many answers allowed; panics on any answer that is neither an allow nor a denial.
fn admitted(answers: &[(StatusCode, Value)]) -> usize {
    answers
        .iter()
        .filter(|(status, body)| {
            assert!(
                *status == StatusCode::OK || *status == StatusCode::TOO_MANY_REQUESTS,
                "{status} {body}"
            );
            *status == StatusCode::OK && body["allowed"] == true
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_URL to run on PostgreSQL and Redis"
)]
async fn a_calendar_quota_admits_exactly_its_limit_across_two_nodes() {
    calendar_quota_is_exact(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis_cluster)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_CLUSTER_URL to run on PostgreSQL and a Redis Cluster"
)]
async fn a_calendar_quota_admits_exactly_its_limit_across_two_nodes_on_a_redis_cluster() {
    calendar_quota_is_exact(Some(&cluster_url().await)).await;
}

/// Concurrent consuming checks on two nodes admit exactly a calendar quota's remainder.
async fn calendar_quota_is_exact(redis: Option<&str>) {
    let c = Cluster::start_on(redis, "qlp.yaml", 2).await;
    c.customer("acme", "free").await;
    // Usage already in the store before any node counts in Redis: the counter starts from it.
    let events: Vec<Value> = (0..4)
        .map(|i| json!({"id": format!("gen-{i}"), "customer": "acme", "type": "codegen.completed", "properties": {"tier": "T0"}}))
        .collect();
    c.post(1, "/v1/events", json!({"events": events})).await;
    let answers = c
        .hammer(
            HAMMER,
            json!({"customer": "acme", "meter": "generations", "consume": true}),
        )
        .await;
    assert_eq!(
        admitted(&answers),
        6,
        "10 generations a month, 4 already used"
    );
    let denied = answers
        .iter()
        .find(|(_, b)| b["allowed"] == false)
        .expect("a denial");
    assert_eq!(denied.1["reason"], "quota_exceeded");
    assert_eq!(denied.1["used"], "10");
    // Events keep counting on every node (they are never refused), and the store agrees.
    c.post(
        0,
        "/v1/events",
        json!({"events": [{"id": "gen-late", "customer": "acme", "type": "codegen.completed"}]}),
    )
    .await;
    let (_, usage) = c
        .call(1, &c.key, Method::GET, "/v1/customers/acme/usage", None)
        .await;
    let generations = usage["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == "generations")
        .unwrap()
        .clone();
    assert_eq!(generations["used"], "11", "{usage}");
    let again = c
        .hammer(
            10,
            json!({"customer": "acme", "meter": "generations", "consume": true}),
        )
        .await;
    assert_eq!(admitted(&again), 0);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_URL to run on PostgreSQL and Redis"
)]
async fn a_rolling_window_admits_exactly_its_limit_across_two_nodes() {
    rolling_window_is_exact(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis_cluster)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_CLUSTER_URL to run on PostgreSQL and a Redis Cluster"
)]
async fn a_rolling_window_admits_exactly_its_limit_across_two_nodes_on_a_redis_cluster() {
    rolling_window_is_exact(Some(&cluster_url().await)).await;
}

/// Concurrent consuming checks on two nodes admit exactly a rolling window's limit, per user.
async fn rolling_window_is_exact(redis: Option<&str>) {
    let c = Cluster::start_on(redis, "apex.yaml", 2).await;
    c.customer("cust", "free").await;
    let run = |user: &str| json!({"customer": "cust", "meter": "agent_runs", "subject": user, "consume": true});
    let answers = c.hammer(HAMMER, run("u1")).await;
    assert_eq!(
        admitted(&answers),
        3,
        "3 supervisor runs per user in any 5 hours"
    );
    let denied = answers
        .iter()
        .find(|(_, b)| b["allowed"] == false)
        .expect("a denial")
        .1
        .clone();
    assert_eq!(denied["reason"], "quota_exceeded");
    assert_eq!(denied["window"], "5h");
    assert_eq!(denied["reset_at"], "2026-11-10T14:00:10Z");
    // Each node's usage view counts the runs admitted on both (read from the store).
    for node in 0..2 {
        let (status, usage) = c
            .call(
                node,
                &c.key,
                Method::GET,
                "/v1/customers/cust/usage?subject=u1",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        let runs = usage["meters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["meter"] == "agent_runs")
            .unwrap()
            .clone();
        assert_eq!(runs["windows"][0]["used"], "3", "node {node}: {usage}");
        assert_eq!(runs["windows"][0]["next_unit_at"], "2026-11-10T14:00:10Z");
    }
    // Per user: another user has a window of its own.
    assert_eq!(admitted(&c.hammer(20, run("u2")).await), 3);
    // One second before the first runs leave the window: still full; at that second: 3 again.
    c.clock.set("2026-11-10T14:00:09Z");
    assert_eq!(admitted(&c.hammer(20, run("u1")).await), 0);
    c.clock.set("2026-11-10T14:00:10Z");
    assert_eq!(admitted(&c.hammer(HAMMER, run("u1")).await), 3);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_URL to run on PostgreSQL and Redis"
)]
async fn a_per_minute_rate_limit_admits_exactly_its_limit_across_two_nodes() {
    rate_limit_is_exact(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis_cluster)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_CLUSTER_URL to run on PostgreSQL and a Redis Cluster"
)]
async fn a_per_minute_rate_limit_admits_exactly_its_limit_across_two_nodes_on_a_redis_cluster() {
    rate_limit_is_exact(Some(&cluster_url().await)).await;
}

/// Concurrent checks on two nodes admit exactly a per-minute rate limit.
async fn rate_limit_is_exact(redis: Option<&str>) {
    let c = Cluster::start_on(redis, "lexecon.yaml", 2).await;
    c.customer("acme", "startup").await;
    let check = json!({"customer": "acme", "meter": "decisions"});
    let answers = c.hammer(HAMMER, check.clone()).await;
    assert_eq!(admitted(&answers), 100, "100 requests per minute");
    let limited = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(limited, HAMMER - 100);
    // Each 429, decided in Redis, names the plan that allows more calls (10,000 an hour).
    let refused = answers
        .iter()
        .find(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .map(|(_, body)| body)
        .expect("a 429");
    assert_eq!(
        refused["upgrade"]["plan"], "enterprise_starter",
        "{refused}"
    );
    assert_eq!(
        refused["detail"],
        "request rate limit reached; plan `enterprise_starter` allows more"
    );
    // The next minute starts a new window on both nodes.
    c.clock.set("2026-11-10T09:01:00Z");
    assert_eq!(admitted(&c.hammer(HAMMER, check).await), 100);
    c.stop().await;
}

/// Polls `probe` until it returns true; the time it took, or a panic after `limit`.
async fn within<F, Fut>(limit: Duration, what: &str, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !probe().await {
        assert!(start.elapsed() < limit, "{what}: not seen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_URL to run on PostgreSQL and Redis"
)]
async fn suspension_plan_change_and_revocation_on_one_node_reach_the_other_within_a_second() {
    changes_propagate(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis_cluster)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_CLUSTER_URL to run on PostgreSQL and a Redis Cluster"
)]
async fn suspension_plan_change_and_revocation_reach_the_other_node_on_a_redis_cluster() {
    changes_propagate(Some(&cluster_url().await)).await;
}

/// A plan change, suspension and revocation on one node reach the other within a second.
async fn changes_propagate(redis: Option<&str>) {
    let c = Cluster::start_on(redis, "apex.yaml", 2).await;
    let secret = c.customer("cust", "free").await;
    let check = json!({"meter": "agent_runs", "subject": "u1"});
    // Node 1 caches the key and the customer.
    let (status, body) = c
        .call(1, &secret, Method::POST, "/v1/check", Some(check.clone()))
        .await;
    assert_eq!(
        (status, body["limit"].clone()),
        (StatusCode::OK, json!("3")),
        "{body}"
    );

    // A plan change on node 0.
    let (_, subs) = c
        .call(
            0,
            &c.key,
            Method::GET,
            "/v1/customers/cust/subscriptions",
            None,
        )
        .await;
    let sub = subs["data"][0]["id"].as_str().unwrap().to_owned();
    c.post(
        0,
        &format!("/v1/customers/cust/subscriptions/{sub}/change"),
        json!({"plan": "early"}),
    )
    .await;
    let took = within(
        Duration::from_secs(1),
        "the plan change on node 1",
        || async {
            let (_, body) = c
                .call(1, &secret, Method::POST, "/v1/check", Some(check.clone()))
                .await;
            body["limit"] == "100"
        },
    )
    .await;
    eprintln!("plan change seen on the other node after {took:?}");

    // A suspension on node 0.
    c.post(0, "/v1/customers/cust/suspend", json!({})).await;
    let took = within(
        Duration::from_secs(1),
        "the suspension on node 1",
        || async {
            c.call(1, &secret, Method::POST, "/v1/check", Some(check.clone()))
                .await
                .0
                == StatusCode::FORBIDDEN
        },
    )
    .await;
    eprintln!("suspension seen on the other node after {took:?}");
    c.post(0, "/v1/customers/cust/unsuspend", json!({})).await;
    within(
        Duration::from_secs(1),
        "the unsuspension on node 1",
        || async {
            c.call(1, &secret, Method::POST, "/v1/check", Some(check.clone()))
                .await
                .0
                == StatusCode::OK
        },
    )
    .await;

    // A revocation on node 0.
    let (_, keys) = c
        .call(0, &c.key, Method::GET, "/v1/customers/cust/keys", None)
        .await;
    let key_id = keys["data"][0]["id"].as_str().unwrap().to_owned();
    c.post(
        0,
        &format!("/v1/customers/cust/keys/{key_id}/revoke"),
        json!({}),
    )
    .await;
    let took = within(
        Duration::from_secs(1),
        "the revocation on node 1",
        || async {
            c.call(1, &secret, Method::POST, "/v1/check", Some(check.clone()))
                .await
                .0
                == StatusCode::UNAUTHORIZED
        },
    )
    .await;
    eprintln!("revocation seen on the other node after {took:?}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis_cluster)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_CLUSTER_URL to run on PostgreSQL and a Redis Cluster"
)]
async fn customers_counters_spread_over_the_masters_and_each_customer_stays_in_one_slot() {
    let url = cluster_url().await;
    let c = Cluster::start_on(Some(&url), "qlp.yaml", 2).await;
    const CUSTOMERS: usize = 24;
    for i in 0..CUSTOMERS {
        let id = format!("c{i}");
        c.post(0, "/v1/customers", json!({"id": id})).await;
        c.post(
            0,
            &format!("/v1/customers/{id}/subscriptions"),
            json!({"plan": "free", "trial": false}),
        )
        .await;
        let check = json!({"customer": id, "meter": "generations", "consume": true});
        let body = c.post(i % 2, "/v1/check", check).await;
        assert_eq!(body["allowed"], true, "{body}");
    }
    // Each master's keys of this workspace (SCAN on a cluster node lists only its own keys).
    let nodes = tollgate_server::counters::cluster_nodes(&url)
        .unwrap()
        .expect("a cluster URL");
    let pattern = format!("tollgate:{}:*", c.workspace);
    let mut node_of: std::collections::HashMap<String, usize> = Default::default();
    let mut masters_with_keys = 0;
    let mut total = 0;
    for (n, node) in nodes.iter().enumerate() {
        let client = redis::Client::open(node.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .unwrap();
        masters_with_keys += usize::from(!keys.is_empty());
        total += keys.len();
        for key in keys {
            let customer = tollgate_server::counters::keys::hash_tag(&key).to_owned();
            let first = *node_of.entry(customer.clone()).or_insert(n);
            assert_eq!(first, n, "{customer}'s keys are on two nodes ({key})");
        }
    }
    assert_eq!(node_of.len(), CUSTOMERS, "every customer has a counter");
    assert!(total >= CUSTOMERS);
    assert!(
        masters_with_keys >= 2,
        "{CUSTOMERS} customers' counters all landed on one master"
    );
    c.stop().await;
}

/// A Redis URL nothing listens on.
const DEAD_REDIS: &str = "redis://127.0.0.1:1";

async fn metrics_text(c: &Cluster) -> String {
    c.http
        .get(format!("{}/metrics", c.nodes[0].base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_URL to run on PostgreSQL and Redis"
)]
async fn redis_down_and_fail_closed_refuses_checks_that_need_it() {
    let c = Cluster::start(
        "qlp.yaml",
        1,
        Some(DEAD_REDIS),
        RedisFailureMode::FailClosed,
    )
    .await;
    c.customer("acme", "free").await;
    let (status, body) = c
        .call(
            0,
            &c.key,
            Method::POST,
            "/v1/check",
            Some(json!({"customer": "acme", "meter": "generations"})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "counter_unavailable");
    // A feature check on a plan without rate limits needs no counter: still answered.
    let (status, body) = c
        .call(
            0,
            &c.key,
            Method::POST,
            "/v1/check",
            Some(json!({"customer": "acme", "feature": "sso"})),
        )
        .await;
    assert_eq!(
        (status, body["reason"].clone()),
        (StatusCode::OK, json!("feature_not_in_plan")),
        "{body}"
    );
    // Events are still accepted: the store is the record, the counters catch up from it.
    c.post(
        0,
        "/v1/events",
        json!({"events": [{"id": "g1", "customer": "acme", "type": "codegen.completed"}]}),
    )
    .await;
    let metrics = metrics_text(&c).await;
    assert!(
        metrics.contains("tollgate_counter_backend_errors_total"),
        "{metrics}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(tollgate_pg, tollgate_redis)),
    ignore = "set TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_URL to run on PostgreSQL and Redis"
)]
async fn redis_down_and_fail_open_answers_from_the_nodes_own_counters() {
    let c = Cluster::start("qlp.yaml", 1, Some(DEAD_REDIS), RedisFailureMode::FailOpen).await;
    c.customer("acme", "free").await;
    let answers = c
        .hammer(
            15,
            json!({"customer": "acme", "meter": "generations", "consume": true}),
        )
        .await;
    // Open, yet not unlimited: this node's own counters still hold the plan's limit.
    assert_eq!(admitted(&answers), 10);
    let metrics = metrics_text(&c).await;
    assert!(
        metrics.contains("tollgate_counter_backend_errors_total"),
        "{metrics}"
    );
    c.stop().await;
}
