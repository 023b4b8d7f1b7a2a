//! The web pages (docs/DASHBOARD.md): the operators' dashboard under `/admin` and the customers'
//! portal under `/portal`. Server-rendered HTML from minijinja templates and one CSS file, all
//! embedded in the binary (no CDN, no JavaScript needed); forms post back with a CSRF token.
//! An HTTP edge like the rest of `api/`: pages parse, call `app/` use cases, present.

pub mod admin;
pub mod chart;
pub mod operations;
pub mod portal;
pub mod public;
pub mod reports;
pub mod users;

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use tollgate_core::money::{Currency, Money};

/// The stylesheet, served at `/assets/app.css`.
pub const CSS: &str = include_str!("templates/app.css");

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates!(
    "base.html",
    "login.html",
    "home.html",
    "customers.html",
    "customer.html",
    "invoices.html",
    "invoice.html",
    "analytics.html",
    "margins.html",
    "revenue.html",
    "simulation.html",
    "catalog.html",
    "events.html",
    "events_rows.html",
    "events_tail.html",
    "webhooks.html",
    "emails.html",
    "test_clocks.html",
    "portal_base.html",
    "portal.html",
    "portal_enter.html",
    "message.html",
    "public_base.html",
    "pricing_table.html",
    "pricing.html",
    "pricing_embed.html",
    "signup.html",
    "signup_done.html",
    "portal_signin.html",
    "public_settings.html",
    "users.html",
);

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.add_filter("urlencode", urlencode);
        env.add_filter("when", when);
        // Templates are ours, compiled in: a broken one fails the test that renders it.
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "a page template does not compile");
            }
        }
        env
    })
}

/// An RFC 3339 time as people read it: `01 Dec 2026, 00:00 UTC` (anything else unchanged).
fn when(text: String) -> String {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%d %b %Y, %H:%M UTC").to_string())
        .unwrap_or(text)
}

/// A path segment, percent-encoded (ids are plain, but a page never trusts that).
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A page rendered from `template` with `context`, or a plain 500 page naming nothing.
/// (The context goes through `value_of`: the workspace's `serde_json` keeps numbers as text,
/// which minijinja's serde path would print as a map.)
pub fn page(status: StatusCode, template: &str, context: serde_json::Value) -> Response {
    let context = crate::notify::email::templates::value_of(&context);
    let rendered = environment()
        .get_template(template)
        .and_then(|t| t.render(context));
    match rendered {
        Ok(html) => (status, no_store(), Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template, error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>Something went wrong.</p>"),
            )
                .into_response()
        }
    }
}

/// Pages show one person's data: never cached by a browser or a proxy.
fn no_store() -> [(header::HeaderName, HeaderValue); 3] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src https: 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ]
}

/// Vendored scripts and stylesheets (`assets/README.md`: versions, licences, checksums) and
/// our chart script, served from `/assets/`.
const UPLOT_JS: &str = include_str!("assets/uplot-1.6.32.min.js");
const UPLOT_CSS: &str = include_str!("assets/uplot-1.6.32.min.css");
const HTMX_JS: &str = include_str!("assets/htmx-2.0.8.min.js");
const CHARTS_JS: &str = include_str!("assets/charts.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /assets/uplot.js`.
pub async fn uplot_js() -> Response {
    asset("text/javascript; charset=utf-8", UPLOT_JS)
}

/// `GET /assets/uplot.css`.
pub async fn uplot_css() -> Response {
    asset("text/css; charset=utf-8", UPLOT_CSS)
}

/// `GET /assets/htmx.js`.
pub async fn htmx_js() -> Response {
    asset("text/javascript; charset=utf-8", HTMX_JS)
}

/// `GET /assets/charts.js`.
pub async fn charts_js() -> Response {
    asset("text/javascript; charset=utf-8", CHARTS_JS)
}

/// `GET /assets/app.css`.
pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// A redirect after a form (303: the browser follows with GET).
pub fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the browser reached us over HTTPS (directly or through a TLS-terminating proxy that
/// says so): cookies are then `Secure`. On plain `http://` (a laptop, a test) they cannot be,
/// or the browser would drop them.
fn secure(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` for a session: HttpOnly, SameSite=Strict, scoped to `path`, `Secure` over
/// HTTPS; `max_age` 0 deletes it.
pub fn set_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> (header::HeaderName, HeaderValue) {
    let secure = if secure(headers) { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    (
        header::SET_COOKIE,
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0")),
    )
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `12.34 USD` from minor units.
pub fn money(minor: i64, currency: Currency) -> String {
    format!(
        "{} {}",
        Money::from_minor(minor, currency).to_decimal(),
        currency.code()
    )
}

/// The currency named by an ISO code, USD if unknown (display only).
pub fn currency_of(code: &str) -> Currency {
    code.parse().unwrap_or(Currency::USD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let env = environment();
        for (name, _) in TEMPLATES {
            env.get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
