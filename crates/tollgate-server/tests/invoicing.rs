//! Invoices a business can send, end to end on a real server and both backends: taxes per rate
//! after coupons, a customer's billing profile (exemption, reverse charge, its own rates), and
//! what the PDF shows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{Backend, TestServer, Workspace, backend_tests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TAXED: &str = r#"
currency: EUR
meters:
  api_calls: { name: "API calls", event: api.call, aggregation: count }
plans:
  pro:
    name: Pro
    base: { amount: 100, interval: month }
    prices:
      - meter: api_calls
        model: per_unit
        unit_amount: "0.10"
coupons:
  tenoff: { name: "Ten off", percent_off: 10 }
taxes:
  rates:
    vat: { name: VAT, percent: 20 }
    levy: { name: Digital levy, percent: 1.5 }
    de_vat: { name: MwSt, percent: 19 }
  default: [vat]
  plans: { pro: [vat, levy] }
"#;

/// The customer alone, on a test clock; `subscribe` bills its opening invoice.
async fn customer(ws: &Workspace<'_>, id: &str, start: &str) -> String {
    let clock = ws.test_clock(start).await;
    ws.post(
        "/v1/customers",
        json!({"id": id, "name": format!("{id} Ltd"), "test_clock": clock}),
    )
    .await;
    clock
}

/// Subscribes the customer to `pro` (paid from now): its opening invoice is billed at once.
async fn subscribe(ws: &Workspace<'_>, id: &str) {
    ws.post(
        &format!("/v1/customers/{id}/subscriptions"),
        json!({"plan": "pro", "trial": false}),
    )
    .await;
}

async fn bill_run(ws: &Workspace<'_>) -> Value {
    let report = ws.post("/v1/bill_runs", json!({})).await;
    assert_eq!(report["errors"], json!([]), "{report}");
    report
}

