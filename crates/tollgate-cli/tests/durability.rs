//! An event acknowledged by the API survives `kill -9` of the server.
//!
//! Sends batches to a real `tollgate serve` process, kills it with SIGKILL while batches are in
//! flight, restarts it on the same store, and checks that every acknowledged event is counted
//! (and nothing beyond what was sent): on SQLite (a data dir) and on PostgreSQL (a schema of the
//! test's own), where each counted event is also one row of the partitioned `events` and one id
//! of `event_ids`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const ADMIN: &str = "tg_admin_durability_test_key_0123456789";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tollgate serve` on the store named by `store` (`--data-dir DIR` or `--database-url URL`).
async fn start(store: &[String], port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(store)
        .env("TOLLGATE_ADMIN_KEY", ADMIN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tollgate serve starts");
    let server = Server(child);
    for _ in 0..200 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tollgate serve did not become healthy");
}

async fn call(
    http: &reqwest::Client,
    port: u16,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let resp = http
        .request(method, format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.expect("json")
}

#[tokio::test]
async fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let store = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
    kill_9_while_ingesting(&store).await;
}

#[tokio::test]
#[cfg_attr(
    not(tollgate_pg),
    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn acknowledged_events_survive_kill_9_on_postgres() {
    use sqlx::AssertSqlSafe;
    let url = std::env::var("TOLLGATE_TEST_DATABASE_URL").expect("the PostgreSQL URL is set");
    let schema = format!("durability_{}", uuid::Uuid::now_v7().simple());
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options[search_path]={schema}");
    let store = vec!["--database-url".to_owned(), scoped.clone()];
    let counted = kill_9_while_ingesting(&store).await;

    let pool = sqlx::PgPool::connect(&scoped).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('tollgate.workspace', 'ws_default', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    for table in ["events", "event_ids"] {
        let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(u64::try_from(rows).unwrap(), counted, "{table}");
    }
    let outside: i64 = sqlx::query_scalar("SELECT count(*) FROM events_default")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(outside, 0, "every event is in its month's partition");
    drop(tx);
    pool.close().await;
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
}

/// Ingests until a SIGKILL, restarts, checks the count; the count.
async fn kill_9_while_ingesting(store: &[String]) -> u64 {
    let port = free_port();
    let http = reqwest::Client::new();
    let mut server = start(store, port).await;
    let yaml = include_str!("../../../examples/catalogs/lexecon.yaml");
    call(
        &http,
        port,
        reqwest::Method::PUT,
        "/v1/catalog",
        json!({"yaml": yaml}),
    )
    .await;
    call(
        &http,
        port,
        reqwest::Method::POST,
        "/v1/customers",
        json!({"id": "acme"}),
    )
    .await;
    call(
        &http,
        port,
        reqwest::Method::POST,
        "/v1/customers/acme/subscriptions",
        json!({"plan": "startup", "trial": false}),
    )
    .await;

    // Four senders (so batches share group commits) send batches of 500 until the server dies
    // under them.
    let senders: Vec<_> = (0..4u64).map(|sender| {
        let http = http.clone();
        tokio::spawn(async move {
            let mut acknowledged = 0u64;
            let mut sent = 0u64;
            for batch in (0..100u64).map(|b| sender * 100 + b) {
                let events: Vec<Value> = (0..500)
                    .map(|i| json!({"id": format!("b{batch}-{i}"), "customer": "acme", "type": "decision.evaluated", "properties": {"actor": "a"}}))
                    .collect();
                sent += 500;
                let resp = http
                    .post(format!("http://127.0.0.1:{port}/v1/events"))
                    .bearer_auth(ADMIN)
                    .json(&json!({"events": events}))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => acknowledged += 500,
                    _ => break,
                }
            }
            (acknowledged, sent)
        })
    }).collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // SIGKILL: no shutdown hook runs.
    server.0.kill().expect("kill -9");
    server.0.wait().unwrap();
    let (mut acknowledged, mut sent) = (0, 0);
    for sender in senders {
        let (a, s) = sender.await.unwrap();
        acknowledged += a;
        sent += s;
    }
    assert!(
        acknowledged > 0,
        "some batches were acknowledged before the kill"
    );
    assert!(
        acknowledged < 400 * 500,
        "the kill happened while batches were in flight"
    );

    drop(server);
    let _server = start(store, port).await;
    let usage = http
        .get(format!("http://127.0.0.1:{port}/v1/customers/acme/usage"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let decisions = usage["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == "decisions")
        .unwrap();
    let counted: u64 = decisions["used"].as_str().unwrap().parse().unwrap();
    assert!(
        counted >= acknowledged,
        "every acknowledged event survives: counted {counted}, acknowledged {acknowledged}"
    );
    assert!(
        counted <= sent,
        "nothing is counted that was not sent: counted {counted}, sent {sent}"
    );
    eprintln!("acknowledged {acknowledged}, counted after restart {counted}, sent {sent}");
    counted
}
