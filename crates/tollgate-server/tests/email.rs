//! Email end to end (docs/EMAIL.md): a real Tollgate on each backend sending to a real SMTP
//! listener on 127.0.0.1 (`smtp/`, in Rust) that fails on purpose (451s, hang-ups), with
//! test clocks: Levqor case 4 (one email and one webhook at 80% and at 100%, none for the
//! 8,001st call), Apex case 6 (the reminder on 2026-11-07, the trial-ended email on 2026-11-09,
//! after the welcome email), retries until the relay takes the message or the schedule ends,
//! invoices with their PDF, payments, refunds, the operator's notice, templates replaced,
//! refused and reset, and previews.
//!
//! The workers are driven by hand (`notify::email::run_workspace`, no background poller), one
//! observable pass at a time, per test workspace (the PostgreSQL tests share a database).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod smtp;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, TestServer, Workspace, backend_tests};
use jiff::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use smtp::{Mode, SmtpReceiver};
use tollgate_core::ids::WorkspaceId;
use tollgate_server::engine::Engine;
use tollgate_server::notify::email::smtp::{SmtpConfig, TlsMode};
use tollgate_server::notify::email::{self, EmailConfig};
use tollgate_server::notify::{self, NotifyConfig};
use tollgate_store::outbox::OutboxEvent;

fn email_config(relay: &SmtpReceiver) -> EmailConfig {
    EmailConfig {
        smtp: SmtpConfig::parse(&relay.url(), Some(TlsMode::None), Duration::from_secs(5)).unwrap(),
        poll_interval: None,
    }
}

async fn start(backend: Backend, relay: &SmtpReceiver) -> (TestServer, EmailConfig) {
    let cfg = email_config(relay);
    let server = TestServer::start_with(backend, |c| c.email = Some(cfg.clone())).await;
    (server, cfg)
}

fn engine(server: &TestServer) -> &Engine {
    &server.server.as_ref().unwrap().state.engine
}

/// One pass of the email worker over the workspace; the attempts it made.
async fn mail(server: &TestServer, ws: &Workspace<'_>, cfg: &EmailConfig) -> usize {
    email::run_workspace(engine(server), cfg, &ws.id)
        .await
        .unwrap()
}

