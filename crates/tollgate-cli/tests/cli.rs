//! The `tollgate` binary, run as a user runs it: real processes, real ports, real files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CATALOGS: [&str; 5] = ["lexecon", "apex", "control-plane", "levqor", "qlp"];
const ADMIN_KEY: &str = "tg_admin_cli_test_0123456789abcdef";

const VALID: &str = r#"
currency: USD
meters:
  runs:
    event: agent.run
    aggregation: count
plans:
  free:
    quotas:
      - meter: runs
        limit: 3
        window: 5h
        per: subject
"#;

/// `VALID` with the free limit raised and a paid plan added.
const CHANGED: &str = r#"
currency: USD
meters:
  runs:
    event: agent.run
    aggregation: count
plans:
  free:
    quotas:
      - meter: runs
        limit: 5
        window: 5h
        per: subject
  pro:
    base:
      amount: 10.00
      interval: month
"#;

/// Three independent mistakes, in three sections.
const BROKEN: &str = r#"
currency: USD
meters:
  runs:
    event: agent.run
    aggregation: average
plans:
  free:
    quotas:
      - meter: runs
        limit: 3
        window: 5 hrs
  pro:
    extends: nothing
"#;

/// A `tollgate` command with no `TOLLGATE_*` variables leaking in from the environment.
fn tollgate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    for (name, _) in std::env::vars() {
        if name.starts_with("TOLLGATE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn run(args: &[&str]) -> Output {
    tollgate().args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/catalogs")
        .join(format!("{name}.yaml"))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A port nothing listens on right now (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when the test ends, passing or not, so no server outlives its test.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `/healthz` until it answers 200 (at most 100 x 100 ms).
async fn wait_healthy(base: &str, child: &mut ChildGuard, log: &Path) {
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!(
                "the server exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no answer from {base}/healthz in 10 s: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn validate_passes_on_the_five_field_catalogs() {
    let paths: Vec<String> = CATALOGS
        .iter()
        .map(|c| example(c).display().to_string())
        .collect();
    let args: Vec<&str> = ["catalog", "validate"]
        .into_iter()
        .chain(paths.iter().map(String::as_str))
        .collect();
    let out = run(&args);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for path in &paths {
        assert!(
            text.contains(&format!("{path}: ok (")),
            "no ok line for {path}:\n{text}"
        );
    }
}

#[test]
fn validate_reports_every_mistake_with_its_path_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.yaml", BROKEN);
    let valid = write(dir.path(), "valid.yaml", VALID);
    let out = run(&[
        "catalog",
        "validate",
        valid.to_str().unwrap(),
        broken.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "{}: ok (1 meter, 0 features, 1 plan)",
            valid.display()
        )),
        "{text}"
    );
    let prefix = format!("{}: ", broken.display());
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
    for path in [
        "meters.runs.aggregation",
        "plans.free.quotas[0].window",
        "plans.pro.extends",
    ] {
        assert!(
            errors
                .iter()
                .any(|l| l.starts_with(&format!("{prefix}{path}: "))),
            "no error at {path}:\n{text}"
        );
    }
}

#[test]
fn validate_exits_2_on_an_unreadable_file() {
    let out = run(&["catalog", "validate", "/nonexistent/catalog.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/catalog.yaml: cannot read"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn diff_of_two_files_lists_the_changes() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(dir.path(), "old.yaml", VALID);
    let new = write(dir.path(), "new.yaml", CHANGED);
    let out = run(&[
        "catalog",
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("+ plans.pro")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("plans.free.quotas") && l.contains("3 -> 5")),
        "{text}"
    );

    let same = run(&[
        "catalog",
        "diff",
        old.to_str().unwrap(),
        old.to_str().unwrap(),
    ]);
    assert!(same.status.success());
    assert!(stdout(&same).starts_with("no changes"), "{}", stdout(&same));
}

#[test]
fn diff_against_a_server_needs_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.yaml", VALID);
    let out = run(&["catalog", "diff", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--server"), "{}", stderr(&out));
}

#[tokio::test]
async fn serve_answers_health_and_catalog_apply_works_against_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = ChildGuard(
        tollgate()
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .env("TOLLGATE_ADMIN_KEY", ADMIN_KEY)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_healthy(&base, &mut server, &log).await;

    let valid = write(dir.path(), "valid.yaml", VALID);
    let changed = write(dir.path(), "changed.yaml", CHANGED);
    let broken = write(dir.path(), "broken.yaml", BROKEN);
    let server_args = ["--server", &base, "--admin-key", ADMIN_KEY];
    let catalog = |args: &[&str]| {
        let mut all = vec!["catalog"];
        all.extend_from_slice(args);
        all.extend_from_slice(&server_args);
        run(&all)
    };

    let diff = catalog(&["diff", valid.to_str().unwrap()]);
    assert!(diff.status.success(), "{}{}", stdout(&diff), stderr(&diff));
    assert!(
        stdout(&diff).contains("server (no catalog yet)"),
        "{}",
        stdout(&diff)
    );

    let applied = catalog(&["apply", valid.to_str().unwrap()]);
    assert!(
        applied.status.success(),
        "{}{}",
        stdout(&applied),
        stderr(&applied)
    );
    assert!(
        stdout(&applied).contains("catalog version 1"),
        "{}",
        stdout(&applied)
    );

    let again = catalog(&["apply", valid.to_str().unwrap()]);
    assert!(again.status.success());
    assert!(
        stdout(&again).contains("nothing to apply"),
        "{}",
        stdout(&again)
    );

    let dry = catalog(&["apply", changed.to_str().unwrap(), "--dry-run"]);
    assert!(
        stdout(&dry).contains("+ plans.pro") && stdout(&dry).contains("nothing applied"),
        "{}",
        stdout(&dry)
    );

    let next = catalog(&["apply", changed.to_str().unwrap()]);
    assert!(next.status.success(), "{}{}", stdout(&next), stderr(&next));
    assert!(
        stdout(&next).contains("+ plans.pro") && stdout(&next).contains("catalog version 2"),
        "{}",
        stdout(&next)
    );

    let bad = catalog(&["apply", broken.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stdout(&bad).contains("plans.free.quotas[0].window"),
        "{}",
        stdout(&bad)
    );

    let wrong_key = run(&[
        "catalog",
        "apply",
        valid.to_str().unwrap(),
        "--server",
        &base,
        "--admin-key",
        "tg_admin_wrong_key_000000000000",
    ]);
    assert_eq!(wrong_key.status.code(), Some(1));
    assert!(stderr(&wrong_key).contains("401"), "{}", stderr(&wrong_key));

    // SIGTERM shuts the server down gracefully: it exits on its own, successfully.
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    for _ in 0..100 {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "exit after SIGTERM: {status}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not stop within 10 s of SIGTERM");
}

#[test]
fn serve_rejects_unknown_config_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "tollgate.toml",
        "listen = \"127.0.0.1:0\"\ndata-dir = \"x\"\n",
    );
    let out = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: invalid config file") && err.contains("data-dir"),
        "{err}"
    );
}

#[test]
fn serve_names_a_taken_port() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = tollgate()
        .args(["serve", "--listen", &addr.to_string(), "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "port {} on 127.0.0.1 is already in use",
            addr.port()
        )),
        "{}",
        stderr(&out)
    );
}

/// Starts `tollgate demo` and returns it with its printed summary, once it says it is ready.
fn start_demo(data_dir: &Path, port: u16, reset: bool, log: &Path) -> (ChildGuard, String) {
    let mut cmd = tollgate();
    cmd.args([
        "demo",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(data_dir);
    if reset {
        cmd.arg("--reset");
    }
    let mut child = ChildGuard(
        cmd.stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    let out = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = String::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                printed.push_str(&line);
                printed.push('\n');
                if line.starts_with("Press Ctrl-C") {
                    return (child, printed);
                }
            }
            Err(_) => panic!(
                "the demo never got ready; stdout:\n{printed}\nstderr:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }
}

/// The API key printed on the customer's row of the summary.
fn customer_key(summary: &str, customer: &str) -> String {
    summary
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(customer))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("tg_live_")))
        .unwrap_or_else(|| panic!("no key for {customer} in:\n{summary}"))
        .to_string()
}

#[tokio::test]
async fn demo_loads_the_field_catalogs_and_its_keys_work_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let log = dir.path().join("demo.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (mut demo, summary) = start_demo(&data, port, true, &log);
    wait_healthy(&base, &mut demo, &log).await;
    for needle in [
        "/healthz",
        "/openapi.json",
        "/metrics",
        "ws_lexecon",
        "ws_qlp",
        "curl -s",
    ] {
        assert!(summary.contains(needle), "missing {needle}:\n{summary}");
    }

    // Apex's `early` trial customer: a feature of `early` is allowed with its own key.
    let key = customer_key(&summary, "initech");
    let answer = check_feature(&base, &key, "advanced_optimization").await;
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["allowed"], true, "{body}");

    // A second run without --reset reuses the same data and prints the same keys.
    drop(demo);
    let port = free_port();
    let (mut demo, again) = start_demo(&data, port, false, &log);
    let base2 = format!("http://127.0.0.1:{port}");
    wait_healthy(&base2, &mut demo, &log).await;
    assert!(again.contains("Reusing the demo"), "{again}");
    assert_eq!(customer_key(&again, "initech"), key);
    assert_eq!(
        check_feature(&base2, &key, "advanced_optimization")
            .await
            .status(),
        200
    );
}

