//! `tollgate ledger verify` against the store a real `tollgate serve` process wrote: clean, it
//! says ok (exit 0); with one stored event changed behind the server's back, it names the entry
//! and exits 1. It reads the store itself, as `bill-run` does.

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
        .map(|i| json!({"id": format!("call-{i}"), "customer": "acme", "type": "api.call", "properties": {"n": i}}))
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
}
