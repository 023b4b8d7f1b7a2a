//! A real server on a real port, per test, on SQLite (always) and PostgreSQL (when
//! `TOLLGATE_TEST_DATABASE_URL` is set). Each test works in a fresh workspace, so tests can share
//! one PostgreSQL database.

#![allow(dead_code)]

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_server::clock::SystemClock;
use tollgate_server::{RunningServer, ServerConfig};

pub const ADMIN_KEY: &str = "tg_admin_test_bootstrap_key_0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends to run on: SQLite always, PostgreSQL when its URL is set.
pub fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Sqlite];
    if std::env::var("TOLLGATE_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        b.push(Backend::Postgres);
    }
    b
}

/// Runs a test once per backend of [`backends`].
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(Backend) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in backends() {
        test(backend).await;
    }
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub base: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        // Server logs in test output: `RUST_LOG=tollgate_server=debug cargo test ...`.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(std::env::var("TOLLGATE_TEST_DATABASE_URL").expect("set")),
        };
        let config = ServerConfig {
            database_url,
            admin_key: Some(ADMIN_KEY.into()),
            ..ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path())
        };
        let server = tollgate_server::start_with_clock(config, Arc::new(SystemClock))
            .await
            .expect("server starts");
        let base = format!("http://{}", server.addr);
        TestServer {
            server: Some(server),
            base,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.call_full(key, method, path, body).await;
        (status, body)
    }

    pub async fn call_full(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, body)
    }

    /// A fresh workspace with `catalog` (a file of `examples/catalogs/`) applied; its admin key.
    pub async fn workspace(&self, catalog_file: &str) -> Workspace<'_> {
        let id = format!("ws_{}", uuid::Uuid::now_v7().simple());
        let (status, body) = self
            .call(
                ADMIN_KEY,
                Method::POST,
                "/v1/workspaces",
                Some(json!({"id": id, "name": catalog_file})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let key = body["admin_key"].as_str().unwrap().to_owned();
        let ws = Workspace {
            id,
            key,
            server: self,
        };
        let yaml = std::fs::read_to_string(format!(
            "{}/../../examples/catalogs/{catalog_file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("catalog file");
        let (status, body) = ws
            .call(Method::PUT, "/v1/catalog", Some(json!({"yaml": yaml})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ws
    }
}

pub struct Workspace<'a> {
    pub id: String,
    pub key: String,
    pub server: &'a TestServer,
}

impl Workspace<'_> {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.server.call(&self.key, method, path, body).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.call(Method::POST, path, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    pub async fn test_clock(&self, time: &str) -> String {
        self.post("/v1/test_clocks", json!({"frozen_time": time}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn advance(&self, clock: &str, time: &str) {
        self.post(
            &format!("/v1/test_clocks/{clock}/advance"),
            json!({"frozen_time": time}),
        )
        .await;
    }

    /// A customer on `plan` (optionally on a test clock, with a trial or not); returns its key.
    pub async fn customer(&self, id: &str, plan: &str, clock: Option<&str>, trial: bool) -> String {
        self.post("/v1/customers", json!({"id": id, "test_clock": clock}))
            .await;
        self.post(
            &format!("/v1/customers/{id}/subscriptions"),
            json!({"plan": plan, "trial": trial}),
        )
        .await;
        self.post(&format!("/v1/customers/{id}/keys"), json!({}))
            .await["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A check with the admin key.
    pub async fn check(&self, body: Value) -> Value {
        let (status, body) = self.call(Method::POST, "/v1/check", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn events(&self, events: Value) -> (StatusCode, Value) {
        self.call(Method::POST, "/v1/events", Some(json!({"events": events})))
            .await
    }
}