async fn get(ws: &Workspace<'_>, path: &str) -> Value {
    let (status, body) = ws.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

async fn put(ws: &Workspace<'_>, path: &str, body: Value) -> (StatusCode, Value) {
    ws.call(Method::PUT, path, Some(body)).await
}

/// Turns email on for the workspace, with its brand.
async fn email_settings(ws: &Workspace<'_>, brand: &str) {
    let (status, body) = put(
        ws,
        "/v1/email_settings",
        json!({
            "from_address": "billing@brand.test",
            "from_name": format!("{brand} Billing"),
            "reply_to": "help@brand.test",
            "brand_name": brand,
            "logo_url": "https://brand.test/logo.png",
            "brand_color": "#1a7f5a",
            "docs_url": "https://docs.brand.test/start",
            "operator_email": "ops@brand.test",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The email log of the workspace (oldest first).
async fn messages(ws: &Workspace<'_>) -> Vec<Value> {
    get(ws, "/v1/email_messages?limit=100").await["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn templates_of(log: &[Value]) -> Vec<String> {
    log.iter()
        .map(|m| m["template"].as_str().unwrap().to_owned())
        .collect()
}

/// A customer with an email address, on `plan`, on a test clock.
async fn customer(ws: &Workspace<'_>, id: &str, plan: &str, clock: &str) {
    ws.post(
        "/v1/customers",
        json!({"id": id, "email": format!("{id}@customer.test"), "name": "Ada", "test_clock": clock}),
    )
    .await;
    ws.post(
        &format!("/v1/customers/{id}/subscriptions"),
        json!({"plan": plan}),
    )
    .await;
}

/// Writes an outbox event as the use cases do (for events nothing on this branch writes yet),
/// occurred at `at` on its customer's clock (the tests' customers are on test clocks at
/// 2026-11-10T00:00:00Z), or now for an event without a customer.
async fn append(server: &TestServer, ws: &str, customer: Option<&str>, kind: &str, data: Value) {
    let occurred_at = match customer {
        Some(_) => "2026-11-10T00:00:00Z".parse().unwrap(),
        None => Timestamp::now(),
    };
    let e = OutboxEvent {
        workspace: ws.to_owned(),
        id: tollgate_server::ids::new_id("evt"),
        customer: customer.map(str::to_owned),
        event_type: kind.to_owned(),
        occurred_at,
        data,
        created_at: Timestamp::now(),
        delivered_at: None,
        delivery_attempts: 0,
    };
    engine(server)
        .store()
        .append_events(&WorkspaceId::from(ws), &[e])
        .await
        .unwrap();
}

/// A webhook receiver answering 200 and keeping the bodies.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(serde_json::from_str(&body).unwrap());
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hooks"), seen)
}

static NEXT_CALL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn calls(ws: &Workspace<'_>, customer: &str, n: usize) {
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
        assert_eq!(status, StatusCode::OK, "{body}");
        left -= batch;
    }
}

/// Levqor case 4: the 8,000th call sends one email and one webhook, the 8,001st nothing, the
/// 10,000th one of each at 100%.
async fn levqor_4_one_email_and_one_webhook_at_80_and_at_100_percent(backend: Backend) {
    let relay = SmtpReceiver::start().await;
    let (server, cfg) = start(backend, &relay).await;
    let hooks = NotifyConfig {
        poll_interval: None,
        ..NotifyConfig::default()
    };
    let ws = server.workspace("levqor.yaml").await;
    email_settings(&ws, "Levqor").await;
    let (status, body) = server
        .call(
            common::ADMIN_KEY,
            Method::PUT,
            &format!("/v1/workspaces/{}/webhook_settings", ws.id),
            Some(json!({"allow_private_addresses": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (url, webhooks) = webhook_receiver().await;
    ws.post(
        "/v1/webhook_endpoints",
        json!({"url": url, "event_types": ["usage.alert"]}),
    )
    .await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    customer(&ws, "dev", "developer", &clock).await;
    ws.advance(&clock, "2026-11-10T00:00:00Z").await;
    let step = async || {
        let hooks_sent = notify::run_workspace(engine(&server), &hooks, &ws.id)
            .await
            .unwrap();
        let mails_sent = mail(&server, &ws, &cfg).await;
        (hooks_sent, mails_sent)
    };
    // The opening invoice's email goes first; then nothing until 80%.
    step().await;
    assert_eq!(templates_of(&messages(&ws).await), vec!["invoice_issued"]);
    calls(&ws, "dev", 7_999).await;
    assert_eq!(step().await, (0, 0));

    let checked = ws
        .check(json!({"customer": "dev", "meter": "api_calls", "consume": true}))
        .await;
    assert_eq!(checked["allowed"], true, "{checked}");
    assert_eq!(
        step().await,
        (1, 1),
        "the 8,000th call: one webhook, one email"
    );
    calls(&ws, "dev", 1).await;
    assert_eq!(step().await, (0, 0), "the 8,001st call: nothing");
    calls(&ws, "dev", 1_998).await;
    assert_eq!(step().await, (0, 0));
    calls(&ws, "dev", 1).await;
    assert_eq!(step().await, (1, 1), "the 10,000th call: one of each");
    calls(&ws, "dev", 500).await;
    assert_eq!(step().await, (0, 0));

    let log = messages(&ws).await;
    assert_eq!(
        templates_of(&log),
        vec!["invoice_issued", "usage_warning", "usage_limit"]
    );
    assert!(
        log.iter()
            .all(|m| m["status"] == "sent" && m["attempts"] == 1)
    );
    let usage: Vec<smtp::Received> = relay
        .received()
        .into_iter()
        .filter(|r| !r.subject().starts_with("Invoice"))
        .collect();
    assert_eq!(usage.len(), 2);
    assert_eq!(usage[0].to, vec!["dev@customer.test"]);
    assert_eq!(usage[0].from, "billing@brand.test");
    assert_eq!(
        usage[0].subject(),
        "You have used 80% of your api_calls allowance"
    );
    assert!(
        usage[0]
            .plain()
            .contains("You have used 8000 of the 10000 api_calls")
    );
    assert_eq!(
        usage[1].subject(),
        "You have reached your api_calls allowance"
    );
    let thresholds: Vec<Value> = webhooks
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["data"]["threshold_percent"].clone())
        .collect();
    assert_eq!(thresholds, vec![json!("80"), json!("100")]);
}
backend_tests!(levqor_4_one_email_and_one_webhook_at_80_and_at_100_percent);

/// Apex case 6 with its emails: welcome at signup, the reminder on 2026-11-07 (two days before
/// the trial ends), the trial-ended email on 2026-11-09 (moved to `free`: no payment method).
async fn apex_6_reminder_on_nov_7_and_trial_ended_on_nov_9(backend: Backend) {
    let relay = SmtpReceiver::start().await;
    let (server, cfg) = start(backend, &relay).await;
    let ws = server.workspace("apex.yaml").await;
    email_settings(&ws, "Apex").await;
    let clock = ws.test_clock("2026-11-02T08:00:00Z").await;
    let signed = ws
        .post(
            "/v1/signups",
            json!({"id": "trialist", "plan": "early", "email": "cto@trialist.test",
                   "name": "Grace", "test_clock": clock}),
        )
        .await;
    let secret = signed["key"]["secret"].as_str().unwrap().to_owned();
    mail(&server, &ws, &cfg).await;
    let received = relay.received();
    assert_eq!(received.len(), 1);
    let welcome = &received[0];
    assert_eq!(welcome.subject(), "Welcome to Apex");
    assert_eq!(welcome.to, vec!["cto@trialist.test"]);
    let last4: String = secret.chars().skip(secret.chars().count() - 4).collect();
    assert!(welcome.plain().contains(&format!("ending in {last4}")));
    assert!(!welcome.data.contains(&secret), "never the secret");
    assert!(welcome.plain().contains("https://docs.brand.test/start"));
    assert!(welcome.data.contains("multipart/alternative"));
    assert!(welcome.data.contains("text/plain") && welcome.data.contains("text/html"));
    assert!(welcome.data.contains("Reply-To: help@brand.test"));
    // Attribute values are HTML-escaped (`/` as `&#x2f;`), which browsers read back.
    assert!(
        welcome
            .plain()
            .replace("&#x2f;", "/")
            .contains("<img src=\"https://brand.test/logo.png\""),
        "{}",
        welcome.data
    );
    assert!(welcome.plain().contains("#1a7f5a"));

    ws.advance(&clock, "2026-11-07T07:59:59Z").await;
    assert_eq!(
        mail(&server, &ws, &cfg).await,
        0,
        "no reminder before its time"
    );
    ws.advance(&clock, "2026-11-07T08:00:00Z").await;
    assert_eq!(mail(&server, &ws, &cfg).await, 1);
    let reminder = relay.received()[1].clone();
    assert_eq!(reminder.subject(), "Your Apex trial ends in 2 days");
    assert!(reminder.plain().contains("ends on November 9, 2026"));
    assert!(reminder.plain().contains("move to the free plan"));

    ws.advance(&clock, "2026-11-09T07:59:59Z").await;
    assert_eq!(mail(&server, &ws, &cfg).await, 0);
    ws.advance(&clock, "2026-11-09T08:00:00Z").await;
    // The trial's end sends its email; the $0 opening invoice of `free` sends none.
    assert_eq!(mail(&server, &ws, &cfg).await, 1);
    let ended = relay.received()[2].clone();
    assert_eq!(ended.subject(), "Your Apex trial has ended");
    assert!(
        ended.plain().contains("You are now on the free plan"),
        "{}",
        ended.plain()
    );
    assert!(ended.plain().contains("ended on November 9, 2026"));

    let log = messages(&ws).await;
    assert_eq!(
        templates_of(&log),
        vec!["welcome", "trial_ending", "trial_ended"]
    );
    assert_eq!(log[1]["event_type"], "subscription.trial_will_end");
    assert_eq!(log[1]["next_attempt_at"], "2026-11-07T08:00:00Z");
    assert_eq!(log[2]["next_attempt_at"], "2026-11-09T08:00:00Z");
    assert!(log.iter().all(|m| m["status"] == "sent"));
    assert_eq!(relay.received().len(), 3);
}
backend_tests!(apex_6_reminder_on_nov_7_and_trial_ended_on_nov_9);

fn usage_alert(threshold: &str) -> Value {
    json!({"meter": "api_calls", "plan": "developer", "threshold_percent": threshold,
           "allowance": "10000", "used": "8000",
           "period_start": "2026-11-01T00:00:00Z", "period_end": "2026-12-01T00:00:00Z"})
}

/// A relay answering 451, then hanging up, gets the message on a later attempt (on the
/// customer's clock, after the backoff); one failing for good leaves it `failed` after the
/// whole schedule.
async fn failures_of_the_smtp_server_are_retried(backend: Backend) {
    let relay = SmtpReceiver::start().await;
    let (server, cfg) = start(backend, &relay).await;
    let ws = server.workspace("levqor.yaml").await;
    let clock = ws.test_clock("2026-11-10T00:00:00Z").await;
    // The customer first: its opening invoice is older than the settings, so not emailed.
    customer(&ws, "flaky", "developer", &clock).await;
    email_settings(&ws, "Levqor").await;
    relay.set(Mode::TempFail);
    append(
        &server,
        &ws.id,
        Some("flaky"),
        "usage.alert",
        usage_alert("80"),
    )
    .await;
    assert_eq!(mail(&server, &ws, &cfg).await, 1);
    let m = messages(&ws).await[0].clone();
    assert_eq!(
        (m["status"].as_str(), m["attempts"].as_i64()),
        (Some("pending"), Some(1))
    );
    assert!(m["last_error"].as_str().unwrap().contains("451"), "{m}");
    assert_eq!(
        m["subject"],
        "You have used 80% of your api_calls allowance"
    );
    assert_eq!(mail(&server, &ws, &cfg).await, 0, "not before its backoff");

    relay.set(Mode::Hangup);
    ws.advance(&clock, "2026-11-10T00:00:10Z").await;
    assert_eq!(mail(&server, &ws, &cfg).await, 1);
    let m = messages(&ws).await[0].clone();
    assert_eq!(
        (m["status"].as_str(), m["attempts"].as_i64()),
        (Some("pending"), Some(2))
    );
    assert!(m["last_error"].as_str().is_some());

    relay.set(Mode::Accept);
    ws.advance(&clock, "2026-11-10T00:10:00Z").await;
    assert_eq!(mail(&server, &ws, &cfg).await, 1);
    let m = messages(&ws).await[0].clone();
    assert_eq!(
        (m["status"].as_str(), m["attempts"].as_i64()),
        (Some("sent"), Some(3))
    );
    assert_eq!(m["last_error"], Value::Null);
    assert_eq!(relay.received().len(), 1, "sent once");

    // Failing for good: 13 attempts over more than three days, then `failed`.
    relay.set(Mode::TempFail);
    append(
        &server,
        &ws.id,
        Some("flaky"),
        "usage.alert",
        usage_alert("100"),
    )
    .await;
    let mut t: Timestamp = "2026-11-10T00:10:00Z".parse().unwrap();
    let mut attempts = 0;
    for _ in 0..20 {
        attempts += mail(&server, &ws, &cfg).await;
        t += jiff::SignedDuration::from_hours(11);
        ws.advance(&clock, &t.to_string()).await;
    }
    assert_eq!(attempts, 13);
    let m = messages(&ws).await[1].clone();
    assert_eq!(
        (m["status"].as_str(), m["attempts"].as_i64()),
        (Some("failed"), Some(13))
    );
    let (_, failed) = ws
        .call(Method::GET, "/v1/email_messages?status=failed", None)
        .await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 1);
}
backend_tests!(failures_of_the_smtp_server_are_retried);

/// The invoice with its PDF, the payment, a failed payment with its retry date, the refund, and
/// the operator's notice of a disabled endpoint; over an authenticated relay.
async fn invoices_payments_refunds_and_the_operators_notice(backend: Backend) {
    let relay = SmtpReceiver::with_auth("mailer", "s3cret").await;
    let (server, cfg) = start(backend, &relay).await;
    let ws = server.workspace("levqor.yaml").await;
    email_settings(&ws, "Levqor").await;
    let clock = ws.test_clock("2026-11-10T00:00:00Z").await;
    customer(&ws, "payer", "developer", &clock).await;
    mail(&server, &ws, &cfg).await;
    let invoices = get(&ws, "/v1/customers/payer/invoices").await;
    let invoice = invoices["data"][0]["id"].as_str().unwrap().to_owned();
    // The first period is prorated from 2026-11-10.
    let total = invoices["data"][0]["total"].as_str().unwrap().to_owned();
    let number = invoices["data"][0]["number"].as_str().unwrap().to_owned();
    ws.post(&format!("/v1/invoices/{invoice}/pay"), json!({}))
        .await;
    ws.post(
        &format!("/v1/invoices/{invoice}/credit_notes"),
        json!({"amount": "9.00", "reason": "goodwill"}),
    )
    .await;
    append(
        &server,
        &ws.id,
        Some("payer"),
        "payment.failed",
        // The shape app/payments/dunning.rs writes.
        json!({"invoice": invoice, "attempt": 1, "status": "failed", "next_retry_at": "2026-11-12T08:00:00Z"}),
    )
    .await;
    append(
        &server,
        &ws.id,
        None,
        "webhook_endpoint.disabled",
        json!({"id": "we_1", "url": "https://hooks.example/x", "failing_since": "2026-11-05T00:00:00Z",
               "reason": "failing since 2026-11-05T00:00:00Z (more than 120h)"}),
    )
    .await;
    assert_eq!(mail(&server, &ws, &cfg).await, 4);

    let received = relay.received();
    assert_eq!(received.len(), 5);
    assert!(received.iter().all(|r| r.user.as_deref() == Some("mailer")));
    let issued = &received[0];
    assert_eq!(issued.subject(), format!("Invoice {number} from Levqor"));
    assert!(issued.data.contains("multipart/mixed"));
    assert!(issued.data.contains("application/pdf"));
    assert!(issued.plain().contains(&format!("{number}.pdf")));
    assert!(
        issued.plain().contains(&format!("{total} USD")),
        "{}",
        issued.plain()
    );
    assert!(
        received[1]
            .subject()
            .starts_with("Payment received for invoice INV-")
    );
    assert!(
        received[2]
            .subject()
            .starts_with("Refund of 9.00 USD issued")
    );
    assert!(received[2].plain().contains("Reason: goodwill"));
    assert!(
        received[3]
            .subject()
            .starts_with("Payment for invoice INV-")
    );
    assert!(
        received[3]
            .plain()
            .contains("We will try again on November 12, 2026")
    );
    let notice = &received[4];
    assert_eq!(notice.to, vec!["ops@brand.test"]);
    assert_eq!(
        notice.subject(),
        "Webhook endpoint disabled: https://hooks.example/x"
    );

    let (_, payer) = ws
        .call(Method::GET, "/v1/email_messages?customer=payer", None)
        .await;
    assert_eq!(
        templates_of(payer["data"].as_array().unwrap()),
        vec![
            "invoice_issued",
            "payment_received",
            "refund_issued",
            "payment_failed"
        ]
    );
}
backend_tests!(invoices_payments_refunds_and_the_operators_notice);

/// Settings are checked field by field; templates are listed, replaced (checked first: syntax
/// and unknown variables refused), previewed for a customer and reset to the default.
async fn templates_are_validated_previewed_and_reset(backend: Backend) {
    let relay = SmtpReceiver::start().await;
    let (server, cfg) = start(backend, &relay).await;
    let ws = server.workspace("levqor.yaml").await;
    let (status, _) = ws.call(Method::GET, "/v1/email_settings", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = put(
        &ws,
        "/v1/email_settings",
        json!({"from_address": "nope", "brand_color": "green", "logo_url": "ftp://x"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let paths: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["from_address", "logo_url", "brand_color"]);
    email_settings(&ws, "Levqor").await;
    let settings = get(&ws, "/v1/email_settings").await;
    assert_eq!(settings["brand_name"], "Levqor");

    let all = get(&ws, "/v1/email_templates").await;
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 11);
    assert!(names.contains(&"payment_failed") && names.contains(&"welcome"));
    assert!(names.contains(&"portal_sign_in"));

    let (status, body) = put(
        &ws,
        "/v1/email_templates/usage_warning",
        json!({"subject": "{{ metre }}", "text": "x", "html": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "email_template_invalid");
    assert!(
        body["detail"].as_str().unwrap().contains("subject"),
        "{body}"
    );
    let (status, body) = put(
        &ws,
        "/v1/email_templates/usage_warning",
        json!({"subject": "ok", "text": "{% for %}", "html": "x"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("email_template_invalid"))
    );
    let (status, body) = put(
        &ws,
        "/v1/email_templates/nope",
        json!({"subject": "a", "text": "b", "html": "c"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_email_template"))
    );

    let (status, body) = put(
        &ws,
        "/v1/email_templates/usage_warning",
        json!({
            "subject": "{{ brand.name }}: {{ threshold_percent }}% of {{ meter }}",
            "text": "Hi {{ customer.name }}, {{ used }}/{{ allowance }}.",
            "html": "<p>Hi {{ customer.name }}, <b>{{ used }}</b>/{{ allowance }}.</p>",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["customized"], true);

    // A preview without the customer's own event shows the example values with its name.
    let clock = ws.test_clock("2026-11-10T00:00:00Z").await;
    customer(&ws, "viewer", "developer", &clock).await;
    let preview = ws
        .post(
            "/v1/email_templates/usage_warning/preview",
            json!({"customer": "viewer"}),
        )
        .await;
    assert_eq!(preview["subject"], "Levqor: 80% of api_calls");
    assert_eq!(preview["text"], "Hi Ada, 8000/10000.");
    assert_eq!(preview["event"], Value::Null);
    assert_eq!(preview["recipient"], "viewer@customer.test");
    // With the customer's invoice: its number, its amounts, its PDF named.
    let preview = ws
        .post(
            "/v1/email_templates/invoice_issued/preview",
            json!({"customer": "viewer"}),
        )
        .await;
    assert!(preview["event"].as_str().unwrap().starts_with("evt"));
    let invoices = get(&ws, "/v1/customers/viewer/invoices").await;
    let total = invoices["data"][0]["total"].as_str().unwrap();
    assert!(
        preview["text"]
            .as_str()
            .unwrap()
            .contains(&format!("{total} USD")),
        "{preview}"
    );
    let attachments = preview["attachments"].as_array().unwrap();
    assert!(attachments[0].as_str().unwrap().ends_with(".pdf"));
    assert!(preview["html"].as_str().unwrap().contains("logo.png"));
    assert_eq!(relay.received().len(), 0, "a preview sends nothing");

    // The replaced template is what is sent.
    append(
        &server,
        &ws.id,
        Some("viewer"),
        "usage.alert",
        usage_alert("80"),
    )
    .await;
    mail(&server, &ws, &cfg).await;
    let sent = relay.received();
    assert_eq!(sent.last().unwrap().subject(), "Levqor: 80% of api_calls");

    let (status, body) = ws
        .call(Method::DELETE, "/v1/email_templates/usage_warning", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["customized"], false);
    assert!(body["subject"].as_str().unwrap().contains("allowance"));
}
backend_tests!(templates_are_validated_previewed_and_reset);

/// STARTTLS (the default of `smtp://`) with AUTH: the relay's certificate is checked (here
/// against the tests' CA, as `--smtp-ca-file` gives it); a relay whose certificate is not
/// trusted, or one that does not offer STARTTLS, gets nothing, not even the credentials: the
/// message waits and is retried, never sent in clear.
async fn starttls_and_auth_protect_the_relay(backend: Backend) {
    let relay = SmtpReceiver::with_starttls("mailer", "s3cret").await;
    let url = format!("smtp://mailer:s3cret@127.0.0.1:{}", relay.port);
    let timeout = Duration::from_secs(5);
    let trusted = EmailConfig {
        smtp: SmtpConfig::parse(&url, None, timeout)
            .unwrap()
            .with_root_certificates(smtp::CA_PEM.to_vec())
            .unwrap(),
        poll_interval: None,
    };
    let untrusted = EmailConfig {
        smtp: SmtpConfig::parse(&url, None, timeout).unwrap(),
        poll_interval: None,
    };
    let plain_relay = SmtpReceiver::with_auth("mailer", "s3cret").await;
    let no_starttls = EmailConfig {
        smtp: SmtpConfig::parse(&plain_relay.url(), None, timeout)
            .unwrap()
            .with_root_certificates(smtp::CA_PEM.to_vec())
            .unwrap(),
        poll_interval: None,
    };
    let server = TestServer::start_with(backend, |c| c.email = Some(trusted.clone())).await;
    let ws = server.workspace("levqor.yaml").await;
    let clock = ws.test_clock("2026-11-10T00:00:00Z").await;
    customer(&ws, "secure", "developer", &clock).await;
    email_settings(&ws, "Levqor").await;
    let pass = async |cfg: &EmailConfig| {
        email::run_workspace(engine(&server), cfg, &ws.id)
            .await
            .unwrap()
    };

    append(
        &server,
        &ws.id,
        Some("secure"),
        "usage.alert",
        usage_alert("80"),
    )
    .await;
    assert_eq!(pass(&trusted).await, 1);
    let received = relay.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls, "sent after STARTTLS");
    assert_eq!(received[0].user.as_deref(), Some("mailer"));

    append(
        &server,
        &ws.id,
        Some("secure"),
        "usage.alert",
        usage_alert("100"),
    )
    .await;
    assert_eq!(pass(&untrusted).await, 1);
    let m = messages(&ws).await[1].clone();
    assert_eq!(
        (m["status"].as_str(), m["attempts"].as_i64()),
        (Some("pending"), Some(1))
    );
    assert!(m["last_error"].as_str().is_some(), "{m}");
    ws.advance(&clock, "2026-11-10T00:00:10Z").await;
    assert_eq!(pass(&no_starttls).await, 1);
    assert!(
        plain_relay.received().is_empty(),
        "no downgrade to plain text"
    );
    let m = messages(&ws).await[1].clone();
    assert_eq!(
        (m["status"].as_str(), m["attempts"].as_i64()),
        (Some("pending"), Some(2))
    );
    ws.advance(&clock, "2026-11-10T00:10:00Z").await;
    assert_eq!(pass(&trusted).await, 1);
    assert_eq!(relay.received().len(), 2);
    assert!(relay.received().iter().all(|r| r.tls));
    assert_eq!(messages(&ws).await[1]["status"], "sent");
}
backend_tests!(starttls_and_auth_protect_the_relay);
