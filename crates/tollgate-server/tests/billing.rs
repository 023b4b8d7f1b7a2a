//! Every pricing case of the five field scenarios end to end: events into a real server on a
//! test clock, the bill run, the invoice read back, the numbers to the cent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{Backend, TestServer, Workspace, backend_tests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A customer on a clock at `start`, subscribed to `plan` (no trial unless asked).
async fn subscriber(
    ws: &Workspace<'_>,
    id: &str,
    plan: &str,
    start: &str,
    trial: bool,
    addons: Value,
) -> String {
    let clock = ws.test_clock(start).await;
    ws.post("/v1/customers", json!({"id": id, "test_clock": clock}))
        .await;
    ws.post(
        &format!("/v1/customers/{id}/subscriptions"),
        json!({"plan": plan, "trial": trial, "addons": addons}),
    )
    .await;
    clock
}

/// Records `quantity` units of a meter at the customer's current time (a consuming check).
async fn use_meter(ws: &Workspace<'_>, customer: &str, meter: &str, quantity: u64) {
    let d = ws
        .check(json!({"customer": customer, "meter": meter, "quantity": quantity, "consume": true}))
        .await;
    assert_eq!(d["allowed"], true, "{d}");
}

async fn send(ws: &Workspace<'_>, events: Vec<Value>) {
    for chunk in events.chunks(10_000) {
        let (status, report) = ws.events(Value::Array(chunk.to_vec())).await;
        assert_eq!(status, StatusCode::OK, "{report}");
    }
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
    assert_eq!(list["has_more"], false, "{list}");
    list["data"].as_array().unwrap().clone()
}

fn line_amount(invoice: &Value, needle: &str) -> String {
    invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["description"].as_str().unwrap().contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in {invoice:#}"))["amount"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn lexecon_2_package_pricing_and_base_in_advance(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("lexecon.yaml").await;
    for (customer, decisions, expected, line) in [
        ("a", 12_345u64, "164.00", "65.00"),
        ("b", 12_000, "159.00", "60.00"),
        ("c", 0, "99.00", "0.00"),
    ] {
        let clock = subscriber(
            &ws,
            customer,
            "startup",
            "2026-11-01T00:00:00Z",
            false,
            json!({}),
        )
        .await;
        ws.advance(&clock, "2026-11-15T00:00:00Z").await;
        if decisions > 0 {
            use_meter(&ws, customer, "decisions", decisions).await;
        }
        ws.advance(&clock, "2026-12-01T00:00:00Z").await;
        bill_run(&ws).await;
        let all = invoices(&ws, customer).await;
        assert_eq!(all.len(), 2, "{all:#?}");
        assert_eq!(all[0]["total"], "99.00", "November's base in advance");
        let nov = &all[1];
        assert_eq!(nov["period_start"], "2026-11-01T00:00:00Z");
        assert_eq!(nov["total"], expected, "{nov:#}");
        if decisions > 0 {
            assert_eq!(line_amount(nov, "decisions"), line);
        }
        assert_eq!(line_amount(nov, "base fee"), "99.00");
    }
    // Invoice numbers are gapless in the workspace, and a re-run bills nothing twice.
    let again = bill_run(&ws).await;
    assert_eq!(again["invoices_created"], 0);
    let mut numbers: Vec<String> = Vec::new();
    for c in ["a", "b", "c"] {
        numbers.extend(
            invoices(&ws, c)
                .await
                .iter()
                .map(|i| i["number"].as_str().unwrap().to_owned()),
        );
    }
    numbers.sort();
    assert_eq!(
        numbers,
        (1..=6).map(|n| format!("INV-{n:06}")).collect::<Vec<_>>()
    );
}
backend_tests!(lexecon_2_package_pricing_and_base_in_advance);

async fn lexecon_5_trial_usage_is_free_and_the_first_charge_is_at_trial_end(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("lexecon.yaml").await;
    let clock = subscriber(&ws, "t", "startup", "2026-11-03T10:00:00Z", true, json!({})).await;
    let (_, subs) = ws
        .call(Method::GET, "/v1/customers/t/subscriptions", None)
        .await;
    assert_eq!(subs["data"][0]["trial_end"], "2026-11-17T10:00:00Z");
    use_meter(&ws, "t", "decisions", 5_000).await;
    ws.advance(&clock, "2026-11-17T09:59:59Z").await;
    assert_eq!(
        bill_run(&ws).await["invoices_created"],
        0,
        "nothing is billed during the trial"
    );
    ws.advance(&clock, "2026-11-17T10:00:00Z").await;
    bill_run(&ws).await;
    let all = invoices(&ws, "t").await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["total"], "99.00");
    use_meter(&ws, "t", "decisions", 1_500).await;
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let all = invoices(&ws, "t").await;
    assert_eq!(all.len(), 2);
    assert_eq!(
        line_amount(&all[1], "decisions"),
        "10.00",
        "only the 1,500 after the trial: 2 x 5.00"
    );
    assert_eq!(all[1]["total"], "109.00");
}
backend_tests!(lexecon_5_trial_usage_is_free_and_the_first_charge_is_at_trial_end);

