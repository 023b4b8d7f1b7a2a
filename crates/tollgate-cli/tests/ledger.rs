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
