//! The public pages (docs/DASHBOARD.md, "Public pages"): a workspace's pricing table (a page and
//! a framable embed), its hosted signup, and the customer portal's sign-in by email. Anyone may
//! open them, for workspaces whose public pages are on (`app::public::settings`).
//!
//! Each page is reached two ways: with the workspace in the path (`/pricing/{workspace}`), or on
//! a custom domain registered for the workspace (`https://billing.example.com/pricing`: Host
//! routing, `app::public::domains`), where no workspace id appears and a path naming another
//! workspace is not found. The brand is the workspace's (seller profile), never the
//! deployment's, so a white-label partner's domain shows the partner only (Levqor case 7).
//!
//! The forms carry a double-submit token (a random value in a `SameSite=Strict` cookie and in
//! the form, which must match) and their posts are bounded per client and per workspace.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_core::catalog;

use super::admin::interval;
use super::operations::compact;
use super::{cookie, page, same_secret, set_cookie};
use crate::app::public::{domains, settings, signup};
use crate::app::users::magic_link;
use crate::auth::generate_secret;
use crate::error::Error;
use crate::state::AppState;

/// The public forms' double-submit cookie.
const FORM_COOKIE: &str = "tg_form";
const FORM_SECONDS: i64 = 3600;

/// Which workspace a public page is for, and how its links are written.
struct Site {
    workspace: String,
    /// Appended to every public path: `/{workspace}` when the workspace came from the path,
    /// empty on a custom domain.
    suffix: String,
    /// `scheme://host` of the custom domain the request came through.
    domain_origin: Option<String>,
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "message.html",
        json!({"title": "Not found", "message": "There is no page here."}),
    )
}

fn scheme(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if https { "https" } else { "http" }
}

/// The site of a request: its custom domain, else the workspace in its path. A custom domain
/// with another workspace in the path, an unknown workspace and one whose pages are off are
/// all not found (the same answer for each).
async fn site(
    state: &AppState,
    headers: &HeaderMap,
    path_workspace: Option<String>,
) -> Result<Site, Response> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let domain = match domains::resolve(&state.engine, host).await {
        Ok(d) => d,
        Err(e) => return Err(super::admin::error_page(&e)),
    };
    let (workspace, suffix, domain_origin) = match (domain, path_workspace) {
        (Some(d), None) => {
            let origin = format!("{}://{host}", scheme(headers));
            (d.workspace, String::new(), Some(origin))
        }
        (Some(_), Some(_)) => return Err(not_found()),
        (None, Some(w)) => {
            let suffix = format!("/{}", super::urlencode(&w));
            (w, suffix, None)
        }
        (None, None) => return Err(not_found()),
    };
    match settings::enabled(&state.engine, &workspace).await {
        Ok(true) => Ok(Site {
            workspace,
            suffix,
            domain_origin,
        }),
        Ok(false) => Err(not_found()),
        Err(e) => Err(super::admin::error_page(&e)),
    }
}

/// The common context of a public page: the brand and the paths of its sibling pages.
async fn context(state: &AppState, site: &Site) -> Value {
    let brand = super::portal::brand(state, &site.workspace).await;
    let s = &site.suffix;
    json!({
        "brand": brand,
        "paths": {
            "pricing": format!("/pricing{s}"),
            "signup": format!("/signup{s}"),
            "sign_in": format!("/portal/signin{s}"),
            "brand_css": if s.is_empty() { "/public/brand.css".to_owned() } else { format!("/public/brand.css?w={}", &s[1..]) },
        },
    })
}