async fn check_feature(base: &str, key: &str, feature: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/check"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "feature": feature }))
        .send()
        .await
        .unwrap()
}

/// `tollgate license show | verify` on tollgate-verify's golden files.
#[test]
fn license_files_are_shown_and_verified_offline() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tollgate-verify/tests/golden");
    let file = |name: &str| golden.join(name).to_string_lossy().into_owned();
    let keys = file("keys.json");
    let valid = file("license_valid.lic");

    let shown = run(&["license", "show", &valid]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(
        stdout(&shown).contains("Key: 067e1ac07fe21c90"),
        "{}",
        stdout(&shown)
    );
    assert!(
        stdout(&shown).contains("\"id\": \"lic_0001\""),
        "{}",
        stdout(&shown)
    );

    let verify = |extra: &[&str]| {
        let mut args = vec!["license", "verify"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let ok = verify(&[
        &valid,
        "--keys-file",
        &keys,
        "--at",
        "2026-06-01T00:00:00Z",
        "--feature",
        "sso",
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).starts_with("valid: active until 2027-01-01T00:00:00Z"),
        "{}",
        stdout(&ok)
    );
    assert!(
        stdout(&ok).contains("features: audit_export, sso"),
        "{}",
        stdout(&ok)
    );
    let grace = verify(&[&valid, "--keys-file", &keys, "--at", "2027-01-05T00:00:00Z"]);
    assert!(
        stdout(&grace).starts_with("valid: in grace"),
        "{}",
        stdout(&grace)
    );

    // Refusals: exit 1 and the reason's stable code.
    let refused = |o: &Output, code: &str| {
        assert_eq!(o.status.code(), Some(1), "{}", stdout(o));
        assert!(
            stderr(o).contains(&format!("license refused: {code}")),
            "{}",
            stderr(o)
        );
    };
    refused(
        &verify(&[
            &valid,
            "--keys-file",
            &keys,
            "--at",
            "2026-06-01T00:00:00Z",
            "--feature",
            "dedicated_store",
        ]),
        "feature_missing",
    );
    refused(
        &verify(&[&valid, "--keys-file", &keys, "--at", "2027-01-15T00:00:00Z"]),
        "expired",
    );
    refused(
        &verify(&[
            &file("license_tampered.lic"),
            "--keys-file",
            &keys,
            "--at",
            "2026-06-01T00:00:00Z",
        ]),
        "bad_signature",
    );
    refused(
        &verify(&[
            &file("license_other_key.lic"),
            "--keys-file",
            &keys,
            "--at",
            "2026-06-01T00:00:00Z",
        ]),
        "unknown_key",
    );
    let no_key = verify(&[&valid]);
    assert_eq!(no_key.status.code(), Some(1));
    assert!(
        stderr(&no_key).contains("no trusted key"),
        "{}",
        stderr(&no_key)
    );
    let missing = verify(&[&file("nope.lic"), "--keys-file", &keys]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
}