async fn invoices(ws: &Workspace<'_>, customer: &str) -> Vec<Value> {
    let (status, list) = ws
        .call(
            Method::GET,
            &format!("/v1/customers/{customer}/invoices?limit=100"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["data"].as_array().unwrap().clone()
}

/// The amounts of the invoice's tax lines, by rate key.
fn tax_lines(invoice: &Value) -> Vec<(String, String)> {
    invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"]["type"] == "tax")
        .map(|l| {
            (
                l["kind"]["tax"].as_str().unwrap().to_owned(),
                l["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn pdf_text(server: &TestServer, ws: &Workspace<'_>, invoice: &Value) -> String {
    let resp = server
        .http
        .get(format!(
            "{}/v1/invoices/{}.pdf",
            server.base,
            invoice["id"].as_str().unwrap()
        ))
        .bearer_auth(&ws.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await.unwrap();
    pdf_extract::extract_text_from_mem(&bytes).expect("pdf-extract reads the invoice")
}

/// `expected` appears in the document's text. pdf-extract joins the lines of a block without a
/// separator ("GmbHFriedrichstrasse 68"), so both sides are compared without whitespace.
fn assert_pdf_line(text: &str, expected: &str) {
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    assert!(
        squeeze(text).contains(&squeeze(expected)),
        "no {expected:?} in the PDF text:\n{text}"
    );
}

async fn an_invoice_with_two_tax_rates_and_a_coupon(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("taxed", TAXED).await;
    let clock = customer(&ws, "acme", "2026-11-01T00:00:00Z").await;
    ws.post("/v1/customers/acme/coupons", json!({"coupon": "tenoff"}))
        .await;
    subscribe(&ws, "acme").await; // November's opening invoice: the base fee, in advance
    bill_run(&ws).await;
    let opening = invoices(&ws, "acme").await.pop().unwrap();
    // 100 - 10% = 90; VAT 20% of 90 = 18.00, the levy 1.5% of 90 = 1.35.
    assert_eq!(
        tax_lines(&opening),
        [
            ("vat".into(), "18.00".into()),
            ("levy".into(), "1.35".into())
        ]
    );
    assert_eq!(opening["tax_total"], "19.35");
    assert_eq!(opening["total"], "109.35");
    assert_eq!(opening["amount_due"], "109.35");
    assert_eq!(opening["taxes"][0]["taxable"], "90.00");
    assert_eq!(opening["taxes"][1]["name"], "Digital levy");

    let text = pdf_text(&server, &ws, &opening).await;
    assert_pdf_line(&text, "Subtotal 90.00");
    assert_pdf_line(&text, "VAT 20% 18.00");
    assert_pdf_line(&text, "Digital levy 1.5% 1.35");
    assert_pdf_line(&text, "Total 109.35");

    // December: 37 calls in November at 0.10 and December's base fee, no coupon left.
    ws.advance(&clock, "2026-11-20T00:00:00Z").await;
    let events: Vec<Value> = (0..37)
        .map(|i| json!({"id": format!("c{i}"), "customer": "acme", "type": "api.call"}))
        .collect();
    let (status, report) = ws.events(Value::Array(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let closing = invoices(&ws, "acme").await.pop().unwrap();
    // 103.70 taxed: VAT 20.74, levy 1.5555 -> 1.56.
    assert_eq!(
        tax_lines(&closing),
        [
            ("vat".into(), "20.74".into()),
            ("levy".into(), "1.56".into())
        ]
    );
    assert_eq!(closing["total"], "126.00");
    // Lines name the meter by its display name, not its key.
    assert!(
        closing["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["description"] == "API calls: 37 x 0.10"),
        "{closing:#}"
    );
}
backend_tests!(an_invoice_with_two_tax_rates_and_a_coupon);

async fn a_billing_profile_sets_how_a_customer_is_taxed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("profiles", TAXED).await;
    // On a clock at a period boundary: a whole first period, not a prorated part of one.
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    for id in ["exempt", "eu_b2b", "german"] {
        ws.post("/v1/customers", json!({"id": id, "test_clock": clock}))
            .await;
    }
    let put = |id: &str, body: Value| {
        let ws = &ws;
        let path = format!("/v1/customers/{id}/billing_profile");
        async move { ws.call(Method::PUT, &path, Some(body)).await }
    };
    let (status, body) = put("exempt", json!({"tax_treatment": "exempt"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = put(
        "eu_b2b",
        json!({"legal_name": "EU B2B GmbH", "address": ["Hauptstr. 1", "10115 Berlin"],
               "tax_ids": ["DE123456789"], "tax_treatment": "reverse_charge"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = put("german", json!({"tax_rates": ["de_vat"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, got) = ws
        .call(Method::GET, "/v1/customers/eu_b2b/billing_profile", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["legal_name"], "EU B2B GmbH");
    assert_eq!(got["tax_treatment"], "reverse_charge");

    // Refusals: a rate the catalog lacks, an empty name, an unknown field, an unknown customer.
    let (status, body) = put("german", json!({"tax_rates": ["fr_vat"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "unknown_tax_rate");
    let (status, body) = put("german", json!({"legal_name": " "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["path"], "legal_name");
    let (status, _) = put("german", json!({"vat": true})).await;
    assert!(status.is_client_error());
    let (status, body) = put("nobody", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // The refused writes changed nothing.
    let (_, still) = ws
        .call(Method::GET, "/v1/customers/german/billing_profile", None)
        .await;
    assert_eq!(still["tax_rates"], json!(["de_vat"]));

    // Each buys the same subscription: 100.00 taxed their way.
    let mut totals = Vec::new();
    for id in ["exempt", "eu_b2b", "german"] {
        ws.post(
            &format!("/v1/customers/{id}/subscriptions"),
            json!({"plan": "pro"}),
        )
        .await;
    }
    bill_run(&ws).await;
    for id in ["exempt", "eu_b2b", "german"] {
        let invoice = invoices(&ws, id).await.pop().unwrap();
        totals.push((
            invoice["total"].as_str().unwrap().to_owned(),
            invoice["tax_note"].as_str().map(str::to_owned),
            tax_lines(&invoice),
        ));
    }
    assert_eq!(totals[0].0, "100.00");
    assert!(totals[0].1.as_deref().unwrap().starts_with("Tax exempt"));
    assert_eq!(totals[1].0, "100.00");
    assert!(
        totals[1]
            .1
            .as_deref()
            .unwrap()
            .starts_with("Reverse charge")
    );
    assert!(totals[1].2.is_empty());
    assert_eq!(totals[2].0, "119.00");
    assert_eq!(totals[2].2, [("de_vat".into(), "19.00".into())]);

    let reverse = invoices(&ws, "eu_b2b").await.pop().unwrap();
    let text = pdf_text(&server, &ws, &reverse).await;
    assert!(text.contains("Reverse charge"), "{text}");
}
backend_tests!(a_billing_profile_sets_how_a_customer_is_taxed);

const FLAT_AT_ZERO: &str = r#"
currency: USD
meters:
  calls: { name: "API calls", event: api.call, aggregation: count }
plans:
  metered:
    prices:
      - meter: calls
        model: graduated
        flat_at_zero: true
        tiers:
          - { up_to: 10, unit_amount: "0", flat_amount: "25.00" }
          - { up_to: 50, unit_amount: "1.00" }
        above_last_tier: last_rate
"#;

async fn the_first_tiers_flat_fee_is_billed_at_zero_usage(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("flat", FLAT_AT_ZERO).await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    for id in ["idle", "busy"] {
        ws.post("/v1/customers", json!({"id": id, "test_clock": clock}))
            .await;
        ws.post(
            &format!("/v1/customers/{id}/subscriptions"),
            json!({"plan": "metered"}),
        )
        .await;
    }
    ws.advance(&clock, "2026-11-10T00:00:00Z").await;
    let events: Vec<Value> = (0..60)
        .map(|i| json!({"id": format!("b{i}"), "customer": "busy", "type": "api.call"}))
        .collect();
    let (status, report) = ws.events(Value::Array(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let idle = invoices(&ws, "idle").await.pop().unwrap();
    assert_eq!(idle["total"], "25.00", "{idle:#}");
    assert!(
        idle["lines"][0]["description"]
            .as_str()
            .unwrap()
            .contains("first tier's 25.00 flat fee"),
        "{idle:#}"
    );
    // 60 calls: 25.00 for the first 10, 40 x 1.00, and 10 above the last bound at its rate.
    let busy = invoices(&ws, "busy").await.pop().unwrap();
    assert_eq!(busy["total"], "75.00", "{busy:#}");
}
backend_tests!(the_first_tiers_flat_fee_is_billed_at_zero_usage);

const TRANSACTIONS: &str = r#"
currency: USD
meters:
  payments: { name: Payments, event: payment.succeeded, aggregation: sum, property: amount }
plans:
  cards:
    prices:
      - meter: payments
        model: percentage
        percent: "1.2"
        fixed_fee: "0.10"
        free_units: 3
        free_amount: 500
        per_transaction_max: 5
  payouts:
    prices:
      - meter: payments
        model: graduated_percentage
        tiers:
          - { up_to: 1000, percent: 1, flat_amount: 200 }
          - { up_to: 10000, percent: 2, flat_amount: 300 }
          - { percent: 3, flat_amount: 400 }
"#;

/// One payment of `amount` by `customer`, at the customer's present time.
async fn pay_event(ws: &Workspace<'_>, customer: &str, id: &str, amount: &str) {
    let event = json!([{"id": id, "customer": customer, "type": "payment.succeeded",
                        "properties": {"amount": amount}}]);
    let (status, report) = ws.events(event).await;
    assert_eq!(status, StatusCode::OK, "{report}");
}

fn usage_line(invoice: &Value) -> Value {
    invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"]["type"] == "usage")
        .cloned()
        .unwrap_or_else(|| panic!("no usage line: {invoice:#}"))
}

/// Lago's percentage example on a real invoice: 1.2% + 0.10 per payment, the first 3 payments
/// or 500.00 free. Payments of 200, 100 and 100 are free; 50 pays 0.70; 1,000 pays 12.10,
/// capped at 5.00 per transaction. Charged per transaction, in time order.
async fn a_percentage_with_a_fixed_fee_per_transaction(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("fees", TRANSACTIONS).await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.post("/v1/customers", json!({"id": "shop", "test_clock": clock}))
        .await;
    ws.post("/v1/customers/shop/subscriptions", json!({"plan": "cards"}))
        .await;
    for (day, (id, amount)) in [
        ("p1", "200"),
        ("p2", "100"),
        ("p3", "100"),
        ("p4", "50"),
        ("p5", "1000"),
    ]
    .into_iter()
    .enumerate()
    {
        ws.advance(&clock, &format!("2026-11-{:02}T00:00:00Z", day + 2))
            .await;
        pay_event(&ws, "shop", id, amount).await;
    }
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let invoice = invoices(&ws, "shop").await.pop().unwrap();
    let line = usage_line(&invoice);
    assert_eq!(line["amount"], "5.70", "{invoice:#}");
    assert_eq!(
        line["description"],
        "Payments: 2 transactions (3 free, 400.00 of value free): 1.2% of 1,050.00 + 2 x 0.10 fixed, 1 capped at the per-transaction maximum of 5.00 = 5.70"
    );
    assert_eq!(invoice["total"], "5.70");
}
backend_tests!(a_percentage_with_a_fixed_fee_per_transaction);

/// Lago's graduated percentage tiers over three monthly invoices; the tiers start again each
/// period, and a tier's flat fee is charged in the period the value enters it.
async fn a_graduated_percentage_meter_over_three_invoices(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("tiers", TRANSACTIONS).await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.post("/v1/customers", json!({"id": "bank", "test_clock": clock}))
        .await;
    ws.post(
        "/v1/customers/bank/subscriptions",
        json!({"plan": "payouts"}),
    )
    .await;
    // November: 500 (205.00). December: 500, 550, 4,000 (591.00). January: 15,000 (1,240.00).
    let months: [(&str, &[&str], &str); 3] = [
        ("2026-11", &["500"], "205.00"),
        ("2026-12", &["500", "550", "4000"], "591.00"),
        ("2027-01", &["15000"], "1240.00"),
    ];
    let ends = ["2026-12-01", "2027-01-01", "2027-02-01"];
    for ((month, amounts, _), end) in months.iter().zip(ends) {
        for (i, amount) in amounts.iter().enumerate() {
            ws.advance(&clock, &format!("{month}-{:02}T00:00:00Z", i + 2))
                .await;
            pay_event(&ws, "bank", &format!("{month}-{i}"), amount).await;
        }
        ws.advance(&clock, &format!("{end}T00:00:00Z")).await;
        bill_run(&ws).await;
    }
    let billed = invoices(&ws, "bank").await;
    let closing: Vec<&Value> = billed
        .iter()
        .filter(|i| {
            i["lines"]
                .as_array()
                .is_some_and(|ls| ls.iter().any(|l| l["kind"]["type"] == "usage"))
        })
        .collect();
    let mut totals: Vec<(String, String)> = closing
        .iter()
        .map(|i| {
            (
                i["period_start"].as_str().unwrap()[..7].to_owned(),
                usage_line(i)["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    totals.sort();
    let expected: Vec<(String, String)> = months
        .iter()
        .map(|(m, _, t)| ((*m).to_owned(), (*t).to_owned()))
        .collect();
    assert_eq!(totals, expected, "{billed:#?}");
    let december = closing
        .iter()
        .find(|i| i["period_start"].as_str().unwrap().starts_with("2026-12"))
        .unwrap();
    assert_eq!(
        usage_line(december)["description"],
        "Payments: 1% of 1,000.00 (up to 1,000) + 200.00 flat + 2% of 4,050.00 (over 1,000 up to 10,000) + 300.00 flat = 591.00"
    );
}
backend_tests!(a_graduated_percentage_meter_over_three_invoices);

/// A credit note credited to the customer's balance pays the next invoice after taxes and
/// before prepaid credit (Lago's order), and the balance keeps a ledger of both movements.
async fn a_credit_note_to_the_balance_is_used_on_the_next_invoice(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("balance", TAXED).await;
    let seller = json!({"legal_name": "Northwind Metering GmbH",
                        "address": ["Hauptstrasse 1", "10115 Berlin, Germany"],
                        "tax_ids": ["DE123456789"], "net_terms_days": 14});
    let (status, body) = ws
        .call(Method::PUT, "/v1/billing_profile", Some(seller))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let clock = customer(&ws, "acme", "2026-11-01T00:00:00Z").await;
    subscribe(&ws, "acme").await;
    bill_run(&ws).await;
    // 100.00 + VAT 20.00 + levy 1.50, paid: a credit goes to the balance whole (on an open
    // invoice it would lower the amount due first, `a_credit_on_an_open_invoice_lowers_its_amount_due`).
    let opening = invoices(&ws, "acme").await.pop().unwrap();
    assert_eq!(opening["total"], "121.50");
    assert_eq!(opening["status"], "open");
    let id = opening["id"].as_str().unwrap();
    let path = format!("/v1/invoices/{id}/credit_notes");
    // A refund of an unpaid invoice: refused.
    let (status, body) = ws
        .call(Method::POST, &path, Some(json!({"amount": "1.00"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "invoice_not_paid");
    ws.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
    let note = ws
        .post(
            &path,
            json!({"amount": "30.00", "method": "credit", "reason": "outage"}),
        )
        .await;
    assert_eq!(note["method"], "credit");
    assert_eq!(note["amount"], "30.00");
    // More than is left to credit: refused.
    let (status, body) = ws
        .call(
            Method::POST,
            &path,
            Some(json!({"amount": "91.51", "method": "credit"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "refund_exceeds_invoice");
    let (status, body) = ws
        .call(Method::POST, &path, Some(json!({"method": "wire"})))
        .await;
    assert!(status.is_client_error(), "{status} {body}");

    let (status, balance) = ws
        .call(Method::GET, "/v1/customers/acme/balance", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{balance}");
    assert_eq!(balance["balance"], "30.00");
    assert_eq!(balance["currency"], "EUR");
    assert_eq!(balance["movements"][0]["kind"], "credit_note");
    assert_eq!(balance["movements"][0]["credit_note"], note["id"]);

    // Prepaid credit too: the balance goes first, prepaid credit pays part of the rest.
    ws.post("/v1/customers/acme/credits", json!({"amount": "50.00"}))
        .await;
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let december = invoices(&ws, "acme").await.pop().unwrap();
    assert_eq!(december["total"], "121.50", "{december:#}");
    assert_eq!(december["balance_applied"], "30.00");
    assert_eq!(december["credit_applied"], "50.00");
    assert_eq!(december["amount_due"], "41.50");
    // The total is still the sum of the lines.
    let lines: rust_decimal::Decimal = december["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["amount"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    assert_eq!(lines.to_string(), "121.50");

    let (_, balance) = ws
        .call(Method::GET, "/v1/customers/acme/balance", None)
        .await;
    assert_eq!(balance["balance"], "0.00");
    let moves: Vec<(String, String)> = balance["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_owned(),
                m["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("credit_note".to_owned(), "30.00".to_owned()),
            ("invoice".to_owned(), "-30.00".to_owned())
        ]
    );
    assert_eq!(balance["movements"][1]["invoice"], december["id"]);

    let text = pdf_text(&server, &ws, &december).await;
    assert_pdf_line(&text, "Balance applied -30.00");
    assert_pdf_line(&text, "Prepaid credit applied -50.00");
    assert_pdf_line(&text, "Amount due 41.50");
    let note_pdf = pdf_bytes(
        &server,
        &ws,
        &format!(
            "/v1/invoices/{id}/credit_notes/{}.pdf",
            note["id"].as_str().unwrap()
        ),
    )
    .await;
    keep("credit-note-to-balance.pdf", &note_pdf);
    let december_pdf = pdf_bytes(
        &server,
        &ws,
        &format!("/v1/invoices/{}.pdf", december["id"].as_str().unwrap()),
    )
    .await;
    keep("invoice-with-balance.pdf", &december_pdf);
    let note_text = pdf_extract::extract_text_from_mem(&note_pdf).unwrap();
    assert_pdf_line(&note_text, "credited to the customer's balance");
    // A customer of another workspace has no such balance to read.
    let (status, _) = ws
        .call(Method::GET, "/v1/customers/nobody/balance", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
backend_tests!(a_credit_note_to_the_balance_is_used_on_the_next_invoice);

/// Every amount of an invoice's lines, summed.
fn sum_of_lines(invoice: &Value) -> rust_decimal::Decimal {
    invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["amount"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum()
}

async fn balance_moves(ws: &Workspace<'_>, customer: &str) -> (Value, Vec<(String, String)>) {
    let (status, balance) = ws
        .call(
            Method::GET,
            &format!("/v1/customers/{customer}/balance"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{balance}");
    let moves = balance["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_owned(),
                m["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (balance, moves)
}

/// A credit note to the balance on an invoice still open lowers what it owes first (Stripe's
/// rule); only what exceeds the amount due goes to the balance, and at zero the invoice is paid.
async fn a_credit_on_an_open_invoice_lowers_its_amount_due(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("opencredit", TAXED).await;
    customer(&ws, "acme", "2026-11-01T00:00:00Z").await;
    ws.post("/v1/customers/acme/credits", json!({"amount": "20.00"}))
        .await;
    subscribe(&ws, "acme").await;
    bill_run(&ws).await;
    let opening = invoices(&ws, "acme").await.pop().unwrap();
    assert_eq!(opening["credit_applied"], "20.00");
    assert_eq!(opening["amount_due"], "101.50");
    let id = opening["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/invoices/{id}/credit_notes");
    let first = ws
        .post(&path, json!({"amount": "21.50", "method": "credit"}))
        .await;
    assert_eq!(first["amount"], "21.50");
    let (_, invoice) = ws
        .call(Method::GET, &format!("/v1/invoices/{id}"), None)
        .await;
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["total"], "121.50", "the lines never change");
    assert_eq!(sum_of_lines(&invoice).to_string(), "121.50");
    assert_eq!(invoice["amount_due"], "80.00");
    assert_eq!(invoice["credited"], "21.50");
    let (balance, moves) = balance_moves(&ws, "acme").await;
    assert_eq!(balance["balance"], "0.00");
    assert!(moves.is_empty(), "{moves:?}");
    let text = pdf_text(&server, &ws, &invoice).await;
    assert_pdf_line(&text, "Credit notes applied -21.50");
    assert_pdf_line(&text, "Amount due 80.00");
    let note_pdf = pdf_bytes(
        &server,
        &ws,
        &format!(
            "/v1/invoices/{id}/credit_notes/{}.pdf",
            first["id"].as_str().unwrap()
        ),
    )
    .await;
    let note_text = pdf_extract::extract_text_from_mem(&note_pdf).unwrap();
    assert_pdf_line(&note_text, "the amount lowers what the invoice still owes");

    // The rest of the total, 100.00: 80.00 settles the invoice, and the 20.00 that prepaid credit
    // paid goes to the balance.
    let second = ws
        .post(&path, json!({"amount": "100.00", "method": "credit"}))
        .await;
    let (_, invoice) = ws
        .call(Method::GET, &format!("/v1/invoices/{id}"), None)
        .await;
    assert_eq!(invoice["status"], "paid", "{invoice:#}");
    assert_eq!(invoice["amount_due"], "0.00");
    assert_eq!(invoice["amount_paid"], "0.00");
    assert_eq!(invoice["credited"], "121.50");
    let (balance, moves) = balance_moves(&ws, "acme").await;
    assert_eq!(balance["balance"], "20.00");
    assert_eq!(moves, [("credit_note".to_owned(), "20.00".to_owned())]);
    assert_eq!(balance["movements"][0]["credit_note"], second["id"]);
    let note_pdf = pdf_bytes(
        &server,
        &ws,
        &format!(
            "/v1/invoices/{id}/credit_notes/{}.pdf",
            second["id"].as_str().unwrap()
        ),
    )
    .await;
    let note_text = pdf_extract::extract_text_from_mem(&note_pdf).unwrap();
    assert_pdf_line(
        &note_text,
        "80.00 lowers what the invoice still owes and 20.00 is credited to the customer's balance",
    );
    // Settled by credit: it announced itself paid, like a payment.
    let (status, events) = ws
        .call(
            Method::GET,
            "/v1/domain_events?type=invoice.paid&limit=100",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let paid = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "invoice.paid" && e["data"]["invoice"] == json!(id))
        .count();
    assert_eq!(paid, 1, "{events:#}");
    // Nothing is left to credit.
    let (status, body) = ws
        .call(
            Method::POST,
            &path,
            Some(json!({"amount": "0.01", "method": "credit"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}
backend_tests!(a_credit_on_an_open_invoice_lowers_its_amount_due);

/// Voiding an invoice gives back what it took from the customer's balance and prepaid credit,
/// and the next invoice uses them again.
async fn voiding_an_invoice_gives_back_the_balance_and_credit_it_used(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("voidback", TAXED).await;
    let clock = customer(&ws, "acme", "2026-11-01T00:00:00Z").await;
    subscribe(&ws, "acme").await;
    bill_run(&ws).await;
    let opening = invoices(&ws, "acme").await.pop().unwrap();
    let id = opening["id"].as_str().unwrap();
    ws.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
    ws.post(
        &format!("/v1/invoices/{id}/credit_notes"),
        json!({"amount": "30.00", "method": "credit"}),
    )
    .await;
    ws.post("/v1/customers/acme/credits", json!({"amount": "50.00"}))
        .await;
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let december = invoices(&ws, "acme").await.pop().unwrap();
    assert_eq!(december["balance_applied"], "30.00");
    assert_eq!(december["credit_applied"], "50.00");
    assert_eq!(december["amount_due"], "41.50");
    let (_, credits) = ws
        .call(Method::GET, "/v1/customers/acme/credits", None)
        .await;
    assert_eq!(credits["balance"], "0.00");

    let december_id = december["id"].as_str().unwrap();
    let voided = ws
        .post(&format!("/v1/invoices/{december_id}/void"), json!({}))
        .await;
    assert_eq!(voided["status"], "void");
    let (balance, moves) = balance_moves(&ws, "acme").await;
    assert_eq!(balance["balance"], "30.00");
    assert_eq!(
        moves,
        [
            ("credit_note".to_owned(), "30.00".to_owned()),
            ("invoice".to_owned(), "-30.00".to_owned()),
            ("invoice_void".to_owned(), "30.00".to_owned()),
        ]
    );
    assert_eq!(balance["movements"][2]["invoice"], december["id"]);
    let (_, credits) = ws
        .call(Method::GET, "/v1/customers/acme/credits", None)
        .await;
    assert_eq!(credits["balance"], "50.00");
    // Voiding twice gives nothing back twice.
    let (status, _) = ws
        .call(
            Method::POST,
            &format!("/v1/invoices/{december_id}/void"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (balance, _) = balance_moves(&ws, "acme").await;
    assert_eq!(balance["balance"], "30.00");

    // January's invoice uses them again, in the same order.
    ws.advance(&clock, "2027-01-01T00:00:00Z").await;
    bill_run(&ws).await;
    let january = invoices(&ws, "acme").await.pop().unwrap();
    assert_eq!(january["total"], "121.50");
    assert_eq!(january["balance_applied"], "30.00");
    assert_eq!(january["credit_applied"], "50.00");
    assert_eq!(january["amount_due"], "41.50");
    let (balance, _) = balance_moves(&ws, "acme").await;
    assert_eq!(balance["balance"], "0.00");
}
backend_tests!(voiding_an_invoice_gives_back_the_balance_and_credit_it_used);

const COMMITTED: &str = r#"
currency: USD
meters:
  api_calls: { name: "API calls", event: api.call, aggregation: count }
plans:
  committed:
    name: Committed
    base: { amount: 10, interval: month }
    minimum: 100
    prices:
      - meter: api_calls
        model: per_unit
        unit_amount: 1
"#;

/// A plan minimum on a first period that starts mid-month is prorated as the base fee is:
/// 15 of 30 days of 100.00 is 50.00; the closing invoice's charges (10 calls, and December's
/// base fee it opens) are topped up to it. A whole period tops up to the whole minimum, and a
/// last period cut short by a cancellation commits to its share.
async fn a_minimum_true_up_is_prorated_on_a_partial_period(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("minimum", COMMITTED).await;
    let clock = ws.test_clock("2026-11-16T00:00:00Z").await;
    ws.post("/v1/customers", json!({"id": "late", "test_clock": clock}))
        .await;
    ws.post(
        "/v1/customers/late/subscriptions",
        json!({"plan": "committed", "trial": false}),
    )
    .await;
    bill_run(&ws).await;
    let opening = invoices(&ws, "late").await.pop().unwrap();
    assert_eq!(
        opening["total"], "5.00",
        "half of November's base fee: {opening:#}"
    );
    let events: Vec<Value> = (0..10)
        .map(|i| json!({"id": format!("c{i}"), "customer": "late", "type": "api.call"}))
        .collect();
    let (status, report) = ws.events(Value::Array(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let closing = invoices(&ws, "late").await.pop().unwrap();
    let top_up = closing["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"]["type"] == "minimum_top_up")
        .cloned()
        .unwrap_or_else(|| panic!("no top-up: {closing:#}"));
    assert_eq!(top_up["amount"], "30.00", "{closing:#}");
    assert_eq!(
        top_up["description"],
        "minimum commitment of 50.00 for 2026-11-16 to 2026-11-30 (prorated: 100.00 x 15 of 30 days): charges 20.00 topped up by 30.00"
    );
    assert_eq!(closing["total"], "50.00");
    // December is whole: 10.00 of January's base fee and no usage, topped up to 100.00.
    ws.advance(&clock, "2027-01-01T00:00:00Z").await;
    bill_run(&ws).await;
    let whole = invoices(&ws, "late").await.pop().unwrap();
    assert_eq!(whole["total"], "100.00", "{whole:#}");

    // Canceled at once on January 16th: the last period is 15 of January's 31 days, and commits
    // to 100.00 x 15 / 31 = 48.387..., rounded toward zero: 48.38.
    ws.advance(&clock, "2027-01-16T00:00:00Z").await;
    let (_, subs) = ws
        .call(Method::GET, "/v1/customers/late/subscriptions", None)
        .await;
    let sub = subs["data"][0]["id"].as_str().unwrap().to_owned();
    ws.post(
        &format!("/v1/customers/late/subscriptions/{sub}/cancel"),
        json!({"immediately": true}),
    )
    .await;
    bill_run(&ws).await;
    let last = invoices(&ws, "late").await.pop().unwrap();
    let top_up = last["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"]["type"] == "minimum_top_up")
        .cloned()
        .unwrap_or_else(|| panic!("no top-up: {last:#}"));
    assert_eq!(top_up["amount"], "48.38", "{last:#}");
    assert!(
        top_up["description"]
            .as_str()
            .unwrap()
            .contains("(prorated: 100.00 x 15 of 31 days)"),
        "{last:#}"
    );
}
backend_tests!(a_minimum_true_up_is_prorated_on_a_partial_period);

const CHARGE_MINIMUM: &str = r#"
currency: USD
meters:
  api_calls: { name: "API calls", event: api.call, aggregation: count }
  storage: { name: Storage, event: stored, aggregation: sum, property: gb }
plans:
  metered:
    name: Metered
    base: { amount: 10, interval: month }
    prices:
      - { meter: api_calls, model: per_unit, unit_amount: "0.50", minimum: 20 }
      - { meter: storage, model: per_unit, unit_amount: 1 }
"#;

/// A usage price's `minimum` tops up that charge alone, with its own line, prorated on a
/// partial first period as the plan minimum is; a period that charged enough has no top-up.
async fn a_charge_minimum_is_topped_up_per_period(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("chargemin", CHARGE_MINIMUM).await;
    let clock = ws.test_clock("2026-11-16T00:00:00Z").await;
    ws.post("/v1/customers", json!({"id": "acme", "test_clock": clock}))
        .await;
    ws.post(
        "/v1/customers/acme/subscriptions",
        json!({"plan": "metered", "trial": false}),
    )
    .await;
    bill_run(&ws).await;
    // 4 calls (2.00) and 30 GB of storage (30.00): storage never counts towards the calls'
    // minimum, prorated to 15 of 30 days: 10.00.
    let mut events: Vec<Value> = (0..4)
        .map(|i| json!({"id": format!("c{i}"), "customer": "acme", "type": "api.call"}))
        .collect();
    events
        .push(json!({"id": "s1", "customer": "acme", "type": "stored", "properties": {"gb": 30}}));
    let (status, report) = ws.events(Value::Array(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let closing = invoices(&ws, "acme").await.pop().unwrap();
    let calls: Vec<(String, String)> = closing["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == json!({"type": "usage", "meter": "api_calls"}))
        .map(|l| {
            (
                l["description"].as_str().unwrap().to_owned(),
                l["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(calls.len(), 2, "{closing:#}");
    assert_eq!(calls[0].1, "2.00");
    assert_eq!(
        calls[1],
        (
            "API calls: minimum of 10.00 for 2026-11-16 to 2026-11-30 (prorated: 20.00 x 15 of 30 days): charged 2.00 topped up by 8.00".to_owned(),
            "8.00".to_owned()
        )
    );
    // 2.00 + 8.00 of calls, 30.00 of storage, December's base fee 10.00.
    assert_eq!(closing["total"], "50.00", "{closing:#}");
    assert_eq!(sum_of_lines(&closing).to_string(), "50.00");
    let text = pdf_text(&server, &ws, &closing).await;
    assert_pdf_line(&text, "topped up by 8.00");

    // December, whole: 50 calls charge 25.00, above the minimum: no top-up.
    let events: Vec<Value> = (0..50)
        .map(|i| json!({"id": format!("d{i}"), "customer": "acme", "type": "api.call"}))
        .collect();
    let (status, report) = ws.events(Value::Array(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    ws.advance(&clock, "2027-01-01T00:00:00Z").await;
    bill_run(&ws).await;
    let december = invoices(&ws, "acme").await.pop().unwrap();
    let described: Vec<&str> = december["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["description"].as_str().unwrap())
        .collect();
    assert!(
        described.iter().all(|d| !d.contains("minimum")),
        "{december:#}"
    );
    assert_eq!(
        december["total"], "35.00",
        "25.00 of calls and January's base fee"
    );

    // A minimum the catalog cannot take is refused with its path.
    let (status, body) = ws
        .call(
            Method::PUT,
            "/v1/catalog",
            Some(json!({"yaml": CHARGE_MINIMUM.replace("minimum: 20", "minimum: -1")})),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    assert!(
        body.to_string().contains("plans.metered.prices[0].minimum"),
        "{body}"
    );
}
backend_tests!(a_charge_minimum_is_topped_up_per_period);

const PROGRESSIVE: &str = r#"
currency: USD
meters:
  api_calls: { name: "API calls", event: api.call, aggregation: count }
plans:
  pro:
    name: Pro
    base: { amount: 10, interval: month }
    progressive_billing: { thresholds: [20, 50] }
    prices:
      - { meter: api_calls, model: per_unit, unit_amount: 1 }
"#;

async fn calls(ws: &Workspace<'_>, from: usize, count: usize) {
    let events: Vec<Value> = (from..from + count)
        .map(|i| json!({"id": format!("p{i}"), "customer": "acme", "type": "api.call"}))
        .collect();
    let (status, report) = ws.events(Value::Array(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
}

/// Progressive billing: the usage so far is invoiced by the scheduler as soon as it reaches a
/// threshold (no API call), once per threshold; a later invoice of the period bills only what
/// the earlier ones did not, and the period-end invoice subtracts all of them, so the period's
/// usage is billed exactly once.
async fn usage_reaching_a_threshold_is_invoiced_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("progressive", PROGRESSIVE).await;
    let clock = customer(&ws, "acme", "2026-11-01T00:00:00Z").await;
    subscribe(&ws, "acme").await;
    bill_run(&ws).await;
    assert_eq!(invoices(&ws, "acme").await.len(), 1, "the opening invoice");

    // 15.00: below the first threshold.
    calls(&ws, 0, 15).await;
    ws.advance(&clock, "2026-11-02T00:00:00Z").await;
    assert_eq!(invoices(&ws, "acme").await.len(), 1);
    // 25.00 passes 20.00: one invoice of the usage so far, within the minute.
    calls(&ws, 15, 10).await;
    ws.advance(&clock, "2026-11-02T00:01:00Z").await;
    let all = invoices(&ws, "acme").await;
    assert_eq!(all.len(), 2, "{all:#?}");
    let first = &all[1];
    assert_eq!(first["total"], "25.00", "{first:#}");
    assert_eq!(sum_of_lines(first).to_string(), "25.00");
    assert_eq!(
        first["lines"][0]["description"],
        "API calls: usage of 2026-11-01 to 2026-11-30 so far: 25.00"
    );
    assert_eq!(first["period_start"], "2026-11-01T00:00:00Z");
    // More usage below the next threshold, and re-runs: nothing more.
    calls(&ws, 25, 5).await;
    ws.advance(&clock, "2026-11-03T00:00:00Z").await;
    bill_run(&ws).await;
    assert_eq!(invoices(&ws, "acme").await.len(), 2);
    // 60.00 passes 50.00: the second invoice bills what the first did not.
    calls(&ws, 30, 30).await;
    ws.advance(&clock, "2026-11-04T00:00:00Z").await;
    let all = invoices(&ws, "acme").await;
    assert_eq!(all.len(), 3, "{all:#?}");
    let second = &all[2];
    assert_eq!(second["total"], "35.00", "{second:#}");
    assert_eq!(
        second["lines"][0]["description"],
        "API calls: usage of 2026-11-01 to 2026-11-30 so far: 60.00, less 25.00 billed before"
    );

    // The period ends at 70.00 of usage: its invoice bills 70.00, subtracts the 60.00 already
    // billed and opens December (10.00).
    calls(&ws, 60, 10).await;
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let all = invoices(&ws, "acme").await;
    assert_eq!(all.len(), 4, "{all:#?}");
    let closing = &all[3];
    let lines: Vec<(String, String)> = closing["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["description"].as_str().unwrap().to_owned(),
                l["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        lines.contains(&(
            "API calls: billed on progressive invoices of 2026-11-01 to 2026-11-30".to_owned(),
            "-60.00".to_owned()
        )),
        "{lines:#?}"
    );
    assert_eq!(closing["total"], "20.00", "{closing:#}");
    assert_eq!(sum_of_lines(closing).to_string(), "20.00");
    // November's usage, 70.00, billed once in all: 25.00 + 35.00 + (70.00 - 60.00).
    let usage_billed: rust_decimal::Decimal = all[1..]
        .iter()
        .flat_map(|i| i["lines"].as_array().unwrap().clone())
        .filter(|l| l["kind"]["type"] == "usage")
        .map(|l| {
            l["amount"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    assert_eq!(usage_billed.to_string(), "70.00");
    // The checks ran as jobs of the scheduler, and each invoice announced itself.
    let (status, jobs) = ws
        .call(
            Method::GET,
            "/v1/jobs?kind=subscription.progressive_check&limit=100",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{jobs}");
    assert!(jobs["data"].as_array().unwrap().len() >= 2, "{jobs:#}");
}
backend_tests!(usage_reaching_a_threshold_is_invoiced_at_once);

/// A white-label partner's workspace is named after the operator; its invoices and credit notes
/// never show that name: without a seller profile the issuer is left empty, with one (even set
/// after the invoice was issued) it is the profile's legal name.
async fn a_white_label_invoice_never_shows_the_workspace_name(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server
        .workspace_with("Levqor white label: Northwind", TAXED)
        .await;
    customer(&ws, "acme", "2026-11-01T00:00:00Z").await;
    subscribe(&ws, "acme").await;
    bill_run(&ws).await;
    let opening = invoices(&ws, "acme").await.pop().unwrap();
    let text = pdf_text(&server, &ws, &opening).await;
    assert!(!text.contains("Levqor"), "{text}");
    assert_pdf_line(&text, "acme Ltd");
    let id = opening["id"].as_str().unwrap();
    ws.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
    let note = ws
        .post(
            &format!("/v1/invoices/{id}/credit_notes"),
            json!({"amount": "1.00", "method": "credit"}),
        )
        .await;
    let note_path = format!(
        "/v1/invoices/{id}/credit_notes/{}.pdf",
        note["id"].as_str().unwrap()
    );
    let note_text =
        pdf_extract::extract_text_from_mem(&pdf_bytes(&server, &ws, &note_path).await).unwrap();
    assert!(!note_text.contains("Levqor"), "{note_text}");

    let (status, body) = ws
        .call(
            Method::PUT,
            "/v1/billing_profile",
            Some(json!({"legal_name": "Northwind Automations Ltd"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let text = pdf_text(&server, &ws, &opening).await;
    assert!(!text.contains("Levqor"), "{text}");
    assert_pdf_line(&text, "Northwind Automations Ltd");
}
backend_tests!(a_white_label_invoice_never_shows_the_workspace_name);

const TWO_CURRENCIES: &str = r#"
currency: USD
meters:
  api_calls: { name: "API calls", event: api.call, aggregation: count }
addons:
  seat: { amount: 5, interval: month }
products:
  pack: { amount: 20 }
plans:
  pro:
    name: Pro
    base: { amount: 100, interval: month }
    addons: [seat]
    prices:
      - { meter: api_calls, model: per_unit, unit_amount: "0.10" }
    currencies:
      EUR:
        base: 92
        prices:
          - { meter: api_calls, model: per_unit, unit_amount: "0.09" }
  starter:
    name: Starter
    base: { amount: 10, interval: month }
"#;

/// A plan priced in USD and EUR: a customer whose currency is EUR is invoiced with the EUR
/// prices (amounts in EUR minor units, prepaid credit in EUR too), a USD customer with the USD
/// ones; a plan without the customer's currency is refused, and so is a change of currency
/// after the first invoice.
async fn a_plan_priced_in_two_currencies_invoices_each_customer_in_its_own(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("currencies", TWO_CURRENCIES).await;
    let clock = customer(&ws, "eu", "2026-11-01T00:00:00Z").await;
    let profile = "/v1/customers/eu/billing_profile";
    let (status, body) = ws
        .call(Method::PUT, profile, Some(json!({"currency": "EURO"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["path"], "currency", "{body}");
    let (status, body) = ws
        .call(Method::PUT, profile, Some(json!({"currency": "EUR"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let subscribe_to = |plan: &'static str, addons: Value| {
        let ws = &ws;
        async move {
            ws.call(
                Method::POST,
                "/v1/customers/eu/subscriptions",
                Some(json!({"plan": plan, "trial": false, "addons": addons})),
            )
            .await
        }
    };
    let (status, body) = subscribe_to("starter", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "plan_not_in_currency");
    let (status, body) = subscribe_to("pro", json!({"seat": 2})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "addon_not_in_currency");
    let (status, sub) = subscribe_to("pro", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    bill_run(&ws).await;
    let opening = invoices(&ws, "eu").await.pop().unwrap();
    assert_eq!(opening["currency"], "EUR", "{opening:#}");
    assert_eq!(opening["total"], "92.00");
    let text = pdf_text(&server, &ws, &opening).await;
    assert_pdf_line(&text, "Currency EUR");

    let credit = ws
        .post("/v1/customers/eu/credits", json!({"amount": "10.00"}))
        .await;
    assert_eq!(credit["currency"], "EUR", "{credit}");
    let events: Vec<Value> = (0..100)
        .map(|i| json!({"id": format!("e{i}"), "customer": "eu", "type": "api.call"}))
        .collect();
    let (status, report) = ws.events(Value::Array(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let closing = invoices(&ws, "eu").await.pop().unwrap();
    assert_eq!(closing["currency"], "EUR");
    // 100 calls at 0.09 EUR and December's 92.00 EUR; 10.00 EUR of prepaid credit.
    assert_eq!(closing["total"], "101.00", "{closing:#}");
    assert_eq!(sum_of_lines(&closing).to_string(), "101.00");
    assert_eq!(closing["credit_applied"], "10.00");
    assert_eq!(closing["amount_due"], "91.00");
    let usage = usage_line(&closing);
    assert_eq!(usage["amount"], "9.00", "{closing:#}");

    // Invoiced in EUR: its currency stays; a plan without EUR prices is refused on change too.
    let (status, body) = ws
        .call(Method::PUT, profile, Some(json!({"currency": "USD"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "customer_currency_locked");
    let (status, body) = ws
        .call(
            Method::POST,
            "/v1/customers/eu/purchases",
            Some(json!({"product": "pack"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "product_not_in_currency");
    let (status, body) = ws
        .call(
            Method::POST,
            &format!(
                "/v1/customers/eu/subscriptions/{}/change",
                sub["id"].as_str().unwrap()
            ),
            Some(json!({"plan": "starter"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "plan_not_in_currency");

    // A customer without a currency is invoiced in the catalog's, with the USD prices.
    customer(&ws, "us", "2026-11-01T00:00:00Z").await;
    ws.post(
        "/v1/customers/us/subscriptions",
        json!({"plan": "pro", "trial": false, "addons": {"seat": 1}}),
    )
    .await;
    bill_run(&ws).await;
    let us = invoices(&ws, "us").await.pop().unwrap();
    assert_eq!(us["currency"], "USD");
    assert_eq!(us["total"], "105.00", "{us:#}");
}
backend_tests!(a_plan_priced_in_two_currencies_invoices_each_customer_in_its_own);

const OFFERS_IN_TWO_CURRENCIES: &str = r#"
currency: USD
addons:
  seat: { amount: 5, interval: month, currencies: { EUR: "4.50" } }
  usd_seat: { amount: 7, interval: month }
products:
  pack: { amount: 20, currencies: { EUR: 18 } }
coupons:
  launch: { amount_off: 10, duration: once, currencies: { EUR: 9 } }
  usd_launch: { amount_off: 10 }
plans:
  pro:
    name: Pro
    base: { amount: 100, interval: month }
    addons: [seat, usd_seat]
    currencies:
      EUR: { base: 92 }
"#;

/// Add-ons, products and amount-off coupons with EUR amounts: a EUR customer is invoiced them
/// in EUR; one without an EUR amount is refused with its own code; MRR is reported per currency.
async fn add_ons_products_and_coupons_are_invoiced_in_the_customers_currency(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server
        .workspace_with("offer_currencies", OFFERS_IN_TWO_CURRENCIES)
        .await;
    customer(&ws, "eu", "2026-11-01T00:00:00Z").await;
    let (status, body) = ws
        .call(
            Method::PUT,
            "/v1/customers/eu/billing_profile",
            Some(json!({"currency": "EUR"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = ws
        .call(
            Method::POST,
            "/v1/customers/eu/coupons",
            Some(json!({"coupon": "usd_launch"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "coupon_not_in_currency");
    ws.post("/v1/customers/eu/coupons", json!({"coupon": "launch"}))
        .await;
    let (status, body) = ws
        .call(
            Method::POST,
            "/v1/customers/eu/subscriptions",
            Some(json!({"plan": "pro", "trial": false, "addons": {"usd_seat": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "addon_not_in_currency");
    ws.post(
        "/v1/customers/eu/subscriptions",
        json!({"plan": "pro", "trial": false, "addons": {"seat": 2}}),
    )
    .await;
    bill_run(&ws).await;
    let opening = invoices(&ws, "eu").await.pop().unwrap();
    assert_eq!(opening["currency"], "EUR", "{opening:#}");
    // November in EUR: 92.00 + 2 seats x 4.50, less the coupon's 9.00 EUR.
    assert_eq!(opening["total"], "92.00", "{opening:#}");
    assert_eq!(sum_of_lines(&opening).to_string(), "92.00");
    let amount_of = |kind: &str| -> Vec<String> {
        opening["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["kind"]["type"] == kind)
            .map(|l| l["amount"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(amount_of("addon"), ["9.00"], "{opening:#}");
    assert_eq!(amount_of("discount"), ["-9.00"], "{opening:#}");
    let purchase = ws
        .post("/v1/customers/eu/purchases", json!({"product": "pack"}))
        .await;
    let text = purchase.to_string();
    assert!(text.contains("\"EUR\""), "{purchase:#}");
    assert!(text.contains("\"18.00\""), "{purchase:#}");

    // A USD customer on the same plan: USD amounts.
    customer(&ws, "us", "2026-11-01T00:00:00Z").await;
    ws.post(
        "/v1/customers/us/subscriptions",
        json!({"plan": "pro", "trial": false, "addons": {"seat": 1}}),
    )
    .await;
    bill_run(&ws).await;
    let us = invoices(&ws, "us").await.pop().unwrap();
    assert_eq!(
        (us["currency"].as_str(), us["total"].as_str()),
        (Some("USD"), Some("105.00")),
        "{us:#}"
    );

    // MRR per currency, never added together: 100.00 USD and 92.00 EUR at November's close.
    let (status, mrr) = ws
        .call(
            Method::GET,
            "/v1/analytics/mrr?from=2026-11&to=2026-11",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{mrr}");
    assert_eq!(mrr["currency"], "USD");
    assert_eq!(mrr["months"][0]["end_minor"], 10_000, "{mrr:#}");
    let per: Vec<(String, i64)> = mrr["currencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["currency"].as_str().unwrap().to_owned(),
                c["months"][0]["end_minor"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per,
        [("USD".to_owned(), 10_000), ("EUR".to_owned(), 9_200)],
        "{mrr:#}"
    );
    let (status, csv) = ws
        .call(
            Method::GET,
            "/v1/analytics/mrr?from=2026-11&to=2026-11&format=csv",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let csv = csv.as_str().unwrap().to_owned();
    assert!(csv.lines().any(|l| l.starts_with("USD,2026-11,")), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("EUR,2026-11,")), "{csv}");
}
backend_tests!(add_ons_products_and_coupons_are_invoiced_in_the_customers_currency);

async fn pdf_bytes(server: &TestServer, ws: &Workspace<'_>, path: &str) -> Vec<u8> {
    let resp = server
        .http
        .get(format!("{}{path}", server.base))
        .bearer_auth(&ws.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    resp.bytes().await.unwrap().to_vec()
}

/// Keeps a rendered document where `TOLLGATE_DOCS_PDF_DIR` says (how docs/images are made).
fn keep(name: &str, bytes: &[u8]) {
    if let Ok(dir) = std::env::var("TOLLGATE_DOCS_PDF_DIR") {
        std::fs::write(format!("{dir}/{name}"), bytes).unwrap();
    }
}

async fn the_documents_show_seller_buyer_terms_and_what_is_owed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace_with("documents", TAXED).await;
    let (status, body) = ws.call(Method::GET, "/v1/billing_profile", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = ws
        .call(
            Method::PUT,
            "/v1/billing_profile",
            Some(
                json!({"legal_name": "Lexecon", "invoice_prefix": "lex-", "net_terms_days": 400,
                        "logo": "data:image/gif;base64,R0lGODlhAQABAAAAACw="}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let paths: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["net_terms_days", "invoice_prefix", "logo"],
        "{body}"
    );
    // A PNG signature over bytes that do not decode: refused when set, not when rendering.
    let (status, body) = ws
        .call(
            Method::PUT,
            "/v1/billing_profile",
            Some(json!({"legal_name": "Lexecon", "logo": logo_data_url(&LOGO[..60])})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["path"], "logo", "{body}");
    let seller = json!({
        "legal_name": "Lexecon Legal Analytics GmbH",
        "address": ["Friedrichstrasse 68", "10117 Berlin, Germany"],
        "tax_ids": ["DE811907980"],
        "net_terms_days": 30,
        "payment_instructions": ["Bank transfer to Lexecon Legal Analytics GmbH",
            "IBAN DE89 3704 0044 0532 0130 00 · BIC COBADEFFXXX",
            "Reference: the invoice number"],
        "invoice_prefix": "LEX",
        "footer": "Lexecon Legal Analytics GmbH · Amtsgericht Berlin HRB 123456 · billing@lexecon.example",
        "logo": logo_data_url(LOGO)
    });
    let (status, body) = ws
        .call(Method::PUT, "/v1/billing_profile", Some(seller.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        ws.call(Method::GET, "/v1/billing_profile", None).await.1,
        seller
    );

    customer(&ws, "cus_7f3k", "2026-11-01T00:00:00Z").await;
    let (status, body) = ws
        .call(
            Method::PUT,
            "/v1/customers/cus_7f3k/billing_profile",
            Some(json!({"legal_name": "Hartmann & Partner Rechtsanwälte",
                        "address": ["Königsallee 12", "40212 Düsseldorf, Germany"],
                        "tax_ids": ["DE287654321"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    subscribe(&ws, "cus_7f3k").await;
    bill_run(&ws).await;
    let invoice = invoices(&ws, "cus_7f3k").await.pop().unwrap();
    assert_eq!(invoice["number"], "LEX-2026-000001");
    assert_eq!(invoice["total"], "121.50");
    assert_eq!(invoice["due_at"], "2026-12-01T00:00:00Z");
    assert_eq!(invoice["amount_paid"], "0.00");
    assert_eq!(
        invoice["parties"]["buyer"]["name"],
        "Hartmann & Partner Rechtsanwälte"
    );
    let id = invoice["id"].as_str().unwrap().to_owned();

    let open = pdf_bytes(&server, &ws, &format!("/v1/invoices/{id}.pdf")).await;
    let text = pdf_extract::extract_text_from_mem(&open).unwrap();
    for line in [
        "Lexecon Legal Analytics GmbH",
        "Friedrichstrasse 68",
        "Tax id: DE811907980",
        "Hartmann & Partner Rechtsanwälte",
        "Königsallee 12",
        "Tax id: DE287654321",
        "Due 2026-12-01 (net 30)",
        "IBAN DE89 3704 0044 0532 0130 00 · BIC COBADEFFXXX",
        "Subtotal 100.00",
        "VAT 20% 20.00",
        "Digital levy 1.5% 1.50",
        "Total 121.50",
        "Amount due 121.50",
    ] {
        assert_pdf_line(&text, line);
    }
    assert!(text.contains("LEX-2026-000001"), "{text}");
    assert!(text.contains("Amtsgericht Berlin HRB 123456"), "{text}");
    assert!(
        !text.contains("cus_7f3k"),
        "the buyer's name, not its id: {text}"
    );

    ws.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
    let paid = pdf_bytes(&server, &ws, &format!("/v1/invoices/{id}.pdf")).await;
    keep("invoice.pdf", &paid);
    let text = pdf_extract::extract_text_from_mem(&paid).unwrap();
    assert_pdf_line(&text, "Amount paid -121.50");
    assert_pdf_line(&text, "Amount due 0.00");
    assert!(
        !text.contains("IBAN"),
        "no payment instructions once paid: {text}"
    );
    let (_, again) = ws
        .call(Method::GET, &format!("/v1/invoices/{id}"), None)
        .await;
    assert_eq!(again["amount_paid"], "121.50");

    let note = ws
        .post(
            &format!("/v1/invoices/{id}/credit_notes"),
            json!({"amount": "21.50", "reason": "service credit for the outage of 2026-11-12"}),
        )
        .await;
    assert_eq!(note["number"], "LEX-CN-2026-000001");
    let note_id = note["id"].as_str().unwrap();
    let pdf = pdf_bytes(
        &server,
        &ws,
        &format!("/v1/invoices/{id}/credit_notes/{note_id}.pdf"),
    )
    .await;
    keep("credit-note.pdf", &pdf);
    let text = pdf_extract::extract_text_from_mem(&pdf).unwrap();
    assert!(text.contains("Credit note"), "{text}");
    assert!(text.contains("LEX-CN-2026-000001"), "{text}");
    assert_pdf_line(&text, "Hartmann & Partner Rechtsanwälte");
    assert_pdf_line(&text, "Total of this credit note -21.50");
    assert_pdf_line(&text, "Invoice total 121.50");
    let (status, _) = ws
        .call(
            Method::GET,
            &format!("/v1/invoices/{id}/credit_notes/cn_nope.pdf"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The logo is drawn on both documents: without it, the same invoice weighs its image less.
    let mut plain = seller.clone();
    plain.as_object_mut().unwrap().remove("logo");
    let (status, body) = ws
        .call(Method::PUT, "/v1/billing_profile", Some(plain))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let without = pdf_bytes(&server, &ws, &format!("/v1/invoices/{id}.pdf")).await;
    assert!(
        paid.len() > without.len() + 400,
        "{} vs {}",
        paid.len(),
        without.len()
    );
}
backend_tests!(the_documents_show_seller_buyer_terms_and_what_is_owed);

/// The logo of the docs' invoices (a PNG of 240 x 72 pixels), shared with tollgate-pdf's tests.
const LOGO: &[u8] = include_bytes!("../../tollgate-pdf/tests/fixtures/logo.png");

fn logo_data_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}