/// The plans of the workspace's latest catalog side by side: names, then one row per price,
/// trial, feature and limit.
async fn plans_table(state: &AppState, workspace: &str) -> Result<Option<Value>, Error> {
    let Some(current) = state.engine.latest_catalog(workspace).await? else {
        return Ok(None);
    };
    let cat = &current.catalog;
    let code = cat.currency.code();
    let surface = catalog::to_json(cat);
    let cell = |f: &dyn Fn(&str, &catalog::Plan) -> String| -> Vec<String> {
        cat.plans.iter().map(|(k, p)| f(k, p)).collect()
    };
    let mut rows: Vec<Value> = vec![
        json!({"label": "Price", "cells": cell(&|_, p| match &p.base {
            Some(b) => format!("{} {code} / {}", b.amount, interval(b)),
            None if p.prices.is_empty() => "Free".to_owned(),
            None => "Pay as you go".to_owned(),
        })}),
        json!({"label": "Free trial", "cells": cell(&|_, p| p.trial_days.map_or_else(|| "–".to_owned(), |d| format!("{d} days")))}),
    ];
    if cat.plans.values().any(|p| p.setup_fee.is_some()) {
        rows.push(json!({"label": "Setup fee", "cells": cell(&|_, p| p.setup_fee.map_or_else(|| "–".to_owned(), |f| format!("{f} {code}")))}));
    }
    for (key, feature) in &cat.features {
        let label = feature.name.clone().unwrap_or_else(|| key.clone());
        rows.push(json!({"label": label, "cells": cell(&|plan, _| {
            feature_text(&surface["plans"][plan]["features"][key.as_str()])
        })}));
    }
    for (label, field) in [
        ("Included usage", "quotas"),
        ("Rate limits", "rate_limits"),
        ("Usage prices", "prices"),
    ] {
        if cat.plans.values().any(|p| match field {
            "quotas" => !p.quotas.is_empty(),
            "rate_limits" => !p.rate_limits.is_empty(),
            _ => !p.prices.is_empty(),
        }) {
            rows.push(json!({"label": label, "cells": cell(&|plan, _| {
                lines(&surface["plans"][plan][field], &|v| match field {
                    "quotas" => quota_text(v),
                    "rate_limits" => rate_limit_text(v),
                    _ => price_text(v, code),
                })
            })}));
        }
    }
    let plans: Vec<Value> = cat
        .plans
        .iter()
        .map(|(k, p)| {
            json!({
                "key": k,
                "name": p.name.clone().unwrap_or_else(|| k.clone()),
                "trial_days": p.trial_days,
                // Text, not the number: minijinja would print serde_json's exact-number wrapper.
                "trial": p.trial_days.map(|d| format!("{d}-day free trial")),
            })
        })
        .collect();
    Ok(Some(
        json!({"plans": plans, "rows": rows, "currency": code}),
    ))
}

// ---- the pricing table's cells, as a visitor reads them (the catalog's JSON surface, worded;
// an unknown shape falls back to its compact form) ----

/// A switch is "Yes" or "No"; a limit is its number or "unlimited".
fn feature_text(v: &Value) -> String {
    match v {
        Value::Bool(true) => "Yes".to_owned(),
        Value::Bool(false) => "No".to_owned(),
        other => compact(other),
    }
}

/// One line per item of a list (the cell keeps the line breaks: `white-space: pre-line`).
fn lines(v: &Value, each: &dyn Fn(&Value) -> String) -> String {
    match v {
        Value::Array(items) if !items.is_empty() => {
            items.iter().map(each).collect::<Vec<_>>().join("\n")
        }
        _ => "–".to_owned(),
    }
}

/// `{"rolling": "5h"}` or `"billing"` or `"month"`, as "per ...".
fn period_text(v: &Value) -> String {
    match v {
        Value::String(p) if p == "billing" => "per billing period".to_owned(),
        Value::String(p) => format!("per {p}"),
        Value::Object(o) if o.contains_key("rolling") => {
            format!("per rolling {}", compact(&o["rolling"]))
        }
        Value::Null => String::new(),
        other => format!("per {}", compact(other)),
    }
}

/// "10 generations per billing period".
fn quota_text(q: &Value) -> String {
    let mut text = format!(
        "{} {} {}",
        compact(&q["limit"]),
        compact(&q["meter"]),
        period_text(&q["period"])
    );
    if let Some(per) = q["per"].as_str().filter(|p| *p != "customer") {
        text.push_str(&format!(", per {per}"));
    }
    text.trim_end().to_owned()
}

/// "100 requests per minute".
fn rate_limit_text(r: &Value) -> String {
    format!(
        "{} requests per {}",
        compact(&r["limit"]),
        compact(&r["per"])
    )
}

