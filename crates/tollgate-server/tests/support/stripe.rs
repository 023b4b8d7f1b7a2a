//! A local Stripe-shaped server for the payment tests: it answers the endpoints Tollgate's
//! Stripe provider calls with Stripe's own sample objects (`fixtures3.json`, the file Stripe's
//! mock server answers with, read from `../shared/stripe/` at test time and never copied into
//! the project), changing ids, amounts and statuses per request. It keeps state (customers,
//! Checkout Sessions, SetupIntents, payment methods, PaymentIntents, refunds), replays an
//! answer for a repeated `Idempotency-Key`, can be told to decline a card or to fail the next
//! calls with 429/5xx, and queues the webhook events Stripe would send, which the test
//! delivers, signed as Stripe signs them (`Stripe-Signature: t=...,v1=HMAC-SHA256`).
//! For Stripe as the biller it keeps Products (made with the caller's id), Prices (unique
//! lookup keys, moved by `transfer_lookup_key`, immutable but for `active`), Billing Meters
//! (unique `event_name`) and the meter events received (one per `identifier`: a second one is
//! refused as Stripe refuses it). Every request's `Stripe-Version` is recorded.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

/// The webhook signing secret of the mock's endpoint.
pub const WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdefghijklmnop";
pub const SECRET_KEY: &str = "sk_test_tollgate_mock_4242";

