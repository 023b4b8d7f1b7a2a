//! One log line per request (its id, method, route, status, latency, outcome and, for a
//! problem, its code) and the HTTP metrics: `tollgate_http_requests_total` and the latency
//! histogram `tollgate_http_request_duration_seconds`.
//!
//! Never logged: headers (keys, `Authorization`), bodies, the query string. The route is the
//! matched template (`/v1/customers/{id}`), so neither logs nor metric labels carry ids.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use metrics::SharedString;
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
    // Label values are shared, not copied per metric: the method is a literal for the standard
    // ones and the route one `Arc<str>` (every request of a busy API pays for each copy).
    let method = method_label(request.method());
    let route: SharedString = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(SharedString::const_str("unmatched"), |p| {
            SharedString::from(Arc::<str>::from(p.as_str()))
        });
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
    metrics::counter!(
        "tollgate_http_requests_total",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status_label(status),
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
    let (method, route) = (&*method, &*route);
    if status >= 500 {
        tracing::error!(target: "tollgate::request", request_id = %id, method = %method, route = %route, status, latency_ms, outcome, code, "request");
    } else {
        tracing::info!(target: "tollgate::request", request_id = %id, method = %method, route = %route, status, latency_ms, outcome, code, "request");
    }
    // Last, so the id's `String` becomes the header's bytes without a copy.
    if let Ok(value) = HeaderValue::try_from(id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The method as a label value: a literal for the standard methods (no copy per request).
fn method_label(method: &Method) -> SharedString {
    let known = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
    ];
    const NAMES: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    match known.iter().position(|m| m == method) {
        Some(i) => SharedString::const_str(NAMES[i]),
        None => SharedString::from(method.as_str().to_owned()),
    }
}

/// The status as a label value: a literal for the statuses the API answers most.
fn status_label(status: u16) -> SharedString {
    let literal = match status {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        other => return SharedString::from(other.to_string()),
    };
    SharedString::const_str(literal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_method_and_status_text() {
        for method in [
            "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PURGE",
        ] {
            let parsed = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(&*method_label(&parsed), method);
        }
        for status in [200, 201, 202, 204, 400, 404, 418, 429, 500, 503] {
            assert_eq!(&*status_label(status), status.to_string());
        }
    }

    #[test]
    fn outcomes_by_status() {
        assert_eq!(outcome(200), "ok");
        assert_eq!(outcome(304), "ok");
        assert_eq!(outcome(402), "client_error");
        assert_eq!(outcome(429), "client_error");
        assert_eq!(outcome(503), "server_error");
    }
}