async fn lexecon_7_annual_plan_one_invoice_for_the_year_by_bank_transfer(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("lexecon.yaml").await;
    let clock = subscriber(
        &ws,
        "bigco",
        "enterprise_starter",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    bill_run(&ws).await;
    ws.advance(&clock, "2027-06-01T00:00:00Z").await;
    bill_run(&ws).await;
    let all = invoices(&ws, "bigco").await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["total"], "10000.00");
    assert_eq!(all[0]["status"], "open");
    assert_eq!(all[0]["period_start"], "2026-11-01T00:00:00Z");
    assert_eq!(all[0]["period_end"], "2027-11-01T00:00:00Z");
    let paid = ws
        .post(
            &format!("/v1/invoices/{}/pay", all[0]["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(paid["status"], "paid");
}
backend_tests!(lexecon_7_annual_plan_one_invoice_for_the_year_by_bank_transfer);

async fn apex_1_2_3_percentage_of_spend_with_caps(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("apex.yaml").await;
    for (customer, plan, spend, expected) in [
        ("p1", "early", "3000.00", "60.00"),
        ("p2", "early", "10000.00", "99.00"),
        ("p3", "mid", "7500.00", "375.00"),
        ("p4", "enterprise", "123456.78", "12345.68"),
    ] {
        let clock = subscriber(
            &ws,
            customer,
            plan,
            "2026-11-01T00:00:00Z",
            false,
            json!({}),
        )
        .await;
        ws.advance(&clock, "2026-11-20T00:00:00Z").await;
        // Two events, to exercise the sum.
        send(&ws, vec![
            json!({"id": format!("{customer}-1"), "customer": customer, "type": "cloud.cost", "properties": {"amount_usd": "0.01"}}),
            json!({"id": format!("{customer}-2"), "customer": customer, "type": "cloud.cost", "properties": {"amount_usd": rust_sub(spend, "0.01")}}),
        ])
        .await;
        let upcoming = ws
            .call(
                Method::GET,
                &format!("/v1/customers/{customer}/invoices/upcoming"),
                None,
            )
            .await
            .1;
        assert_eq!(upcoming["status"], "draft");
        assert_eq!(
            upcoming["total"], expected,
            "preview before the period closes: {upcoming:#}"
        );
        ws.advance(&clock, "2026-12-01T00:00:00Z").await;
        bill_run(&ws).await;
        let nov = invoices(&ws, customer)
            .await
            .into_iter()
            .find(|i| i["period_start"] == "2026-11-01T00:00:00Z" && i["total"] != "0.00")
            .unwrap();
        assert_eq!(nov["total"], expected, "{nov:#}");
    }
}
backend_tests!(apex_1_2_3_percentage_of_spend_with_caps);

fn rust_sub(a: &str, b: &str) -> String {
    let a: rust_decimal::Decimal = a.parse().unwrap();
    let b: rust_decimal::Decimal = b.parse().unwrap();
    (a - b).to_string()
}

async fn apex_7_referral_discount_on_the_first_three_invoices(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("apex.yaml").await;
    let clock = subscriber(
        &ws,
        "ref",
        "early",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    ws.post(
        "/v1/customers/ref/coupons",
        json!({"coupon": "referral_welcome"}),
    )
    .await;
    let mut totals = Vec::new();
    for (i, (mid, end)) in [
        ("2026-11-15T00:00:00Z", "2026-12-01T00:00:00Z"),
        ("2026-12-15T00:00:00Z", "2027-01-01T00:00:00Z"),
        ("2027-01-15T00:00:00Z", "2027-02-01T00:00:00Z"),
        ("2027-02-15T00:00:00Z", "2027-03-01T00:00:00Z"),
    ]
    .into_iter()
    .enumerate()
    {
        ws.advance(&clock, mid).await;
        send(&ws, vec![json!({"id": format!("spend-{i}"), "customer": "ref", "type": "cloud.cost", "properties": {"amount_usd": "10000"}})]).await;
        ws.advance(&clock, end).await;
        bill_run(&ws).await;
        let last = invoices(&ws, "ref").await.pop().unwrap();
        totals.push(last["total"].as_str().unwrap().to_owned());
    }
    assert_eq!(totals, ["79.20", "79.20", "79.20", "99.00"]);
}
backend_tests!(apex_7_referral_discount_on_the_first_three_invoices);

async fn control_plane_1_2_overage_addons_and_quotes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("control-plane.yaml").await;
    let clock = subscriber(
        &ws,
        "s",
        "starter",
        "2026-11-01T00:00:00Z",
        false,
        json!({"seat": 3, "policy_pack": 1}),
    )
    .await;
    let clock2 = subscriber(
        &ws,
        "p",
        "professional",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    ws.advance(&clock, "2026-11-20T00:00:00Z").await;
    ws.advance(&clock2, "2026-11-20T00:00:00Z").await;
    use_meter(&ws, "s", "requests", 130_000).await;
    use_meter(&ws, "p", "requests", 1_250_000).await;
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    ws.advance(&clock2, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let s = invoices(&ws, "s").await.pop().unwrap();
    assert_eq!(line_amount(&s, "requests"), "30.00");
    assert_eq!(s["total"], "465.00", "{s:#}");
    let p = invoices(&ws, "p").await.pop().unwrap();
    assert_eq!(p["total"], "1124.00", "{p:#}");
    // Case 5: the same as a quote, without any customer.
    let q = ws.post("/v1/quotes", json!({"plan": "starter", "usage": {"requests": "130000"}, "addons": {"seat": 3, "policy_pack": 1}})).await;
    assert_eq!(q["total"], "465.00");
    assert_eq!(
        q["lines"].as_array().unwrap().len(),
        s["lines"].as_array().unwrap().len()
    );
}
backend_tests!(control_plane_1_2_overage_addons_and_quotes);

async fn control_plane_4_recommends_professional_for_heavy_starter_usage(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("control-plane.yaml").await;
    let clock = subscriber(
        &ws,
        "heavy",
        "starter",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    ws.advance(&clock, "2026-11-20T00:00:00Z").await;
    use_meter(&ws, "heavy", "requests", 900_000).await;
    ws.advance(&clock, "2026-12-02T00:00:00Z").await;
    let (status, r) = ws
        .call(Method::GET, "/v1/customers/heavy/recommendation", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["current_cost"], "1099.00");
    assert_eq!(r["recommended_plan"], "professional");
    assert_eq!(r["recommended_cost"], "999.00");
    assert_eq!(r["saving"], "100.00");
}
backend_tests!(control_plane_4_recommends_professional_for_heavy_starter_usage);

async fn control_plane_7_seats_added_mid_period_are_prorated_to_the_second(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("control-plane.yaml").await;
    let clock = subscriber(
        &ws,
        "grow",
        "starter",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    bill_run(&ws).await; // November's opening invoice, as the scheduler would have made it
    ws.advance(&clock, "2026-11-16T00:00:00Z").await;
    let (_, subs) = ws
        .call(Method::GET, "/v1/customers/grow/subscriptions", None)
        .await;
    let sub = subs["data"][0]["id"].as_str().unwrap();
    ws.post(
        &format!("/v1/customers/grow/subscriptions/{sub}/change"),
        json!({"plan": "starter", "addons": {"seat": 2}}),
    )
    .await;
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let dec = invoices(&ws, "grow").await.pop().unwrap();
    let prorated = dec["lines"].as_array().unwrap().iter().find(|l| {
        l["description"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("seat")
            && l["period"]["start"] == "2026-11-16T00:00:00Z"
    });
    assert_eq!(
        prorated.unwrap_or_else(|| panic!("{dec:#}"))["amount"],
        "29.00"
    );
    // December's seats in advance, in full.
    assert_eq!(
        dec["total"], "386.00",
        "299 + 2 x 29.00 for December + 29.00 prorated: {dec:#}"
    );
}
backend_tests!(control_plane_7_seats_added_mid_period_are_prorated_to_the_second);

async fn levqor_1_2_5_6_packages_credits_and_one_time_packs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("levqor.yaml").await;
    for (customer, plan, calls) in [
        ("d", "developer", 12_500u64),
        ("p0", "professional", 50_000),
        ("p1", "professional", 50_001),
    ] {
        let clock = subscriber(
            &ws,
            customer,
            plan,
            "2026-11-01T00:00:00Z",
            false,
            json!({}),
        )
        .await;
        ws.advance(&clock, "2026-11-10T00:00:00Z").await;
        use_meter(&ws, customer, "api_calls", calls).await;
        ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    }
    bill_run(&ws).await;
    for (customer, expected) in [("d", "38.00"), ("p0", "99.00"), ("p1", "101.00")] {
        assert_eq!(
            invoices(&ws, customer).await.pop().unwrap()["total"],
            expected,
            "{customer}"
        );
    }
    // Case 5: $50.00 of credit pays a $38.00 invoice and $12.00 is left.
    let clock = subscriber(
        &ws,
        "cr",
        "developer",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    bill_run(&ws).await;
    ws.post("/v1/customers/cr/credits", json!({"amount": "50.00"}))
        .await;
    ws.advance(&clock, "2026-11-10T00:00:00Z").await;
    use_meter(&ws, "cr", "api_calls", 12_500).await;
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let inv = invoices(&ws, "cr").await.pop().unwrap();
    assert_eq!(
        (
            inv["total"].as_str(),
            inv["amount_due"].as_str(),
            inv["status"].as_str()
        ),
        (Some("38.00"), Some("0.00"), Some("paid"))
    );
    let (_, balance) = ws.call(Method::GET, "/v1/customers/cr/credits", None).await;
    assert_eq!(balance["balance"], "12.00");
    // Case 6: a one-time pack is an invoice of its own; paying it marks it paid.
    ws.post("/v1/customers", json!({"id": "buyer"})).await;
    let (status, pack) = ws
        .call(
            Method::POST,
            "/v1/customers/buyer/purchases",
            Some(json!({"product": "automation_pro"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pack}");
    assert_eq!(pack["total"], "99.00");
    let paid = ws
        .post(
            &format!("/v1/invoices/{}/pay", pack["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(paid["status"], "paid");
    // White label: setup fee on the first invoice only.
    let clock = subscriber(
        &ws,
        "agency",
        "white_label_basic",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    bill_run(&ws).await;
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let all = invoices(&ws, "agency").await;
    assert_eq!(
        all.iter()
            .map(|i| i["total"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["2499.00", "499.00"]
    );
}
backend_tests!(levqor_1_2_5_6_packages_credits_and_one_time_packs);

async fn qlp_1_2_3_5_dimensions_storage_compute_and_refunds(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    let clock = subscriber(
        &ws,
        "payg",
        "payg",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    ws.advance(&clock, "2026-11-10T00:00:00Z").await;
    let mut events = Vec::new();
    let mut generations = |tier: &str, model: &str, n: usize| {
        for _ in 0..n {
            let i = events.len();
            events.push(json!({"id": format!("g{i}"), "customer": "payg", "type": "codegen.completed", "properties": {"tier": tier, "model": model}}));
        }
    };
    generations("T0", "standard", 10);
    generations("T2", "standard", 4);
    generations("T3", "gpt-4", 2);
    send(&ws, events).await;
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let inv = invoices(&ws, "payg").await.pop().unwrap();
    assert_eq!(inv["total"], "7.00", "{inv:#}");

    // Storage: 50 GB for 15 days then 100 GB: 75 GB-month, 10 included on starter: 6.50.
    // Compute: 5,400,000 ms = 90 minutes at 0.05: 4.50 (starter prices compute too).
    let clock = subscriber(
        &ws,
        "st",
        "starter",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    send(&ws, vec![
        json!({"id": "s1", "customer": "st", "type": "storage.snapshot", "timestamp": "2026-11-01T00:00:00Z", "properties": {"gb": 50}}),
    ])
    .await;
    ws.advance(&clock, "2026-11-16T00:00:00Z").await;
    send(&ws, vec![
        json!({"id": "s2", "customer": "st", "type": "storage.snapshot", "timestamp": "2026-11-16T00:00:00Z", "properties": {"gb": 100}}),
        json!({"id": "j1", "customer": "st", "type": "job.finished", "properties": {"duration_ms": 5_000_000}}),
        json!({"id": "j2", "customer": "st", "type": "job.finished", "properties": {"duration_ms": 400_000}}),
    ])
    .await;
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let st = invoices(&ws, "st").await.pop().unwrap();
    assert_eq!(line_amount(&st, "storage_gb"), "6.50", "{st:#}");
    assert_eq!(line_amount(&st, "compute_minutes"), "4.50", "{st:#}");

    // Case 5: a paid $99.00 invoice refunded in full gets a $99.00 credit note.
    let first = invoices(&ws, "st").await.remove(0);
    assert_eq!(first["total"], "99.00");
    ws.post(
        &format!("/v1/invoices/{}/pay", first["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    let (status, note) = ws
        .call(
            Method::POST,
            &format!(
                "/v1/invoices/{}/credit_notes",
                first["id"].as_str().unwrap()
            ),
            Some(json!({"reason": "refund within 30 days"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["amount"], "99.00");
    assert!(note["number"].as_str().unwrap().starts_with("CN-"));
    let (_, refunded) = ws
        .call(
            Method::GET,
            &format!("/v1/invoices/{}", first["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(refunded["refund_status"], "refunded");
    assert_eq!(refunded["credited"], "99.00");
    let (status, body) = ws
        .call(
            Method::POST,
            &format!(
                "/v1/invoices/{}/credit_notes",
                first["id"].as_str().unwrap()
            ),
            Some(json!({"amount": "1.00"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("refund_exceeds_invoice"))
    );
}
backend_tests!(qlp_1_2_3_5_dimensions_storage_compute_and_refunds);

#[tokio::test]
async fn invoices_are_immutable_and_only_move_through_their_lifecycle() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ws = server.workspace("lexecon.yaml").await;
    subscriber(
        &ws,
        "x",
        "startup",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    bill_run(&ws).await;
    let inv = invoices(&ws, "x").await.remove(0);
    let id = inv["id"].as_str().unwrap();
    let voided = ws.post(&format!("/v1/invoices/{id}/void"), json!({})).await;
    assert_eq!(voided["status"], "void");
    let (status, body) = ws
        .call(
            Method::POST,
            &format!("/v1/invoices/{id}/pay"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_invoice_transition"))
    );
    // A customer's key sees its own invoices only.
    let key = ws.post("/v1/customers/x/keys", json!({})).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.post("/v1/customers", json!({"id": "y"})).await;
    let (status, _) = server
        .call(&key, Method::GET, "/v1/customers/y/invoices", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, mine) = server
        .call(&key, Method::GET, &format!("/v1/invoices/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["number"], "INV-000001");
}

#[tokio::test]
async fn an_invoice_renders_as_a_pdf_with_its_lines_and_totals() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ws = server.workspace("control-plane.yaml").await;
    let clock = subscriber(
        &ws,
        "pdf",
        "starter",
        "2026-11-01T00:00:00Z",
        false,
        json!({"seat": 3, "policy_pack": 1}),
    )
    .await;
    ws.advance(&clock, "2026-11-20T00:00:00Z").await;
    use_meter(&ws, "pdf", "requests", 130_000).await;
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let invoice = invoices(&ws, "pdf").await.pop().unwrap();
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
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    // Read back with pdf-extract (pure Rust); every check is on whole lines or whole tokens.
    let text = pdf_extract::extract_text_from_mem(&bytes).expect("pdf-extract reads the invoice");
    assert_pdf_line(&text, invoice["number"].as_str().unwrap());
    assert_pdf_line(&text, "pdf"); // the customer, under "Billed to"
    assert_pdf_line(&text, "Period 2026-11-01 to 2026-11-30");
    assert_pdf_line(&text, "Description Quantity Unit price Amount (USD)");
    let lines = invoice["lines"].as_array().unwrap();
    let mut amounts: Vec<&str> = lines
        .iter()
        .map(|l| l["amount"].as_str().unwrap())
        .collect();
    amounts.sort_unstable();
    assert_eq!(
        amounts,
        ["299.00", "30.00", "49.00", "87.00"],
        "{invoice:#}"
    );
    for l in lines {
        let field = |name: &str| match &l[name] {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        };
        let mut cells = vec![field("quantity").unwrap()];
        // The PDF shows a unit price with at least the currency's two decimals.
        cells.extend(field("unit_price").map(|p| {
            let mut d: rust_decimal::Decimal = p.parse().unwrap();
            if d.scale() < 2 {
                d.rescale(2);
            }
            d.to_string()
        }));
        cells.push(field("amount").unwrap());
        assert_pdf_row(&text, l["description"].as_str().unwrap(), &cells);
    }
    assert_pdf_line(&text, "Total 465.00");
    assert_pdf_line(&text, "Amount due 465.00");
}

/// Asserts that one line of the PDF text is exactly `expected`, whitespace aside.
fn assert_pdf_line(text: &str, expected: &str) {
    let want: Vec<&str> = expected.split_whitespace().collect();
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == want),
        "no line {expected:?} in the PDF text:\n{text}"
    );
}

/// Asserts that a table row of the PDF text ends with exactly `cells` as whole tokens after
/// `description` (compared without whitespace, as a wrapped description may sit on the lines
/// above its cells, with its words joined where it wraps).
fn assert_pdf_row(text: &str, description: &str, cells: &[String]) {
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let want: String = description.split_whitespace().collect();
    let found = lines.iter().enumerate().any(|(i, line)| {
        let Some(before) = line.len().checked_sub(cells.len()) else {
            return false;
        };
        if line[before..] != *cells {
            return false;
        }
        let shown: String = if before == 0 {
            let start = lines[..i]
                .iter()
                .rposition(Vec::is_empty)
                .map_or(0, |p| p + 1);
            lines[start..i].iter().flatten().copied().collect()
        } else {
            line[..before].concat()
        };
        shown == want
    });
    assert!(
        found,
        "no row {description:?} with cells {cells:?} in the PDF text:\n{text}"
    );
}

async fn a_downgrade_waits_for_the_period_end_and_an_upgrade_is_prorated_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("control-plane.yaml").await;
    let clock = subscriber(
        &ws,
        "down",
        "professional",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    bill_run(&ws).await;
    ws.advance(&clock, "2026-11-16T00:00:00Z").await;
    let (_, subs) = ws
        .call(Method::GET, "/v1/customers/down/subscriptions", None)
        .await;
    let sub = subs["data"][0]["id"].as_str().unwrap().to_owned();
    let answer = ws
        .post(
            &format!("/v1/customers/down/subscriptions/{sub}/change"),
            json!({"plan": "starter"}),
        )
        .await;
    assert_eq!(
        answer["plan"], "professional",
        "still professional until the period ends"
    );
    assert_eq!(answer["scheduled_plan"], "starter");
    assert_eq!(answer["scheduled_at"], "2026-12-01T00:00:00Z");
    // Entitlements stay those of professional (SSO) until then.
    assert_eq!(
        ws.check(json!({"customer": "down", "feature": "sso"}))
            .await["allowed"],
        true
    );
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    bill_run(&ws).await;
    let all = invoices(&ws, "down").await;
    let totals: Vec<&str> = all.iter().map(|i| i["total"].as_str().unwrap()).collect();
    assert_eq!(
        totals,
        ["999.00", "0.00", "299.00"],
        "opening, November closed on professional, December on starter"
    );
    assert_eq!(
        ws.check(json!({"customer": "down", "feature": "sso"}))
            .await["allowed"],
        false
    );
    // An upgrade takes effect at once, prorated: 15 of 31 December days of 999 - 299.
    ws.advance(&clock, "2026-12-17T00:00:00Z").await;
    let up = ws
        .post(
            &format!("/v1/customers/down/subscriptions/{sub}/change"),
            json!({"plan": "professional"}),
        )
        .await;
    assert_eq!(up["plan"], "professional");
    assert_eq!(
        ws.check(json!({"customer": "down", "feature": "sso"}))
            .await["allowed"],
        true
    );
    ws.advance(&clock, "2027-01-01T00:00:00Z").await;
    bill_run(&ws).await;
    let jan = invoices(&ws, "down").await.pop().unwrap();
    let prorated: rust_decimal::Decimal = jan["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["period"]["start"] == "2026-12-17T00:00:00Z")
        .map(|l| {
            l["amount"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    // (999 - 299) x 15/31 = 338.709... -> 338.71 (credit and charge rounded per line).
    assert!(
        (prorated - rust_decimal::Decimal::new(33871, 2)).abs() <= rust_decimal::Decimal::new(1, 2),
        "{jan:#}"
    );
}
backend_tests!(a_downgrade_waits_for_the_period_end_and_an_upgrade_is_prorated_at_once);

/// QLP's policy: "full refund within 30 days of payment". `policies.refund_window_days: 30`
/// refuses a refund from the 30th day's end on, unless the operator says it is an exception.
async fn qlp_refund_window_closes_30_days_after_payment(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    let clock = subscriber(
        &ws,
        "late",
        "starter",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    ws.advance(&clock, "2026-11-02T00:00:00Z").await;
    bill_run(&ws).await;
    let first = invoices(&ws, "late").await.remove(0);
    assert_eq!(first["total"], "99.00");
    let id = first["id"].as_str().unwrap().to_owned();
    let paid = ws.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
    assert_eq!(paid["paid_at"], "2026-11-02T00:00:00Z", "{paid}");
    let refund = |body: Value| {
        let ws = &ws;
        let id = id.clone();
        async move {
            ws.call(
                Method::POST,
                &format!("/v1/invoices/{id}/credit_notes"),
                Some(body),
            )
            .await
        }
    };

    // The window's last second is 30 days after payment; the next one is outside it.
    ws.advance(&clock, "2026-12-02T00:00:01Z").await;
    let (status, body) = refund(json!({"amount": "10.00"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("refund_window_closed")),
        "{body}"
    );
    // Nothing was refunded.
    let (_, invoice) = ws
        .call(Method::GET, &format!("/v1/invoices/{id}"), None)
        .await;
    assert_eq!(invoice["credited"], "0.00", "{invoice}");
    // An operator's exception goes through, and says so in its reason.
    let (status, note) =
        refund(json!({"amount": "10.00", "outside_refund_window": true, "reason": "goodwill"}))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["amount"], "10.00");
}
backend_tests!(qlp_refund_window_closes_30_days_after_payment);

/// Inside the window (the first second after payment up to exactly 30 days), refunds pass.
async fn qlp_refund_inside_the_window(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    let clock = subscriber(
        &ws,
        "early",
        "starter",
        "2026-11-01T00:00:00Z",
        false,
        json!({}),
    )
    .await;
    ws.advance(&clock, "2026-11-02T00:00:00Z").await;
    bill_run(&ws).await;
    let id = invoices(&ws, "early").await.remove(0)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
    ws.advance(&clock, "2026-12-02T00:00:00Z").await;
    let (status, note) = ws
        .call(
            Method::POST,
            &format!("/v1/invoices/{id}/credit_notes"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["amount"], "99.00");
}
backend_tests!(qlp_refund_inside_the_window);

/// Canceled at once inside the refund window: the paid invoice is refunded in full by a credit
/// note, by the catalog's rule; one canceled at the period end is not refunded.
async fn qlp_cancel_at_once_refunds_inside_the_window(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    let mut refunds = Vec::new();
    for (customer, immediately) in [("quits", true), ("stays", false)] {
        let clock = subscriber(
            &ws,
            customer,
            "starter",
            "2026-11-01T00:00:00Z",
            false,
            json!({}),
        )
        .await;
        ws.advance(&clock, "2026-11-02T00:00:00Z").await;
        bill_run(&ws).await;
        let id = invoices(&ws, customer).await.remove(0)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        ws.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
        ws.advance(&clock, "2026-11-20T00:00:00Z").await;
        let (_, subs) = ws
            .call(
                Method::GET,
                &format!("/v1/customers/{customer}/subscriptions"),
                None,
            )
            .await;
        let sub = subs["data"][0]["id"].as_str().unwrap().to_owned();
        ws.post(
            &format!("/v1/customers/{customer}/subscriptions/{sub}/cancel"),
            json!({"immediately": immediately}),
        )
        .await;
        let (_, invoice) = ws
            .call(Method::GET, &format!("/v1/invoices/{id}"), None)
            .await;
        refunds.push((
            customer,
            invoice["credited"].as_str().unwrap().to_owned(),
            invoice["refund_status"].clone(),
        ));
    }
    assert_eq!(
        refunds,
        vec![
            ("quits", "99.00".to_owned(), json!("refunded")),
            ("stays", "0.00".to_owned(), Value::Null),
        ]
    );
}
backend_tests!(qlp_cancel_at_once_refunds_inside_the_window);
