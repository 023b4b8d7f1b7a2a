//! `tollgate gateway`: the API and the metering gateway in one process, in front of a real
//! upstream, sharing one engine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

const CATALOG: &str = r#"
currency: USD
meters:
  api_calls: { event: api.call, aggregation: count }
plans:
  basic:
    quotas:
      - { meter: api_calls, limit: 100, period: billing, enforcement: hard }
"#;

/// A tiny HTTP/1.1 app: answers every request 200, with the request's headers (lowercased) as
/// its body and the customer the gateway named echoed in `X-Echo-Customer`.
fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = String::new();
                let mut customer = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let line = line.trim_end().to_ascii_lowercase();
                    if let Some(value) = line.strip_prefix("x-tollgate-customer: ") {
                        customer = value.to_owned();
                    }
                    headers.push_str(&line);
                    headers.push('\n');
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-echo-customer: {customer}\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{headers}",
                    headers.len()
                );
                let mut stream = stream;
                let _ = stream.write_all(answer.as_bytes());
            });
        }
    });
    port
}

/// The address after `label` on its stdout line: `gateway  http://127.0.0.1:4321 -> ...`.
fn address(printed: &str, label: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{printed}"))
        .to_owned()
}

#[tokio::test]
async fn the_gateway_forwards_keyed_requests_and_meters_them_on_the_shared_engine() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tollgate.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[gateway]\nlisten = \"127.0.0.1:0\"\n\
             upstream = \"http://127.0.0.1:{}\"\n\n[[gateway.routes]]\npath = \"/app/*\"\n\
             meter = \"api_calls\"\n",
            data.to_str().unwrap(),
            upstream()
        ),
    )
    .unwrap();
    let log = dir.path().join("gateway.log");
    let args = ["gateway", "--config", config.to_str().unwrap()];
    let (mut process, printed) = common::start_until(&args, "Ctrl-C", &log);
    let api = address(&printed, "API");
    let gateway = address(&printed, "gateway");
    assert!(printed.contains(" -> http://127.0.0.1:"), "{printed}");

    common::customer_on(&api, CATALOG, "acme", "basic").await;
    let key = common::admin(
        &api,
        Method::POST,
        "/v1/customers/acme/keys",
        json!({"name": "gw"}),
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let http = reqwest::Client::new();
    for (header, value) in [
        ("x-api-key", key.clone()),
        ("authorization", format!("Bearer {key}")),
    ] {
        let answer = http
            .get(format!("{gateway}/app/hello"))
            .header(header, &value)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "with {header}");
        assert_eq!(answer.headers()["x-echo-customer"], "acme");
        let seen = answer.text().await.unwrap();
        assert!(seen.contains("x-tollgate-plan: basic"), "{seen}");
        assert!(
            !seen.contains(&key.to_ascii_lowercase()),
            "the key reached the app: {seen}"
        );
        assert!(
            !seen.contains("x-api-key") && !seen.contains("authorization"),
            "{seen}"
        );
    }

    let refused = http
        .get(format!("{gateway}/app/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "unauthorized", "{problem}");

    // The gateway's usage is in the API's counters: one engine. (Written right after the
    // answer's headers, so it may take a moment.)
    let mut usage = Value::Null;
    for _ in 0..50 {
        usage = common::admin(&api, Method::GET, "/v1/customers/acme/usage", Value::Null).await;
        if usage.to_string().contains("\"used\":\"2\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(usage.to_string().contains("\"used\":\"2\""), "{usage:#}");

    process.terminate();
}

#[test]
fn gateway_needs_a_gateway_section() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tollgate.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n").unwrap();
    let out = common::run(&["gateway", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::stderr(&out).contains("has no [gateway] section"),
        "{}",
        common::stderr(&out)
    );

    std::fs::write(
        &config,
        "[gateway]\nlisten = \"127.0.0.1:0\"\nupstream = \"https://x\"\n",
    )
    .unwrap();
    let out = common::run(&["gateway", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(
        err.contains("invalid config file") && err.contains("https"),
        "{err}"
    );
}
