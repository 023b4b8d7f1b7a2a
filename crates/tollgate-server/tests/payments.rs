//! Payments end to end (docs/PAYMENTS.md), on a real server and a local Stripe-shaped server
//! (`support/stripe.rs`, answering with Stripe's own sample objects), on SQLite and PostgreSQL:
//! Lexecon 7 paid by bank transfer in two parts; card capture through Checkout converting Apex's
//! trial; an invoice charged automatically and paid; a declined card through dunning to
//! suspension and back on a successful charge, counted once; QLP 5's refund through a credit
//! note; webhooks with a bad or stale signature refused and replays changing nothing; secrets
//! sealed and never answered; retries of 429/5xx under one idempotency key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;
#[path = "support/stripe.rs"]
mod stripe_mock;

use std::time::Duration;

use common::{Backend, TestServer, Workspace, backend_tests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stripe_mock::{Card, SECRET_KEY, StripeMock, WEBHOOK_SECRET};
use tollgate_server::app::payments::meter_event_name;
use tollgate_server::providers::stripe::API_VERSION as STRIPE_VERSION;

/// A plan billed $20.00 a month in advance, with the dunning of the issue: retries after 1, 3
/// and 5 days, then suspension.
const CATALOG: &str = r#"
currency: USD
meters:
  calls: { event: api.call, aggregation: count }
features:
  reports: { kind: switch, name: Reports }
plans:
  pro:
    base: { amount: "20.00", interval: month, timing: in_advance }
    # Periods from the subscription's start: a first invoice is 20.00 whatever the wall clock
    # (calendar billing prorates it, to 0.00 in a month's last ten minutes).
    billing: anniversary
    features: { reports: true }
policies:
  dunning: { retry_after_days: [1, 3, 5], then: suspend }
"#;

async fn server_with_stripe(backend: Backend) -> (TestServer, StripeMock) {
    let mock = StripeMock::start().await;
    let base = mock.base.clone();
    let server = TestServer::start_with(backend, move |c| {
        c.payments.stripe_api_base = base;
        c.payments.backoff = Duration::from_millis(5);
    })
    .await;
    (server, mock)
}

async fn connect_stripe(ws: &Workspace<'_>) {
    let (status, body) = ws
        .call(
            Method::PUT,
            "/v1/payment_settings",
            Some(json!({"stripe_secret_key": SECRET_KEY, "stripe_webhook_secret": WEBHOOK_SECRET})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn hook_url(ws: &Workspace<'_>) -> String {
    format!("{}/v1/stripe/webhooks/{}", ws.server.base, ws.id)
}

/// Delivers every event the mock queued, in order: their answers.
async fn deliver_all(ws: &Workspace<'_>, mock: &StripeMock) -> Vec<(Value, u16, Value)> {
    let mut answers = Vec::new();
    for event in mock.take_events() {
        let (status, body) = stripe_mock::deliver(&hook_url(ws), &event, WEBHOOK_SECRET).await;
        answers.push((event, status, body));
    }
    answers
}

async fn get(ws: &Workspace<'_>, path: &str) -> Value {
    let (status, body) = ws.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

async fn invoices(ws: &Workspace<'_>, customer: &str) -> Vec<Value> {
    get(ws, &format!("/v1/customers/{customer}/invoices?limit=100")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn events_of(ws: &Workspace<'_>, kind: &str, customer: &str) -> Vec<Value> {
    get(
        ws,
        &format!("/v1/domain_events?type={kind}&customer={customer}&limit=100"),
    )
    .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn subscription(ws: &Workspace<'_>, customer: &str) -> Value {
    get(ws, &format!("/v1/customers/{customer}/subscriptions")).await["data"][0].clone()
}

/// A customer on a test clock at `start` who saved `card` through Checkout: its clock and
/// saved method.
async fn carded_customer(
    ws: &Workspace<'_>,
    mock: &StripeMock,
    id: &str,
    start: &str,
    card: Card,
) -> (String, String) {
    let clock = ws.test_clock(start).await;
    ws.post(
        "/v1/customers",
        json!({"id": id, "test_clock": clock, "email": format!("{id}@example.com")}),
    )
    .await;
    (clock, save_card(ws, mock, id, card).await)
}

/// The customer saves `card` through a Checkout Session in setup mode: the saved method.
async fn save_card(ws: &Workspace<'_>, mock: &StripeMock, id: &str, card: Card) -> String {
    let (status, session) = ws
        .call(
            Method::POST,
            &format!("/v1/customers/{id}/payment_methods/checkout"),
            Some(json!({"success_url": "https://app.example.com/ok", "cancel_url": "https://app.example.com/no"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let url = session["url"].as_str().unwrap();
    assert!(url.starts_with(&mock.base), "{url}");
    let method = mock.complete_checkout(session["id"].as_str().unwrap(), card);
    for (event, status, body) in deliver_all(ws, mock).await {
        assert_eq!(status, 200, "{event}: {body}");
    }
    let customer = get(ws, &format!("/v1/customers/{id}")).await;
    assert_eq!(customer["has_payment_method"], true, "{customer}");
    let stripe_customer = session["stripe_customer"].as_str().unwrap();
    assert_eq!(
        mock.object(stripe_customer)["invoice_settings"]["default_payment_method"],
        method.as_str()
    );
    method
}

async fn lexecon_7_paid_by_bank_transfer_in_two_parts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("lexecon.yaml").await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.post("/v1/customers", json!({"id": "bigco", "test_clock": clock}))
        .await;
    ws.post(
        "/v1/customers/bigco/subscriptions",
        json!({"plan": "enterprise_starter"}),
    )
    .await;
    let all = invoices(&ws, "bigco").await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["total"], "10000.00");
    assert_eq!(all[0]["status"], "open");
    let id = all[0]["id"].as_str().unwrap().to_owned();
    let payments = format!("/v1/invoices/{id}/payments");

    ws.advance(&clock, "2026-11-15T00:00:00Z").await;
    let first = ws
        .post(
            &payments,
            json!({"amount": "4000.00", "reference": "SEPA-LEX-0001"}),
        )
        .await;
    assert_eq!(first["invoice_status"], "open");
    assert_eq!(first["amount_remaining"], "6000.00");
    assert_eq!(first["data"][0]["provider"], "manual");
    assert_eq!(first["data"][0]["method"], "bank_transfer");
    assert_eq!(first["data"][0]["amount"], "4000.00");
    assert_eq!(first["data"][0]["created_at"], "2026-11-15T00:00:00Z");

    // The same reference twice, more than is owed, a bad reference: refused, nothing recorded.
    for (body, status, code) in [
        (
            json!({"amount": "1.00", "reference": "SEPA-LEX-0001"}),
            409,
            "already_exists",
        ),
        (
            json!({"amount": "6000.01", "reference": "SEPA-LEX-0002"}),
            409,
            "payment_exceeds_amount_due",
        ),
        (json!({"reference": ""}), 400, "invalid_payment_reference"),
        (
            json!({"amount": "-5", "reference": "SEPA-LEX-0003"}),
            400,
            "invalid_amount",
        ),
        (
            json!({"amount": "1.001", "reference": "SEPA-LEX-0004"}),
            400,
            "amount_too_precise",
        ),
    ] {
        let (got, problem) = ws.call(Method::POST, &payments, Some(body.clone())).await;
        assert_eq!(got.as_u16(), status, "{body}: {problem}");
        assert_eq!(problem["code"], code, "{body}: {problem}");
    }

    ws.advance(&clock, "2026-11-20T00:00:00Z").await;
    let rest = ws
        .post(&payments, json!({"reference": "SEPA-LEX-0002"}))
        .await;
    assert_eq!(rest["invoice_status"], "paid", "{rest}");
    assert_eq!(rest["amount_remaining"], "0.00");
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);
    assert_eq!(rest["data"][1]["amount"], "6000.00");
    let invoice = get(&ws, &format!("/v1/invoices/{id}")).await;
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["paid_at"], "2026-11-20T00:00:00Z");
    assert_eq!(events_of(&ws, "invoice.paid", "bigco").await.len(), 1);
    assert_eq!(events_of(&ws, "payment.succeeded", "bigco").await.len(), 2);
    let (status, problem) = ws
        .call(
            Method::POST,
            &payments,
            Some(json!({"amount": "1.00", "reference": "SEPA-LEX-0009"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["code"], "invoice_not_open");
}
backend_tests!(lexecon_7_paid_by_bank_transfer_in_two_parts);

async fn apex_6_trial_converts_with_a_card_saved_through_checkout(backend: Backend) {
    let (server, mock) = server_with_stripe(backend).await;
    let ws = server.workspace("apex.yaml").await;
    connect_stripe(&ws).await;
    let (clock, _) =
        carded_customer(&ws, &mock, "trialist", "2026-11-02T08:00:00Z", Card::Good).await;
    // The Stripe customer carries the Tollgate ids; the session is in setup mode.
    let seen = mock.seen();
    let created = seen.iter().find(|s| s.path == "/v1/customers").unwrap();
    assert_eq!(
        created.field("metadata[tollgate_customer]"),
        Some("trialist")
    );
    assert_eq!(created.field("email"), Some("trialist@example.com"));
    let session = seen
        .iter()
        .find(|s| s.path == "/v1/checkout/sessions")
        .unwrap();
    assert_eq!(session.field("mode"), Some("setup"));
    ws.post(
        "/v1/customers/trialist/subscriptions",
        json!({"plan": "early", "trial": true}),
    )
    .await;
    ws.advance(&clock, "2026-11-09T08:00:01Z").await;
    let sub = subscription(&ws, "trialist").await;
    assert_eq!(
        sub["plan"], "early",
        "with a payment method it stays: {sub}"
    );
    assert_eq!(sub["status"], "active");
    let allowed = ws
        .check(json!({"customer": "trialist", "feature": "advanced_optimization"}))
        .await;
    assert_eq!(allowed["allowed"], true, "{allowed}");
}
backend_tests!(apex_6_trial_converts_with_a_card_saved_through_checkout);

async fn finalized_invoices_are_charged_automatically_and_paid_once(backend: Backend) {
    let (server, mock) = server_with_stripe(backend).await;
    let ws = server.workspace_with("pay", CATALOG).await;
    connect_stripe(&ws).await;
    let (clock, method) =
        carded_customer(&ws, &mock, "acme", "2026-11-01T00:00:00Z", Card::Good).await;
    ws.post("/v1/customers/acme/subscriptions", json!({"plan": "pro"}))
        .await;
    let all = invoices(&ws, "acme").await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["total"], "20.00");
    let id = all[0]["id"].as_str().unwrap().to_owned();
    // The charge is a job on the customer's clock: it runs as the clock moves.
    ws.advance(&clock, "2026-11-01T00:00:01Z").await;
    let paid = get(&ws, &format!("/v1/invoices/{id}/payments")).await;
    assert_eq!(paid["invoice_status"], "paid", "{paid}");
    assert_eq!(paid["data"].as_array().unwrap().len(), 1);
    assert_eq!(paid["data"][0]["provider"], "stripe");
    assert_eq!(paid["data"][0]["amount"], "20.00");
    let intent = paid["data"][0]["reference"].as_str().unwrap().to_owned();
    assert!(intent.starts_with("pi_"), "{intent}");
    let charge = mock
        .seen()
        .into_iter()
        .find(|s| s.path == "/v1/payment_intents")
        .unwrap();
    assert_eq!(
        charge.field("amount"),
        Some("2000"),
        "minor units, no float"
    );
    assert_eq!(charge.field("currency"), Some("usd"));
    assert_eq!(charge.field("payment_method"), Some(method.as_str()));
    assert_eq!(charge.field("off_session"), Some("true"));
    assert_eq!(charge.field("confirm"), Some("true"));
    assert_eq!(
        charge.field("metadata[tollgate_invoice]"),
        Some(id.as_str())
    );
    // Every call carries the key and the pinned API version, and every POST an idempotency key.
    for s in mock.seen() {
        assert_eq!(
            s.authorization.as_deref(),
            Some(&*format!("Bearer {SECRET_KEY}"))
        );
        assert_eq!(s.stripe_version.as_deref(), Some(STRIPE_VERSION), "{s:?}");
        if s.method == "POST" {
            assert!(s.idempotency_key.is_some(), "{s:?}");
        }
    }
    // Stripe's own announcement of the same payment changes nothing; a replay neither.
    let answers = deliver_all(&ws, &mock).await;
    assert_eq!(answers.len(), 1);
    let (event, status, body) = &answers[0];
    assert_eq!(*status, 200, "{body}");
    assert_eq!(body["type"], "payment_intent.succeeded");
    let (status, again) = stripe_mock::deliver(&hook_url(&ws), event, WEBHOOK_SECRET).await;
    assert_eq!((status, again["result"].as_str()), (200, Some("duplicate")));
    let after = get(&ws, &format!("/v1/invoices/{id}/payments")).await;
    assert_eq!(after["data"].as_array().unwrap().len(), 1);
    assert_eq!(events_of(&ws, "invoice.paid", "acme").await.len(), 1);
    assert_eq!(events_of(&ws, "payment.succeeded", "acme").await.len(), 1);
    // A renewal written by a bill run (its period-end job canceled here, so the run writes it,
    // in a batch) is charged the same way.
    let jobs = get(&ws, "/v1/jobs?customer=acme&status=scheduled&limit=100").await;
    let period_end = jobs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "subscription.period_end")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.post(&format!("/v1/jobs/{period_end}/cancel"), json!({}))
        .await;
    ws.advance(&clock, "2026-12-01T00:00:01Z").await;
    let report = ws.post("/v1/bill_runs", json!({})).await;
    assert_eq!(report["errors"], json!([]), "{report}");
    let all = invoices(&ws, "acme").await;
    assert_eq!(all.len(), 2, "{all:#?}");
    ws.advance(&clock, "2026-12-01T00:00:02Z").await;
    let all = invoices(&ws, "acme").await;
    assert!(all.iter().all(|i| i["status"] == "paid"), "{all:#?}");
}
backend_tests!(finalized_invoices_are_charged_automatically_and_paid_once);

async fn a_declined_card_walks_through_dunning_to_suspension_and_back(backend: Backend) {
    let (server, mock) = server_with_stripe(backend).await;
    let ws = server.workspace_with("dunning", CATALOG).await;
    connect_stripe(&ws).await;
    let (clock, method) =
        carded_customer(&ws, &mock, "late", "2026-11-01T00:00:00Z", Card::Declining).await;
    ws.post("/v1/customers/late/subscriptions", json!({"plan": "pro"}))
        .await;
    let key = ws.post("/v1/customers/late/keys", json!({})).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = invoices(&ws, "late").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let payments = format!("/v1/invoices/{id}/payments");

    ws.advance(&clock, "2026-11-01T00:00:01Z").await;
    let state = get(&ws, &payments).await;
    assert_eq!(state["invoice_status"], "open");
    assert_eq!(state["data"][0]["status"], "failed");
    assert_eq!(state["data"][0]["failure_code"], "insufficient_funds");
    assert_eq!(state["dunning"]["status"], "retrying");
    assert_eq!(state["dunning"]["failures"], 1);
    assert_eq!(state["dunning"]["next_retry_at"], "2026-11-02T00:00:00Z");
    assert_eq!(subscription(&ws, "late").await["status"], "past_due");
    assert_eq!(
        events_of(&ws, "subscription.past_due", "late").await.len(),
        1
    );
    // Stripe's `payment_intent.payment_failed` for the same PaymentIntent is not a second failure.
    for (_, status, body) in deliver_all(&ws, &mock).await {
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(get(&ws, &payments).await["dunning"]["failures"], 1);

    // The retries after 1, 3 and 5 days are declined too; the last one suspends.
    for (at, failures) in [
        ("2026-11-02T12:00:00Z", 2),
        ("2026-11-04T12:00:00Z", 3),
        ("2026-11-06T12:00:00Z", 4),
    ] {
        ws.advance(&clock, at).await;
        let state = get(&ws, &payments).await;
        assert_eq!(state["dunning"]["failures"], failures, "{at}: {state}");
    }
    let state = get(&ws, &payments).await;
    assert_eq!(state["dunning"]["status"], "exhausted");
    assert_eq!(state["dunning"]["suspended"], true);
    assert_eq!(events_of(&ws, "payment.failed", "late").await.len(), 4);
    assert_eq!(events_of(&ws, "dunning.exhausted", "late").await.len(), 1);
    let (status, denied) = ws
        .server
        .call(
            &key,
            Method::POST,
            "/v1/check",
            Some(json!({"feature": "reports"})),
        )
        .await;
    assert!(
        status != StatusCode::OK || denied["allowed"] == false,
        "a suspended customer is refused: {status} {denied}"
    );

    // The customer fixes its card; the charge succeeds: restored at once, counted once.
    mock.set_declining(&method, false);
    let collected = ws
        .post(&format!("/v1/invoices/{id}/collect"), json!({}))
        .await;
    assert_eq!(collected["result"], "paid", "{collected}");
    let state = get(&ws, &payments).await;
    assert_eq!(state["invoice_status"], "paid");
    assert_eq!(state["dunning"]["status"], "recovered");
    assert_eq!(state["dunning"]["suspended"], false);
    let succeeded: Vec<&Value> = state["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "succeeded")
        .collect();
    assert_eq!(succeeded.len(), 1);
    assert_eq!(subscription(&ws, "late").await["status"], "active");
    assert_eq!(
        events_of(&ws, "subscription.recovered", "late").await.len(),
        1
    );
    let allowed = ws
        .server
        .call(
            &key,
            Method::POST,
            "/v1/check",
            Some(json!({"feature": "reports"})),
        )
        .await;
    assert_eq!(allowed.0, StatusCode::OK, "{}", allowed.1);
    assert_eq!(allowed.1["allowed"], true, "{}", allowed.1);
    // Webhooks of the success, and a charge asked again, change nothing.
    for (_, status, body) in deliver_all(&ws, &mock).await {
        assert_eq!(status, 200, "{body}");
    }
    let again = ws
        .post(&format!("/v1/invoices/{id}/collect"), json!({}))
        .await;
    assert_eq!(again["result"], "already_paid");
    assert_eq!(events_of(&ws, "invoice.paid", "late").await.len(), 1);
    // The retry job still scheduled finds the invoice paid.
    ws.advance(&clock, "2026-11-10T00:00:00Z").await;
    assert_eq!(events_of(&ws, "payment.failed", "late").await.len(), 4);
}
backend_tests!(a_declined_card_walks_through_dunning_to_suspension_and_back);

async fn qlp_5_refund_through_a_credit_note_goes_back_to_the_card(backend: Backend) {
    let (server, mock) = server_with_stripe(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    connect_stripe(&ws).await;
    // Subscribed on November 1st without a card: the $99.00 invoice waits.
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.post("/v1/customers", json!({"id": "coder", "test_clock": clock}))
        .await;
    ws.post(
        "/v1/customers/coder/subscriptions",
        json!({"plan": "starter", "trial": false}),
    )
    .await;
    let invoice = invoices(&ws, "coder").await[0].clone();
    assert_eq!(invoice["total"], "99.00");
    let id = invoice["id"].as_str().unwrap().to_owned();
    // A card saved on the 2nd, and the invoice charged then.
    ws.advance(&clock, "2026-11-02T00:00:00Z").await;
    save_card(&ws, &mock, "coder", Card::Good).await;
    let collected = ws
        .post(&format!("/v1/invoices/{id}/collect"), json!({}))
        .await;
    assert_eq!(collected["result"], "paid", "{collected}");
    let invoice = get(&ws, &format!("/v1/invoices/{id}")).await;
    assert_eq!(invoice["status"], "paid", "{invoice}");
    assert_eq!(invoice["paid_at"], "2026-11-02T00:00:00Z");
    let intent = get(&ws, &format!("/v1/invoices/{id}/payments")).await["data"][0]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    mock.take_events();

    ws.advance(&clock, "2026-11-20T00:00:00Z").await;
    let (status, note) = ws
        .call(
            Method::POST,
            &format!("/v1/invoices/{id}/credit_notes"),
            Some(json!({"reason": "requested_by_customer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["amount"], "99.00");
    let refund = mock
        .seen()
        .into_iter()
        .find(|s| s.path == "/v1/refunds")
        .unwrap();
    assert_eq!(refund.field("payment_intent"), Some(intent.as_str()));
    assert_eq!(refund.field("amount"), Some("9900"));
    let state = get(&ws, &format!("/v1/invoices/{id}/payments")).await;
    assert_eq!(state["refunds"][0]["status"], "succeeded", "{state}");
    assert_eq!(state["refunds"][0]["amount"], "99.00");
    let invoice = get(&ws, &format!("/v1/invoices/{id}")).await;
    assert_eq!(invoice["refund_status"], "refunded", "{invoice}");
    assert_eq!(events_of(&ws, "payment.refunded", "coder").await.len(), 1);
    // Stripe's `charge.refunded` for Tollgate's own refund announces nothing twice.
    let answers = deliver_all(&ws, &mock).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].2["type"], "charge.refunded");
    assert_eq!(answers[0].2["result"], "ignored");
    assert_eq!(events_of(&ws, "payment.refunded", "coder").await.len(), 1);
    // "MRR no longer counts that customer": refunded in full, its subscription is neither new
    // in November nor in November's closing MRR (docs/DASHBOARD.md, "Refunds").
    let mrr = get(&ws, "/v1/analytics/mrr?from=2026-11&to=2026-11").await;
    let november = &mrr["months"][0];
    assert_eq!(november["month"], "2026-11", "{mrr}");
    assert_eq!(november["end_minor"], 0, "{mrr}");
    assert_eq!(november["new_minor"], 0, "{mrr}");
    assert_eq!(november["customers_end"], 0, "{mrr}");
}
backend_tests!(qlp_5_refund_through_a_credit_note_goes_back_to_the_card);

async fn webhooks_with_a_bad_or_stale_signature_are_refused_and_replays_change_nothing(
    backend: Backend,
) {
    let (server, mock) = server_with_stripe(backend).await;
    let ws = server.workspace_with("hooks", CATALOG).await;
    let url = hook_url(&ws);
    let dispute = mock.sample(
        "dispute",
        json!({"id": "dp_test_1", "payment_intent": "pi_unknown"}),
    );
    let event = mock.queue("charge.dispute.created", dispute);
    mock.take_events();
    // No webhook secret yet.
    let (status, problem) = stripe_mock::deliver(&url, &event, WEBHOOK_SECRET).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("payment_provider_missing"))
    );
    connect_stripe(&ws).await;

    let payload = event.to_string();
    let now = jiff::Timestamp::now().as_second();
    let good = stripe_mock::signature(&payload, now, WEBHOOK_SECRET);
    let other = stripe_mock::signature(&payload, now, "whsec_someone_else_entirely");
    let stale = stripe_mock::signature(&payload, now - 600, WEBHOOK_SECRET);
    let tampered = payload.replace("dp_test_1", "dp_test_2");
    for (body, header) in [
        (payload.as_str(), other.as_str()),
        (payload.as_str(), stale.as_str()),
        (payload.as_str(), ""),
        (payload.as_str(), "t=abc,v1=zz"),
        (tampered.as_str(), good.as_str()),
    ] {
        let (status, problem) = stripe_mock::send(&url, body, header).await;
        assert_eq!(status, 400, "{header}: {problem}");
        assert_eq!(problem["code"], "invalid_webhook_signature", "{problem}");
    }
    let none = get(&ws, "/v1/domain_events?type=payment.disputed&limit=100").await;
    assert_eq!(none["data"], json!([]));
    // During a secret rotation Stripe signs with both: one good `v1` is enough.
    let v1 = other.split(",v1=").nth(1).unwrap();
    let rotated = format!("{good},v1={v1}");
    let (status, body) = stripe_mock::send(&url, &payload, &rotated).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("handled")),
        "{body}"
    );
    let (status, body) = stripe_mock::send(&url, &payload, &good).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );
    let disputes = get(&ws, "/v1/domain_events?type=payment.disputed&limit=100").await;
    assert_eq!(disputes["data"].as_array().unwrap().len(), 1, "{disputes}");
    assert_eq!(disputes["data"][0]["data"]["dispute"], "dp_test_1");
    // An event about an invoice Tollgate does not have, or another workspace's, is acknowledged
    // and ignored (Stripe would retry an error for days).
    for metadata in [
        json!({"tollgate_workspace": ws.id, "tollgate_invoice": "in_nope"}),
        json!({"tollgate_workspace": "ws_other", "tollgate_invoice": "in_nope"}),
    ] {
        let intent = mock.sample(
            "payment_intent",
            json!({"id": "pi_stray", "status": "succeeded", "metadata": metadata}),
        );
        let stray = mock.queue("payment_intent.succeeded", intent);
        mock.take_events();
        let (status, body) = stripe_mock::deliver(&url, &stray, WEBHOOK_SECRET).await;
        assert_eq!(
            (status, body["result"].as_str()),
            (200, Some("ignored")),
            "{body}"
        );
    }
    // Another workspace's secret does not open this one's endpoint.
    let other_ws = server.workspace_with("other", CATALOG).await;
    let (status, _) = stripe_mock::deliver(&hook_url(&other_ws), &event, WEBHOOK_SECRET).await;
    assert_eq!(status, 409);
}
backend_tests!(webhooks_with_a_bad_or_stale_signature_are_refused_and_replays_change_nothing);

async fn provider_secrets_are_sealed_and_never_answered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("secrets", CATALOG).await;
    let (status, set) = ws
        .call(
            Method::PUT,
            "/v1/payment_settings",
            Some(
                json!({"stripe_secret_key": SECRET_KEY, "stripe_webhook_secret": WEBHOOK_SECRET,
                "manual_instructions": "IBAN FR76 3000 6000 0112 3456 7890 189"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let read = get(&ws, "/v1/payment_settings").await;
    for answer in [&set, &read] {
        let text = answer.to_string();
        assert!(
            !text.contains(SECRET_KEY) && !text.contains(WEBHOOK_SECRET),
            "{text}"
        );
        assert_eq!(answer["stripe_secret_key_set"], true);
        assert_eq!(answer["stripe_secret_key_last4"], "4242");
        assert_eq!(answer["stripe_webhook_secret_set"], true);
    }
    // At rest: sealed, neither in clear.
    let stored = server
        .server
        .as_ref()
        .unwrap()
        .state
        .engine
        .store()
        .payment_settings(&tollgate_core::ids::WorkspaceId::from(ws.id.as_str()))
        .await
        .unwrap()
        .unwrap();
    let at_rest = format!("{stored:?}");
    assert!(
        !at_rest.contains(SECRET_KEY) && !at_rest.contains(WEBHOOK_SECRET),
        "{at_rest}"
    );
    // Updating the instructions keeps the secrets; an empty string removes one.
    let kept = ws
        .call(
            Method::PUT,
            "/v1/payment_settings",
            Some(json!({"manual_instructions": "Pay to IBAN ...", "stripe_webhook_secret": ""})),
        )
        .await
        .1;
    assert_eq!(kept["stripe_secret_key_set"], true);
    assert_eq!(kept["stripe_webhook_secret_set"], false);
    for body in [
        json!({"stripe_secret_key": "pk_live_publishable_not_secret"}),
        json!({"stripe_webhook_secret": "nope"}),
    ] {
        let (status, problem) = ws
            .call(Method::PUT, "/v1/payment_settings", Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(problem["code"], "invalid_provider_settings");
        assert!(
            !problem.to_string().contains("pk_live_publishable"),
            "{problem}"
        );
    }
    // Without a master key nothing can be sealed.
    let bare = TestServer::start_with(backend, |c| c.master_key = None).await;
    let ws = bare.workspace_with("bare", CATALOG).await;
    let (status, problem) = ws
        .call(
            Method::PUT,
            "/v1/payment_settings",
            Some(json!({"stripe_secret_key": SECRET_KEY})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["code"], "master_key_missing");
}
backend_tests!(provider_secrets_are_sealed_and_never_answered);

#[tokio::test]
async fn stripe_calls_are_retried_on_429_and_5xx_under_one_idempotency_key() {
    let (server, mock) = server_with_stripe(Backend::Sqlite).await;
    let ws = server.workspace_with("retries", CATALOG).await;
    connect_stripe(&ws).await;
    ws.post("/v1/customers", json!({"id": "flaky"})).await;
    mock.fail_next(&[500, 429]);
    let session = ws
        .post(
            "/v1/customers/flaky/payment_methods/checkout",
            json!({"success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}),
        )
        .await;
    assert!(session["url"].as_str().is_some());
    let creates: Vec<_> = mock
        .seen()
        .into_iter()
        .filter(|s| s.path == "/v1/customers")
        .collect();
    assert_eq!(creates.len(), 3, "two failures, then the answer");
    assert!(creates[0].idempotency_key.is_some());
    assert!(
        creates
            .iter()
            .all(|c| c.idempotency_key == creates[0].idempotency_key)
    );
    // Still failing after every attempt: 503 payment_provider_error, and nothing stored.
    mock.fail_next(&[503, 503, 503, 503, 503]);
    ws.post("/v1/customers", json!({"id": "down"})).await;
    let (status, problem) = ws
        .call(
            Method::POST,
            "/v1/customers/down/payment_methods/checkout",
            Some(json!({"success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert_eq!(problem["code"], "payment_provider_error");
    let (status, problem) = ws
        .call(
            Method::POST,
            "/v1/customers/down/payment_methods/checkout",
            Some(
                json!({"success_url": "javascript:alert(1)", "cancel_url": "https://a.example/no"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "invalid_redirect_url");
}

async fn reconciliation_lists_what_differs_between_tollgate_and_stripe(backend: Backend) {
    let (server, mock) = server_with_stripe(backend).await;
    let ws = server.workspace_with("reconcile", CATALOG).await;
    connect_stripe(&ws).await;
    let (clock, _) = carded_customer(&ws, &mock, "acme", "2026-11-01T00:00:00Z", Card::Good).await;
    ws.post("/v1/customers/acme/subscriptions", json!({"plan": "pro"}))
        .await;
    ws.advance(&clock, "2026-11-01T00:00:01Z").await;
    let agreed = get(&ws, "/v1/payments/reconciliation").await;
    assert_eq!(agreed["differences"], json!([]), "{agreed}");
    assert_eq!(agreed["tollgate_payments"], 1);
    assert_eq!(agreed["provider_payments"], 1);
    mock.take_events();

    // Money Stripe took that Tollgate never heard of (another workspace's is not compared)...
    mock.insert_intent(
        json!({"id": "pi_dashboard", "status": "succeeded", "amount": 500,
        "currency": "usd", "metadata": {"tollgate_workspace": ws.id, "tollgate_invoice": "inv_x"}}),
    );
    mock.insert_intent(
        json!({"id": "pi_elsewhere", "status": "succeeded", "amount": 700,
        "currency": "usd", "metadata": {"tollgate_workspace": "ws_other"}}),
    );
    // ... and a payment Tollgate recorded that Stripe does not have.
    ws.post("/v1/customers", json!({"id": "other", "test_clock": clock}))
        .await;
    ws.post("/v1/customers/other/subscriptions", json!({"plan": "pro"}))
        .await;
    let invoice = invoices(&ws, "other").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let owed = get(&ws, &format!("/v1/invoices/{invoice}/payments")).await["amount_remaining"]
        .as_str()
        .unwrap()
        .replace('.', "")
        .parse::<i64>()
        .unwrap();
    let ghost = mock.sample(
        "payment_intent",
        json!({"id": "pi_ghost", "status": "succeeded", "amount": owed, "currency": "usd",
            "metadata": {"tollgate_workspace": ws.id, "tollgate_invoice": invoice}}),
    );
    let event = mock.queue("payment_intent.succeeded", ghost);
    mock.take_events();
    let (status, body) = stripe_mock::deliver(&hook_url(&ws), &event, WEBHOOK_SECRET).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("handled")),
        "{body}"
    );

    let found = get(&ws, "/v1/payments/reconciliation").await;
    let kinds: Vec<(&str, &str)> = found["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap(),
                d["payment_intent"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("missing_at_provider", "pi_ghost"),
            ("missing_in_tollgate", "pi_dashboard")
        ],
        "{found}"
    );
    assert_eq!(found["differences"][1]["provider_amount_minor"], 500);
}
backend_tests!(reconciliation_lists_what_differs_between_tollgate_and_stripe);

/// Every object the adapter reads parses from Stripe's own sample of it.
#[test]
fn the_adapter_reads_stripe_s_published_shapes() {
    use tollgate_server::providers::stripe::wire;
    let fixtures = stripe_mock::fixtures();
    fn read<T: serde::de::DeserializeOwned>(
        fixtures: &std::collections::BTreeMap<String, Value>,
        kind: &str,
    ) -> T {
        serde_json::from_value(fixtures[kind].clone())
            .unwrap_or_else(|e| panic!("Stripe's sample {kind} does not parse: {e}"))
    }
    let customer: wire::Customer = read(&fixtures, "customer");
    assert!(customer.id.starts_with("cus_"));
    let session: wire::CheckoutSession = read(&fixtures, "checkout.session");
    assert!(session.url.is_some());
    let intent: wire::SetupIntent = read(&fixtures, "setup_intent");
    assert!(intent.id.starts_with("seti_"));
    let payment: wire::PaymentIntent = read(&fixtures, "payment_intent");
    assert_eq!(payment.amount, 1099);
    let charge: wire::Charge = read(&fixtures, "charge");
    assert_eq!(charge.amount_refunded, 0);
    let refund: wire::Refund = read(&fixtures, "refund");
    assert_eq!(refund.status.as_deref(), Some("succeeded"));
    let dispute: wire::Dispute = read(&fixtures, "dispute");
    assert_eq!(
        wire::id_of(&dispute.charge).as_deref(),
        Some("ch_1PgafuB7WZ01zgkWXYmPNZs8")
    );
    let portal: wire::PortalSession = read(&fixtures, "billing_portal.session");
    assert!(portal.url.starts_with("https://"));
    let event: wire::Event = read(&fixtures, "event");
    assert!(event.id.starts_with("evt_"));
    // A PaymentIntent's next action, and Stripe Billing's objects (Stripe as the biller).
    assert_eq!(
        payment.action_url(),
        None,
        "the sample's next_action has no redirect"
    );
    use tollgate_server::providers::stripe::billing::wire as billing;
    let product: billing::Product = read(&fixtures, "product");
    assert!(product.id.starts_with("prod_") && product.active);
    let price: billing::Price = read(&fixtures, "price");
    assert_eq!(price.unit_amount, Some(2000));
    assert_eq!(price.recurring.unwrap().interval, "month");
    let meter: billing::Meter = read(&fixtures, "billing.meter");
    assert_eq!(meter.event_name, "test-meter-event-name");
    let pushed: billing::MeterEvent = read(&fixtures, "billing.meter_event");
    assert_eq!(pushed.payload["stripe_customer_id"], "cus_123");
    assert_eq!(pushed.identifier, "1234-1234");
}

/// Stripe as the biller: a `count` and a `sum` meter become Billing Meters (a `max` one stays
/// Tollgate's), the plan a Product, its base fee and per-unit usage prices Prices.
const BILLER_CATALOG: &str = r#"
currency: USD
meters:
  calls: { event: api.call, aggregation: count }
  tokens: { event: llm.tokens, aggregation: sum, property: tokens }
  peak: { event: seats.level, aggregation: max, property: n }
features:
  reports: { kind: switch, name: Reports }
plans:
  pro:
    name: Pro
    base: { amount: "20.00", interval: month }
    # A first invoice of 20.00 whatever the wall clock (see CATALOG).
    billing: anniversary
    features: { reports: true }
    prices:
      - { meter: calls, model: per_unit, included: 1000, unit_amount: "0.002" }
      - { meter: tokens, model: per_unit, unit_amount: "0.00001" }
      - { meter: peak, model: per_unit, unit_amount: "1.00" }
"#;

async fn sync(ws: &Workspace<'_>, dry_run: bool) -> Value {
    let (status, report) = ws
        .call(
            Method::POST,
            &format!("/v1/payments/stripe_sync?dry_run={dry_run}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["dry_run"], dry_run);
    report
}

/// `(object, key, action)` of each action of a sync report.
fn actions(report: &Value) -> Vec<(String, String, String)> {
    report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["object"].as_str().unwrap().to_owned(),
                a["key"].as_str().unwrap().to_owned(),
                a["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn expect(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(o, k, a)| ((*o).to_owned(), (*k).to_owned(), (*a).to_owned()))
        .collect()
}

fn posts(mock: &StripeMock) -> usize {
    mock.seen().iter().filter(|s| s.method == "POST").count()
}

async fn stripe_sync_creates_once_replaces_a_changed_price_and_dry_runs_write_nothing(
    backend: Backend,
) {
    let (server, mock) = server_with_stripe(backend).await;
    let ws = server.workspace_with("biller", BILLER_CATALOG).await;
    connect_stripe(&ws).await;

    // A dry run reads Stripe and writes nothing there.
    let planned = sync(&ws, true).await;
    let creates = expect(&[
        ("meter", "calls", "create"),
        ("meter", "tokens", "create"),
        ("meter", "peak", "skip"),
        ("price", "pro:usage:peak", "skip"),
        ("product", "pro", "create"),
        ("price", "pro:base", "create"),
        ("price", "pro:usage:calls", "create"),
        ("price", "pro:usage:tokens", "create"),
    ]);
    assert_eq!(actions(&planned), creates, "{planned}");
    assert_eq!(posts(&mock), 0, "a dry run makes no write call");
    assert!(mock.objects_of("product").is_empty());

    let made = sync(&ws, false).await;
    assert_eq!(actions(&made), creates, "{made}");
    assert_eq!(mock.objects_of("billing.meter").len(), 2);
    assert_eq!(mock.objects_of("product").len(), 1);
    let prices = mock.objects_of("price");
    assert_eq!(prices.len(), 3, "{prices:#?}");
    let seen = mock.seen();
    let price_posts: Vec<_> = seen.iter().filter(|s| s.path == "/v1/prices").collect();
    let base = price_posts
        .iter()
        .find(|s| s.field("nickname") == Some("pro:base"))
        .unwrap();
    assert_eq!(base.field("unit_amount"), Some("2000"), "minor units");
    assert_eq!(base.field("currency"), Some("usd"));
    assert_eq!(base.field("recurring[interval]"), Some("month"));
    assert_eq!(base.field("recurring[usage_type]"), Some("licensed"));
    assert_eq!(
        base.field("lookup_key").unwrap(),
        format!("tollgate_{}_pro_base", ws.id)
    );
    let calls = price_posts
        .iter()
        .find(|s| s.field("nickname") == Some("pro:usage:calls"))
        .unwrap();
    assert_eq!(calls.field("recurring[usage_type]"), Some("metered"));
    assert!(calls.field("recurring[meter]").unwrap().starts_with("mtr_"));
    assert_eq!(
        calls.field("tiers[0][up_to]"),
        Some("1000"),
        "included units"
    );
    assert_eq!(calls.field("tiers[0][unit_amount_decimal]"), Some("0"));
    assert_eq!(calls.field("tiers[1][unit_amount_decimal]"), Some("0.2"));
    let tokens = price_posts
        .iter()
        .find(|s| s.field("nickname") == Some("pro:usage:tokens"))
        .unwrap();
    assert_eq!(tokens.field("unit_amount_decimal"), Some("0.001"));
    let meter = seen
        .iter()
        .find(|s| s.path == "/v1/billing/meters" && s.method == "POST")
        .unwrap();
    assert_eq!(meter.field("default_aggregation[formula]"), Some("sum"));
    assert_eq!(
        meter.field("customer_mapping[event_payload_key]"),
        Some("stripe_customer_id")
    );
    // Every call pinned to one API version, every write with an idempotency key.
    for s in &seen {
        assert_eq!(s.stripe_version.as_deref(), Some(STRIPE_VERSION), "{s:?}");
        if s.method == "POST" {
            assert!(s.idempotency_key.is_some(), "{s:?}");
        }
    }

    // Twice: everything found, nothing written.
    let writes = posts(&mock);
    let again = sync(&ws, false).await;
    assert!(
        actions(&again)
            .iter()
            .all(|(_, _, a)| a == "unchanged" || a == "skip"),
        "{again}"
    );
    assert_eq!(posts(&mock), writes, "a second sync writes nothing");
    assert_eq!(mock.objects_of("price").len(), 3);

    // The base fee changes (and the plan's name): a new Price takes the lookup key, the old one
    // is deactivated; the product is updated in place.
    let old_base = prices.iter().find(|p| p["nickname"] == "pro:base").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let changed = BILLER_CATALOG
        .replace("\"20.00\"", "\"25.00\"")
        .replace("name: Pro\n", "name: Pro Plus\n");
    let (status, body) = ws
        .call(Method::PUT, "/v1/catalog", Some(json!({"yaml": changed})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let planned = sync(&ws, true).await;
    let replaced = expect(&[
        ("meter", "calls", "unchanged"),
        ("meter", "tokens", "unchanged"),
        ("meter", "peak", "skip"),
        ("price", "pro:usage:peak", "skip"),
        ("product", "pro", "update"),
        ("price", "pro:base", "replace"),
        ("price", "pro:usage:calls", "unchanged"),
        ("price", "pro:usage:tokens", "unchanged"),
    ]);
    assert_eq!(actions(&planned), replaced, "{planned}");
    assert_eq!(posts(&mock), writes, "still nothing written by a dry run");
    let done = sync(&ws, false).await;
    assert_eq!(actions(&done), replaced, "{done}");
    let base_action = done["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "pro:base")
        .unwrap()
        .clone();
    assert_eq!(base_action["replaces"], old_base.as_str());
    let old = mock.object(&old_base);
    assert_eq!(old["active"], false, "{old}");
    assert_eq!(old["lookup_key"], Value::Null, "the new price took the key");
    let new = mock.object(base_action["stripe_id"].as_str().unwrap());
    assert_eq!(new["unit_amount"], 2500);
    assert_eq!(new["active"], true);
    assert_eq!(new["lookup_key"], format!("tollgate_{}_pro_base", ws.id));
    assert_eq!(mock.objects_of("price").len(), 4);
    let product = &mock.objects_of("product")[0];
    assert_eq!(product["name"], "Pro Plus");
    let settled = sync(&ws, true).await;
    assert!(
        actions(&settled)
            .iter()
            .all(|(_, _, a)| a == "unchanged" || a == "skip"),
        "{settled}"
    );

    // A replacement interrupted before the old Price was deactivated leaves it active: the
    // next sync deactivates it (a dry run only says so).
    let product_id = format!("tollgate_{}_pro", ws.id);
    let leftover = mock.insert(
        "price",
        json!({"id": "price_leftover", "product": product_id, "active": true,
            "lookup_key": null, "unit_amount": 2000,
            "metadata": {"tollgate_workspace": ws.id, "tollgate_price": "pro:base"}}),
    );
    let foreign = mock.insert(
        "price",
        json!({"id": "price_not_ours", "product": product_id, "active": true,
            "lookup_key": null, "metadata": {}}),
    );
    let said = sync(&ws, true).await;
    assert!(
        actions(&said).contains(&("price".into(), "pro:base".into(), "deactivate".into())),
        "{said}"
    );
    assert_eq!(mock.object("price_leftover")["active"], true);
    let cleaned = sync(&ws, false).await;
    let deactivated: Vec<&Value> = cleaned["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "deactivate")
        .collect();
    assert_eq!(deactivated.len(), 1, "{cleaned}");
    assert_eq!(deactivated[0]["stripe_id"], leftover["id"]);
    assert_eq!(mock.object("price_leftover")["active"], false);
    assert_eq!(
        mock.object("price_not_ours")["active"],
        true,
        "a price Tollgate did not make is left alone: {foreign}"
    );
    let quiet = sync(&ws, false).await;
    assert!(
        actions(&quiet)
            .iter()
            .all(|(_, _, a)| a == "unchanged" || a == "skip"),
        "{quiet}"
    );
}
backend_tests!(stripe_sync_creates_once_replaces_a_changed_price_and_dry_runs_write_nothing);

async fn biller_server(backend: Backend, jobs: bool) -> (TestServer, StripeMock) {
    let mock = StripeMock::start().await;
    let base = mock.base.clone();
    let server = TestServer::start_with(backend, move |c| {
        c.payments.stripe_api_base = base;
        c.payments.backoff = Duration::from_millis(5);
        c.payments.meter_settle = Duration::ZERO;
        c.payments.meter_batch = 2;
        c.payments.meter_push_interval = Duration::from_millis(100);
        if jobs {
            c.jobs = Some(tollgate_server::jobs::JobsConfig {
                poll_interval: Duration::from_millis(20),
                ..Default::default()
            });
        }
    })
    .await;
    (server, mock)
}

async fn become_biller(ws: &Workspace<'_>) {
    let (status, view) = ws
        .call(
            Method::PUT,
            "/v1/payment_settings",
            Some(json!({"stripe_billing": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["stripe_billing"], true);
}

fn engine(server: &TestServer) -> &tollgate_server::engine::Engine {
    &server.server.as_ref().unwrap().state.engine
}

async fn in_stripe_biller_mode_usage_is_pushed_once_in_batches_and_nothing_is_charged(
    backend: Backend,
) {
    let (server, mock) = biller_server(backend, false).await;
    let ws = server.workspace_with("biller", BILLER_CATALOG).await;
    // Not without Stripe's key.
    let (status, problem) = ws
        .call(
            Method::PUT,
            "/v1/payment_settings",
            Some(json!({"stripe_billing": true})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "invalid_provider_settings");
    connect_stripe(&ws).await;
    become_biller(&ws).await;
    sync(&ws, false).await;

    // A customer with a saved card subscribes: Stripe bills it, Tollgate charges nothing.
    ws.post(
        "/v1/customers",
        json!({"id": "acme", "email": "acme@example.com"}),
    )
    .await;
    save_card(&ws, &mock, "acme", Card::Good).await;
    ws.post("/v1/customers/acme/subscriptions", json!({"plan": "pro"}))
        .await;
    let invoice = invoices(&ws, "acme").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let jobs = get(&ws, "/v1/jobs?customer=acme&limit=100").await;
    assert!(
        jobs["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["kind"] != "invoice.collect"),
        "no collection is enqueued: {jobs}"
    );
    let (status, problem) = ws
        .call(
            Method::POST,
            &format!("/v1/invoices/{invoice}/collect"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "stripe_is_biller");
    let (status, problem) = ws
        .call(
            Method::POST,
            &format!("/v1/invoices/{invoice}/payment_link"),
            Some(json!({"success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "stripe_is_biller");

    // A customer on a test clock (frozen at this moment, after the switch): its usage is
    // Tollgate's only.
    let clock = ws.test_clock(&jiff::Timestamp::now().to_string()).await;
    ws.post(
        "/v1/customers",
        json!({"id": "clocked", "test_clock": clock}),
    )
    .await;
    let (status, body) = ws
        .events(json!([
            {"id": "c1", "customer": "acme", "type": "api.call"},
            {"id": "c2", "customer": "acme", "type": "api.call", "properties": {"tollgate.quantity": 3}},
            {"id": "c3", "customer": "acme", "type": "api.call"},
            {"id": "t1", "customer": "acme", "type": "llm.tokens", "properties": {"tokens": 1500}},
            {"id": "t2", "customer": "acme", "type": "llm.tokens", "properties": {"tokens": 0}},
            {"id": "x1", "customer": "clocked", "type": "api.call"},
        ]))
        .await;
    assert!(status.is_success(), "{body}");

    // Stripe fails twice before taking the first event: one identifier, one meter event.
    mock.fail_next(&[500, 429]);
    let engine = engine(&server);
    let pass = tollgate_server::app::payments::push_usage(engine, &ws.id)
        .await
        .unwrap();
    assert_eq!(pass.events, 6, "{pass:?}");
    assert_eq!(pass.pushed, 4, "{pass:?}");
    assert_eq!(
        pass.skipped, 2,
        "a zero value and a test-clock customer: {pass:?}"
    );
    assert_eq!(pass.batches, 3, "batches of 2: {pass:?}");
    let pushed = mock.meter_events();
    assert_eq!(pushed.len(), 4, "{pushed:#?}");
    let posts_of_meter_events: Vec<_> = mock
        .seen()
        .into_iter()
        .filter(|s| s.path == "/v1/billing/meter_events")
        .collect();
    assert_eq!(
        posts_of_meter_events.len(),
        6,
        "two failed tries, then four"
    );
    let first = &posts_of_meter_events[0];
    assert!(
        posts_of_meter_events[..3]
            .iter()
            .all(|s| s.idempotency_key == first.idempotency_key
                && s.field("identifier") == first.field("identifier")),
        "retried under one key and identifier"
    );
    assert_eq!(first.idempotency_key.as_deref(), first.field("identifier"));
    let link = get(&ws, "/v1/customers/acme").await;
    let stripe_customer = pushed[0]["payload"]["stripe_customer_id"].as_str().unwrap();
    assert!(stripe_customer.starts_with("cus_"), "{link}");
    let calls = meter_event_name(&ws.id, "calls");
    let values: Vec<(&str, &str)> = pushed
        .iter()
        .map(|e| {
            (
                e["event_name"].as_str().unwrap(),
                e["payload"]["value"].as_str().unwrap(),
            )
        })
        .collect();
    let tokens = meter_event_name(&ws.id, "tokens");
    assert_eq!(
        values,
        vec![
            (calls.as_str(), "1"),
            (calls.as_str(), "3"),
            (calls.as_str(), "1"),
            (tokens.as_str(), "1500"),
        ]
    );
    let ids: std::collections::BTreeSet<&str> = pushed
        .iter()
        .map(|e| e["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);

    // The cursor moved: a second pass pushes nothing.
    let again = tollgate_server::app::payments::push_usage(engine, &ws.id)
        .await
        .unwrap();
    assert_eq!((again.events, again.pushed), (0, 0), "{again:?}");
    assert_eq!(mock.meter_events().len(), 4);
    let view = get(&ws, "/v1/payment_settings").await;
    assert_eq!(view["meter_events_pushed"], 4, "{view}");

    // A pass repeated from an old cursor (a crash before the cursor was written) sends the
    // same identifiers: Stripe still holds four events.
    let store = engine.store();
    let wid = tollgate_core::ids::WorkspaceId::from(ws.id.as_str());
    let now = store.stripe_billing(&wid).await.unwrap().unwrap();
    let start = jiff::Timestamp::UNIX_EPOCH;
    assert!(
        store
            .advance_meter_cursor(
                &wid,
                (now.cursor_received_at, &now.cursor_event),
                (start, ""),
                0,
                jiff::Timestamp::now(),
            )
            .await
            .unwrap()
    );
    mock.fail_next(&[]);
    let replay = tollgate_server::app::payments::push_usage(engine, &ws.id)
        .await
        .unwrap();
    assert_eq!(replay.events, 6, "{replay:?}");
    assert_eq!(mock.meter_events().len(), 4, "counted once by Stripe");
    assert_eq!(
        mock.seen()
            .iter()
            .filter(|s| s.path == "/v1/payment_intents")
            .count(),
        0,
        "Tollgate charged nothing"
    );
}
backend_tests!(in_stripe_biller_mode_usage_is_pushed_once_in_batches_and_nothing_is_charged);

/// The jobs scheduler drives the push: switching Stripe on as the biller starts a chain of
/// `stripe.meter_push` jobs that sends new usage without any API call (SQLite: a worker on a
/// shared PostgreSQL database would run other tests' jobs).
#[tokio::test]
async fn the_jobs_scheduler_pushes_usage_to_stripe_meters() {
    let (server, mock) = biller_server(Backend::Sqlite, true).await;
    let ws = server.workspace_with("biller", BILLER_CATALOG).await;
    connect_stripe(&ws).await;
    sync(&ws, false).await;
    become_biller(&ws).await;
    ws.post("/v1/customers", json!({"id": "acme"})).await;
    let (status, body) = ws
        .events(json!([{"id": "j1", "customer": "acme", "type": "api.call"}]))
        .await;
    assert!(status.is_success(), "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while mock.meter_events().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pushed = mock.meter_events();
    assert_eq!(pushed.len(), 1, "{pushed:#?}");
    assert_eq!(pushed[0]["event_name"], meter_event_name(&ws.id, "calls"));
    // The Stripe customer was made for the usage (the customer saved no card).
    let created = mock
        .seen()
        .into_iter()
        .find(|s| s.path == "/v1/customers")
        .unwrap();
    assert_eq!(created.field("metadata[tollgate_customer]"), Some("acme"));
    let jobs = get(&ws, "/v1/jobs?limit=100").await;
    let runs: Vec<&Value> = jobs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "stripe.meter_push")
        .collect();
    assert!(runs.len() >= 2, "the chain goes on: {jobs}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        mock.meter_events().len(),
        1,
        "later runs push nothing again"
    );
}

async fn a_charge_that_needs_authentication_leaves_the_invoice_open_until_the_customer_authenticates(
    backend: Backend,
) {
    let (server, mock) = server_with_stripe(backend).await;
    let ws = server.workspace_with("3ds", CATALOG).await;
    connect_stripe(&ws).await;
    let (clock, _) = carded_customer(
        &ws,
        &mock,
        "secure",
        "2026-11-01T00:00:00Z",
        Card::Authenticating,
    )
    .await;
    ws.post("/v1/customers/secure/subscriptions", json!({"plan": "pro"}))
        .await;
    let id = invoices(&ws, "secure").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.advance(&clock, "2026-11-01T00:00:01Z").await;

    // Not a decline: the invoice stays open with the authentication page as its link, no
    // dunning, the subscription active, `payment.action_required` written once.
    let invoice = get(&ws, &format!("/v1/invoices/{id}")).await;
    assert_eq!(invoice["status"], "open", "{invoice}");
    let url = invoice["payment_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/3ds/pi_", mock.base)), "{url}");
    let state = get(&ws, &format!("/v1/invoices/{id}/payments")).await;
    assert_eq!(state["data"], json!([]), "{state}");
    assert_eq!(state["dunning"], Value::Null);
    assert_eq!(subscription(&ws, "secure").await["status"], "active");
    let required = events_of(&ws, "payment.action_required", "secure").await;
    assert_eq!(required.len(), 1, "{required:#?}");
    assert_eq!(required[0]["data"]["url"], url.as_str());
    assert_eq!(required[0]["data"]["invoice"], id.as_str());
    assert_eq!(required[0]["data"]["amount_minor"], 2000);
    let intent = required[0]["data"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(events_of(&ws, "payment.failed", "secure").await.is_empty());
    // Charged again meanwhile: the same PaymentIntent (one idempotency key), nothing new.
    let again = ws
        .post(&format!("/v1/invoices/{id}/collect"), json!({}))
        .await;
    assert_eq!(again["result"], "requires_action", "{again}");
    assert_eq!(
        events_of(&ws, "payment.action_required", "secure")
            .await
            .len(),
        1
    );
    for (event, status, body) in deliver_all(&ws, &mock).await {
        assert_eq!(status, 200, "{event}: {body}");
        assert_eq!(body["result"], "ignored", "{body}");
    }

    // The customer authenticates: Stripe's `payment_intent.succeeded` pays the invoice, once.
    mock.authenticate(&intent);
    let answers = deliver_all(&ws, &mock).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].2["result"], "handled", "{}", answers[0].2);
    let (status, replay) =
        stripe_mock::deliver(&hook_url(&ws), &answers[0].0, WEBHOOK_SECRET).await;
    assert_eq!(
        (status, replay["result"].as_str()),
        (200, Some("duplicate"))
    );
    let paid = get(&ws, &format!("/v1/invoices/{id}")).await;
    assert_eq!(paid["status"], "paid", "{paid}");
    assert_eq!(paid.get("payment_url"), None, "no link once paid: {paid}");
    let (status, problem) = ws
        .call(
            Method::POST,
            &format!("/v1/invoices/{id}/payment_link"),
            Some(json!({"success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let state = get(&ws, &format!("/v1/invoices/{id}/payments")).await;
    assert_eq!(state["data"].as_array().unwrap().len(), 1);
    assert_eq!(state["data"][0]["reference"], intent.as_str());
    assert_eq!(events_of(&ws, "invoice.paid", "secure").await.len(), 1);
    assert_eq!(events_of(&ws, "payment.succeeded", "secure").await.len(), 1);

    // A payment link made while a charge waits for authentication cancels that PaymentIntent:
    // the customer cannot pay the invoice twice.
    let (clock, _) = carded_customer(
        &ws,
        &mock,
        "twice",
        "2026-11-01T00:00:00Z",
        Card::Authenticating,
    )
    .await;
    ws.post("/v1/customers/twice/subscriptions", json!({"plan": "pro"}))
        .await;
    let id = invoices(&ws, "twice").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.advance(&clock, "2026-11-01T00:00:01Z").await;
    let waiting = events_of(&ws, "payment.action_required", "twice").await[0]["data"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, link) = ws
        .call(
            Method::POST,
            &format!("/v1/invoices/{id}/payment_link"),
            Some(json!({"success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(mock.object(&waiting)["status"], "canceled");
    assert_eq!(
        get(&ws, &format!("/v1/invoices/{id}")).await["payment_url"],
        link["url"]
    );
}
backend_tests!(
    a_charge_that_needs_authentication_leaves_the_invoice_open_until_the_customer_authenticates
);

async fn a_payment_link_for_an_open_invoice_is_paid_once_through_checkout(backend: Backend) {
    let (server, mock) = server_with_stripe(backend).await;
    let ws = server.workspace_with("links", CATALOG).await;
    connect_stripe(&ws).await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.post(
        "/v1/customers",
        json!({"id": "payer", "test_clock": clock, "email": "payer@example.com"}),
    )
    .await;
    ws.post("/v1/customers/payer/subscriptions", json!({"plan": "pro"}))
        .await;
    let invoice = invoices(&ws, "payer").await[0].clone();
    let id = invoice["id"].as_str().unwrap().to_owned();
    assert_eq!(invoice.get("payment_url"), None, "no link yet: {invoice}");
    let path = format!("/v1/invoices/{id}/payment_link");
    let (status, problem) = ws.call(Method::POST, &path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "invalid_redirect_url");

    let urls = json!({"success_url": "https://app.example.com/paid", "cancel_url": "https://app.example.com/later"});
    let (status, link) = ws.call(Method::POST, &path, Some(urls.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(link["provider"], "stripe");
    assert_eq!(link["amount_minor"], 2000);
    let url = link["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&mock.base), "{url}");
    let session = link["reference"].as_str().unwrap().to_owned();
    let made = mock
        .seen()
        .into_iter()
        .rfind(|s| s.path == "/v1/checkout/sessions")
        .unwrap();
    assert_eq!(made.field("mode"), Some("payment"));
    assert_eq!(
        made.field("line_items[0][price_data][unit_amount]"),
        Some("2000"),
        "minor units"
    );
    assert_eq!(
        made.field("line_items[0][price_data][currency]"),
        Some("usd")
    );
    assert_eq!(
        made.field("payment_intent_data[metadata][tollgate_invoice]"),
        Some(id.as_str())
    );
    assert!(made.idempotency_key.is_some());
    let shown = get(&ws, &format!("/v1/invoices/{id}")).await;
    assert_eq!(shown["payment_url"], url.as_str(), "{shown}");
    // A second link replaces the first, whose session is expired: one way to pay at a time.
    let (status, second) = ws.call(Method::POST, &path, Some(urls.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(mock.object(&session)["status"], "expired");
    let url = second["url"].as_str().unwrap().to_owned();
    let session = second["reference"].as_str().unwrap().to_owned();
    let shown = get(&ws, &format!("/v1/invoices/{id}")).await;
    assert_eq!(shown["payment_url"], url.as_str(), "{shown}");

    // The customer pays: `checkout.session.completed` marks it paid; Stripe's
    // `payment_intent.succeeded` about the same payment and a replay change nothing.
    mock.pay_checkout(&session);
    let answers = deliver_all(&ws, &mock).await;
    let results: Vec<(&str, &str)> = answers
        .iter()
        .map(|(_, _, b)| (b["type"].as_str().unwrap(), b["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        vec![
            ("checkout.session.completed", "handled"),
            ("payment_intent.succeeded", "ignored")
        ]
    );
    let (status, replay) =
        stripe_mock::deliver(&hook_url(&ws), &answers[0].0, WEBHOOK_SECRET).await;
    assert_eq!(
        (status, replay["result"].as_str()),
        (200, Some("duplicate"))
    );
    let state = get(&ws, &format!("/v1/invoices/{id}/payments")).await;
    assert_eq!(state["invoice_status"], "paid", "{state}");
    assert_eq!(state["data"].as_array().unwrap().len(), 1);
    assert_eq!(state["data"][0]["amount"], "20.00");
    assert_eq!(events_of(&ws, "invoice.paid", "payer").await.len(), 1);
    assert_eq!(events_of(&ws, "payment.succeeded", "payer").await.len(), 1);
    let paid = get(&ws, &format!("/v1/invoices/{id}")).await;
    assert_eq!(paid.get("payment_url"), None, "{paid}");
    let (status, problem) = ws.call(Method::POST, &path, Some(urls)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "invoice_not_open");

    // Without Stripe: the manual payment instructions, or nothing set up at all.
    let manual = server.workspace_with("manual-links", CATALOG).await;
    manual.post("/v1/customers", json!({"id": "bank"})).await;
    manual
        .post("/v1/customers/bank/subscriptions", json!({"plan": "pro"}))
        .await;
    let open = invoices(&manual, "bank").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/invoices/{open}/payment_link");
    let (status, problem) = manual.call(Method::POST, &path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "payment_provider_missing");
    let (status, _) = manual
        .call(
            Method::PUT,
            "/v1/payment_settings",
            Some(json!({"manual_instructions": "IBAN FR76 3000 6000 0112 3456 7890 189"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, link) = manual.call(Method::POST, &path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(link["provider"], "manual");
    assert_eq!(link["url"], Value::Null);
    assert_eq!(
        link["instructions"],
        "IBAN FR76 3000 6000 0112 3456 7890 189"
    );
}
backend_tests!(a_payment_link_for_an_open_invoice_is_paid_once_through_checkout);

async fn refund_posts(mock: &StripeMock) -> Vec<stripe_mock::Seen> {
    mock.seen()
        .into_iter()
        .filter(|s| s.path == "/v1/refunds" && s.method == "POST")
        .collect()
}

async fn paid_invoice(
    ws: &Workspace<'_>,
    mock: &StripeMock,
    customer: &str,
    clock_start: &str,
    card: Card,
) -> (String, String) {
    let (clock, _) = carded_customer(ws, mock, customer, clock_start, card).await;
    ws.post(
        &format!("/v1/customers/{customer}/subscriptions"),
        json!({"plan": "pro"}),
    )
    .await;
    let id = invoices(ws, customer).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.advance(&clock, "2026-11-01T00:00:01Z").await;
    (clock, id)
}

async fn a_failed_refund_is_retried_with_backoff_and_reconciliation_covers_refunds_and_declines(
    backend: Backend,
) {
    let (server, mock) = server_with_stripe(backend).await;
    let ws = server.workspace_with("refunds", CATALOG).await;
    connect_stripe(&ws).await;
    let (clock, id) = paid_invoice(&ws, &mock, "back", "2026-11-01T00:00:00Z", Card::Good).await;
    let state = get(&ws, &format!("/v1/invoices/{id}/payments")).await;
    assert_eq!(state["invoice_status"], "paid", "{state}");
    let intent = state["data"][0]["reference"].as_str().unwrap().to_owned();

    // Stripe cannot take the refund now: recorded failed, the credit note stands.
    ws.advance(&clock, "2026-11-10T00:00:00Z").await;
    mock.fail_next(&[503, 503, 503, 503]);
    let (status, note) = ws
        .call(
            Method::POST,
            &format!("/v1/invoices/{id}/credit_notes"),
            Some(json!({"reason": "requested_by_customer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    let state = get(&ws, &format!("/v1/invoices/{id}/payments")).await;
    assert_eq!(state["refunds"][0]["status"], "failed", "{state}");
    let first_key = refund_posts(&mock).await[0].idempotency_key.clone();
    assert!(events_of(&ws, "payment.refunded", "back").await.is_empty());
    let clean = get(&ws, "/v1/payments/reconciliation").await;
    assert_eq!(clean["differences"], json!([]), "{clean}");

    // The first retry, an hour later, fails too; the second, four hours after that, succeeds.
    mock.fail_next(&[503, 503, 503, 503]);
    ws.advance(&clock, "2026-11-10T01:00:01Z").await;
    let state = get(&ws, &format!("/v1/invoices/{id}/payments")).await;
    assert_eq!(state["refunds"][0]["status"], "failed", "{state}");
    assert_eq!(refund_posts(&mock).await.len(), 8);
    ws.advance(&clock, "2026-11-10T05:00:02Z").await;
    let state = get(&ws, &format!("/v1/invoices/{id}/payments")).await;
    assert_eq!(state["refunds"].as_array().unwrap().len(), 1, "{state}");
    assert_eq!(state["refunds"][0]["status"], "succeeded", "{state}");
    assert!(
        state["refunds"][0]["provider_refund"]
            .as_str()
            .unwrap()
            .starts_with("re_")
    );
    let posts = refund_posts(&mock).await;
    assert_eq!(posts.len(), 9, "one more call, then nothing");
    assert_ne!(posts[4].idempotency_key, first_key, "a retry is a new key");
    assert_ne!(posts[8].idempotency_key, posts[4].idempotency_key);
    assert_eq!(posts[8].field("payment_intent"), Some(intent.as_str()));
    assert_eq!(posts[8].field("amount"), Some("2000"));
    let refunded = events_of(&ws, "payment.refunded", "back").await;
    assert_eq!(refunded.len(), 1, "{refunded:#?}");
    assert_eq!(refunded[0]["data"]["attempt"], 2);
    let invoice = get(&ws, &format!("/v1/invoices/{id}")).await;
    assert_eq!(invoice["refund_status"], "refunded");
    // No more retries: later jobs find it refunded.
    ws.advance(&clock, "2026-11-13T00:00:00Z").await;
    assert_eq!(refund_posts(&mock).await.len(), 9);
    let agreed = get(&ws, "/v1/payments/reconciliation").await;
    assert_eq!(agreed["differences"], json!([]), "{agreed}");
    assert_eq!(agreed["tollgate_refunds"], 1);
    assert_eq!(agreed["provider_refunds"], 1);

    // A first attempt whose answer was lost had refunded: the retry adopts Stripe's refund
    // instead of refunding twice.
    let (clock2, id2) = paid_invoice(&ws, &mock, "lost", "2026-11-01T00:00:00Z", Card::Good).await;
    let intent2 = get(&ws, &format!("/v1/invoices/{id2}/payments")).await["data"][0]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    mock.fail_next(&[503, 503, 503, 503]);
    let (status, note2) = ws
        .call(
            Method::POST,
            &format!("/v1/invoices/{id2}/credit_notes"),
            Some(json!({"reason": "requested_by_customer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note2}");
    let lost = mock.insert(
        "refund",
        json!({"id": "re_lost_answer", "amount": 2000, "currency": "usd",
            "payment_intent": intent2, "status": "succeeded",
            "metadata": {"tollgate_credit_note": note2["id"]}}),
    );
    let before = refund_posts(&mock).await.len();
    ws.advance(&clock2, "2026-11-01T01:00:02Z").await;
    let state = get(&ws, &format!("/v1/invoices/{id2}/payments")).await;
    assert_eq!(state["refunds"][0]["status"], "succeeded", "{state}");
    assert_eq!(state["refunds"][0]["provider_refund"], lost["id"]);
    assert_eq!(
        refund_posts(&mock).await.len(),
        before,
        "nothing refunded twice"
    );

    // Reconciliation covers refunds and declines: a refund made in the Dashboard, a refund
    // Tollgate recorded that Stripe shows failed, a declined attempt that succeeded later.
    mock.insert(
        "refund",
        json!({"id": "re_dashboard", "amount": 500, "currency": "usd",
            "payment_intent": intent, "status": "succeeded", "metadata": {}}),
    );
    mock.update("re_lost_answer", json!({"status": "failed"}));
    let (_, id3) = paid_invoice(&ws, &mock, "late", "2026-11-01T00:00:00Z", Card::Declining).await;
    let declined = get(&ws, &format!("/v1/invoices/{id3}/payments")).await;
    assert_eq!(declined["data"][0]["status"], "failed", "{declined}");
    let intent3 = declined["data"][0]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    mock.update(&intent3, json!({"status": "succeeded"}));
    let found = get(&ws, "/v1/payments/reconciliation").await;
    let mut kinds: Vec<(String, String, Option<String>)> = found["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_owned(),
                d["payment_intent"].as_str().unwrap().to_owned(),
                d["refund"].as_str().map(str::to_owned),
            )
        })
        .collect();
    kinds.sort();
    let mut want = vec![
        (
            "failed_but_succeeded_at_provider".to_owned(),
            intent3.clone(),
            None,
        ),
        (
            "refund_missing_at_provider".to_owned(),
            intent2.clone(),
            Some("re_lost_answer".to_owned()),
        ),
        (
            "refund_missing_in_tollgate".to_owned(),
            intent.clone(),
            Some("re_dashboard".to_owned()),
        ),
    ];
    want.sort();
    assert_eq!(kinds, want, "{found}");
}
backend_tests!(
    a_failed_refund_is_retried_with_backoff_and_reconciliation_covers_refunds_and_declines
);

/// Off-session, Stripe declines a charge the bank wants authenticated with
/// `authentication_required` (and announces `payment_intent.payment_failed`): not a decline
/// for dunning either. Without a page from Stripe, the operator sends a payment link, where
/// Checkout asks for the authentication; paying it pays the invoice once.
async fn authentication_required_is_no_decline_and_a_payment_link_settles_it(backend: Backend) {
    let (server, mock) = server_with_stripe(backend).await;
    let ws = server.workspace_with("3ds-decline", CATALOG).await;
    connect_stripe(&ws).await;
    let (clock, _) = carded_customer(
        &ws,
        &mock,
        "strict",
        "2026-11-01T00:00:00Z",
        Card::AuthenticationRequired,
    )
    .await;
    ws.post("/v1/customers/strict/subscriptions", json!({"plan": "pro"}))
        .await;
    let id = invoices(&ws, "strict").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.advance(&clock, "2026-11-01T00:00:01Z").await;
    let answers = deliver_all(&ws, &mock).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].2["type"], "payment_intent.payment_failed");
    assert_eq!(answers[0].1, 200, "{}", answers[0].2);
    let state = get(&ws, &format!("/v1/invoices/{id}/payments")).await;
    assert_eq!(state["invoice_status"], "open", "{state}");
    assert_eq!(state["data"], json!([]), "no failed payment: {state}");
    assert_eq!(state["dunning"], Value::Null);
    assert_eq!(subscription(&ws, "strict").await["status"], "active");
    let required = events_of(&ws, "payment.action_required", "strict").await;
    assert_eq!(
        required.len(),
        1,
        "once, charge and webhook together: {required:#?}"
    );
    assert_eq!(required[0]["data"]["url"], Value::Null);
    let invoice = get(&ws, &format!("/v1/invoices/{id}")).await;
    assert_eq!(invoice.get("payment_url"), None, "{invoice}");

    let (status, link) = ws
        .call(
            Method::POST,
            &format!("/v1/invoices/{id}/payment_link"),
            Some(json!({"success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(
        get(&ws, &format!("/v1/invoices/{id}")).await["payment_url"],
        link["url"]
    );
    let waiting = required[0]["data"]["reference"].as_str().unwrap();
    assert_eq!(
        mock.object(waiting)["status"],
        "requires_payment_method",
        "no page was stored for it, so nothing to close"
    );
    mock.pay_checkout(link["reference"].as_str().unwrap());
    for (event, status, body) in deliver_all(&ws, &mock).await {
        assert_eq!(status, 200, "{event}: {body}");
    }
    let state = get(&ws, &format!("/v1/invoices/{id}/payments")).await;
    assert_eq!(state["invoice_status"], "paid", "{state}");
    assert_eq!(state["data"].as_array().unwrap().len(), 1);
    assert_eq!(events_of(&ws, "invoice.paid", "strict").await.len(), 1);
    assert!(events_of(&ws, "payment.failed", "strict").await.is_empty());
}
backend_tests!(authentication_required_is_no_decline_and_a_payment_link_settles_it);
