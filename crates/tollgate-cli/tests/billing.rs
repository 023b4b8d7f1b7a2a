//! `tollgate quote` and `tollgate bill-run`, run as the real binary: the field scenarios' prices
//! to the cent, and a bill run that bills once however often it runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::path::Path;

use common::{example, run, stderr, stdout};
use serde_json::Value;

/// `tollgate quote ... --json`, which must succeed, as JSON.
fn quote_json(args: &[&str]) -> Value {
    let mut all = vec!["quote"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run(&all);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

fn amounts(quote: &Value) -> Vec<&str> {
    let mut all: Vec<&str> = quote["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"].as_str().unwrap())
        .filter(|a| *a != "0.00")
        .collect();
    all.sort();
    all
}

/// The line whose description starts with `prefix`.
fn line<'q>(quote: &'q Value, prefix: &str) -> &'q Value {
    quote["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["description"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in {quote:#}"))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn control_plane_quotes_match_the_scenario() {
    let catalog = example("control-plane");
    let q = quote_json(&[
        "--catalog",
        path(&catalog),
        "--plan",
        "starter",
        "--usage",
        "requests=130000",
        "--quantity",
        "seat=3",
        "--quantity",
        "policy_pack=1",
    ]);
    assert_eq!(q["total"], "465.00", "{q:#}");
    assert_eq!(q["currency"], "USD");
    assert_eq!(q["plan"], "starter");
    assert_eq!(amounts(&q), ["299.00", "30.00", "49.00", "87.00"]);
    assert_eq!(line(&q, "requests")["quantity"], "30000");
    assert!(q["period"]["start"].is_string() && q["period"]["end"].is_string());

    let q = quote_json(&[
        "--catalog",
        path(&catalog),
        "--plan",
        "professional",
        "--usage",
        "requests=1250000",
    ]);
    assert_eq!(q["total"], "1124.00", "{q:#}");
}

#[test]
fn lexecon_packages_and_apex_caps_are_quoted() {
    let q = quote_json(&[
        "--catalog",
        path(&example("lexecon")),
        "--plan",
        "startup",
        "--usage",
        "decisions=12345",
    ]);
    assert_eq!(line(&q, "decisions")["amount"], "65.00", "{q:#}");

    let q = quote_json(&[
        "--catalog",
        path(&example("apex")),
        "--plan",
        "early",
        "--usage",
        "ai_spend=10000",
    ]);
    assert_eq!(q["total"], "99.00", "{q:#}");
}

/// One `POST /v1/events` item as a JSON line.
fn event(id: &str, kind: &str, at: &str, properties: Value) -> String {
    serde_json::json!({"id": id, "customer": "acme", "type": kind, "timestamp": at,
        "properties": properties})
    .to_string()
}

