//! A real upstream app on a real port for the gateway tests: it echoes what it received, answers
//! slowly or with a 503 on demand, and speaks enough of the OpenAI chat completions API (JSON and
//! SSE) to be metered.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

/// Tokens the fake model reports for every answer.
pub const PROMPT_TOKENS: u64 = 11;
pub const COMPLETION_TOKENS: u64 = 17;
/// Chunks of a streamed answer (before the usage chunk) and the pause between them.
pub const STREAM_CHUNKS: usize = 3;
pub const STREAM_PAUSE: Duration = Duration::from_millis(300);

/// What the upstream saw, for the tests to assert on.
#[derive(Default)]
pub struct Seen {
    /// Requests received, of any kind.
    pub requests: AtomicUsize,
    /// Set when a streamed answer sent its last chunk.
    pub stream_done: AtomicBool,
    /// Whether the last streamed request asked for usage.
    pub include_usage: AtomicBool,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let seen = Arc::new(Seen::default());
        let app = Router::new()
            .route("/echo", any(echo))
            .route("/echo/wait", any(wait))
            .route("/echo/{*rest}", any(echo))
            .route("/public/{*rest}", any(echo))
            .route("/reports/{id}", get(echo))
            .route("/ping", any(echo))
            .route("/slow", any(slow))
            .route("/fail", any(fail))
            .route("/v1/chat/completions", post(chat))
            .layer(axum::middleware::from_fn_with_state(seen.clone(), count))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Upstream { addr, seen }
    }

    pub fn requests(&self) -> usize {
        self.seen.requests.load(Ordering::SeqCst)
    }
}

async fn count(
    State(seen): State<Arc<Seen>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    next.run(req).await
}

/// Answers with the method, path, query, headers and body it received.
async fn echo(req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    axum::Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
    .into_response()
}

/// Answers after a moment, so that concurrent requests are all in flight together.
async fn wait() -> &'static str {
    tokio::time::sleep(Duration::from_millis(300)).await;
    "done"
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3)).await;
    "late"
}

async fn fail() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response()
}

fn usage() -> Value {
    json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS, "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS})
}

/// `POST /v1/chat/completions`: a JSON answer with usage, or an SSE stream whose last chunk
/// carries the usage when `stream_options.include_usage` was set, as OpenAI does.
async fn chat(State(seen): State<Arc<Seen>>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = request["model"].as_str().unwrap_or("gpt-test").to_owned();
    if request["stream"] != true {
        return axum::Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
            "usage": usage(),
        }))
        .into_response();
    }
    let include_usage = request["stream_options"]["include_usage"] == true;
    seen.include_usage.store(include_usage, Ordering::SeqCst);
    seen.stream_done.store(false, Ordering::SeqCst);
    let stream = futures_util::stream::unfold(0usize, move |i| {
        let (seen, model) = (seen.clone(), model.clone());
        async move {
            if i > 0 {
                tokio::time::sleep(STREAM_PAUSE).await;
            }
            let chunk = |v: Value| Bytes::from(format!("data: {v}\n\n"));
            let out = if i < STREAM_CHUNKS {
                let delta = json!({"id": "c", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": {"content": format!("part{i} ")}}], "usage": null});
                chunk(delta)
            } else if i == STREAM_CHUNKS {
                let last = json!({"id": "c", "object": "chat.completion.chunk", "model": model, "choices": [],
                    "usage": if include_usage { usage() } else { Value::Null }});
                let mut bytes = chunk(last).to_vec();
                bytes.extend_from_slice(b"data: [DONE]\n\n");
                seen.stream_done.store(true, Ordering::SeqCst);
                Bytes::from(bytes)
            } else {
                return None;
            };
            Some((Ok::<Bytes, std::io::Error>(out), i + 1))
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}
