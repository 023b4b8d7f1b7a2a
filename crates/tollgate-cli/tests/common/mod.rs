//! What the tests of the new commands share: running the binary as a user runs it, and a
//! `tollgate` server process that cannot outlive its test.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const ADMIN_KEY: &str = "tg_admin_cli_commands_test_0123456789";

/// A `tollgate` command with no `TOLLGATE_*` variables leaking in from the environment.
pub fn tollgate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    for (name, _) in std::env::vars() {
        if name.starts_with("TOLLGATE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

pub fn run(args: &[&str]) -> Output {
    tollgate().args(args).output().expect("the binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/catalogs")
        .join(format!("{name}.yaml"))
}

/// Kills the child when the test ends, passing or not.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ChildGuard {
    /// Sends SIGTERM and waits (at most 10 s) for a successful exit.
    pub fn terminate(&mut self) {
        let pid = self.0.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        for _ in 0..100 {
            if let Some(status) = self.0.try_wait().unwrap() {
                assert!(status.success(), "exit after SIGTERM: {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no exit within 10 s of SIGTERM");
    }
}

/// Starts `tollgate ARGS` with stdout piped and returns it with what it printed up to and
/// including the first line that starts with `ready` (60 s at most).
pub fn start_until(args: &[&str], ready: &str, log: &Path) -> (ChildGuard, String) {
    let mut child = ChildGuard(
        tollgate()
            .args(args)
            .env("TOLLGATE_ADMIN_KEY", ADMIN_KEY)
            .stdout(Stdio::piped())
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
                if line.starts_with(ready) {
                    return (child, printed);
                }
            }
            Err(_) => panic!(
                "never printed {ready:?}; stdout:\n{printed}\nstderr:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }
}

/// Polls `/healthz` until it answers 200 (at most 100 x 100 ms).
pub async fn wait_healthy(base: &str, child: &mut ChildGuard, log: &Path) {
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

/// An admin call to the API; panics unless it succeeds, and returns the JSON answer.
pub async fn admin(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let response = reqwest::Client::new()
        .request(method.clone(), format!("{base}{path}"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// Applies `yaml` as the default workspace's catalog, and creates customer `id` on `plan`
/// without a trial.
pub async fn customer_on(base: &str, yaml: &str, id: &str, plan: &str) {
    use reqwest::Method;
    use serde_json::json;
    admin(base, Method::PUT, "/v1/catalog", json!({ "yaml": yaml })).await;
    admin(base, Method::POST, "/v1/customers", json!({ "id": id })).await;
    let path = format!("/v1/customers/{id}/subscriptions");
    admin(
        base,
        Method::POST,
        &path,
        json!({ "plan": plan, "trial": false }),
    )
    .await;
}

/// `tollgate serve` on a free port over `data_dir`, once healthy, with its base URL.
pub async fn serve(data_dir: &Path, log: &Path) -> (ChildGuard, String) {
    serve_with(data_dir, log, &[]).await
}

/// [`serve`] with more environment variables (a master key, say).
pub async fn serve_with(data_dir: &Path, log: &Path, env: &[(&str, &str)]) -> (ChildGuard, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = ChildGuard(
        tollgate()
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .env("TOLLGATE_ADMIN_KEY", ADMIN_KEY)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_healthy(&base, &mut child, log).await;
    (child, base)
}
