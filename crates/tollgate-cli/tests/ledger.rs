//! `tollgate ledger verify` against the store a real `tollgate serve` process wrote: clean, it
//! says ok (exit 0); with one stored event changed behind the server's back, it names the entry
//! and exits 1. It reads the store itself, as `bill-run` does. `tollgate report evidence` does
//! the same for one customer's period, as a PDF.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{customer_on, serve_with, stdout, tollgate};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn ledger_verify_says_ok_then_names_a_changed_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let master = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let (mut server, base) = serve_with(
        &data,
        &dir.path().join("server.log"),
        &[("TOLLGATE_MASTER_KEY", master)],
    )
    .await;
    let yaml = std::fs::read_to_string(common::example("levqor")).unwrap();
    customer_on(&base, &yaml, "acme", "developer").await;
    let events: Vec<_> = (0..4)
        .map(|i| json!({"id": format!("call-{i}"), "customer": "acme", "type": "api.call", "timestamp": format!("2026-11-0{}T10:00:00Z", i + 2), "properties": {"n": i}}))
        .collect();
    common::admin(
        &base,
        Method::POST,
        "/v1/events",
        json!({ "events": events }),
    )
    .await;
    let sealed = common::admin(&base, Method::POST, "/v1/ledger/seal", json!({})).await;
    assert!(sealed["checkpoint"].is_string(), "{sealed}");
    server.terminate();

    let verify = || {
        tollgate()
            .args([
                "ledger",
                "verify",
                "--workspace",
                "ws_default",
                "--data-dir",
            ])
            .arg(&data)
            .output()
            .unwrap()
    };
    let clean = verify();
    assert!(clean.status.success(), "{}", stdout(&clean));
    assert!(
        stdout(&clean).contains("1 checkpoints verified"),
        "{}",
        stdout(&clean)
    );
    assert!(stdout(&clean).ends_with("ok\n"), "{}", stdout(&clean));

    let pdf = dir.path().join("evidence.pdf");
    let evidence = || {
        tollgate()
            .args([
                "report",
                "evidence",
                "--customer",
                "acme",
                "--from",
                "2026-11-01",
            ])
            .args(["--to", "2026-11-05T00:00:00Z", "--data-dir"])
            .arg(&data)
            .arg("--out")
            .arg(&pdf)
            .output()
            .unwrap()
    };
    let report = evidence();
    assert!(report.status.success(), "{}", stdout(&report));
    assert!(
        stdout(&report).contains("3 events (3 sealed)") && stdout(&report).ends_with("verified\n"),
        "{}",
        stdout(&report)
    );
    let text = pdf_extract::extract_text_from_mem(&std::fs::read(&pdf).unwrap()).unwrap();
    assert!(
        text.contains("VERIFIED") && text.contains("call-2"),
        "{text}"
    );
    assert!(
        !text.contains("call-3"),
        "an event after --to is listed: {text}"
    );

    let url = format!("sqlite://{}", data.join("tollgate.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE events SET properties = '{\"n\": 40}' WHERE id = 'call-2'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let caught = verify();
    assert_eq!(caught.status.code(), Some(1), "{}", stdout(&caught));
    assert!(
        stdout(&caught).contains("FAILED (record_changed)")
            && stdout(&caught).contains("call-2 was changed"),
        "{}",
        stdout(&caught)
    );
    let report = evidence();
    assert_eq!(report.status.code(), Some(1), "{}", stdout(&report));
    assert!(
        stdout(&report).contains("FAILED (record_changed)"),
        "{}",
        stdout(&report)
    );
    let text = pdf_extract::extract_text_from_mem(&std::fs::read(&pdf).unwrap()).unwrap();
    assert!(
        text.contains("FAILED") && text.contains("record_changed"),
        "{text}"
    );
}

/// QLP case 1 as an invoice its customer recomputes (docs/TRUST.md, "Recomputing an invoice"):
/// November on `payg` (10 T0, 4 T2, 2 T3 on gpt-4 = 7.00) closed on a test clock, sealed, then
/// `tollgate ledger recompute-invoice` with the customer's own key and the pinned checkpoint
/// key: every line matches (exit 0). An invoice line changed behind the customer's back is
/// named (exit 1); so is a ledger entry changed after it was signed.
#[tokio::test]
async fn a_customer_recomputes_its_invoice_from_the_proven_events() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let master = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let (_server, base) = serve_with(
        &data,
        &dir.path().join("server.log"),
        &[("TOLLGATE_MASTER_KEY", master)],
    )
    .await;
    let yaml = std::fs::read_to_string(common::example("qlp")).unwrap();
    common::admin(&base, Method::PUT, "/v1/catalog", json!({ "yaml": yaml })).await;
    let clock = common::admin(
        &base,
        Method::POST,
        "/v1/test_clocks",
        json!({"frozen_time": "2026-11-01T00:00:00Z"}),
    )
    .await;
    let clock = clock["id"].as_str().unwrap();
    common::admin(
        &base,
        Method::POST,
        "/v1/customers",
        json!({"id": "coder", "test_clock": clock}),
    )
    .await;
    common::admin(
        &base,
        Method::POST,
        "/v1/customers/coder/subscriptions",
        json!({"plan": "payg", "trial": false}),
    )
    .await;
    common::admin(
        &base,
        Method::POST,
        &format!("/v1/test_clocks/{clock}/advance"),
        json!({"frozen_time": "2026-11-20T00:00:00Z"}),
    )
    .await;
    let mut events = Vec::new();
    for (n, tier, model) in [
        (10, "T0", "standard"),
        (4, "T2", "standard"),
        (2, "T3", "gpt-4"),
    ] {
        for i in 0..n {
            events.push(json!({"id": format!("gen-{tier}-{i}"), "customer": "coder", "type": "codegen.completed", "timestamp": format!("2026-11-{:02}T12:00:00Z", i + 2), "properties": {"tier": tier, "model": model}}));
        }
    }
    common::admin(
        &base,
        Method::POST,
        "/v1/events",
        json!({ "events": events }),
    )
    .await;
    common::admin(
        &base,
        Method::POST,
        &format!("/v1/test_clocks/{clock}/advance"),
        json!({"frozen_time": "2026-12-01T00:00:01Z"}),
    )
    .await;
    let invoices = common::admin(
        &base,
        Method::GET,
        "/v1/customers/coder/invoices",
        json!({}),
    )
    .await;
    let invoice = invoices["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["total"] == "7.00")
        .unwrap_or_else(|| panic!("no 7.00 invoice: {invoices}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sealed = common::admin(&base, Method::POST, "/v1/ledger/seal", json!({})).await;
    assert!(sealed["checkpoint"].is_string(), "{sealed}");
    let key = common::admin(
        &base,
        Method::POST,
        "/v1/customers/coder/keys",
        json!({"name": "audit"}),
    )
    .await;
    let key = key["secret"].as_str().unwrap().to_owned();
    let pinned = common::admin(&base, Method::GET, "/v1/license_keys", json!({})).await;
    let pinned = pinned[0]["public_key"].as_str().unwrap().to_owned();

    let recompute = || {
        tollgate()
            .args(["ledger", "recompute-invoice", "--invoice", &invoice])
            .args(["--server", &base, "--api-key", &key, "--trust-key", &pinned])
            .output()
            .unwrap()
    };
    let clean = recompute();
    let out = stdout(&clean);
    assert!(clean.status.success(), "{out}");
    assert!(
        !out.contains("DIFFERS") && !out.contains("MISSING"),
        "{out}"
    );
    assert!(
        out.contains("usage lines recomputed from 16 proven events: match"),
        "{out}"
    );
    for (tier, quantity, amount) in [
        ("T0", "10", "1.00"),
        ("T2", "4", "2.00"),
        ("T3", "2", "4.00"),
    ] {
        assert!(
            out.lines().any(|l| l.starts_with("ok ")
                && l.contains(tier)
                && l.contains(&format!(": {quantity} -> {amount} USD"))),
            "{tier}: {out}"
        );
    }
    assert!(
        out.contains("ledger "),
        "each line names its ledger range: {out}"
    );

    // The server raises a line's quantity after the fact: the events do not support it.
    let url = format!("sqlite://{}", data.join("tollgate.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (document,): (String,) = sqlx::query_as("SELECT document FROM invoices WHERE id = ?")
        .bind(&invoice)
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut document: serde_json::Value = serde_json::from_str(&document).unwrap();
    let line = document["lines"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["kind"]["type"] == "usage" && l["quantity"] == "10")
        .expect("a usage line of 10");
    line["quantity"] = json!("12");
    let changed_line = line["description"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE invoices SET document = ? WHERE id = ?")
        .bind(document.to_string())
        .bind(&invoice)
        .execute(&pool)
        .await
        .unwrap();
    let caught = recompute();
    let out = stdout(&caught);
    assert_eq!(caught.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("DIFFERS  {changed_line}: invoiced 12"))
            && out.contains("the events give 10"),
        "{out}"
    );

    // A signed entry rewritten afterwards: its proof no longer leads to the checkpoint.
    sqlx::query(
        "UPDATE ledger_entries SET entry = replace(entry, '\"T2\"', '\"T3\"') WHERE ref = 'gen-T2-0'",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let caught = recompute();
    let out = stdout(&caught);
    assert_eq!(caught.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAILED: event gen-T2-0: entry") && out.contains("is not in the signed log"),
        "{out}"
    );
}

/// An event replaced by a later copy (`on_duplicate: latest_replaces`): the ledger holds the
/// first copy and the `event.amended` entry; the customer's recompute applies the proven
/// amendment and matches the invoice, which was rated with the latest value.
#[tokio::test]
async fn a_recompute_applies_the_proven_amendments() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let master = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let (_server, base) = serve_with(
        &data,
        &dir.path().join("server.log"),
        &[("TOLLGATE_MASTER_KEY", master)],
    )
    .await;
    let yaml = r#"
currency: USD
meters:
  tokens: { event: llm.call, aggregation: sum, property: tokens, on_duplicate: latest_replaces }
plans:
  metered:
    prices:
      - { meter: tokens, model: per_unit, unit_amount: "0.01" }
"#;
    common::admin(&base, Method::PUT, "/v1/catalog", json!({ "yaml": yaml })).await;
    let clock = common::admin(
        &base,
        Method::POST,
        "/v1/test_clocks",
        json!({"frozen_time": "2026-11-01T00:00:00Z"}),
    )
    .await;
    let clock = clock["id"].as_str().unwrap();
    common::admin(
        &base,
        Method::POST,
        "/v1/customers",
        json!({"id": "acme", "test_clock": clock}),
    )
    .await;
    common::admin(
        &base,
        Method::POST,
        "/v1/customers/acme/subscriptions",
        json!({"plan": "metered", "trial": false}),
    )
    .await;
    common::admin(
        &base,
        Method::POST,
        &format!("/v1/test_clocks/{clock}/advance"),
        json!({"frozen_time": "2026-11-20T00:00:00Z"}),
    )
    .await;
    let event = |id: &str, tokens: i64| json!({"id": id, "customer": "acme", "type": "llm.call", "timestamp": "2026-11-05T12:00:00Z", "properties": {"tokens": tokens}});
    let first = json!({ "events": [event("t1", 100), event("t2", 50)] });
    common::admin(&base, Method::POST, "/v1/events", first).await;
    let replaced = common::admin(
        &base,
        Method::POST,
        "/v1/events",
        json!({ "events": [event("t1", 300)] }),
    )
    .await;
    assert_eq!(replaced["amended"], 1, "{replaced}");
    common::admin(
        &base,
        Method::POST,
        &format!("/v1/test_clocks/{clock}/advance"),
        json!({"frozen_time": "2026-12-01T00:00:01Z"}),
    )
    .await;
    let invoices =
        common::admin(&base, Method::GET, "/v1/customers/acme/invoices", json!({})).await;
    // 300 + 50 tokens at 0.01: the amended value.
    let invoice = invoices["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["total"] == "3.50")
        .unwrap_or_else(|| panic!("no 3.50 invoice: {invoices}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sealed = common::admin(&base, Method::POST, "/v1/ledger/seal", json!({})).await;
    assert!(sealed["checkpoint"].is_string(), "{sealed}");
    let key = common::admin(&base, Method::POST, "/v1/customers/acme/keys", json!({})).await;
    let key = key["secret"].as_str().unwrap().to_owned();
    let pinned = common::admin(&base, Method::GET, "/v1/license_keys", json!({})).await;
    let pinned = pinned[0]["public_key"].as_str().unwrap().to_owned();
    let run = tollgate()
        .args(["ledger", "recompute-invoice", "--invoice", &invoice])
        .args(["--server", &base, "--api-key", &key, "--trust-key", &pinned])
        .output()
        .unwrap();
    let out = stdout(&run);
    assert!(run.status.success(), "{out}");
    assert!(
        out.contains("usage lines recomputed from 2 proven events: match"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("ok ") && l.contains(": 350 -> 3.50 USD")),
        "{out}"
    );
}
