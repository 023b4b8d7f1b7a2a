//! `GET /`: where a person who opens the server's address in a browser finds what to do next.

use axum::response::Html;

/// A short page linking the API contract, health and metrics, and the documentation.
pub async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>Tollgate</title></head><body>",
        "<h1>Tollgate ",
        env!("CARGO_PKG_VERSION"),
        "</h1>",
        "<p>The monetization layer: usage metering, plan limits and feature gates, invoices.</p>",
        "<ul>",
        "<li><a href=\"/admin\">/admin</a>: the dashboard (operators sign in; docs/DASHBOARD.md)</li>",
        "<li><a href=\"/openapi.json\">/openapi.json</a>: the HTTP API contract (OpenAPI 3.1)</li>",
        "<li><a href=\"/healthz\">/healthz</a>: liveness and the store in use</li>",
        "<li><a href=\"/metrics\">/metrics</a>: Prometheus metrics</li>",
        "</ul>",
        "<p>Every <code>/v1</code> call takes a key: <code>Authorization: Bearer &lt;key&gt;</code>. ",
        "The guide is docs/API.md in the repository.</p>",
        "</body></html>"
    ))
}