/// "api_calls: 3.00 USD per 1000, 10000 included".
fn price_text(p: &Value, code: &str) -> String {
    let money = |v: &Value| format!("{} {code}", compact(v));
    let meter = compact(&p["meter"]);
    let what = match p["model"].as_str() {
        Some("per_unit") => format!("{} each", money(&p["unit_amount"])),
        Some("package") => format!("{} per {}", money(&p["amount"]), compact(&p["size"])),
        Some("dimensional") => {
            let rates = p["rates"].as_object().map_or_else(String::new, |r| {
                r.iter()
                    .map(|(k, v)| format!("{k} {}", compact(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            let mut text = format!("by {}: {rates} {code} each", compact(&p["dimension"]));
            if let Some(values) = p["multiplier"]["values"].as_object() {
                let factors: Vec<String> = values
                    .iter()
                    .map(|(k, v)| format!("{k} ×{}", compact(v)))
                    .collect();
                text.push_str(&format!(" ({})", factors.join(", ")));
            }
            text
        }
        Some("percentage") => {
            let mut text = format!("{} %", compact(&p["percent"]));
            if !p["fixed_fee"].is_null() {
                text.push_str(&format!(" + {} per transaction", money(&p["fixed_fee"])));
            }
            if !p["cap"].is_null() {
                text.push_str(&format!(", at most {}", money(&p["cap"])));
            }
            text
        }
        _ => {
            let mut rest = p.clone();
            if let Some(o) = rest.as_object_mut() {
                o.remove("meter");
                o.remove("included");
            }
            compact(&rest)
        }
    };
    match &p["included"] {
        Value::Null => format!("{meter}: {what}"),
        included => format!("{meter}: {what}, {} included", compact(included)),
    }
}

async fn pricing(
    state: AppState,
    headers: HeaderMap,
    workspace: Option<String>,
    embed: bool,
) -> Response {
    let site = match site(&state, &headers, workspace).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let table = match plans_table(&state, &site.workspace).await {
        Ok(t) => t,
        Err(e) => return super::admin::error_page(&e),
    };
    let mut ctx = context(&state, &site).await;
    if let Some(obj) = ctx.as_object_mut() {
        obj.insert("table".into(), table.unwrap_or(Value::Null));
        obj.insert("embed".into(), json!(embed));
    }
    let mut response = page(
        StatusCode::OK,
        if embed {
            "pricing_embed.html"
        } else {
            "pricing.html"
        },
        ctx,
    );
    if embed {
        // The embed is meant to be framed by the operator's own site: any ancestor may frame
        // it (it shows public prices and links out with `target=_top`, no form).
        let headers = response.headers_mut();
        headers.remove(header::X_FRAME_OPTIONS);
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src https: 'self'; base-uri 'none'; form-action 'none'",
            ),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        );
    }
    response
}

/// `GET /pricing` on a custom domain.
pub async fn pricing_here(State(state): State<AppState>, headers: HeaderMap) -> Response {
    pricing(state, headers, None, false).await
}

/// `GET /pricing/{workspace}`.
pub async fn pricing_of(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(workspace): Path<String>,
) -> Response {
    pricing(state, headers, Some(workspace), false).await
}

/// `GET /pricing/embed` on a custom domain: the table alone, framable.
pub async fn embed_here(State(state): State<AppState>, headers: HeaderMap) -> Response {
    pricing(state, headers, None, true).await
}

/// `GET /pricing/{workspace}/embed`.
pub async fn embed_of(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(workspace): Path<String>,
) -> Response {
    pricing(state, headers, Some(workspace), true).await
}

#[derive(Deserialize, Default)]
pub struct BrandQuery {
    w: Option<String>,
}

/// `GET /public/brand.css[?w={workspace}]`: the brand's colour for the public pages.
pub async fn brand_css(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<BrandQuery>,
) -> Response {
    let mut css = String::new();
    if let Ok(site) = site(&state, &headers, q.w).await {
        let profile = crate::billing::profiles::seller_profile(
            state.engine.store().as_ref(),
            &site.workspace,
        )
        .await
        .ok()
        .flatten();
        // The colour was checked to be #rrggbb when the profile was stored.
        if let Some(color) = profile.and_then(|p| p.brand).and_then(|b| b.color) {
            css = format!(":root {{ --brand: {color}; }}\n");
        }
    }
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        css,
    )
        .into_response()
}

// ---- forms ----

/// The form token of this browser (its cookie's, or a new one set on the answer).
fn form_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, FORM_COOKIE).filter(|t| t.starts_with("tgf_") && t.len() < 100) {
        Some(t) => (t.to_owned(), false),
        None => (generate_secret("tgf_"), true),
    }
}

fn with_token(headers: &HeaderMap, mut response: Response, token: &str, new: bool) -> Response {
    if new {
        let (name, value) = set_cookie(headers, FORM_COOKIE, token, "/", FORM_SECONDS);
        response.headers_mut().append(name, value);
    }
    response
}

/// Whether a post carries the token its cookie holds.
fn token_ok(headers: &HeaderMap, sent: &str) -> bool {
    cookie(headers, FORM_COOKIE).is_some_and(|c| !c.is_empty() && same_secret(c, sent))
}

/// The client a post comes from: the peer's address (behind a proxy, the proxy's).
fn client(connect: Option<&Extension<ConnectInfo<SocketAddr>>>) -> String {
    connect.map_or_else(|| "unknown".to_owned(), |c| c.0.0.ip().to_string())
}

