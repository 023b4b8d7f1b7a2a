//! Usage alerts and referrals end to end, on a real bound server, on SQLite and PostgreSQL, on
//! test clocks: Levqor case 4 (the outbox holds exactly the 80% and 100% alerts of a period,
//! and the next period starts clean) and Apex case 7 (a referred customer pays 20% less on its
//! first 3 invoices; its referrer's next invoice is free once it becomes paying).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{Backend, Workspace, backend_tests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn get(ws: &Workspace<'_>, path: &str) -> Value {
    let (status, body) = ws.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

static NEXT_EVENT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn event_id() -> String {
    let n = NEXT_EVENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("evt_{n}")
}

/// `n` calls of `customer` now, in batches.
async fn calls(ws: &Workspace<'_>, customer: &str, n: usize) {
    let mut left = n;
    while left > 0 {
        let batch = left.min(5_000);
        let events: Vec<Value> = (0..batch)
            .map(|_| json!({"id": event_id(), "customer": customer, "type": "api.call"}))
            .collect();
        let (status, body) = ws.events(Value::Array(events)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["accepted"], batch, "{}", body["results"][0]);
        left -= batch;
    }
}

/// The `usage.alert` events of the customer, as (threshold, used, period start).
async fn alerts(ws: &Workspace<'_>, customer: &str) -> Vec<(String, String, String)> {
    get(
        ws,
        &format!("/v1/domain_events?type=usage.alert&customer={customer}&limit=100"),
    )
    .await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let d = &e["data"];
            (
                d["threshold_percent"].as_str().unwrap().to_owned(),
                d["used"].as_str().unwrap().to_owned(),
                d["period_start"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn alert(threshold: &str, used: &str, period: &str) -> (String, String, String) {
    (threshold.into(), used.into(), period.into())
}

async fn levqor_4_alerts_fire_once_per_threshold_per_period(backend: Backend) {
    let server = common::TestServer::start(backend).await;
    let ws = server.workspace("levqor.yaml").await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.customer("dev", "developer", Some(&clock), false).await;
    ws.advance(&clock, "2026-11-10T00:00:00Z").await;
    let nov = "2026-11-01T00:00:00Z";

    calls(&ws, "dev", 7_999).await;
    assert_eq!(alerts(&ws, "dev").await, vec![]);
    // The 8,000th call is a consuming check: it sends the 80% alert.
    let checked = ws
        .check(json!({"customer": "dev", "meter": "api_calls", "consume": true}))
        .await;
    assert_eq!(checked["allowed"], true, "{checked}");
    assert_eq!(alerts(&ws, "dev").await, vec![alert("80", "8000", nov)]);
    // The 8,001st sends nothing.
    calls(&ws, "dev", 1).await;
    assert_eq!(alerts(&ws, "dev").await, vec![alert("80", "8000", nov)]);
    calls(&ws, "dev", 1_998).await;
    assert_eq!(
        alerts(&ws, "dev").await.len(),
        1,
        "9,999 calls: still 80% only"
    );
    // The 10,000th sends the 100% one; more calls send nothing more.
    calls(&ws, "dev", 1).await;
    let both = vec![alert("80", "8000", nov), alert("100", "10000", nov)];
    assert_eq!(alerts(&ws, "dev").await, both);
    calls(&ws, "dev", 2_500).await;
    assert_eq!(alerts(&ws, "dev").await, both);

    // The next period starts clean: its 8,000th call alerts again, once.
    ws.advance(&clock, "2026-12-02T00:00:00Z").await;
    calls(&ws, "dev", 7_999).await;
    assert_eq!(alerts(&ws, "dev").await, both);
    calls(&ws, "dev", 2).await;
    let dec = alert("80", "8000", "2026-12-01T00:00:00Z");
    let mut all = both.clone();
    all.push(dec);
    let got = alerts(&ws, "dev").await;
    // The event says the value the alert saw, which is 8,000 or 8,001 (one batch of two).
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((&got[2].0, &got[2].2), (&all[2].0, &all[2].2));
    assert_eq!(got[..2], both[..]);

    // Another customer of the workspace is not alerted by this one's usage.
    ws.customer("other", "developer", Some(&clock), false).await;
    assert_eq!(alerts(&ws, "other").await, vec![]);
}

/// The customer's invoices, oldest first, as (period start, total).
async fn totals(ws: &Workspace<'_>, customer: &str) -> Vec<(String, String)> {
    let body = get(ws, &format!("/v1/customers/{customer}/invoices?limit=100")).await;
    let mut list: Vec<(String, String)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["period_start"].as_str().unwrap_or_default().to_owned(),
                i["total"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    list.sort();
    list
}

async fn spend(ws: &Workspace<'_>, customer: &str, amount: &str) {
    let (status, body) = ws
        .events(json!([{"id": event_id(), "customer": customer, "type": "cloud.cost", "properties": {"amount_usd": amount}}]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 1, "{body}");
}

async fn apex_7_referral_discounts_three_invoices_and_rewards_the_referrer(backend: Backend) {
    let server = common::TestServer::start(backend).await;
    let ws = server.workspace("apex.yaml").await;
    let clock = ws.test_clock("2026-10-25T00:00:00Z").await;
    // The referrer: paying on `early` (trial ended, payment method on file).
    ws.post(
        "/v1/signups",
        json!({"id": "referrer", "plan": "early", "has_payment_method": true, "test_clock": clock}),
    )
    .await;
    let code = get(&ws, "/v1/customers/referrer/referral").await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(code.len(), 8);
    // Asking again gives the same code.
    assert_eq!(
        get(&ws, "/v1/customers/referrer/referral").await["code"],
        code.as_str()
    );

    // A code no one holds is refused, and nothing is created.
    let (status, body) = ws
        .call(
            Method::POST,
            "/v1/signups",
            Some(json!({"id": "nobody", "plan": "early", "referral_code": "ZZZZZZZZ", "test_clock": clock})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "unknown_referral_code");
    let (status, _) = ws.call(Method::GET, "/v1/customers/nobody", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    ws.advance(&clock, "2026-11-01T00:00:00Z").await;
    ws.post(
        "/v1/signups",
        json!({"id": "referred", "plan": "early", "has_payment_method": true,
               "referral_code": code, "test_clock": clock}),
    )
    .await;
    let referral = get(&ws, "/v1/customers/referrer/referral").await;
    assert_eq!(referral["referred"][0]["customer"], "referred");
    assert_eq!(referral["referred"][0]["rewarded_at"], Value::Null);
    assert_eq!(
        get(&ws, "/v1/customers/referred/referral").await["referred_by"],
        "referrer"
    );

    // Four months of AI spend past the trial (7 days), each capped at $99.00.
    let months = [
        ("2026-11-10T00:00:00Z", "2026-12-01T00:00:05Z"),
        ("2026-12-10T00:00:00Z", "2027-01-01T00:00:05Z"),
        ("2027-01-10T00:00:00Z", "2027-02-01T00:00:05Z"),
        ("2027-02-10T00:00:00Z", "2027-03-01T00:00:05Z"),
    ];
    for (i, (mid, end)) in months.iter().enumerate() {
        ws.advance(&clock, mid).await;
        spend(&ws, "referred", "10000.00").await;
        spend(&ws, "referrer", "10000.00").await;
        ws.advance(&clock, end).await;
        if i == 0 {
            // The referred customer pays its first invoice: it becomes paying.
            let body = get(&ws, "/v1/customers/referred/invoices?limit=100").await;
            let first = body["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["total"] != "0.00")
                .unwrap()
                .clone();
            assert_eq!(first["total"], "79.20", "{first}");
            let id = first["id"].as_str().unwrap();
            ws.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
            // Paying again is refused by the invoice's state machine; the reward stays one.
            let (status, _) = ws
                .call(
                    Method::POST,
                    &format!("/v1/invoices/{id}/pay"),
                    Some(json!({})),
                )
                .await;
            assert_eq!(status, StatusCode::CONFLICT);
        }
    }
    let referred: Vec<String> = totals(&ws, "referred")
        .await
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t != "0.00")
        .collect();
    assert_eq!(referred, vec!["79.20", "79.20", "79.20", "99.00"]);

    let rewarded = get(&ws, "/v1/customers/referrer/referral").await;
    assert_ne!(
        rewarded["referred"][0]["rewarded_at"],
        Value::Null,
        "{rewarded}"
    );
    let events = get(
        &ws,
        "/v1/domain_events?type=referral.rewarded&customer=referrer&limit=100",
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "{events}");
    // The referrer: $99.00 for November (paid before the reward; its November has an empty
    // opening invoice too, from the end of its trial), then its next invoice free (December),
    // then $99.00 again.
    let referrer: Vec<(String, String)> = totals(&ws, "referrer")
        .await
        .into_iter()
        .filter(|(start, _)| start.as_str() >= "2026-11-01")
        .map(|(start, total)| (start[..10].to_owned(), total))
        .collect();
    let expected: Vec<(String, String)> = [
        ("2026-11-01", "0.00"),
        ("2026-11-01", "99.00"),
        ("2026-12-01", "0.00"),
        ("2027-01-01", "99.00"),
        ("2027-02-01", "99.00"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(referrer, expected);
}

backend_tests!(
    levqor_4_alerts_fire_once_per_threshold_per_period,
    apex_7_referral_discounts_three_invoices_and_rewards_the_referrer,
);
