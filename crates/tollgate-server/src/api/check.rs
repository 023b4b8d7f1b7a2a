//! `POST /v1/check`: may this customer (this user) do this now?
//!
//! Denials are answers (200 with `allowed: false`, the reason, the limit and the upgrade hint),
//! except a request rate limit, which is about the call itself: 429 with `Retry-After`. Every
//! answer carries the IETF `RateLimit-Policy`/`RateLimit` headers and `X-RateLimit-*` when the
//! plan has a rate limit.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::Deserialize;
use tollgate_core::check::{Decision, Reason};
use tollgate_core::code::Code;
use tollgate_core::limits::seconds_until;
use tollgate_core::quantity::QuantityError;

use crate::api::error::{ApiError, ApiResult};
use crate::auth::Principal;
use crate::engine::{CheckRequest, CheckTarget, check::RateLimitState};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckIn {
    /// The customer; optional with a customer key (it is the key's customer).
    pub customer: Option<String>,
    /// Check a feature of the plan...
    pub feature: Option<String>,
    /// ...or a meter's quotas.
    pub meter: Option<String>,
    /// Units wanted (default 1), a decimal string or number from 0 to 10^12. For a limit
    /// feature: the total wanted.
    #[schema(value_type = Option<String>)]
    pub quantity: Option<serde_json::Value>,
    /// Who inside the customer acts (e.g. a user id), for per-subject limits.
    pub subject: Option<String>,
    /// Record `quantity` as usage if allowed, atomically with the check.
    #[serde(default)]
    pub consume: bool,
    /// Id of the usage event a consuming check records; a retry with the same id counts once.
    pub event_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// The decision a check answers: its JSON shape, for the contract (the engine builds it as
/// `tollgate_core::check::Decision`, which the core keeps free of HTTP and schema crates).
/// Schemathesis checks every answer against it in CI.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only: never built, the engine's Decision is what is sent
pub struct DecisionOut {
    pub allowed: bool,
    /// `allowed`, `soft_limit_exceeded`, `feature_not_in_plan`, `feature_limit_exceeded`,
    /// `quota_exceeded`, `rate_limited`, `customer_suspended`, `no_subscription`,
    /// `unknown_target`, `customer_archived` or `subscription_paused`.
    pub reason: String,
    /// The binding limit: a decimal string, or `unlimited`.
    pub limit: Option<String>,
    /// What the binding limit leaves after this check (and its consumption).
    pub remaining: Option<String>,
    /// Used so far in the binding limit's window or period, after this check.
    pub used: Option<String>,
    /// The binding limit's window, e.g. `5h`, or `period`.
    pub window: Option<String>,
    /// `customer` or `subject`.
    pub scope: Option<String>,
    /// When the binding limit resets (period end, or when a rolling window frees enough).
    #[schema(format = DateTime)]
    pub reset_at: Option<String>,
    /// Seconds until the action could be allowed, on denials that time will lift.
    pub retry_after: Option<u64>,
    /// The cheapest plan that would allow the action.
    pub upgrade: Option<UpgradeOut>,
    /// A config feature's value, for the app to use.
    pub value: Option<serde_json::Value>,
}

/// The plan that would allow what was denied, and its limit for it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only, like DecisionOut
pub struct UpgradeOut {
    pub plan: String,
    /// The plan's limit for what was checked: a decimal string or `unlimited`; absent for
    /// switches, and for rate limits over another window.
    pub limit: Option<String>,
}

#[utoipa::path(post, path = "/v1/check", operation_id = "check_check", request_body = CheckIn,
    responses((status = 200, description = "The decision (allowed or not)", body = DecisionOut),
              (status = 429, description = "Rate limited", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn check(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::JsonBody<CheckIn>,
) -> ApiResult<Response> {
    let crate::api::body::JsonBody(body) = body;
    // The caller's own strings are moved into the request, not copied.
    let (workspace, customer) = match (caller, body.customer) {
        (
            Principal::Customer {
                workspace,
                customer,
                ..
            },
            None,
        ) => (workspace, customer),
        (caller, Some(c)) => (caller.require_customer(&c)?.to_owned(), c),
        (Principal::Admin { .. }, None) => {
            return Err(ApiError::bad_request(
                Code::MissingCustomer,
                "`customer` is required with an admin key",
            ));
        }
    };
    let target = match (body.feature, body.meter) {
        (Some(f), None) => CheckTarget::Feature(f),
        (None, Some(m)) => CheckTarget::Meter(m),
        _ => {
            return Err(ApiError::bad_request(
                Code::InvalidTarget,
                "give exactly one of `feature` and `meter`",
            ));
        }
    };
    let quantity = match &body.quantity {
        None | Some(serde_json::Value::Null) => Decimal::ONE,
        Some(value) => tollgate_core::quantity::from_json(value).map_err(|e| {
            let code = match &e {
                QuantityError::NotANumber(_) => Code::InvalidQuantity,
                other => other.code(),
            };
            ApiError::bad_request(code, format!("`quantity`: {e}"))
        })?,
    };
    if quantity.is_sign_negative() && !quantity.is_zero() {
        return Err(ApiError::bad_request(
            Code::InvalidQuantity,
            "`quantity` must not be negative",
        ));
    }
    if body.consume && matches!(target, CheckTarget::Feature(_)) {
        return Err(ApiError::bad_request(
            Code::InvalidTarget,
            "`consume` needs a `meter`",
        ));
    }
    let consume = body.consume;
    let started = std::time::Instant::now();
    let outcome = state
        .engine
        .check(&CheckRequest {
            workspace,
            customer,
            target,
            quantity,
            subject: body.subject,
            consume: body.consume,
            event_id: body.event_id,
            properties: body.properties,
        })
        .await;
    // The engine's time for the decision (and, consuming, the write), by kind and result.
    record_check_duration(
        consume,
        match &outcome {
            Ok(o) if o.decision.allowed => CheckResult::Allowed,
            Ok(_) => CheckResult::Denied,
            Err(_) => CheckResult::Error,
        },
        started.elapsed().as_secs_f64(),
    );
    let outcome = outcome?;
    let replayed = outcome.replayed;
    let mut response = respond(outcome.decision, outcome.rate_limit);
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

enum CheckResult {
    Allowed,
    Denied,
    Error,
}

/// `tollgate_check_duration_seconds{consume, result}`, with every label a literal: the macro then
/// builds a static key, where a label value in a variable builds (and allocates) one per check.
fn record_check_duration(consume: bool, result: CheckResult, seconds: f64) {
    use CheckResult::*;
    let histogram = match (consume, result) {
        (false, Allowed) => {
            metrics::histogram!("tollgate_check_duration_seconds", "consume" => "false", "result" => "allowed")
        }
        (false, Denied) => {
            metrics::histogram!("tollgate_check_duration_seconds", "consume" => "false", "result" => "denied")
        }
        (false, Error) => {
            metrics::histogram!("tollgate_check_duration_seconds", "consume" => "false", "result" => "error")
        }
        (true, Allowed) => {
            metrics::histogram!("tollgate_check_duration_seconds", "consume" => "true", "result" => "allowed")
        }
        (true, Denied) => {
            metrics::histogram!("tollgate_check_duration_seconds", "consume" => "true", "result" => "denied")
        }
        (true, Error) => {
            metrics::histogram!("tollgate_check_duration_seconds", "consume" => "true", "result" => "error")
        }
    };
    histogram.record(seconds);
}

fn respond(decision: Decision, rate_limit: Option<RateLimitState>) -> Response {
    let mut response = if decision.reason == Reason::RateLimited {
        let mut problem = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            Code::RateLimited,
            rate_limited_detail(&decision),
        )
        .problem_json();
        if let Some(obj) = problem.as_object_mut() {
            obj.insert(
                "decision".into(),
                serde_json::to_value(&decision).unwrap_or_default(),
            );
            // As the gateway answers it: the plan to move to, at the top where clients look.
            if let Some(u) = &decision.upgrade {
                obj.insert(
                    "upgrade".into(),
                    serde_json::to_value(u).unwrap_or_default(),
                );
            }
        }
        let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(problem)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(retry) = decision.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        }
        r
    } else {
        Json(decision).into_response()
    };
    if let Some(rl) = rate_limit {
        rate_limit_headers(response.headers_mut(), rl);
    }
    response
}

/// The 429's detail: what was hit, and the plan that allows more calls when there is one (the
/// same hint is in `decision.upgrade`).
pub fn rate_limited_detail(decision: &Decision) -> String {
    match &decision.upgrade {
        Some(u) => format!("request rate limit reached; plan `{}` allows more", u.plan),
        None => "request rate limit reached".to_owned(),
    }
}

/// IETF `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers) and the
/// `X-RateLimit-*` headers older clients read.
pub fn rate_limit_headers(headers: &mut HeaderMap, rl: RateLimitState) {
    let reset = seconds_until(rl.now, rl.reset_at);
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    put(
        "ratelimit-policy",
        format!("\"default\";q={};w={}", rl.limit, rl.window_seconds),
    );
    put(
        "ratelimit",
        format!("\"default\";r={};t={}", rl.remaining, reset),
    );
    put("x-ratelimit-limit", rl.limit.to_string());
    put("x-ratelimit-remaining", rl.remaining.to_string());
    put("x-ratelimit-reset", rl.reset_at.as_second().to_string());
}