const TOO_MANY: &str = "Too many attempts from here: please wait a few minutes and try again.";

fn retry_after(
    mut response: Response,
    limits: &crate::app::public::limits::PublicLimits,
) -> Response {
    if let Ok(v) = HeaderValue::from_str(&limits.window.as_secs().to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

#[derive(Deserialize, Default)]
pub struct SignupQuery {
    plan: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct SignupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    plan: String,
}

async fn signup_page(
    state: &AppState,
    headers: &HeaderMap,
    site: &Site,
    status: StatusCode,
    error: Option<&str>,
    form: &SignupForm,
) -> Response {
    let (token, new) = form_token(headers);
    let table = plans_table(state, &site.workspace).await.ok().flatten();
    let plans = table
        .as_ref()
        .map_or(Value::Array(vec![]), |t| t["plans"].clone());
    let prices = table
        .as_ref()
        .map_or(Value::Array(vec![]), |t| t["rows"][0]["cells"].clone());
    let mut ctx = context(state, site).await;
    if let Some(obj) = ctx.as_object_mut() {
        obj.insert("plans".into(), plans);
        obj.insert("prices".into(), prices);
        obj.insert("token".into(), json!(token));
        obj.insert("error".into(), json!(error));
        obj.insert(
            "form".into(),
            json!({"name": form.name, "email": form.email, "plan": form.plan}),
        );
    }
    with_token(headers, page(status, "signup.html", ctx), &token, new)
}

async fn signup_form(
    state: AppState,
    headers: HeaderMap,
    workspace: Option<String>,
    plan: Option<String>,
) -> Response {
    let site = match site(&state, &headers, workspace).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let form = SignupForm {
        plan: plan.unwrap_or_default(),
        ..SignupForm::default()
    };
    signup_page(&state, &headers, &site, StatusCode::OK, None, &form).await
}

/// `GET /signup[?plan=]` on a custom domain.
pub async fn signup_here(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignupQuery>,
) -> Response {
    signup_form(state, headers, None, q.plan).await
}

/// `GET /signup/{workspace}[?plan=]`.
pub async fn signup_of(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(workspace): Path<String>,
    Query(q): Query<SignupQuery>,
) -> Response {
    signup_form(state, headers, Some(workspace), q.plan).await
}

async fn signup_post(
    state: AppState,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    workspace: Option<String>,
    form: SignupForm,
) -> Response {
    let site = match site(&state, &headers, workspace).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !token_ok(&headers, &form.token) {
        let msg = "The form expired: please send it again.";
        return signup_page(
            &state,
            &headers,
            &site,
            StatusCode::FORBIDDEN,
            Some(msg),
            &form,
        )
        .await;
    }
    let limits = state.public.limits;
    if !state.public.limiter.admit(
        &limits,
        "signup",
        &site.workspace,
        &client(connect.as_ref()),
    ) {
        let r = signup_page(
            &state,
            &headers,
            &site,
            StatusCode::TOO_MANY_REQUESTS,
            Some(TOO_MANY),
            &form,
        )
        .await;
        return retry_after(r, &limits);
    }
    let outcome = signup::hosted_signup(
        &state.engine,
        signup::HostedSignup {
            workspace: site.workspace.clone(),
            name: form.name.clone(),
            email: form.email.clone(),
            plan: form.plan.clone(),
        },
    )
    .await;
    match outcome {
        Ok(done) => {
            let mut ctx = context(&state, &site).await;
            let plan = done
                .catalog
                .catalog
                .plans
                .get(&done.subscription.plan)
                .and_then(|p| p.name.clone())
                .unwrap_or_else(|| done.subscription.plan.clone());
            if let Some(obj) = ctx.as_object_mut() {
                obj.insert("customer".into(), json!({"id": done.customer.id, "name": done.customer.name, "email": done.customer.email}));
                obj.insert("plan".into(), json!(plan));
                obj.insert(
                    "trial_end".into(),
                    json!(done.subscription.trial_end.map(|t| t.to_string())),
                );
                obj.insert("secret".into(), json!(done.key.secret));
            }
            page(StatusCode::CREATED, "signup_done.html", ctx)
        }
        Err(e) if e.cause.is_none() => {
            let status = crate::api::error::status_of(e.kind);
            signup_page(&state, &headers, &site, status, Some(&e.detail), &form).await
        }
        Err(e) => super::admin::error_page(&e),
    }
}

/// `POST /signup` on a custom domain.
pub async fn signup_post_here(
    State(state): State<AppState>,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<SignupForm>,
) -> Response {
    signup_post(state, headers, connect, None, form).await
}

/// `POST /signup/{workspace}`.
pub async fn signup_post_of(
    State(state): State<AppState>,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(workspace): Path<String>,
    Form(form): Form<SignupForm>,
) -> Response {
    signup_post(state, headers, connect, Some(workspace), form).await
}

// ---- portal sign-in by email ----

#[derive(Deserialize, Default)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
}

async fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    site: &Site,
    status: StatusCode,
    error: Option<&str>,
    sent: bool,
    email: &str,
) -> Response {
    let (token, new) = form_token(headers);
    let mut ctx = context(state, site).await;
    if let Some(obj) = ctx.as_object_mut() {
        obj.insert("token".into(), json!(token));
        obj.insert("error".into(), json!(error));
        obj.insert("sent".into(), json!(sent));
        obj.insert("email".into(), json!(email));
    }
    with_token(
        headers,
        page(status, "portal_signin.html", ctx),
        &token,
        new,
    )
}

