//! Customers end to end against a real server on SQLite and PostgreSQL: self-serve signup in
//! one call (Lexecon 1 and 5), updates (`PATCH`), archiving (`DELETE`), and the timestamps a
//! customer on a test clock sees coming from its clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{Backend, TestServer, Workspace, backend_tests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_core::ids::WorkspaceId;

async fn signup(ws: &Workspace<'_>, body: Value) -> (StatusCode, Value) {
    ws.call(Method::POST, "/v1/signups", Some(body)).await
}

async fn get(ws: &Workspace<'_>, path: &str) -> Value {
    let (status, body) = ws.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    // A list answers one page, `{data, has_more}`: its items (the tests' lists fit a page).
    match body.get("data") {
        Some(items) if body.get("has_more") == Some(&Value::Bool(false)) => items.clone(),
        _ => body,
    }
}

async fn bill_run(ws: &Workspace<'_>) -> Value {
    let report = ws.post("/v1/bill_runs", json!({})).await;
    assert_eq!(report["errors"], json!([]), "{report}");
    report
}

/// Lexecon 1: one call makes the customer, its trial on `startup` and its first key; the secret
/// is in that answer only (not in the key list, not in a replay under the same
/// `Idempotency-Key`, not in the store) and works at once.
async fn lexecon_1_signup_in_one_call_shows_the_secret_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("lexecon.yaml").await;
    let request = json!({"id": "acme", "name": "Acme", "email": "ops@acme.test", "plan": "startup", "key_name": "prod"});
    let send = || {
        server
            .http
            .post(format!("{}/v1/signups", server.base))
            .bearer_auth(&ws.key)
            .header("Idempotency-Key", "signup-acme-1")
            .json(&request)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["customer"]["id"], "acme");
    assert_eq!(body["customer"]["email"], "ops@acme.test");
    assert_eq!(body["subscription"]["plan"], "startup");
    assert_eq!(body["subscription"]["status"], "trialing");
    assert_eq!(body["key"]["name"], "prod");
    let secret = body["key"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tg_live_"), "{secret}");

    // The key works at once.
    let (status, decision) = server
        .call(
            &secret,
            Method::POST,
            "/v1/check",
            Some(json!({"meter": "decisions"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    assert_eq!(decision["allowed"], true, "{decision}");

    // A retry with the same key is the same signup, answered again without the secret.
    let replay = send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let again: Value = replay.json().await.unwrap();
    assert_eq!(again["key"]["id"], body["key"]["id"]);
    assert_eq!(again["subscription"]["id"], body["subscription"]["id"]);
    assert!(again["key"].get("secret").is_none(), "{again}");
    assert!(!again.to_string().contains(&secret[12..]));
    let customers = get(&ws, "/v1/customers").await;
    assert_eq!(customers.as_array().unwrap().len(), 1, "{customers}");
    let subs = get(&ws, "/v1/customers/acme/subscriptions").await;
    assert_eq!(subs.as_array().unwrap().len(), 1, "{subs}");

    // Never shown again, stored only as a hash (the key row and the kept idempotent answer).
    let keys = get(&ws, "/v1/customers/acme/keys").await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["prefix"], secret[..12]);
    assert!(keys[0].get("secret").is_none());
    let store = server.server.as_ref().unwrap().state.engine.store().clone();
    let stored = store
        .find_api_key(&tollgate_server::auth::hash_secret(&secret))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !serde_json::to_string(&stored)
            .unwrap()
            .contains(&secret[12..])
    );
    let now = jiff::Timestamp::now();
    let kept = store
        .claim_idempotency_key(
            &WorkspaceId::from(ws.id.as_str()),
            "admin:signup-acme-1",
            "another request",
            now,
            now - jiff::SignedDuration::from_hours(24),
        )
        .await
        .unwrap()
        .unwrap();
    let kept_body = kept.body.unwrap();
    assert!(kept_body.contains("\"key\""), "{kept_body}");
    assert!(
        !kept_body.contains(&secret[12..]),
        "the kept answer holds the secret"
    );

    // A taken id is refused and writes nothing: no second key, no second subscription.
    let (status, problem) = signup(&ws, json!({"id": "acme", "plan": "startup"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "already_exists");
    assert_eq!(
        get(&ws, "/v1/customers/acme/keys")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A plan that does not exist, a bad email: refused before anything is written.
    let (status, problem) = signup(&ws, json!({"id": "b", "plan": "nope"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "unknown_plan");
    let (status, problem) = signup(
        &ws,
        json!({"id": "b", "plan": "startup", "email": "not-an-email"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "invalid_email");
    let (status, _) = ws.call(Method::GET, "/v1/customers/b", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Only an admin key signs customers up.
    let (status, problem) = server
        .call(
            &secret,
            Method::POST,
            "/v1/signups",
            Some(json!({"plan": "startup"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
}
backend_tests!(lexecon_1_signup_in_one_call_shows_the_secret_once);

/// Lexecon 5 through the signup: on a test clock at 2026-11-03T10:00Z the trial ends
/// 2026-11-17T10:00Z; decisions in the trial (made with the signup's key) are not charged;
/// the first charge is the base fee at the trial end.
async fn lexecon_5_signup_trial_is_free_and_the_first_charge_is_at_trial_end(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("lexecon.yaml").await;
    let clock = ws.test_clock("2026-11-03T10:00:00Z").await;
    let (status, body) = signup(
        &ws,
        json!({"id": "t", "plan": "startup", "test_clock": clock}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["subscription"]["status"], "trialing");
    assert_eq!(body["subscription"]["trial_end"], "2026-11-17T10:00:00Z");
    assert_eq!(body["subscription"]["started_at"], "2026-11-03T10:00:00Z");
    // Every timestamp of the signup is on the customer's clock.
    assert_eq!(body["customer"]["created_at"], "2026-11-03T10:00:00Z");
    assert_eq!(body["key"]["created_at"], "2026-11-03T10:00:00Z");
    let secret = body["key"]["secret"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        let (status, d) = server
            .call(
                &secret,
                Method::POST,
                "/v1/check",
                Some(json!({"meter": "decisions", "quantity": 1000, "consume": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{d}");
        assert_eq!(d["allowed"], true, "{d}");
    }
    ws.advance(&clock, "2026-11-17T09:59:59Z").await;
    assert_eq!(
        bill_run(&ws).await["invoices_created"],
        0,
        "nothing is billed during the trial"
    );
    ws.advance(&clock, "2026-11-17T10:00:00Z").await;
    bill_run(&ws).await;
    let invoices = get(&ws, "/v1/customers/t/invoices").await;
    let invoices = invoices.as_array().unwrap();
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    assert_eq!(invoices[0]["total"], "99.00", "the base fee, no decisions");
    assert_eq!(invoices[0]["created_at"], "2026-11-17T10:00:00Z");
}
backend_tests!(lexecon_5_signup_trial_is_free_and_the_first_charge_is_at_trial_end);

/// `PATCH /v1/customers/{id}`: each field changes alone, `null` clears, lists and metadata are
/// replaced whole; a bad value is a 400 with its own code and changes nothing.
async fn patch_updates_the_given_fields_and_refuses_bad_ones(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("lexecon.yaml").await;
    let key = ws.customer("c", "startup", None, false).await;
    let patch = |body: Value| ws.call(Method::PATCH, "/v1/customers/c", Some(body));

    let (status, c) = patch(json!({
        "name": "Acme SAS",
        "email": "billing@acme.test",
        "address": {"line1": "1 rue de la Paix", "city": "Paris", "postal_code": "75002", "country": "FR"},
        "tax_ids": [{"type": "eu_vat", "value": "FR12345678901"}],
        "metadata": {"crm": "42"},
        "has_payment_method": true
    }))
    .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    let stored = get(&ws, "/v1/customers/c").await;
    assert_eq!(stored, c);
    assert_eq!(stored["name"], "Acme SAS");
    assert_eq!(stored["email"], "billing@acme.test");
    assert_eq!(stored["address"]["country"], "FR");
    assert_eq!(stored["address"]["city"], "Paris");
    assert_eq!(
        stored["tax_ids"],
        json!([{"type": "eu_vat", "value": "FR12345678901"}])
    );
    assert_eq!(stored["metadata"], json!({"crm": "42"}));
    assert_eq!(stored["has_payment_method"], true);
    assert_eq!(stored["archived_at"], Value::Null);

    // Only what is given changes; null clears.
    let (status, c) = patch(json!({"email": null, "address": null})).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["name"], "Acme SAS");
    assert_eq!(c["email"], Value::Null);
    assert_eq!(c["address"], Value::Null);
    assert_eq!(c["tax_ids"].as_array().unwrap().len(), 1);
    assert_eq!(c["has_payment_method"], true);

    for (body, code) in [
        (json!({"email": "no-at-sign"}), "invalid_email"),
        (json!({"name": ""}), "invalid_name"),
        (json!({"address": {"country": "France"}}), "invalid_address"),
        (
            json!({"tax_ids": [{"type": "EU VAT", "value": "x"}]}),
            "invalid_tax_id",
        ),
        (json!({"metadata": {"": 1}}), "invalid_metadata"),
    ] {
        let (status, problem) = patch(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(problem["code"], code, "{body}: {problem}");
    }
    let (status, problem) = patch(json!({"colour": "red"})).await;
    assert!(
        status.is_client_error(),
        "an unknown field: {status} {problem}"
    );
    let (status, problem) = patch(json!({"address": {"planet": "Mars"}})).await;
    assert!(
        status.is_client_error(),
        "an unknown address field: {status} {problem}"
    );
    assert_eq!(
        get(&ws, "/v1/customers/c").await["name"],
        "Acme SAS",
        "nothing changed"
    );

    // A customer's own key may not change it; an unknown customer is 404.
    let (status, _) = server
        .call(
            &key,
            Method::PATCH,
            "/v1/customers/c",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, problem) = ws
        .call(
            Method::PATCH,
            "/v1/customers/zz",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
}
backend_tests!(patch_updates_the_given_fields_and_refuses_bad_ones);

/// `DELETE /v1/customers/{id}` archives: keys revoked (401), checks denied with
/// `customer_archived`, events refused, the subscription ended at once on the customer's clock,
/// changes refused; invoices and usage stay readable; archiving again changes nothing.
async fn archive_revokes_keys_ends_subscriptions_and_keeps_invoices(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("lexecon.yaml").await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    let key = ws.customer("gone", "startup", Some(&clock), false).await;
    let other = ws.customer("stays", "startup", None, false).await;
    let d = ws
        .check(json!({"customer": "gone", "meter": "decisions", "quantity": 1200, "consume": true}))
        .await;
    assert_eq!(d["allowed"], true, "{d}");
    bill_run(&ws).await;
    let invoices_before = get(&ws, "/v1/customers/gone/invoices").await;
    assert_eq!(
        invoices_before.as_array().unwrap().len(),
        1,
        "{invoices_before}"
    );

    ws.advance(&clock, "2026-11-10T12:00:00Z").await;
    let (status, archived) = ws.call(Method::DELETE, "/v1/customers/gone", None).await;
    assert_eq!(status, StatusCode::OK, "{archived}");
    assert_eq!(archived["archived_at"], "2026-11-10T12:00:00Z");

    // Keys: refused at once, listed as revoked at the archive time.
    let (status, _) = server
        .call(
            &key,
            Method::POST,
            "/v1/check",
            Some(json!({"meter": "decisions"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let keys = get(&ws, "/v1/customers/gone/keys").await;
    assert_eq!(keys[0]["revoked_at"], "2026-11-10T12:00:00Z");
    // Checks through the admin key: denied with a stable reason.
    let d = ws
        .check(json!({"customer": "gone", "meter": "decisions"}))
        .await;
    assert_eq!(d["allowed"], false, "{d}");
    assert_eq!(d["reason"], "customer_archived", "{d}");
    // Events: refused one by one with the same code.
    let (status, report) = ws
        .events(json!([{"id": "late-1", "customer": "gone", "type": "decision.evaluated"}]))
        .await;
    assert!(status.is_success() || status.is_client_error(), "{report}");
    assert_eq!(
        report["results"][0]["code"], "customer_archived",
        "{report}"
    );
    // The subscription ended at the archive time, on the customer's clock.
    let subs = get(&ws, "/v1/customers/gone/subscriptions").await;
    assert_eq!(subs[0]["status"], "canceled", "{subs}");
    assert_eq!(subs[0]["ends_at"], "2026-11-10T12:00:00Z", "{subs}");
    // What it had stays readable.
    assert_eq!(
        get(&ws, "/v1/customers/gone/invoices").await,
        invoices_before
    );
    let usage = get(&ws, "/v1/customers/gone/usage?at=2026-11-05T00:00:00Z").await;
    assert!(usage.to_string().contains("1200"), "{usage}");
    // Changes are refused with a stable code.
    for (method, path, body) in [
        (Method::PATCH, "/v1/customers/gone", json!({"name": "x"})),
        (Method::POST, "/v1/customers/gone/keys", json!({})),
        (
            Method::POST,
            "/v1/customers/gone/subscriptions",
            json!({"plan": "startup"}),
        ),
        (Method::POST, "/v1/customers/gone/suspend", json!({})),
    ] {
        let (status, problem) = ws.call(method.clone(), path, Some(body)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{method} {path}: {problem}");
        assert_eq!(problem["code"], "customer_archived", "{method} {path}");
    }
    // Archiving again answers the same archive.
    ws.advance(&clock, "2026-11-20T00:00:00Z").await;
    let (status, again) = ws.call(Method::DELETE, "/v1/customers/gone", None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["archived_at"], "2026-11-10T12:00:00Z");
    // Another customer is untouched.
    let (status, d) = server
        .call(
            &other,
            Method::POST,
            "/v1/check",
            Some(json!({"meter": "decisions"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["allowed"], true, "{d}");
    let (status, _) = ws.call(Method::DELETE, "/v1/customers/nobody", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
backend_tests!(archive_revokes_keys_ends_subscriptions_and_keeps_invoices);

/// A customer on a test clock sees its clock's time on everything made for it: keys made and
/// revoked, invoices paid, credit notes, prepaid credit.
async fn timestamps_of_a_customer_on_a_test_clock_come_from_its_clock(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("lexecon.yaml").await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.customer("c", "startup", Some(&clock), false).await;
    bill_run(&ws).await;
    ws.advance(&clock, "2026-11-05T08:30:00Z").await;
    let key = ws.post("/v1/customers/c/keys", json!({})).await;
    assert_eq!(key["created_at"], "2026-11-05T08:30:00Z");
    let revoked = ws
        .post(
            &format!(
                "/v1/customers/c/keys/{}/revoke",
                key["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(revoked["revoked_at"], "2026-11-05T08:30:00Z");
    let invoice = get(&ws, "/v1/customers/c/invoices").await[0].clone();
    let id = invoice["id"].as_str().unwrap();
    let paid = ws.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
    assert_eq!(paid["paid_at"], "2026-11-05T08:30:00Z", "{paid}");
    ws.advance(&clock, "2026-11-06T09:00:00Z").await;
    let note = ws
        .post(
            &format!("/v1/invoices/{id}/credit_notes"),
            json!({"amount": "10.00", "reason": "goodwill"}),
        )
        .await;
    assert_eq!(note["created_at"], "2026-11-06T09:00:00Z", "{note}");
}
backend_tests!(timestamps_of_a_customer_on_a_test_clock_come_from_its_clock);