/// Where Stripe's sample objects are: `STRIPE_FIXTURES`, else `../shared/stripe/fixtures3.json`
/// beside the repository.
pub fn fixtures_path() -> String {
    std::env::var("STRIPE_FIXTURES").unwrap_or_else(|_| {
        format!(
            "{}/../../../shared/stripe/fixtures3.json",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

/// Stripe's sample resources (`resources` of fixtures3.json), by object name.
pub fn fixtures() -> BTreeMap<String, Value> {
    let path = fixtures_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("Stripe's fixtures3.json is needed at {path} (or set STRIPE_FIXTURES): {e}")
    });
    let all: Value = serde_json::from_str(&text).expect("fixtures3.json is JSON");
    serde_json::from_value(all["resources"].clone()).expect("fixtures3.json has resources")
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
    pub stripe_version: Option<String>,
    pub form: Vec<(String, String)>,
}

impl Seen {
    pub fn field(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    seq: u64,
    objects: BTreeMap<String, Value>,
    declining: std::collections::BTreeSet<String>,
    /// Payment methods whose charges wait for 3-D Secure (`requires_action`).
    authenticating: std::collections::BTreeSet<String>,
    /// Payment methods whose off-session charges Stripe declines `authentication_required`.
    auth_declined: std::collections::BTreeSet<String>,
    answered: BTreeMap<String, (u16, Value)>,
    seen: Vec<Seen>,
    events: Vec<Value>,
    fail_next: Vec<u16>,
    /// Meter events received, in order (one per identifier).
    meter_events: Vec<Value>,
}

pub struct Mock {
    fixtures: BTreeMap<String, Value>,
    inner: Mutex<Inner>,
    base: String,
}

pub struct StripeMock {
    pub addr: SocketAddr,
    /// What Tollgate's `PaymentsConfig::stripe_api_base` is set to.
    pub base: String,
    pub state: Arc<Mock>,
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Mock {
    fn next(&self, inner: &mut Inner, prefix: &str) -> String {
        inner.seq += 1;
        format!("{prefix}_mock{:04}", inner.seq)
    }

    /// A sample object of `kind` with `fields` set over it.
    fn sample(&self, kind: &str, fields: Value) -> Value {
        let mut object = self.fixtures[kind].clone();
        if let (Some(o), Some(f)) = (object.as_object_mut(), fields.as_object()) {
            for (k, v) in f {
                o.insert(k.clone(), v.clone());
            }
        }
        object
    }

    fn queue_event(&self, inner: &mut Inner, kind: &str, object: Value) {
        let id = self.next(inner, "evt");
        let event = self.sample(
            "event",
            json!({"id": id, "type": kind, "created": now(), "data": {"object": object}}),
        );
        inner.events.push(event);
    }
}

fn metadata(form: &[(String, String)], prefix: &str) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in form {
        if let Some(key) = k
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
        {
            map.insert(key.to_owned(), Value::String(v.clone()));
        }
    }
    Value::Object(map)
}

fn version(headers: &HeaderMap) -> Option<String> {
    headers
        .get("stripe-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Records a GET (lists included).
fn seen_get(inner: &mut Inner, uri: &axum::http::Uri, headers: &HeaderMap) {
    inner.seen.push(Seen {
        method: "GET".into(),
        path: uri.path().to_owned(),
        idempotency_key: None,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        stripe_version: version(headers),
        form: Vec::new(),
    });
}

fn refused(code: &str, message: String) -> (u16, Value) {
    (
        400,
        json!({"error": {"type": "invalid_request_error", "code": code, "message": message}}),
    )
}

fn create_product(m: &Mock, inner: &mut Inner, _: &str, form: &[(String, String)]) -> (u16, Value) {
    let id = field(form, "id").map_or_else(|| m.next(inner, "prod"), str::to_owned);
    if inner.objects.contains_key(&id) {
        return refused(
            "resource_already_exists",
            format!("Product already exists: {id}"),
        );
    }
    let product = m.sample(
        "product",
        json!({"id": id, "name": field(form, "name"), "active": true, "default_price": null,
            "description": null, "metadata": metadata(form, "metadata"), "created": now()}),
    );
    inner.objects.insert(id, product.clone());
    (200, product)
}

fn update_product(
    _: &Mock,
    inner: &mut Inner,
    path: &str,
    form: &[(String, String)],
) -> (u16, Value) {
    let id = path.trim_start_matches("/v1/products/");
    let Some(product) = inner.objects.get_mut(id) else {
        return not_found(id);
    };
    if let Some(name) = field(form, "name") {
        product["name"] = json!(name);
    }
    if let Some(active) = field(form, "active") {
        product["active"] = json!(active == "true");
    }
    (200, product.clone())
}

fn create_price(m: &Mock, inner: &mut Inner, _: &str, form: &[(String, String)]) -> (u16, Value) {
    let product = field(form, "product").unwrap_or_default().to_owned();
    if !inner.objects.contains_key(&product) {
        return not_found(&product);
    }
    let lookup_key = field(form, "lookup_key").map(str::to_owned);
    if let Some(key) = &lookup_key {
        let holder = inner
            .objects
            .iter()
            .find(|(id, o)| id.starts_with("price_") && o["lookup_key"] == key.as_str())
            .map(|(id, _)| id.clone());
        if let Some(holder) = holder {
            if field(form, "transfer_lookup_key") != Some("true") {
                return refused(
                    "lookup_key_in_use",
                    format!("A price ({holder}) already uses that lookup key."),
                );
            }
            inner.objects.get_mut(&holder).unwrap()["lookup_key"] = Value::Null;
        }
    }
    if let Some(meter) = field(form, "recurring[meter]")
        && !inner.objects.contains_key(meter)
    {
        return not_found(meter);
    }
    let id = m.next(inner, "price");
    let tiered = field(form, "billing_scheme") == Some("tiered");
    let price = m.sample(
        "price",
        json!({"id": id, "product": product, "currency": field(form, "currency"),
            "active": true, "lookup_key": lookup_key, "nickname": field(form, "nickname"),
            "unit_amount": field(form, "unit_amount").map(|a| a.parse::<i64>().unwrap()),
            "unit_amount_decimal": field(form, "unit_amount_decimal")
                .or(field(form, "unit_amount")),
            "billing_scheme": if tiered { "tiered" } else { "per_unit" },
            "tiers_mode": field(form, "tiers_mode"),
            "transform_quantity": null,
            "recurring": {
                "interval": field(form, "recurring[interval]"),
                "interval_count": field(form, "recurring[interval_count]").map(|c| c.parse::<i64>().unwrap()),
                "usage_type": field(form, "recurring[usage_type]"),
                "meter": field(form, "recurring[meter]"),
                "trial_period_days": null},
            "metadata": metadata(form, "metadata"), "created": now()}),
    );
    inner.objects.insert(id, price.clone());
    (200, price)
}

fn update_price(
    _: &Mock,
    inner: &mut Inner,
    path: &str,
    form: &[(String, String)],
) -> (u16, Value) {
    let id = path.trim_start_matches("/v1/prices/");
    let Some(price) = inner.objects.get_mut(id) else {
        return not_found(id);
    };
    for (k, _) in form {
        if k != "active" && !k.starts_with("metadata") && k != "nickname" {
            return refused(
                "parameter_unknown",
                format!("Received unknown parameter: {k} (prices are immutable)"),
            );
        }
    }
    if let Some(active) = field(form, "active") {
        price["active"] = json!(active == "true");
    }
    (200, price.clone())
}

fn create_meter(m: &Mock, inner: &mut Inner, _: &str, form: &[(String, String)]) -> (u16, Value) {
    let event_name = field(form, "event_name").unwrap_or_default().to_owned();
    if inner
        .objects
        .values()
        .any(|o| o["object"] == "billing.meter" && o["event_name"] == event_name.as_str())
    {
        return refused(
            "resource_already_exists",
            format!("A meter with event_name {event_name} already exists."),
        );
    }
    let id = m.next(inner, "mtr");
    let meter = m.sample(
        "billing.meter",
        json!({"id": id, "event_name": event_name, "display_name": field(form, "display_name"),
            "status": "active", "livemode": false,
            "default_aggregation": {"formula": field(form, "default_aggregation[formula]")},
            "customer_mapping": {"type": field(form, "customer_mapping[type]"),
                "event_payload_key": field(form, "customer_mapping[event_payload_key]")},
            "value_settings": {"event_payload_key": field(form, "value_settings[event_payload_key]")},
            "created": now()}),
    );
    inner.objects.insert(id, meter.clone());
    (200, meter)
}

fn create_meter_event(
    m: &Mock,
    inner: &mut Inner,
    _: &str,
    form: &[(String, String)],
) -> (u16, Value) {
    let event_name = field(form, "event_name").unwrap_or_default();
    let active = inner.objects.values().any(|o| {
        o["object"] == "billing.meter" && o["event_name"] == event_name && o["status"] == "active"
    });
    if !active {
        return refused(
            "resource_missing",
            format!("No active meter found with event_name {event_name}"),
        );
    }
    let identifier = field(form, "identifier").unwrap_or_default();
    if inner
        .meter_events
        .iter()
        .any(|e| e["identifier"] == identifier)
    {
        return refused(
            "resource_already_exists",
            format!("An event already exists with identifier {identifier}"),
        );
    }
    let customer = field(form, "payload[stripe_customer_id]").unwrap_or_default();
    if !inner.objects.contains_key(customer) {
        return not_found(customer);
    }
    let event = m.sample(
        "billing.meter_event",
        json!({"event_name": event_name, "identifier": identifier,
            "payload": {"stripe_customer_id": customer, "value": field(form, "payload[value]")},
            "timestamp": field(form, "timestamp").map(|t| t.parse::<i64>().unwrap()),
            "created": now()}),
    );
    inner.meter_events.push(event.clone());
    (200, event)
}

/// `GET /v1/prices?lookup_keys[]=&active=`.
async fn list_prices(
    State(state): State<Arc<Mock>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<Vec<(String, String)>>,
) -> Response {
    let mut inner = state.inner.lock().unwrap();
    seen_get(&mut inner, &uri, &headers);
    let keys: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "lookup_keys[]")
        .map(|(_, v)| v.as_str())
        .collect();
    let active = query
        .iter()
        .find(|(k, _)| k == "active")
        .map(|(_, v)| v == "true");
    let data: Vec<&Value> = inner
        .objects
        .iter()
        .filter(|(id, _)| id.starts_with("price_"))
        .map(|(_, o)| o)
        .filter(|o| keys.is_empty() || keys.iter().any(|k| o["lookup_key"] == *k))
        .filter(|o| {
            query
                .iter()
                .find(|(k, _)| k == "product")
                .is_none_or(|(_, p)| o["product"] == p.as_str())
        })
        .filter(|o| active.is_none_or(|a| o["active"] == a))
        .collect();
    answer(
        200,
        json!({"object": "list", "url": "/v1/prices", "has_more": false, "data": data}),
    )
}

fn expire_session(_: &Mock, inner: &mut Inner, path: &str, _: &[(String, String)]) -> (u16, Value) {
    let id = path
        .trim_start_matches("/v1/checkout/sessions/")
        .trim_end_matches("/expire");
    let Some(session) = inner.objects.get_mut(id) else {
        return not_found(id);
    };
    if session["status"] != "open" {
        return refused(
            "checkout_session_not_open",
            format!("Only open sessions can be expired: {id}"),
        );
    }
    session["status"] = json!("expired");
    (200, session.clone())
}

fn cancel_intent(_: &Mock, inner: &mut Inner, path: &str, _: &[(String, String)]) -> (u16, Value) {
    let id = path
        .trim_start_matches("/v1/payment_intents/")
        .trim_end_matches("/cancel");
    let Some(intent) = inner.objects.get_mut(id) else {
        return not_found(id);
    };
    if intent["status"] == "succeeded" || intent["status"] == "canceled" {
        return refused(
            "payment_intent_unexpected_state",
            format!("This PaymentIntent's status is {}", intent["status"]),
        );
    }
    intent["status"] = json!("canceled");
    (200, intent.clone())
}

/// `GET /v1/refunds?payment_intent=&limit=`: newest first.
async fn list_refunds(
    State(state): State<Arc<Mock>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<BTreeMap<String, String>>,
) -> Response {
    let mut inner = state.inner.lock().unwrap();
    seen_get(&mut inner, &uri, &headers);
    let mut data: Vec<&Value> = inner
        .objects
        .iter()
        .filter(|(id, o)| id.starts_with("re_") || o["object"] == "refund")
        .map(|(_, o)| o)
        .filter(|o| {
            query
                .get("payment_intent")
                .is_none_or(|pi| o["payment_intent"] == pi.as_str())
        })
        .collect();
    data.reverse();
    answer(
        200,
        json!({"object": "list", "url": "/v1/refunds", "has_more": false, "data": data}),
    )
}

/// `GET /v1/billing/meters?status=`.
async fn list_meters(
    State(state): State<Arc<Mock>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let mut inner = state.inner.lock().unwrap();
    seen_get(&mut inner, &uri, &headers);
    let data: Vec<&Value> = inner
        .objects
        .values()
        .filter(|o| o["object"] == "billing.meter" && o["status"] == "active")
        .collect();
    answer(
        200,
        json!({"object": "list", "url": "/v1/billing/meters", "has_more": false, "data": data}),
    )
}

fn field<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn answer(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn not_found(id: &str) -> (u16, Value) {
    (
        404,
        json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
            "message": format!("No such object: '{id}'")}}),
    )
}

type Handler = fn(&Mock, &mut Inner, &str, &[(String, String)]) -> (u16, Value);

/// Every POST: recorded, failed on demand, replayed for a repeated idempotency key.
fn post_with(
    state: &Mock,
    headers: &HeaderMap,
    path: &str,
    body: &str,
    handler: Handler,
) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded_pairs(body);
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut inner = state.inner.lock().unwrap();
    inner.seen.push(Seen {
        method: "POST".into(),
        path: path.to_owned(),
        idempotency_key: key.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        stripe_version: version(headers),
        form: form.clone(),
    });
    if !inner.fail_next.is_empty() {
        let status = inner.fail_next.remove(0);
        return answer(
            status,
            json!({"error": {"type": "api_error", "message": "try again"}}),
        );
    }
    if let Some(key) = &key
        && let Some((status, body)) = inner.answered.get(key).cloned()
    {
        return answer(status, body);
    }
    let (status, body) = handler(state, &mut inner, path, &form);
    if let Some(key) = key {
        inner.answered.insert(key, (status, body.clone()));
    }
    answer(status, body)
}

/// Reads `a=b&c%5Bd%5D=e` (what Tollgate sends) into pairs.
fn serde_urlencoded_pairs(body: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn create_customer(
    m: &Mock,
    inner: &mut Inner,
    _: &str,
    form: &[(String, String)],
) -> (u16, Value) {
    let id = m.next(inner, "cus");
    let customer = m.sample(
        "customer",
        json!({"id": id, "email": field(form, "email"), "name": field(form, "name"),
            "metadata": metadata(form, "metadata"), "created": now()}),
    );
    inner.objects.insert(id, customer.clone());
    (200, customer)
}

fn update_customer(
    _: &Mock,
    inner: &mut Inner,
    path: &str,
    form: &[(String, String)],
) -> (u16, Value) {
    let id = path.trim_start_matches("/v1/customers/");
    let Some(customer) = inner.objects.get_mut(id) else {
        return not_found(id);
    };
    if let Some(pm) = field(form, "invoice_settings[default_payment_method]") {
        customer["invoice_settings"]["default_payment_method"] = json!(pm);
    }
    (200, customer.clone())
}

fn create_session(m: &Mock, inner: &mut Inner, _: &str, form: &[(String, String)]) -> (u16, Value) {
    let customer = field(form, "customer").unwrap_or_default().to_owned();
    if !inner.objects.contains_key(&customer) {
        return not_found(&customer);
    }
    if field(form, "mode") == Some("payment") {
        return create_payment_session(m, inner, &customer, form);
    }
    let seti = m.next(inner, "seti");
    let intent = m.sample(
        "setup_intent",
        json!({"id": seti, "customer": customer, "status": "requires_payment_method",
            "payment_method": null, "last_setup_error": null,
            "metadata": metadata(form, "setup_intent_data[metadata]")}),
    );
    inner.objects.insert(seti.clone(), intent);
    let id = m.next(inner, "cs_test");
    let session = m.sample(
        "checkout.session",
        json!({"id": id, "mode": field(form, "mode"), "customer": customer,
            "setup_intent": seti, "status": "open",
            "url": format!("{}/checkout/{id}", m.base),
            "success_url": field(form, "success_url"), "cancel_url": field(form, "cancel_url"),
            "metadata": metadata(form, "metadata")}),
    );
    inner.objects.insert(id, session.clone());
    (200, session)
}

/// A Checkout Session in payment mode: its PaymentIntent waits for the customer's card.
fn create_payment_session(
    m: &Mock,
    inner: &mut Inner,
    customer: &str,
    form: &[(String, String)],
) -> (u16, Value) {
    let amount: i64 = field(form, "line_items[0][price_data][unit_amount]")
        .unwrap_or("0")
        .parse()
        .unwrap();
    let currency = field(form, "line_items[0][price_data][currency]");
    let pi = m.next(inner, "pi");
    let intent = m.sample(
        "payment_intent",
        json!({"id": pi, "amount": amount, "amount_received": 0, "currency": currency,
            "customer": customer, "status": "requires_payment_method", "latest_charge": null,
            "last_payment_error": null, "next_action": null,
            "metadata": metadata(form, "payment_intent_data[metadata]"), "created": now()}),
    );
    inner.objects.insert(pi.clone(), intent);
    let id = m.next(inner, "cs_test");
    let session = m.sample(
        "checkout.session",
        json!({"id": id, "mode": "payment", "customer": customer, "setup_intent": null,
            "payment_intent": pi, "status": "open", "payment_status": "unpaid",
            "amount_total": amount, "amount_subtotal": amount, "currency": currency,
            "url": format!("{}/checkout/{id}", m.base),
            "success_url": field(form, "success_url"), "cancel_url": field(form, "cancel_url"),
            "line_items_seen": {"name": field(form, "line_items[0][price_data][product_data][name]")},
            "metadata": metadata(form, "metadata")}),
    );
    inner.objects.insert(id, session.clone());
    (200, session)
}

fn create_intent(m: &Mock, inner: &mut Inner, _: &str, form: &[(String, String)]) -> (u16, Value) {
    let amount: i64 = field(form, "amount").unwrap_or("0").parse().unwrap();
    let pm = field(form, "payment_method").unwrap_or_default().to_owned();
    if !inner.objects.contains_key(&pm) {
        return not_found(&pm);
    }
    let id = m.next(inner, "pi");
    if inner.authenticating.contains(&pm) {
        let intent = m.sample(
            "payment_intent",
            json!({"id": id, "amount": amount, "amount_received": 0,
                "currency": field(form, "currency"), "customer": field(form, "customer"),
                "payment_method": pm, "status": "requires_action", "latest_charge": null,
                "last_payment_error": null,
                "next_action": {"type": "redirect_to_url", "redirect_to_url":
                    {"url": format!("{}/3ds/{id}", m.base), "return_url": null}},
                "metadata": metadata(form, "metadata"), "created": now()}),
        );
        inner.objects.insert(id, intent.clone());
        m.queue_event(inner, "payment_intent.requires_action", intent.clone());
        return (200, intent);
    }
    let declines = inner.declining.contains(&pm) || inner.auth_declined.contains(&pm);
    let error = if inner.auth_declined.contains(&pm) {
        json!({"type": "card_error", "code": "authentication_required",
            "decline_code": "authentication_required",
            "message": "Your card was declined. This transaction requires authentication.",
            "payment_method": {"id": pm}})
    } else {
        json!({"type": "card_error", "code": "card_declined",
            "decline_code": "insufficient_funds", "message": "Your card has insufficient funds.",
            "payment_method": {"id": pm}})
    };
    let charge_id = m.next(inner, "ch");
    let intent = m.sample(
        "payment_intent",
        json!({"id": id, "amount": amount, "amount_received": if declines { 0 } else { amount },
            "currency": field(form, "currency"), "customer": field(form, "customer"),
            "payment_method": pm, "confirmation_method": "automatic",
            "status": if declines { "requires_payment_method" } else { "succeeded" },
            "latest_charge": charge_id, "metadata": metadata(form, "metadata"),
            "last_payment_error": if declines { error.clone() } else { Value::Null },
            "created": now()}),
    );
    let charge = m.sample(
        "charge",
        json!({"id": charge_id, "amount": amount, "amount_captured": if declines { 0 } else { amount },
            "amount_refunded": 0, "refunded": false, "captured": !declines,
            "currency": field(form, "currency"), "customer": field(form, "customer"),
            "payment_intent": id, "status": if declines { "failed" } else { "succeeded" },
            "metadata": metadata(form, "metadata")}),
    );
    inner.objects.insert(charge_id, charge);
    inner.objects.insert(id.clone(), intent.clone());
    if declines {
        m.queue_event(inner, "payment_intent.payment_failed", intent.clone());
        let mut error = error;
        error["payment_intent"] = intent;
        (402, json!({"error": error}))
    } else {
        m.queue_event(inner, "payment_intent.succeeded", intent.clone());
        (200, intent)
    }
}

fn create_refund(m: &Mock, inner: &mut Inner, _: &str, form: &[(String, String)]) -> (u16, Value) {
    let pi = field(form, "payment_intent").unwrap_or_default().to_owned();
    let Some(intent) = inner.objects.get(&pi).cloned() else {
        return not_found(&pi);
    };
    let amount: i64 = field(form, "amount")
        .map(|a| a.parse().unwrap())
        .unwrap_or(intent["amount"].as_i64().unwrap());
    let charge_id = intent["latest_charge"].as_str().unwrap().to_owned();
    let id = m.next(inner, "re");
    let refund = m.sample(
        "refund",
        json!({"id": id, "amount": amount, "charge": charge_id, "payment_intent": pi,
            "currency": intent["currency"], "status": "succeeded",
            "metadata": metadata(form, "metadata")}),
    );
    let charge = inner.objects.get_mut(&charge_id).unwrap();
    let refunded = charge["amount_refunded"].as_i64().unwrap() + amount;
    charge["amount_refunded"] = json!(refunded);
    charge["refunded"] = json!(refunded >= charge["amount"].as_i64().unwrap());
    let charge = charge.clone();
    inner.objects.insert(id, refund.clone());
    m.queue_event(inner, "charge.refunded", charge);
    (200, refund)
}

fn create_portal(m: &Mock, inner: &mut Inner, _: &str, form: &[(String, String)]) -> (u16, Value) {
    let id = m.next(inner, "bps");
    let session = m.sample(
        "billing_portal.session",
        json!({"id": id, "customer": field(form, "customer"),
            "return_url": field(form, "return_url"), "url": format!("{}/portal/{id}", m.base)}),
    );
    (200, session)
}

macro_rules! poster {
    ($name:ident, $handler:expr) => {
        async fn $name(
            State(state): State<Arc<Mock>>,
            uri: axum::http::Uri,
            headers: HeaderMap,
            body: String,
        ) -> Response {
            post_with(&state, &headers, uri.path(), &body, $handler)
        }
    };
}
poster!(customers, create_customer);
poster!(customer_update, update_customer);
poster!(sessions, create_session);
poster!(intents, create_intent);
poster!(refunds, create_refund);
poster!(portals, create_portal);
poster!(products, create_product);
poster!(product_update, update_product);
poster!(prices, create_price);
poster!(price_update, update_price);
poster!(meters, create_meter);
poster!(meter_events, create_meter_event);
poster!(session_expire, expire_session);
poster!(intent_cancel, cancel_intent);

async fn get_object(
    State(state): State<Arc<Mock>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut inner = state.inner.lock().unwrap();
    inner.seen.push(Seen {
        method: "GET".into(),
        path: uri.path().to_owned(),
        idempotency_key: None,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        stripe_version: version(&headers),
        form: Vec::new(),
    });
    match inner.objects.get(&id) {
        Some(o) => answer(200, o.clone()),
        None => {
            let (status, body) = not_found(&id);
            answer(status, body)
        }
    }
}

/// `GET /v1/payment_intents?limit=&starting_after=`: newest first, paged.
async fn list_intents(
    State(state): State<Arc<Mock>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<BTreeMap<String, String>>,
) -> Response {
    let mut inner = state.inner.lock().unwrap();
    seen_get(&mut inner, &uri, &headers);
    let mut all: Vec<&Value> = inner
        .objects
        .iter()
        .filter(|(id, _)| id.starts_with("pi_"))
        .map(|(_, o)| o)
        .collect();
    all.reverse();
    if let Some(after) = query.get("starting_after") {
        let at = all
            .iter()
            .position(|o| o["id"] == after.as_str())
            .map_or(0, |i| i + 1);
        all.drain(..at);
    }
    let limit: usize = query.get("limit").map_or(10, |l| l.parse().unwrap());
    let has_more = all.len() > limit;
    all.truncate(limit);
    answer(
        200,
        json!({"object": "list", "url": "/v1/payment_intents", "has_more": has_more, "data": all}),
    )
}

/// The card a customer enters at checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    /// 4242 4242 4242 4242: every charge succeeds.
    Good,
    /// 4000 0000 0000 9995: every charge is declined (insufficient funds).
    Declining,
    /// 4000 0027 6000 3184: every charge asks for 3-D Secure (`requires_action`).
    Authenticating,
    /// 4000 0000 0000 3063 off-session: declined `authentication_required`, the PaymentIntent
    /// waiting for the customer.
    AuthenticationRequired,
}

impl StripeMock {
    pub async fn start() -> StripeMock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let state = Arc::new(Mock {
            fixtures: fixtures(),
            inner: Mutex::new(Inner::default()),
            base: base.clone(),
        });
        let app = Router::new()
            .route("/v1/customers", post(customers))
            .route("/v1/customers/{id}", post(customer_update).get(get_object))
            .route("/v1/checkout/sessions", post(sessions))
            .route("/v1/checkout/sessions/{id}/expire", post(session_expire))
            .route("/v1/payment_intents/{id}/cancel", post(intent_cancel))
            .route("/v1/setup_intents/{id}", get(get_object))
            .route("/v1/payment_intents", post(intents).get(list_intents))
            .route("/v1/payment_intents/{id}", get(get_object))
            .route("/v1/refunds", post(refunds).get(list_refunds))
            .route("/v1/billing_portal/sessions", post(portals))
            .route("/v1/products", post(products))
            .route("/v1/products/{id}", post(product_update).get(get_object))
            .route("/v1/prices", post(prices).get(list_prices))
            .route("/v1/prices/{id}", post(price_update).get(get_object))
            .route("/v1/billing/meters", post(meters).get(list_meters))
            .route("/v1/billing/meter_events", post(meter_events))
            .with_state(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        StripeMock { addr, base, state }
    }

    /// The customer completes the Checkout Session with `card`: a payment method attached, the
    /// SetupIntent succeeded, the session complete, and Stripe's two events queued. The method.
    pub fn complete_checkout(&self, session: &str, card: Card) -> String {
        let m = &self.state;
        let mut inner = m.inner.lock().unwrap();
        let mut session_obj = inner.objects[session].clone();
        let customer = session_obj["customer"].as_str().unwrap().to_owned();
        let seti = session_obj["setup_intent"].as_str().unwrap().to_owned();
        let pm = m.next(&mut inner, "pm");
        let last4 = if card == Card::Good { "4242" } else { "9995" };
        let mut method = m.sample("payment_method", json!({"id": pm, "customer": customer}));
        method["card"]["last4"] = json!(last4);
        inner.objects.insert(pm.clone(), method);
        if card == Card::Declining {
            inner.declining.insert(pm.clone());
        }
        if card == Card::Authenticating {
            inner.authenticating.insert(pm.clone());
        }
        if card == Card::AuthenticationRequired {
            inner.auth_declined.insert(pm.clone());
        }
        let intent = inner.objects.get_mut(&seti).unwrap();
        intent["status"] = json!("succeeded");
        intent["payment_method"] = json!(pm);
        let intent = intent.clone();
        session_obj["status"] = json!("complete");
        inner
            .objects
            .insert(session.to_owned(), session_obj.clone());
        m.queue_event(&mut inner, "checkout.session.completed", session_obj);
        m.queue_event(&mut inner, "setup_intent.succeeded", intent);
        pm
    }

    /// The customer authenticates PaymentIntent `pi` (3-D Secure): it succeeds, and
    /// `payment_intent.succeeded` is queued.
    pub fn authenticate(&self, pi: &str) {
        let m = &self.state;
        let mut inner = m.inner.lock().unwrap();
        let intent = inner.objects.get_mut(pi).unwrap();
        intent["status"] = json!("succeeded");
        intent["amount_received"] = intent["amount"].clone();
        intent["next_action"] = Value::Null;
        let intent = intent.clone();
        m.queue_event(&mut inner, "payment_intent.succeeded", intent);
    }

    /// The customer pays the payment-mode Checkout Session `session`: the session complete and
    /// paid, its PaymentIntent succeeded, and Stripe's two events queued.
    pub fn pay_checkout(&self, session: &str) {
        let m = &self.state;
        let mut inner = m.inner.lock().unwrap();
        let session_obj = inner.objects.get_mut(session).unwrap();
        session_obj["status"] = json!("complete");
        session_obj["payment_status"] = json!("paid");
        let session_obj = session_obj.clone();
        let pi = session_obj["payment_intent"].as_str().unwrap().to_owned();
        let intent = inner.objects.get_mut(&pi).unwrap();
        intent["status"] = json!("succeeded");
        intent["amount_received"] = intent["amount"].clone();
        let intent = intent.clone();
        m.queue_event(&mut inner, "checkout.session.completed", session_obj);
        m.queue_event(&mut inner, "payment_intent.succeeded", intent);
    }

    /// A PaymentIntent made outside Tollgate (in the Dashboard), with `fields` over the sample.
    pub fn insert_intent(&self, fields: Value) -> Value {
        let intent = self.sample("payment_intent", fields);
        let id = intent["id"].as_str().unwrap().to_owned();
        self.state
            .inner
            .lock()
            .unwrap()
            .objects
            .insert(id, intent.clone());
        intent
    }

    /// An object made outside Tollgate (a refund made in the Dashboard): `fields` over the
    /// sample of `kind`, kept under its `id`.
    pub fn insert(&self, kind: &str, fields: Value) -> Value {
        let object = self.sample(kind, fields);
        let id = object["id"].as_str().unwrap().to_owned();
        self.state
            .inner
            .lock()
            .unwrap()
            .objects
            .insert(id, object.clone());
        object
    }

    /// Changes fields of a kept object (as Stripe's own processes would).
    pub fn update(&self, id: &str, fields: Value) {
        let mut inner = self.state.inner.lock().unwrap();
        let object = inner.objects.get_mut(id).unwrap();
        for (k, v) in fields.as_object().unwrap() {
            object[k.as_str()] = v.clone();
        }
    }

    /// Every charge of `method` is declined from now on (or succeeds again).
    pub fn set_declining(&self, method: &str, declining: bool) {
        let mut inner = self.state.inner.lock().unwrap();
        if declining {
            inner.declining.insert(method.to_owned());
        } else {
            inner.declining.remove(method);
        }
    }

    /// The next POSTs are answered with these statuses (429, 500...) before any work.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.state.inner.lock().unwrap().fail_next = statuses.to_vec();
    }

    /// The meter events received, in order.
    pub fn meter_events(&self) -> Vec<Value> {
        self.state.inner.lock().unwrap().meter_events.clone()
    }

    /// Every object of `kind` (`product`, `price`, `billing.meter`...), in id order.
    pub fn objects_of(&self, kind: &str) -> Vec<Value> {
        self.state
            .inner
            .lock()
            .unwrap()
            .objects
            .values()
            .filter(|o| o["object"] == kind)
            .cloned()
            .collect()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.inner.lock().unwrap().seen.clone()
    }

    pub fn object(&self, id: &str) -> Value {
        self.state.inner.lock().unwrap().objects[id].clone()
    }

    /// The queued events, emptied.
    pub fn take_events(&self) -> Vec<Value> {
        std::mem::take(&mut self.state.inner.lock().unwrap().events)
    }

    /// Queues an event of `kind` about `object` (a dispute, a refund made in the dashboard).
    pub fn queue(&self, kind: &str, object: Value) -> Value {
        let mut inner = self.state.inner.lock().unwrap();
        self.state.queue_event(&mut inner, kind, object);
        inner.events.last().unwrap().clone()
    }

    /// A sample object of `kind` with `fields` over it.
    pub fn sample(&self, kind: &str, fields: Value) -> Value {
        self.state.sample(kind, fields)
    }
}

/// `Stripe-Signature` for `payload` at `t` under `secret`, as Stripe computes it.
pub fn signature(payload: &str, t: i64, secret: &str) -> String {
    let mut mac = <Hmac<sha2_11::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends `event` to `url` as Stripe would (signed now under `secret`): status and body.
pub async fn deliver(url: &str, event: &Value, secret: &str) -> (u16, Value) {
    let payload = event.to_string();
    send(url, &payload, &signature(&payload, now(), secret)).await
}

/// Sends `payload` with the header `signature` as is.
pub async fn send(url: &str, payload: &str, signature: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(payload.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
