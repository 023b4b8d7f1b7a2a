//! `tollgate doctor` against a store a real `tollgate serve` process wrote: every check ok with
//! the right master key; a wrong master key, an unreachable Redis or SMTP relay each fail
//! (exit 1) and are named; a missing database fails without creating one; the PDF says PASSED
//! or FAILED. On PostgreSQL, the clock check measures the database server's clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::process::Output;

use common::{customer_on, serve_with, stdout, tollgate};
use reqwest::Method;
use serde_json::{Value, json};

const MASTER: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const OTHER: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

fn doctor(args: &[&str], master: Option<&str>) -> (Output, Value) {
    let mut cmd = tollgate();
    cmd.arg("doctor").args(args).arg("--json");
    cmd.env_remove("TOLLGATE_MASTER_KEY")
        .env_remove("TOLLGATE_REDIS_URL")
        .env_remove("TOLLGATE_DATABASE_URL")
        .env_remove("TOLLGATE_SMTP_URL");
    if let Some(key) = master {
        cmd.env("TOLLGATE_MASTER_KEY", key);
    }
    let out = cmd.output().unwrap();
    let report: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)));
    (out, report)
}

fn check<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report}"))
}

#[tokio::test]
async fn doctor_passes_a_healthy_deployment_and_names_each_broken_part() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, base) = serve_with(
        &data,
        &dir.path().join("server.log"),
        &[("TOLLGATE_MASTER_KEY", MASTER)],
    )
    .await;
    let yaml = std::fs::read_to_string(common::example("levqor")).unwrap();
    customer_on(&base, &yaml, "acme", "developer").await;
    // A signed checkpoint makes the workspace's signing key.
    let sealed = common::admin(&base, Method::POST, "/v1/ledger/seal", json!({})).await;
    assert!(sealed["checkpoint"].is_string(), "{sealed}");
    server.terminate();
    let data_dir = data.to_str().unwrap();

    let pdf = dir.path().join("doctor.pdf");
    let (out, healthy) = doctor(
        &["--data-dir", data_dir, "--pdf", pdf.to_str().unwrap()],
        Some(MASTER),
    );
    assert!(out.status.success(), "{healthy}");
    assert_eq!(healthy["ok"], true);
    for name in [
        "configuration",
        "database",
        "migrations",
        "clock",
        "signing_keys",
        "redis",
        "smtp",
        "payments",
    ] {
        assert_eq!(check(&healthy, name)["status"], "ok", "{name}: {healthy}");
    }
    assert!(
        check(&healthy, "migrations")["detail"]
            .as_str()
            .unwrap()
            .starts_with("all "),
        "{healthy}"
    );
    assert!(
        check(&healthy, "signing_keys")["detail"]
            .as_str()
            .unwrap()
            .contains("opens all 1 signing keys"),
        "{healthy}"
    );
    let text = pdf_extract::extract_text_from_mem(&std::fs::read(&pdf).unwrap()).unwrap();
    assert!(
        text.contains("Deployment check")
            && text.contains("PASSED")
            && text.contains("signing_keys"),
        "{text}"
    );

    // Another master key: the stored signing key does not open.
    let (out, wrong) = doctor(&["--data-dir", data_dir], Some(OTHER));
    assert_eq!(out.status.code(), Some(1), "{wrong}");
    assert_eq!(check(&wrong, "signing_keys")["status"], "fail");
    assert!(
        check(&wrong, "signing_keys")["detail"]
            .as_str()
            .unwrap()
            .contains("does not open with this master key"),
        "{wrong}"
    );

    // No master key at all is a warning, not a failure.
    let (out, none) = doctor(&["--data-dir", data_dir], None);
    assert!(out.status.success(), "{none}");
    assert_eq!(check(&none, "signing_keys")["status"], "warn");

    // Redis and an SMTP relay nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let redis = format!("redis://127.0.0.1:{port}");
    let smtp = format!("smtp://127.0.0.1:{port}");
    let (out, down) = doctor(
        &[
            "--data-dir",
            data_dir,
            "--redis-url",
            &redis,
            "--smtp-url",
            &smtp,
            "--smtp-tls",
            "none",
        ],
        Some(MASTER),
    );
    assert_eq!(out.status.code(), Some(1), "{down}");
    assert_eq!(check(&down, "redis")["status"], "fail", "{down}");
    assert_eq!(check(&down, "smtp")["status"], "fail", "{down}");
    assert_eq!(check(&down, "database")["status"], "ok", "{down}");

    // No database: named, and not created.
    let empty = dir.path().join("empty");
    let (out, missing) = doctor(&["--data-dir", empty.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1), "{missing}");
    assert_eq!(check(&missing, "database")["status"], "fail");
    assert_eq!(check(&missing, "migrations")["status"], "skipped");
    assert!(!empty.join("tollgate.db").exists());

    // A config file that does not parse is the first failure.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = [").unwrap();
    let (out, broken) = doctor(&["--config", bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1), "{broken}");
    assert_eq!(check(&broken, "configuration")["status"], "fail");
}

#[test]
#[cfg_attr(
    not(tollgate_pg),
    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
)]
fn doctor_reads_postgres_and_its_clock() {
    let url = std::env::var("TOLLGATE_TEST_DATABASE_URL")
        .expect("built with TOLLGATE_TEST_DATABASE_URL set: set it to run this test");
    // The shared test database holds other tests' workspaces (some with Stripe set up, which
    // cannot be reached here), so only the database and its clock are asserted.
    let (_, report) = doctor(&["--database-url", &url], None);
    assert_eq!(check(&report, "database")["status"], "ok", "{report}");
    assert!(
        check(&report, "database")["detail"]
            .as_str()
            .unwrap()
            .starts_with("PostgreSQL "),
        "{report}"
    );
    assert_eq!(check(&report, "clock")["status"], "ok", "{report}");
    assert!(
        check(&report, "clock")["detail"]
            .as_str()
            .unwrap()
            .contains("the database's"),
        "{report}"
    );
}
