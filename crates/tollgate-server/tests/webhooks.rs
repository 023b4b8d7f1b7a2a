//! Webhooks end to end (docs/WEBHOOKS.md): a real Tollgate on each backend delivering to a real
//! receiver bound on 127.0.0.1 that fails on purpose (500s, answers slower than the timeout, an
//! outage of hours on a test clock), signatures checked here from the spec text, the SSRF rule,
//! disabling, replay, per-customer order, and Levqor case 4 (one webhook at 80%, one at 100%).
//!
//! The worker is driven by hand (`notify::run_once`, no background poller) so each pass is one
//! observable step. Each test workspace is allowed loopback addresses explicitly (by the
//! operator's key), as the SSRF rule refuses them by default.
//!
//! With `TOLLGATE_WEBHOOK_CAPTURE=FILE` set, the deliveries the tests accept are also written to
//! FILE (one JSON object a line: secrets, headers, body) for `.ci/webhooks.sh`, which verifies
//! each with the `standardwebhooks` package from PyPI, an implementation independent of ours.
//! The cargo tests themselves need nothing but Rust.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine as _;
use common::{Backend, TestServer, backend_tests};
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_core::ids::WorkspaceId;
use tollgate_server::engine::Engine;
use tollgate_server::notify::{self, NotifyConfig};
use tollgate_store::outbox::{OutboxEvent, OutboxFilter};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Ok,
    Fail500,
    /// Answers after this long (longer than the server's timeout in these tests).
    Slow(Duration),
}

