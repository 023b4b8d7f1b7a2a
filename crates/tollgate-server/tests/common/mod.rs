//! A real server on a real port, per test, on SQLite or PostgreSQL. Each test works in a fresh
//! workspace, so tests can share one PostgreSQL database.
//!
//! A test meant for both backends is written once as `async fn name(backend: Backend)` and
//! declared with [`backend_tests!`], which makes two tests of it: `name::sqlite`, which always
//! runs, and `name::postgres`, which the runner lists as *ignored* unless
//! `TOLLGATE_TEST_DATABASE_URL` was set when the tests were built (`build.rs` turns it into
//! `cfg(tollgate_pg)`). When it is set, the PostgreSQL test runs and fails loudly if the database
//! cannot be reached: it never passes by doing nothing.

#![allow(dead_code)]

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_server::clock::SystemClock;
use tollgate_server::sealing::MasterKey;
use tollgate_server::{RunningServer, ServerConfig};

pub const ADMIN_KEY: &str = "tg_admin_test_bootstrap_key_0123456789";
/// The master key of the test servers (it seals their license signing keys).
pub const TEST_MASTER_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares, for each `async fn name(backend: Backend)` of the test file, the tests
/// `name::sqlite` and `name::postgres`; the PostgreSQL one is ignored (with the reason shown by
/// the runner) unless the crate was built with `TOLLGATE_TEST_DATABASE_URL` set.
///
/// ```ignore
/// async fn limits_hold(backend: Backend) { /* ... */ }
/// backend_tests!(limits_hold);
///
/// // or, with the body inside:
/// backend_tests! {
///     async fn limits_hold(backend: Backend) { /* ... */ }
/// }
/// ```
#[allow(unused_macros)] // not every test file has tests on both backends
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }

                #[tokio::test]
                #[cfg_attr(
                    not(tollgate_pg),
                    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
                )]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            }
        )+
    };
    ($($(#[$meta:meta])* async fn $name:ident($backend:ident: Backend) $body:block)+) => {
        $(
            $(#[$meta])*
            async fn $name($backend: $crate::common::Backend) $body
            $crate::common::backend_tests!($name);
        )+
    };
}
#[allow(unused_imports)]
pub(crate) use backend_tests;

/// The PostgreSQL URL of the tests; panics when it is unset, since a PostgreSQL test must not
/// pass without PostgreSQL.
pub fn database_url() -> String {
    std::env::var("TOLLGATE_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect(
            "TOLLGATE_TEST_DATABASE_URL is unset: this PostgreSQL test was built with it set; \
             set it again (or rebuild without it to see this test ignored)",
        )
}

/// The backends of [`each_backend`]: SQLite always, PostgreSQL when its URL is set.
/// Prefer [`backend_tests!`], which shows an absent PostgreSQL as ignored tests.
pub fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Sqlite];
    if std::env::var("TOLLGATE_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        b.push(Backend::Postgres);
    }
    b
}

/// Runs a test once per backend of [`backends`].
///
/// Prefer [`backend_tests!`]: inside one test, a PostgreSQL run that did not happen (URL unset)
/// is invisible in the runner's count, while `backend_tests!` shows it as ignored.
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(Backend) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in backends() {
        test(backend).await;
    }
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub base: String,
    pub http: reqwest::Client,
    /// The server's data dir (its SQLite file is `tollgate.db` in it).
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A server without the background job worker (test clocks still run their jobs when
    /// advanced): tests on PostgreSQL share one database, and a worker claims the due jobs of
    /// every workspace in it. Tests of the worker itself use [`TestServer::start_with_jobs`].
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with_jobs(
        backend: Backend,
        jobs: Option<tollgate_server::jobs::JobsConfig>,
    ) -> TestServer {
        Self::start_with(backend, |c| c.jobs = jobs).await
    }

    /// [`TestServer::start_with`] under the name the license tests use.
    pub async fn start_configured(
        backend: Backend,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        Self::start_with(backend, configure).await
    }

    /// [`TestServer::start`] with the configuration changed by `configure` first (no job
    /// worker and no webhook worker unless `configure` sets them; a master key, so license
    /// features are on).
    pub async fn start_with(
        backend: Backend,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        Self::start_with_clock(backend, configure, Arc::new(SystemClock)).await
    }

    /// [`TestServer::start_with`] on `clock` (a test moves time with its own clock).
    pub async fn start_with_clock(
        backend: Backend,
        configure: impl FnOnce(&mut ServerConfig),
        clock: Arc<dyn tollgate_server::clock::Clock>,
    ) -> TestServer {
        // Server logs in test output: `RUST_LOG=tollgate_server=debug cargo test ...`.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(database_url()),
        };
        let mut config = ServerConfig {
            database_url,
            admin_key: Some(ADMIN_KEY.into()),
            jobs: None,
            master_key: Some(MasterKey::parse(TEST_MASTER_KEY).unwrap()),
            ..ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path())
        };
        // No background webhook worker: it would poll every workspace of the shared test
        // database each second; webhook tests drive `notify::run_once` themselves.
        config.webhooks.poll_interval = None;
        // Nor the ledger's sealing loop: ledger tests seal with `POST /v1/ledger/seal`.
        config.ledger_interval = None;
        configure(&mut config);
        let server = tollgate_server::start_with_clock(config, clock)
            .await
            .unwrap_or_else(|e| panic!("server starts on {backend:?} (is the database up?): {e}"));
        let base = format!("http://{}", server.addr);
        TestServer {
            server: Some(server),
            base,
            http: reqwest::Client::new(),
            dir,
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
        let yaml = std::fs::read_to_string(format!(
            "{}/../../examples/catalogs/{catalog_file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("catalog file");
        self.workspace_with(catalog_file, &yaml).await
    }

    /// A fresh workspace named `name` with the catalog `yaml` applied; its admin key.
    pub async fn workspace_with(&self, name: &str, yaml: &str) -> Workspace<'_> {
        let id = format!("ws_{}", uuid::Uuid::now_v7().simple());
        let (status, body) = self
            .call(
                ADMIN_KEY,
                Method::POST,
                "/v1/workspaces",
                Some(json!({"id": id, "name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let key = body["admin_key"].as_str().unwrap().to_owned();
        let ws = Workspace {
            id,
            key,
            server: self,
        };
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
