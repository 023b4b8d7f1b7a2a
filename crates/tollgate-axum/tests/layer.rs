//! The layer in front of a real axum app, checking against a real Tollgate server (in-process,
//! on SQLite, bound to a port): Apex's feature gate and per-user rolling limit (case 4 and 5)
//! answered as the gateway answers them; callers without a customer key refused; an
//! unreachable Tollgate refused with 503, or let through when failing open.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;

use axum::Router;
use axum::extract::Extension;
use axum::routing::post;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tollgate_axum::{Caller, Route, TollgateLayer};
use tollgate_client::{Client, NewCustomer, NewSubscription};
use tollgate_server::ServerConfig;
use tollgate_server::clock::SystemClock;

const BOOTSTRAP: &str = "tg_admin_axum_layer_test_0123456789abcdef";

/// A Tollgate server with Apex's catalog and customer `acme` on `free`: (server, url, admin
/// key of the workspace, acme's key).
async fn tollgate() -> (
    tollgate_server::RunningServer,
    tempfile::TempDir,
    String,
    String,
    String,
) {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        admin_key: Some(BOOTSTRAP.into()),
        ..ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path())
    };
    let server = tollgate_server::start_with_clock(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let url = format!("http://{}", server.addr);
    let root = Client::new(&url, BOOTSTRAP).unwrap();
    let admin = root
        .create_workspace("apex", "Apex")
        .await
        .unwrap()
        .admin_key;
    let ws = root.with_key(&admin);
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/catalogs/apex.yaml"
    ))
    .unwrap();
    ws.put_catalog_yaml(&yaml).await.unwrap();
    ws.create_customer(&NewCustomer {
        id: "acme",
        ..Default::default()
    })
    .await
    .unwrap();
    ws.subscribe(
        "acme",
        &NewSubscription {
            plan: "free",
            trial: false,
            addons: Default::default(),
        },
    )
    .await
    .unwrap();
    let key = ws.create_key("acme", "app").await.unwrap().secret;
    (server, dir, url, admin, key)
}

/// The app behind the layer, served on a free port; its URL.
async fn app(layer: TollgateLayer) -> String {
    let app = Router::new()
        .route("/optimize", post(|| async { "optimized" }))
        .route(
            "/agents/run",
            post(|Extension(caller): Extension<Caller>| async move {
                let remaining = caller
                    .decision
                    .and_then(|d| d.remaining)
                    .unwrap_or(Value::Null);
                format!("ran; remaining {remaining}")
            }),
        )
        .route("/free", post(|| async { "free for all" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn layer(client: Client) -> TollgateLayer {
    TollgateLayer::new(client)
        .route(Route::feature("/optimize", "advanced_optimization"))
        .route(Route::meter("/agents/run", "agent_runs").property("level", json!("supervisor")))
        .subject_header("X-User-Id")
}

async fn post_as(
    url: &str,
    key: Option<&str>,
    user: &str,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().post(url).header("X-User-Id", user);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn apex_gates_and_rolling_limits_answered_as_the_gateway_answers() {
    let (_server, _dir, url, admin, key) = tollgate().await;
    let base = app(layer(Client::new(&url, &admin).unwrap())).await;

    // Case 5: `free` lacks advanced_optimization; the hint is `early`.
    let (status, headers, body) = post_as(&format!("{base}/optimize"), Some(&key), "u1").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "feature_not_in_plan");
    assert_eq!(problem["upgrade"]["plan"], "early");

    // Case 4: three supervisor runs of u1 in 5 hours, the fourth refused with Retry-After;
    // u2 of the same customer is not affected.
    for i in 0..3 {
        let (status, _, body) = post_as(&format!("{base}/agents/run"), Some(&key), "u1").await;
        assert_eq!(status, StatusCode::OK, "run {i}: {body}");
        assert_eq!(body, format!("ran; remaining \"{}\"", 2 - i));
    }
    let (status, headers, body) = post_as(&format!("{base}/agents/run"), Some(&key), "u1").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((5 * 3600 - 60..=5 * 3600).contains(&retry), "{retry}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "quota_exceeded");
    assert_eq!(problem["upgrade"]["plan"], "early");
    let (status, _, _) = post_as(&format!("{base}/agents/run"), Some(&key), "u2").await;
    assert_eq!(status, StatusCode::OK);

    // Routes the layer does not name pass untouched, key or not.
    let (status, _, body) = post_as(&format!("{base}/free"), None, "u1").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "free for all"));
}

#[tokio::test]
async fn callers_without_a_customer_key_are_refused() {
    let (_server, _dir, url, admin, _key) = tollgate().await;
    let base = app(layer(Client::new(&url, &admin).unwrap())).await;
    for key in [None, Some(admin.as_str()), Some("tg_live_not_a_key")] {
        let (status, _, body) = post_as(&format!("{base}/optimize"), key, "u1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}: {body}");
        let problem: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["code"], "unauthorized");
    }
}

#[tokio::test]
async fn an_app_that_names_its_customers_checks_with_the_admin_key() {
    let (_server, _dir, url, admin, _key) = tollgate().await;
    let layer = layer(Client::new(&url, &admin).unwrap()).customer_from(|request| {
        request
            .headers()
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let base = app(layer).await;
    let call = |tenant: &'static str| {
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/agents/run"))
                .header("x-tenant", tenant)
                .header("X-User-Id", "u9")
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(call("acme").await, StatusCode::OK);
    // A customer Tollgate does not know has nothing to use.
    assert_eq!(call("nobody").await, StatusCode::PAYMENT_REQUIRED);
}

#[tokio::test]
async fn an_unreachable_tollgate_is_503_unless_failing_open() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = Client::new(&dead, "tg_admin_x").unwrap().with_retries(0);
    let closed = app(layer(client.clone())).await;
    let (status, _, body) = post_as(&format!("{closed}/optimize"), Some("tg_live_k"), "u1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("tollgate_unavailable"));
    let open = app(layer(client).fail_open(true)).await;
    let (status, _, body) = post_as(&format!("{open}/optimize"), Some("tg_live_k"), "u1").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "optimized"));
}