#[derive(Clone, Debug)]
struct Captured {
    headers: HeaderMap,
    body: String,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Captured>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let mode = Arc::new(Mutex::new(Mode::Ok));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (m, s) = (mode.clone(), seen.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let (m, s) = (m.clone(), s.clone());
            async move {
                s.lock().unwrap().push(Captured { headers, body });
                let mode = *m.lock().unwrap();
                match mode {
                    Mode::Ok => (StatusCode::OK, "thanks".to_owned()),
                    Mode::Fail500 => (StatusCode::INTERNAL_SERVER_ERROR, "x".repeat(5000)),
                    Mode::Slow(d) => {
                        tokio::time::sleep(d).await;
                        (StatusCode::OK, "late".to_owned())
                    }
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: format!("http://{addr}/hooks"),
            mode,
            seen,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn seen(&self) -> Vec<Captured> {
        self.seen.lock().unwrap().clone()
    }
}

fn config() -> NotifyConfig {
    NotifyConfig {
        allow_private_addresses: false,
        request_timeout: Duration::from_millis(500),
        poll_interval: None,
        ..NotifyConfig::default()
    }
}

async fn start(backend: Backend, cfg: NotifyConfig) -> TestServer {
    TestServer::start_with(backend, |c| c.webhooks = cfg).await
}

fn engine(server: &TestServer) -> &Engine {
    &server.server.as_ref().unwrap().state.engine
}

/// One pass of the worker over the workspace `ws` (on PostgreSQL the tests share a database:
/// a pass over every workspace would deliver other tests' webhooks).
async fn pass(server: &TestServer, ws: &str, cfg: &NotifyConfig) -> usize {
    notify::run_workspace(engine(server), cfg, ws)
        .await
        .unwrap()
}

/// Writes a domain event for `customer` at `at` (what the lifecycle's writes put in the outbox).
async fn event(server: &TestServer, ws: &str, customer: &str, kind: &str, at: &str) -> String {
    let id = tollgate_server::ids::new_id("evt");
    let e = OutboxEvent {
        workspace: ws.to_owned(),
        id: id.clone(),
        customer: Some(customer.to_owned()),
        event_type: kind.to_owned(),
        occurred_at: at.parse().unwrap(),
        data: json!({"customer": customer, "n": id}),
        created_at: Timestamp::now(),
        delivered_at: None,
        delivery_attempts: 0,
    };
    engine(server)
        .store()
        .append_events(&WorkspaceId::from(ws), &[e])
        .await
        .unwrap();
    id
}

/// Checks a delivery against the spec, written here from the spec text (not with the server's
/// code): `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")).
fn verify_here(c: &Captured, secret: &str) {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let id = c.headers["webhook-id"].to_str().unwrap();
    let ts = c.headers["webhook-timestamp"].to_str().unwrap();
    let sigs = c.headers["webhook-signature"].to_str().unwrap();
    let message = format!("{id}.{ts}.{}", c.body);
    // HMAC per RFC 2104 with sha2, independently of the server's function.
    use sha2::{Digest, Sha256};
    let mut k = key.clone();
    k.resize(64, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message.as_bytes())
        .finalize();
    let mac = Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize();
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac)
    );
    assert!(
        sigs.split(' ').any(|s| s == expected),
        "{sigs} holds no signature by {secret}"
    );
    let body: Value = serde_json::from_str(&c.body).unwrap();
    assert!(body["type"].is_string() && body["timestamp"].is_string());
    assert!(body["data"].is_object());
}

static CAPTURE: Mutex<()> = Mutex::new(());

/// Appends `deliveries` (each with the secrets that must verify it) to the file named by
/// `TOLLGATE_WEBHOOK_CAPTURE`, for `.ci/webhooks.sh` and the `standardwebhooks` package.
fn capture(deliveries: &[(Vec<String>, &Captured)]) {
    let Some(path) = std::env::var_os("TOLLGATE_WEBHOOK_CAPTURE") else {
        return;
    };
    let mut lines = String::new();
    for (secrets, c) in deliveries {
        let headers: serde_json::Map<String, Value> =
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
                .iter()
                .map(|h| (h.to_string(), json!(c.headers[*h].to_str().unwrap())))
                .collect();
        lines
            .push_str(&json!({"secrets": secrets, "headers": headers, "body": c.body}).to_string());
        lines.push('\n');
    }
    let _guard = CAPTURE.lock().unwrap();
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
}

/// Lets the workspace's endpoints name loopback addresses (the receiver), with the operator's
/// key: the SSRF rule refuses them otherwise.
async fn allow_loopback(ws: &common::Workspace<'_>, allowed: bool) {
    let (status, body) = ws
        .server
        .call(
            common::ADMIN_KEY,
            Method::PUT,
            &format!("/v1/workspaces/{}/webhook_settings", ws.id),
            Some(json!({"allow_private_addresses": allowed})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn endpoint(ws: &common::Workspace<'_>, url: &str, types: Value) -> (String, String) {
    let body = ws
        .post(
            "/v1/webhook_endpoints",
            json!({"url": url, "event_types": types, "description": "ops"}),
        )
        .await;
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn endpoints_are_managed_and_validated(backend: Backend) {
    let server = start(backend, config()).await;
    let ws = server.workspace("lexecon.yaml").await;
    let (id, secret) = endpoint(&ws, "https://hooks.example.com/t", json!(["invoice.paid"])).await;
    assert!(secret.starts_with("whsec_"));
    let key = base64::engine::general_purpose::STANDARD
        .decode(&secret["whsec_".len()..])
        .unwrap();
    assert!(key.len() >= 24);
    let (status, got) = ws
        .call(Method::GET, &format!("/v1/webhook_endpoints/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        got["secret"],
        Value::Null,
        "the secret is shown on creation only"
    );
    assert_eq!(got["event_types"], json!(["invoice.paid"]));
    let (status, got) = ws
        .call(
            Method::PATCH,
            &format!("/v1/webhook_endpoints/{id}"),
            Some(json!({"event_types": [], "enabled": false, "description": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["enabled"], json!(false));
    assert_eq!(got["description"], Value::Null);
    let rotated = ws
        .post(
            &format!("/v1/webhook_endpoints/{id}/rotate_secret"),
            json!({}),
        )
        .await;
    assert_ne!(rotated["secret"], json!(secret));
    assert!(rotated["previous_secret_until"].is_string());
    for (body, code) in [
        (json!({"url": "ftp://x.example/"}), "webhook_url_invalid"),
        (json!({"url": "not a url"}), "webhook_url_invalid"),
        (
            json!({"url": "https://x.example/", "event_types": ["invoice.payed"]}),
            "unknown_event_type",
        ),
    ] {
        let (status, problem) = ws
            .call(Method::POST, "/v1/webhook_endpoints", Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(problem["code"], json!(code));
    }
    let (_, list) = ws.call(Method::GET, "/v1/webhook_endpoints", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let path = format!("/v1/webhook_endpoints/{id}");
    assert_eq!(
        ws.call(Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ws.call(Method::GET, &path, None).await.0,
        StatusCode::NOT_FOUND
    );
}
backend_tests!(endpoints_are_managed_and_validated);

async fn private_addresses_are_refused_at_registration_and_delivery(backend: Backend) {
    let cfg = config();
    let server = start(backend, cfg.clone()).await;
    let ws = server.workspace("lexecon.yaml").await;
    for url in [
        "http://127.0.0.1:8080/",
        "http://10.0.0.7/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
        "http://localhost:3000/",
    ] {
        let (status, problem) = ws
            .call(
                Method::POST,
                "/v1/webhook_endpoints",
                Some(json!({"url": url})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {problem}");
        assert_eq!(problem["code"], json!("webhook_url_forbidden"), "{url}");
    }
    // Only the server's operator allows a workspace private addresses, not its own admin.
    let (status, problem) = ws
        .call(
            Method::PUT,
            &format!("/v1/workspaces/{}/webhook_settings", ws.id),
            Some(json!({"allow_private_addresses": true})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    // Allowed by the operator: a name resolving to loopback is accepted...
    allow_loopback(&ws, true).await;
    let receiver = Receiver::start().await;
    let url = receiver.url.replace("127.0.0.1", "localhost");
    let (id, _) = endpoint(&ws, &url, json!(["invoice.paid"])).await;
    // ...and when the operator takes it back, refused at delivery on the resolved address: the
    // receiver sees nothing, the log says why.
    allow_loopback(&ws, false).await;
    ws.customer("acme", "startup", None, false).await;
    event(
        &server,
        &ws.id,
        "acme",
        "invoice.paid",
        &Timestamp::now().to_string(),
    )
    .await;
    assert_eq!(pass(&server, &ws.id, &cfg).await, 1);
    let (_, deliveries) = ws
        .call(
            Method::GET,
            &format!("/v1/webhook_endpoints/{id}/deliveries"),
            None,
        )
        .await;
    let log = &deliveries[0]["log"][0];
    assert!(log["error"].as_str().unwrap().contains("SSRF"), "{log}");
    assert_eq!(log["response_status"], Value::Null);
    assert!(receiver.seen().is_empty());
    // A second workspace, never allowed, is refused even a URL the first one may use.
    let other = server.workspace("lexecon.yaml").await;
    let (status, problem) = other
        .call(
            Method::POST,
            "/v1/webhook_endpoints",
            Some(json!({"url": receiver.url})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], json!("webhook_url_forbidden"));
}
backend_tests!(private_addresses_are_refused_at_registration_and_delivery);

async fn a_receiver_down_for_six_hours_gets_every_event_afterwards(backend: Backend) {
    let cfg = config();
    let server = start(backend, cfg.clone()).await;
    let ws = server.workspace("lexecon.yaml").await;
    allow_loopback(&ws, true).await;
    let receiver = Receiver::start().await;
    let types = json!(["subscription.updated", "invoice.finalized"]);
    let (id, secret) = endpoint(&ws, &receiver.url, types).await;
    let clock = ws.test_clock("2026-11-09T08:00:00Z").await;
    ws.customer("acme", "startup", Some(&clock), true).await; // in trial: no opening invoice to announce
    let start: Timestamp = "2026-11-09T08:00:00Z".parse().unwrap();
    // First a 500, then an answer slower than the timeout: both failures, both logged.
    receiver.set(Mode::Fail500);
    let first = event(
        &server,
        &ws.id,
        "acme",
        "subscription.updated",
        "2026-11-09T08:00:00Z",
    )
    .await;
    assert_eq!(pass(&server, &ws.id, &cfg).await, 1);
    receiver.set(Mode::Slow(Duration::from_secs(2)));
    ws.advance(&clock, "2026-11-09T08:00:10Z").await;
    assert_eq!(pass(&server, &ws.id, &cfg).await, 1);
    // Down for six hours of the clock, with events written meanwhile, retried as they fall due.
    receiver.set(Mode::Fail500);
    let mut events = vec![first.clone()];
    for hour in 1..=6 {
        let at = start + SignedDuration::from_hours(hour);
        ws.advance(&clock, &at.to_string()).await;
        events.push(
            event(
                &server,
                &ws.id,
                "acme",
                "invoice.finalized",
                &at.to_string(),
            )
            .await,
        );
        pass(&server, &ws.id, &cfg).await;
    }
    let failed_so_far = receiver.seen().len();
    assert!(
        failed_so_far >= 8,
        "attempts during the outage: {failed_so_far}"
    );
    // Back up; nothing is due on the wall clock, everything on the customer's clock once it
    // passes the backoff.
    receiver.set(Mode::Ok);
    ws.advance(
        &clock,
        &(start + SignedDuration::from_hours(24)).to_string(),
    )
    .await;
    let attempted = pass(&server, &ws.id, &cfg).await;
    assert_eq!(attempted, events.len(), "every pending delivery is due");
    assert_eq!(pass(&server, &ws.id, &cfg).await, 0, "and delivered once");
    let seen = receiver.seen();
    let ok: Vec<&Captured> = seen[failed_so_far..].iter().collect();
    let mut ids: Vec<String> = ok
        .iter()
        .map(|c| c.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut want = events.clone();
    want.sort();
    assert_eq!(
        ids, want,
        "every event arrives, each once, under its own id"
    );
    // Every attempt of the first event carried the same webhook-id and a valid signature.
    let firsts: Vec<&Captured> = seen
        .iter()
        .filter(|c| c.headers["webhook-id"] == first.as_str())
        .collect();
    assert!(firsts.len() >= 3, "{}", firsts.len());
    for c in &seen {
        verify_here(c, &secret);
    }
    let fresh: Vec<(Vec<String>, &Captured)> =
        ok.iter().map(|c| (vec![secret.clone()], *c)).collect();
    capture(&fresh);
    // The log: the 500 (its body cut to 1 KB), the timeout, then the success.
    let (_, deliveries) = ws
        .call(
            Method::GET,
            &format!("/v1/webhook_endpoints/{id}/deliveries"),
            None,
        )
        .await;
    let d = deliveries
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["event"] == json!(first))
        .unwrap();
    assert_eq!(d["status"], json!("succeeded"));
    let log = d["log"].as_array().unwrap();
    assert_eq!(log[0]["response_status"], json!(500));
    assert_eq!(log[0]["response_excerpt"].as_str().unwrap().len(), 1024);
    assert!(
        log[1]["error"].as_str().unwrap().contains("timed out"),
        "{}",
        log[1]
    );
    assert_eq!(log.last().unwrap()["response_status"], json!(200));
    let numbers: Vec<i64> = log.iter().map(|a| a["attempt"].as_i64().unwrap()).collect();
    assert_eq!(
        numbers,
        (1..=i64::try_from(log.len()).unwrap()).collect::<Vec<_>>()
    );
}
backend_tests!(a_receiver_down_for_six_hours_gets_every_event_afterwards);

async fn both_secrets_sign_during_a_rotation(backend: Backend) {
    let cfg = config();
    let server = start(backend, cfg.clone()).await;
    let ws = server.workspace("lexecon.yaml").await;
    allow_loopback(&ws, true).await;
    let receiver = Receiver::start().await;
    let (id, old) = endpoint(&ws, &receiver.url, json!(["invoice.paid"])).await;
    let new = ws
        .post(
            &format!("/v1/webhook_endpoints/{id}/rotate_secret"),
            json!({}),
        )
        .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.customer("acme", "startup", None, false).await;
    event(
        &server,
        &ws.id,
        "acme",
        "invoice.paid",
        &Timestamp::now().to_string(),
    )
    .await;
    // Not subscribed: never delivered.
    event(
        &server,
        &ws.id,
        "acme",
        "invoice.voided",
        &Timestamp::now().to_string(),
    )
    .await;
    assert_eq!(pass(&server, &ws.id, &cfg).await, 1);
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    verify_here(&seen[0], &old);
    verify_here(&seen[0], &new);
    capture(&[(vec![old.clone(), new.clone()], &seen[0])]);
    // With no overlap, only the new secret signs.
    let newest = ws
        .post(
            &format!("/v1/webhook_endpoints/{id}/rotate_secret"),
            json!({"overlap_seconds": 0}),
        )
        .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    event(
        &server,
        &ws.id,
        "acme",
        "invoice.paid",
        &Timestamp::now().to_string(),
    )
    .await;
    assert_eq!(pass(&server, &ws.id, &cfg).await, 1);
    let last = receiver.seen().pop().unwrap();
    assert_eq!(
        last.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    verify_here(&last, &newest);
}
backend_tests!(both_secrets_sign_during_a_rotation);

async fn an_endpoint_failing_for_days_is_disabled_and_replay_resends(backend: Backend) {
    let cfg = NotifyConfig {
        disable_after: SignedDuration::from_hours(48),
        ..config()
    };
    let server = start(backend, cfg.clone()).await;
    let ws = server.workspace("lexecon.yaml").await;
    allow_loopback(&ws, true).await;
    let receiver = Receiver::start().await;
    let (id, secret) = endpoint(&ws, &receiver.url, json!(["invoice.finalized"])).await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.customer("acme", "startup", Some(&clock), true).await; // in trial: no opening invoice to announce
    let start: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
    receiver.set(Mode::Fail500);
    let evt = event(
        &server,
        &ws.id,
        "acme",
        "invoice.finalized",
        "2026-11-01T00:00:00Z",
    )
    .await;
    let mut hours = 0;
    loop {
        pass(&server, &ws.id, &cfg).await;
        let (_, got) = ws
            .call(Method::GET, &format!("/v1/webhook_endpoints/{id}"), None)
            .await;
        if got["enabled"] == json!(false) {
            assert!(
                got["disabled_reason"]
                    .as_str()
                    .unwrap()
                    .contains("failing since")
            );
            break;
        }
        hours += 6;
        assert!(hours <= 96, "still enabled after four days of failures");
        ws.advance(
            &clock,
            &(start + SignedDuration::from_hours(hours)).to_string(),
        )
        .await;
    }
    assert!(
        hours >= 48,
        "disabled after {hours} h, before the 48 h configured"
    );
    let disabled = engine(&server)
        .store()
        .list_domain_events(
            &WorkspaceId::from(ws.id.as_str()),
            &OutboxFilter {
                event_type: Some("webhook_endpoint.disabled".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        disabled.len(),
        1,
        "one event, for the email to the operator"
    );
    assert_eq!(disabled[0].data["id"], json!(id));
    // Disabled: nothing is attempted, even when due.
    let before = receiver.seen().len();
    ws.advance(
        &clock,
        &(start + SignedDuration::from_hours(200)).to_string(),
    )
    .await;
    pass(&server, &ws.id, &cfg).await;
    assert_eq!(receiver.seen().len(), before);
    // Enabled again and replayed: delivered with the same webhook-id.
    receiver.set(Mode::Ok);
    let (status, _) = ws
        .call(
            Method::PATCH,
            &format!("/v1/webhook_endpoints/{id}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, deliveries) = ws
        .call(
            Method::GET,
            &format!("/v1/webhook_endpoints/{id}/deliveries"),
            None,
        )
        .await;
    let delivery = deliveries[0]["id"].as_str().unwrap().to_owned();
    let (status, _) = ws
        .call(
            Method::POST,
            &format!("/v1/webhook_endpoints/{id}/deliveries/{delivery}/replay"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(pass(&server, &ws.id, &cfg).await, 1);
    let last = receiver.seen().pop().unwrap();
    assert_eq!(last.headers["webhook-id"], evt.as_str());
    verify_here(&last, &secret);
    // Replay of everything since a time: the succeeded delivery goes again.
    let (status, body) = ws
        .call(
            Method::POST,
            &format!("/v1/webhook_endpoints/{id}/replay"),
            Some(json!({"since": "2026-10-31T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["replayed"], json!(1));
    assert_eq!(pass(&server, &ws.id, &cfg).await, 1);
    assert_eq!(
        receiver.seen().pop().unwrap().headers["webhook-id"],
        evt.as_str()
    );
    let (status, _) = ws
        .call(
            Method::POST,
            &format!("/v1/webhook_endpoints/{id}/deliveries/whd_nope/replay"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
backend_tests!(an_endpoint_failing_for_days_is_disabled_and_replay_resends);

async fn an_ordered_endpoint_delivers_a_customers_events_in_order(backend: Backend) {
    let cfg = config();
    let server = start(backend, cfg.clone()).await;
    let ws = server.workspace("lexecon.yaml").await;
    allow_loopback(&ws, true).await;
    let receiver = Receiver::start().await;
    let created = ws
        .post(
            "/v1/webhook_endpoints",
            json!({"url": receiver.url, "event_types": ["invoice.finalized"], "ordered": true}),
        )
        .await;
    assert_eq!(created["ordered"], json!(true));
    let secret = created["secret"].as_str().unwrap().to_owned();
    let clock = ws.test_clock("2026-11-09T08:00:00Z").await;
    ws.customer("acme", "startup", Some(&clock), true).await; // in trial: no opening invoice to announce
    ws.customer("beta", "startup", Some(&clock), true).await; // in trial: no opening invoice to announce
    let at = "2026-11-09T08:00:00Z";
    let a1 = event(&server, &ws.id, "acme", "invoice.finalized", at).await;
    let a2 = event(&server, &ws.id, "acme", "invoice.finalized", at).await;
    let b1 = event(&server, &ws.id, "beta", "invoice.finalized", at).await;
    // The receiver fails: acme's second event waits behind its first; beta is not held back.
    receiver.set(Mode::Fail500);
    assert_eq!(pass(&server, &ws.id, &cfg).await, 2);
    let ids = |seen: &[Captured]| -> Vec<String> {
        seen.iter()
            .map(|c| c.headers["webhook-id"].to_str().unwrap().to_owned())
            .collect()
    };
    let mut first = ids(&receiver.seen());
    first.sort();
    let mut want = vec![a1.clone(), b1.clone()];
    want.sort();
    assert_eq!(first, want);
    // Back up, past the backoff: the first ones go, then the second.
    receiver.set(Mode::Ok);
    ws.advance(&clock, "2026-11-09T08:01:00Z").await;
    assert_eq!(pass(&server, &ws.id, &cfg).await, 2);
    assert_eq!(pass(&server, &ws.id, &cfg).await, 1);
    assert_eq!(pass(&server, &ws.id, &cfg).await, 0);
    let seen = receiver.seen();
    let acme: Vec<String> = ids(&seen).into_iter().filter(|id| *id != b1).collect();
    assert_eq!(acme, vec![a1.clone(), a1, a2], "acme's events in order");
    for c in &seen {
        verify_here(c, &secret);
    }
}
backend_tests!(an_ordered_endpoint_delivers_a_customers_events_in_order);

static NEXT_CALL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `n` API calls of `customer` now, in batches (as tests/growth.rs).
async fn calls(ws: &common::Workspace<'_>, customer: &str, n: usize) {
    let mut left = n;
    while left > 0 {
        let batch = left.min(5_000);
        let events: Vec<Value> = (0..batch)
            .map(|_| {
                let n = NEXT_CALL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                json!({"id": format!("call_{n}"), "customer": customer, "type": "api.call"})
            })
            .collect();
        let (status, body) = ws.events(Value::Array(events)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["accepted"], batch, "{}", body["results"][0]);
        left -= batch;
    }
}

/// Levqor case 4: one webhook when the developer plan's usage reaches 80%, one at 100%, none
/// for the 8,001st call or any other.
async fn levqor_4_sends_one_webhook_at_80_and_one_at_100_percent(backend: Backend) {
    let cfg = config();
    let server = start(backend, cfg.clone()).await;
    let ws = server.workspace("levqor.yaml").await;
    allow_loopback(&ws, true).await;
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(&ws, &receiver.url, json!(["usage.alert"])).await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.customer("dev", "developer", Some(&clock), false).await;
    ws.advance(&clock, "2026-11-10T00:00:00Z").await;
    let thresholds = |seen: &[Captured]| -> Vec<String> {
        seen.iter()
            .map(|c| {
                let body: Value = serde_json::from_str(&c.body).unwrap();
                assert_eq!(body["type"], json!("usage.alert"));
                body["data"]["threshold_percent"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };

    calls(&ws, "dev", 7_999).await;
    assert_eq!(pass(&server, &ws.id, &cfg).await, 0);
    // The 8,000th call (a consuming check) crosses 80%: one webhook.
    let checked = ws
        .check(json!({"customer": "dev", "meter": "api_calls", "consume": true}))
        .await;
    assert_eq!(checked["allowed"], true, "{checked}");
    assert_eq!(pass(&server, &ws.id, &cfg).await, 1);
    assert_eq!(thresholds(&receiver.seen()), vec!["80"]);
    // The 8,001st: none.
    calls(&ws, "dev", 1).await;
    assert_eq!(pass(&server, &ws.id, &cfg).await, 0);
    calls(&ws, "dev", 1_998).await;
    assert_eq!(pass(&server, &ws.id, &cfg).await, 0);
    // The 10,000th: one more, at 100%; later calls none.
    calls(&ws, "dev", 1).await;
    assert_eq!(pass(&server, &ws.id, &cfg).await, 1);
    calls(&ws, "dev", 2_500).await;
    assert_eq!(pass(&server, &ws.id, &cfg).await, 0);
    let seen = receiver.seen();
    assert_eq!(thresholds(&seen), vec!["80", "100"]);
    for c in &seen {
        verify_here(c, &secret);
    }
    let all: Vec<(Vec<String>, &Captured)> =
        seen.iter().map(|c| (vec![secret.clone()], c)).collect();
    capture(&all);
}
backend_tests!(levqor_4_sends_one_webhook_at_80_and_one_at_100_percent);