#[test]
fn qlp_generations_from_an_events_file_with_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let mut add = |n: usize, tier: &str, model: &str| {
        for _ in 0..n {
            let id = format!("gen-{}", lines.len() + 1);
            let props = serde_json::json!({"tier": tier, "model": model});
            lines.push(event(
                &id,
                "codegen.completed",
                "2026-11-03T10:00:00Z",
                props,
            ));
        }
    };
    add(10, "T0", "standard");
    add(4, "T2", "standard");
    add(2, "T3", "gpt-4");
    lines.push(lines[0].clone()); // sent twice: counts once
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();

    let catalog = example("qlp");
    let args = ["quote", "--catalog", path(&catalog), "--plan", "payg"];
    let out = run(&[&args[..], &["--events", path(&file), "--json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let q: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(q["total"], "7.00", "{q:#}");
    assert_eq!(
        q["period"]["start"], "2026-11-01T00:00:00Z",
        "the first event's month"
    );
    assert!(stderr(&out).contains("1 duplicate"), "{}", stderr(&out));

    // The table says the same.
    let out = run(&[&args[..], &["--events", path(&file)]].concat());
    let text = stdout(&out);
    let total = text.lines().last().unwrap();
    assert!(
        total.trim_start().starts_with("Total") && total.ends_with("7.00 USD"),
        "{text}"
    );
}

#[test]
fn qlp_storage_is_time_weighted_over_the_period() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("storage.jsonl");
    let lines = [
        event(
            "snap-1",
            "storage.snapshot",
            "2026-11-01T00:00:00Z",
            serde_json::json!({"gb": 50}),
        ),
        event(
            "snap-2",
            "storage.snapshot",
            "2026-11-16T00:00:00Z",
            serde_json::json!({"gb": 100}),
        ),
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let q = quote_json(&[
        "--catalog",
        path(&example("qlp")),
        "--plan",
        "starter",
        "--events",
        path(&file),
        "--period",
        "2026-11",
    ]);
    let storage = line(&q, "storage_gb");
    assert_eq!(storage["amount"], "6.50", "{q:#}");
    assert_eq!(storage["quantity"], "65", "75 GB-month, 10 included");
}

#[test]
fn mistakes_are_named_and_fail() {
    let catalog = example("control-plane");
    let base = ["quote", "--catalog", path(&catalog), "--plan"];
    for (extra, needle) in [
        (
            &["gold"][..],
            "unknown plan \"gold\"; the catalog's plans: open_source",
        ),
        (
            &["starter", "--usage", "tokens=5"][..],
            "unknown meter \"tokens\"",
        ),
        (
            &["starter", "--quantity", "sidecar=1"][..],
            "unknown add-on \"sidecar\"",
        ),
        (
            &["starter", "--period", "November"][..],
            "not a month like 2026-11",
        ),
    ] {
        let out = run(&[&base[..], extra].concat());
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{extra:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    let good = event(
        "e1",
        "ai.request",
        "2026-11-03T10:00:00Z",
        serde_json::json!({}),
    );
    std::fs::write(&file, format!("{good}\n{{\"id\": \"e2\", \"type\": 7}}\n")).unwrap();
    let out = run(&[&base[..], &["starter", "--events", path(&file)]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad.jsonl: line 2"),
        "{}",
        stderr(&out)
    );

    let out = run(&["quote", "--catalog", "/nonexistent.yaml", "--plan", "x"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unreadable file: {}",
        stderr(&out)
    );
}

#[tokio::test]
async fn bill_run_invoices_once_however_often_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let (mut server, base) = common::serve(&data, &log).await;
    let lexecon = std::fs::read_to_string(example("lexecon")).unwrap();
    common::customer_on(&base, &lexecon, "acme", "startup").await;
    server.terminate();

    let bill =
        |extra: &[&str]| run(&[&["bill-run", "--data-dir", path(&data)][..], extra].concat());
    let first = bill(&[]);
    assert!(
        first.status.success(),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    assert!(
        stdout(&first).contains("1 invoice created, 0 already existing, 0 errors"),
        "{}",
        stdout(&first)
    );

    // Again, this time beside a running server on the same SQLite file: nothing new.
    let (_server, _) = common::serve(&data, &log).await;
    let again = bill(&["--workspace", "ws_default"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let text = stdout(&again);
    assert!(text.starts_with("ws_default: 1 subscription, "), "{text}");
    assert!(
        text.contains("0 invoices created, 1 already existing"),
        "{text}"
    );

    let json = bill(&["--json"]);
    let v: Value = serde_json::from_str(&stdout(&json)).unwrap();
    let ws = &v["workspaces"][0];
    assert_eq!(
        (
            ws["invoices_created"].as_u64(),
            ws["invoices_existing"].as_u64()
        ),
        (Some(0), Some(1))
    );

    let unknown = bill(&["--workspace", "ws_nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("no workspace \"ws_nope\""),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn bill_run_refuses_a_data_dir_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let out = run(&["bill-run", "--data-dir", path(&missing)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no Tollgate database"),
        "{}",
        stderr(&out)
    );
    assert!(!missing.exists(), "nothing is created");
}

#[test]
fn bill_run_help_says_it_is_safe_to_re_run() {
    let out = run(&["bill-run", "--help"]);
    assert!(stdout(&out).contains("Safe to re-run"), "{}", stdout(&out));
}