async fn sign_in_form(state: AppState, headers: HeaderMap, workspace: Option<String>) -> Response {
    match site(&state, &headers, workspace).await {
        Ok(site) => sign_in_page(&state, &headers, &site, StatusCode::OK, None, false, "").await,
        Err(r) => r,
    }
}

/// `GET /portal/signin` on a custom domain.
pub async fn sign_in_here(State(state): State<AppState>, headers: HeaderMap) -> Response {
    sign_in_form(state, headers, None).await
}

/// `GET /portal/signin/{workspace}`.
pub async fn sign_in_of(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(workspace): Path<String>,
) -> Response {
    sign_in_form(state, headers, Some(workspace)).await
}

async fn sign_in_post(
    state: AppState,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    workspace: Option<String>,
    form: SignInForm,
) -> Response {
    let site = match site(&state, &headers, workspace).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !token_ok(&headers, &form.token) {
        let msg = "The form expired: please send it again.";
        return sign_in_page(
            &state,
            &headers,
            &site,
            StatusCode::FORBIDDEN,
            Some(msg),
            false,
            &form.email,
        )
        .await;
    }
    let limits = state.public.limits;
    if !state.public.limiter.admit(
        &limits,
        "sign_in",
        &site.workspace,
        &client(connect.as_ref()),
    ) {
        let r = sign_in_page(
            &state,
            &headers,
            &site,
            StatusCode::TOO_MANY_REQUESTS,
            Some(TOO_MANY),
            false,
            &form.email,
        )
        .await;
        return retry_after(r, &limits);
    }
    // Where the link points: the custom domain the request came through, else the deployment's
    // public URL; never a Host header that names no registered domain.
    let origin = site
        .domain_origin
        .clone()
        .or_else(|| state.public.url.clone());
    let Some(origin) = origin else {
        tracing::warn!(workspace = %site.workspace, "portal sign-in by email needs a custom domain or --public-url: no link sent");
        return sign_in_page(
            &state,
            &headers,
            &site,
            StatusCode::OK,
            None,
            true,
            &form.email,
        )
        .await;
    };
    match magic_link::request(&state.engine, &site.workspace, &form.email, &origin).await {
        Ok(()) => {
            sign_in_page(
                &state,
                &headers,
                &site,
                StatusCode::OK,
                None,
                true,
                &form.email,
            )
            .await
        }
        Err(e) if e.cause.is_none() => {
            let status = crate::api::error::status_of(e.kind);
            sign_in_page(
                &state,
                &headers,
                &site,
                status,
                Some(&e.detail),
                false,
                &form.email,
            )
            .await
        }
        Err(e) => super::admin::error_page(&e),
    }
}

/// `POST /portal/signin` on a custom domain.
pub async fn sign_in_post_here(
    State(state): State<AppState>,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<SignInForm>,
) -> Response {
    sign_in_post(state, headers, connect, None, form).await
}

/// `POST /portal/signin/{workspace}`.
pub async fn sign_in_post_of(
    State(state): State<AppState>,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(workspace): Path<String>,
    Form(form): Form<SignInForm>,
) -> Response {
    sign_in_post(state, headers, connect, Some(workspace), form).await
}

/// The workspace a request's custom domain names, if any (the portal refuses another
/// workspace's session there).
pub async fn domain_workspace(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    domains::resolve(&state.engine, host)
        .await
        .ok()
        .flatten()
        .map(|d| d.workspace)
}
