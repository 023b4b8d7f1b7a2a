//! How the gateway says no: `application/problem+json` with a stable `code`, and the status a
//! proxied client understands without reading the body.
//!
//! The API answers a denied check with 200 and `allowed: false`, because there the caller asked
//! a question. Through the gateway the caller asked for the resource itself, so a denial becomes
//! the HTTP status that says why: 401 who are you, 402 pay first, 403 not in your plan, 429 not
//! now (with `Retry-After`). The check's decision rides along in the body as `decision`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tollgate_core::check::{Decision, Reason};

use crate::api::check::rate_limit_headers;
use crate::api::error::ApiError;
use crate::engine::check::RateLimitState;
use crate::error::Code;

/// A problem response, with extension members merged into the body.
pub fn problem(
    error: ApiError,
    extra: Vec<(&str, Value)>,
    rate_limit: Option<RateLimitState>,
) -> Response {
    let mut body = error.problem_json();
    if let Some(obj) = body.as_object_mut() {
        for (k, v) in extra {
            obj.insert(k.to_owned(), v);
        }
    }
    let mut response = (error.status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(rl) = rate_limit {
        rate_limit_headers(response.headers_mut(), rl);
    }
    response
}

/// An engine error (authentication, store) as the gateway answers it: a suspended customer's
/// key is a payment matter at the gateway (402), not a permission one.
pub fn from_api_error(error: impl Into<ApiError>, rate_limit: Option<RateLimitState>) -> Response {
    let error: ApiError = error.into();
    let error = if error.code == Code::CustomerSuspended {
        ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            Code::CustomerSuspended,
            error.detail,
        )
    } else {
        error
    };
    problem(error, Vec::new(), rate_limit)
}

/// 401 with a reason the client can act on.
pub fn unauthorized(detail: &str) -> Response {
    problem(ApiError::unauthorized(detail), Vec::new(), None)
}

/// A denied check as a refusal. `target` names what was checked, for the message.
pub fn denied(decision: Decision, target: &str, rate_limit: Option<RateLimitState>) -> Response {
    let upgrade = decision
        .upgrade
        .as_ref()
        .map(|u| format!("; plan `{}` allows it", u.plan))
        .unwrap_or_default();
    let (status, code, detail) = match decision.reason {
        Reason::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            Code::RateLimited,
            crate::api::check::rate_limited_detail(&decision),
        ),
        Reason::QuotaExceeded => (
            StatusCode::TOO_MANY_REQUESTS,
            Code::QuotaExceeded,
            format!("the quota of {target} is used up{upgrade}"),
        ),
        Reason::FeatureNotInPlan => (
            StatusCode::FORBIDDEN,
            Code::FeatureNotInPlan,
            format!("the plan does not include {target}{upgrade}"),
        ),
        Reason::FeatureLimitExceeded => (
            StatusCode::FORBIDDEN,
            Code::FeatureLimitExceeded,
            format!("the plan's limit of {target} is reached{upgrade}"),
        ),
        Reason::CustomerSuspended => (
            StatusCode::PAYMENT_REQUIRED,
            Code::CustomerSuspended,
            "the customer is suspended".to_owned(),
        ),
        Reason::CustomerArchived => (
            StatusCode::FORBIDDEN,
            Code::CustomerArchived,
            "the customer is archived".to_owned(),
        ),
        Reason::SubscriptionPaused => (
            StatusCode::PAYMENT_REQUIRED,
            Code::SubscriptionPaused,
            "the customer's subscription is paused".to_owned(),
        ),
        Reason::NoSubscription => (
            StatusCode::PAYMENT_REQUIRED,
            Code::NoSubscription,
            "the customer has no active subscription".to_owned(),
        ),
        Reason::UnknownTarget => {
            tracing::error!(%target, "a gateway route names something the customer's catalog does not have");
            let error = ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::RouteTargetUnknown,
                "the gateway's route names a feature or meter the catalog does not have",
            );
            return problem(error, Vec::new(), rate_limit);
        }
        Reason::Allowed | Reason::SoftLimitExceeded => {
            return problem(
                ApiError::internal("an allowed decision was refused"),
                Vec::new(),
                rate_limit,
            );
        }
    };
    let mut extra = vec![(
        "decision",
        serde_json::to_value(&decision).unwrap_or_default(),
    )];
    if let Some(u) = &decision.upgrade {
        extra.push(("upgrade", serde_json::to_value(u).unwrap_or_default()));
    }
    let mut response = problem(ApiError::new(status, code, detail), extra, rate_limit);
    if status == StatusCode::TOO_MANY_REQUESTS {
        let retry = decision.retry_after.unwrap_or(1).max(1);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
    }
    response
}
