//! One log line per request (its id, method, route, status, latency, outcome and, for a
//! problem, its code) and the HTTP metrics: `tollgate_http_requests_total` and the latency
//! histogram `tollgate_http_request_duration_seconds`.
//!
//! Never logged: headers (keys, `Authorization`), bodies, the query string. The route is the
//! matched template (`/v1/customers/{id}`), so neither logs nor metric labels carry ids.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tollgate_core::code::Code;

/// The header carrying a request's id, both ways: a caller's own id (1-128 of `A-Z a-z 0-9
/// _ - . :`) is kept, otherwise one is generated (`req_...`).
pub const REQUEST_ID: &str = "x-request-id";

/// The stable code of a problem answer, left in the response's extensions by `ApiError` so the
/// request log can name it without reading the body.
#[derive(Debug, Clone, Copy)]
pub struct ProblemCode(pub Code);

/// `2xx`/`3xx` are `ok`, `4xx` `client_error`, `5xx` `server_error`.
pub fn outcome(status: u16) -> &'static str {
    match status {
        500.. => "server_error",
        400..=499 => "client_error",
        _ => "ok",
    }
}

pub async fn log_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| super::valid_id(v))
        .map_or_else(|| super::new_id("req"), str::to_owned);

    let mut response = next.run(request).await;

    let latency = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let outcome = outcome(status);
    let code = response
        .extensions()
        .get::<ProblemCode>()
        .map_or("", |c| c.0.as_str());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    metrics::counter!(
        "tollgate_http_requests_total",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status.to_string(),
        "outcome" => outcome,
    )
    .increment(1);
    metrics::histogram!(
        "tollgate_http_request_duration_seconds",
        "method" => method.clone(),
        "route" => route.clone(),
    )
    .record(latency);
    let latency_ms = latency * 1000.0;
    if status >= 500 {
        tracing::error!(target: "tollgate::request", request_id = %id, method = %method, route = %route, status, latency_ms, outcome, code, "request");
    } else {
        tracing::info!(target: "tollgate::request", request_id = %id, method = %method, route = %route, status, latency_ms, outcome, code, "request");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_by_status() {
        assert_eq!(outcome(200), "ok");
        assert_eq!(outcome(304), "ok");
        assert_eq!(outcome(402), "client_error");
        assert_eq!(outcome(429), "client_error");
        assert_eq!(outcome(503), "server_error");
    }
}
