//! `tollgate events import` against a real `tollgate serve` process: a cloud cost export (CSV)
//! feeds Apex's "% of AI spend" meter through a column mapping; bad rows are reported with
//! their line and code while the rest is counted; importing the same file again counts nothing
//! twice; NDJSON rows in the API's own shape need no mapping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{ADMIN_KEY, customer_on, serve, stderr, stdout, tollgate};
use reqwest::Method;
use serde_json::{Value, json};

fn ai_spend(usage: &Value) -> String {
    usage["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == "ai_spend")
        .map(|m| {
            m["used"]
                .as_str()
                .map_or_else(|| m["used"].to_string(), str::to_owned)
        })
        .unwrap()
}

#[tokio::test]
async fn a_cost_export_is_imported_once_with_its_bad_rows_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = serve(dir.path(), &dir.path().join("server.log")).await;
    let yaml = std::fs::read_to_string(common::example("apex")).unwrap();
    customer_on(&base, &yaml, "acme", "early").await;
    common::admin(&base, Method::POST, "/v1/customers", json!({"id": "beta"})).await;

    // Today (UTC), at its first instants: inside the current period of a subscription that
    // started today, and never in the future whenever the test runs.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let csv = format!(
        "account_id,usage_date,service,cost\n\
         acme,{today},openai,1500.00\n\
         acme,{today} 00:00:01,anthropic,1500.00\n\
         acme,{today} 00:00:01,anthropic,1500.00\n\
         beta,not-a-date,openai,1.00\n\
         ,{today},openai,2.00\n\
         ghost,{today},openai,3.00\n"
    );
    let file = dir.path().join("costs.csv");
    std::fs::write(&file, csv).unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let import = || {
        tollgate()
            .args(["events", "import"])
            .arg(&file)
            .args(["--server", &base, "--admin-key", ADMIN_KEY])
            .args([
                "--map",
                "customer=account_id",
                "--map",
                "timestamp=usage_date",
            ])
            .args([
                "--map",
                "property.amount_usd=cost",
                "--map",
                "property.service=service",
            ])
            .args(["--type", "cloud.cost", "--rejects"])
            .arg(&rejects)
            .output()
            .unwrap()
    };
    let first = import();
    // Rows were rejected: exit 1, with the counts on stdout.
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("6 rows, 3 accepted, 0 duplicates, 3 rejected"),
        "{}\n{}",
        stdout(&first),
        stderr(&first)
    );
    let report: Vec<Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let why: Vec<(u64, &str)> = report
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        why,
        vec![
            (5, "invalid_timestamp"),
            (6, "missing_customer"),
            (7, "unknown_customer")
        ],
        "{report:?}"
    );
    // The two identical anthropic rows are two charges: both counted.
    let usage = common::admin(&base, Method::GET, "/v1/customers/acme/usage", json!({})).await;
    let spent: rust_decimal::Decimal = ai_spend(&usage).parse().unwrap();
    assert_eq!(spent, rust_decimal::Decimal::new(450_000, 2), "{usage}");

    // Again: every accepted row is a duplicate now; nothing counts twice.
    let again = import();
    assert!(
        stdout(&again).contains("6 rows, 0 accepted, 3 duplicates, 3 rejected"),
        "{}",
        stdout(&again)
    );
    let usage = common::admin(&base, Method::GET, "/v1/customers/acme/usage", json!({})).await;
    let spent: rust_decimal::Decimal = ai_spend(&usage).parse().unwrap();
    assert_eq!(spent, rust_decimal::Decimal::new(450_000, 2));

    // NDJSON in the shape of POST /v1/events needs no mapping; a broken line is reported.
    let lines = dir.path().join("events.ndjson");
    std::fs::write(
        &lines,
        "{\"id\": \"n1\", \"customer\": \"acme\", \"type\": \"cloud.cost\", \"properties\": {\"amount_usd\": \"0.50\"}}\n\
         not json\n\
         \n\
         {\"customer\": \"acme\", \"type\": \"cloud.cost\", \"properties\": {\"amount_usd\": \"0.25\"}}\n",
    )
    .unwrap();
    let out = tollgate()
        .args(["events", "import"])
        .arg(&lines)
        .args(["--server", &base, "--admin-key", ADMIN_KEY])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("3 rows, 2 accepted, 0 duplicates, 1 rejected"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("line 2: the line is not a JSON object [invalid_json]"),
        "{}",
        stderr(&out)
    );
    let usage = common::admin(&base, Method::GET, "/v1/customers/acme/usage", json!({})).await;
    let spent: rust_decimal::Decimal = ai_spend(&usage).parse().unwrap();
    assert_eq!(spent, rust_decimal::Decimal::new(450_075, 2));
}

#[test]
fn a_bad_mapping_or_a_missing_file_fails_before_anything_is_sent() {
    let out = tollgate()
        .args([
            "events",
            "import",
            "costs.csv",
            "--server",
            "http://127.0.0.1:9",
            "--admin-key",
            "k",
            "--map",
            "colour=x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("FIELD is one of"), "{}", stderr(&out));
    let out = tollgate()
        .args([
            "events",
            "import",
            "/nonexistent/costs.csv",
            "--server",
            "http://127.0.0.1:9",
            "--admin-key",
            "k",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
