//! Retries against a real bound HTTP server that fails on purpose: a POST turned away with 503
//! and 429 is sent again after `Retry-After`, with the same `Idempotency-Key` every time, and
//! succeeds; one that keeps failing ends in the server's problem+json as an error value.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use tollgate_client::{CheckRequest, Client, ClientError, StatusCode as Status};

/// A server whose `/v1/check` answers `script` in order (then the last entry forever), and
/// records each request's idempotency key.
async fn scripted(script: Vec<u16>) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let keys = seen.clone();
    let app = Router::new().route(
        "/v1/check",
        post(move |headers: HeaderMap| {
            let keys = keys.clone();
            let script = script.clone();
            async move {
                let n = {
                    let mut k = keys.lock().unwrap();
                    k.push(
                        headers
                            .get("idempotency-key")
                            .map(|v| v.to_str().unwrap().to_owned()),
                    );
                    k.len()
                };
                let status = script[(n - 1).min(script.len() - 1)];
                if status == 200 {
                    return (
                        StatusCode::OK,
                        [("content-type", "application/json")],
                        r#"{"allowed": true, "reason": "allowed", "remaining": "99"}"#,
                    )
                        .into_response();
                }
                (
                    StatusCode::from_u16(status).unwrap(),
                    [
                        ("content-type", "application/problem+json"),
                        ("retry-after", "0"),
                    ],
                    r#"{"title": "busy", "code": "rate_limited", "detail": "try later"}"#,
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn request() -> CheckRequest {
    CheckRequest {
        customer: Some("acme".into()),
        meter: Some("api_calls".into()),
        consume: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_post_turned_away_is_retried_under_one_idempotency_key() {
    let (url, seen) = scripted(vec![503, 429, 200]).await;
    let client = Client::new(&url, "tg_test").unwrap();
    let decision = client.check(&request()).await.unwrap();
    assert!(decision.allowed);
    assert_eq!(decision.remaining, Some(serde_json::json!("99")));
    let keys = seen.lock().unwrap().clone();
    assert_eq!(keys.len(), 3, "two retries then the answer");
    assert!(keys[0].as_deref().is_some_and(|k| k.starts_with("tgc_")));
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
}

#[tokio::test]
async fn a_post_that_keeps_failing_ends_in_the_problem_as_a_value() {
    let (url, seen) = scripted(vec![429]).await;
    let client = Client::new(&url, "tg_test").unwrap().with_retries(2);
    let err = client.check(&request()).await.unwrap_err();
    assert_eq!(err.code(), Some("rate_limited"));
    assert_eq!(err.status(), Some(Status::TOO_MANY_REQUESTS));
    assert!(matches!(err, ClientError::Api(_)));
    assert_eq!(seen.lock().unwrap().len(), 3, "the first try and 2 retries");
}

#[tokio::test]
async fn no_retries_means_one_request_and_a_client_error_is_never_retried() {
    let (url, seen) = scripted(vec![503, 200]).await;
    let client = Client::new(&url, "tg_test").unwrap().with_retries(0);
    assert_eq!(
        client.check(&request()).await.unwrap_err().status(),
        Some(Status::SERVICE_UNAVAILABLE)
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    let (url, seen) = scripted(vec![422]).await;
    let client = Client::new(&url, "tg_test").unwrap();
    assert_eq!(
        client.check(&request()).await.unwrap_err().code(),
        Some("rate_limited")
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a 4xx other than 429 is final"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error_naming_it() {
    // A port nothing listens on: bind, note it, close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::new(&format!("http://{addr}"), "k")
        .unwrap()
        .with_retries(1);
    let err = client.check(&request()).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
