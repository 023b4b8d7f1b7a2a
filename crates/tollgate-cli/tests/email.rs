//! `tollgate email preview`, run as the real binary on a SQLite store: a template rendered for a
//! customer with nothing sent, its mistakes reported with their codes; and `tollgate serve`
//! refusing SMTP settings that would do nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{run, stderr, stdout};
use jiff::Timestamp;
use tollgate_store::{CustomerRecord, SqliteStore, Store as _, WorkspaceRecord};

#[tokio::test]
async fn preview_renders_a_template_for_a_customer_without_sending() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(&dir.path().join("tollgate.db"))
            .await
            .unwrap();
        let now = Timestamp::now();
        store
            .create_workspace(&WorkspaceRecord {
                id: "ws_default".into(),
                name: "Levqor".into(),
                created_at: now,
            })
            .await
            .unwrap();
        store
            .create_customer(&CustomerRecord {
                workspace: "ws_default".into(),
                id: "ada".into(),
                name: Some("Ada".into()),
                email: Some("ada@example.test".into()),
                suspended: false,
                has_payment_method: false,
                test_clock: None,
                metadata: serde_json::json!({}),
                created_at: now,
                address: serde_json::Value::Null,
                tax_ids: serde_json::json!([]),
                archived_at: None,
            })
            .await
            .unwrap();
    }
    let data = dir.path().to_str().unwrap();
    let out = run(&[
        "email",
        "preview",
        "usage_warning",
        "--customer",
        "ada",
        "--data-dir",
        data,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("To: ada@example.test\n"), "{text}");
    assert!(
        text.contains("Subject: You have used 80% of your api_calls allowance"),
        "{text}"
    );
    assert!(
        text.contains("Template: usage_warning (example values)"),
        "{text}"
    );
    assert!(text.contains("Hello Ada,"), "{text}");
    assert!(
        text.contains("-- Levqor"),
        "the workspace's name is the brand: {text}"
    );

    let out = run(&[
        "email",
        "preview",
        "welcome",
        "--customer",
        "ada",
        "--data-dir",
        data,
        "--part",
        "html",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("<!DOCTYPE html>"));

    let out = run(&[
        "email",
        "preview",
        "nope",
        "--customer",
        "ada",
        "--data-dir",
        data,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown_email_template"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "email",
        "preview",
        "welcome",
        "--customer",
        "bob",
        "--data-dir",
        data,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not_found"), "{}", stderr(&out));
}

#[test]
fn serve_refuses_smtp_settings_that_would_do_nothing() {
    let out = run(&["serve", "--smtp-tls", "tls", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("without --smtp-url"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "serve",
        "--smtp-url",
        "smtp://u:p@mail.example",
        "--smtp-tls",
        "none",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unencrypted"), "{}", stderr(&out));
}
