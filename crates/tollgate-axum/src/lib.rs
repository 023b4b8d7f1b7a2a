//! A tower layer for axum apps: gate routes by the caller's plan and meter them through a
//! Tollgate server, the Rust twin of the Python SDK's ASGI middleware (`docs/PYTHON.md`).
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use tollgate_axum::{Route, TollgateLayer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let tollgate = tollgate_client::Client::new("http://127.0.0.1:8080", "tg_admin_...")?;
//! let app: Router = Router::new()
//!     .route("/v1/optimize", post(|| async { "done" }))
//!     .layer(TollgateLayer::new(tollgate).route(Route::feature("/v1/optimize", "advanced_optimization")));
//! # Ok(()) }
//! ```
//!
//! **Who calls.** By default the caller's own Tollgate customer key, sent as `Authorization:
//! Bearer` or `X-API-Key`; the layer checks with that key, so the check is the key's customer's
//! (an admin key is refused with 401, as the gateway refuses it). Or
//! [`TollgateLayer::customer_from`]: a function from the request to a customer id, when the
//! app's own authentication says who it is (checks then go with the client's admin key).
//! [`TollgateLayer::subject_header`] names the user inside the customer (per-user quotas).
//!
//! **What it answers.** Refusals are the metering gateway's (`docs/GATEWAY.md`): an
//! `application/problem+json` body with `code`, `detail`, the `decision` and the `upgrade` hint,
//! and the statuses 401 (who are you), 402 (suspended, paused, no subscription), 403 (not in the
//! plan), 429 (quota or rate limit, with `Retry-After`). A route whose feature or meter the
//! catalog lacks is the app's mistake: 500 `route_target_unknown`. When Tollgate cannot be
//! reached: 503 `tollgate_unavailable`, or the request goes through with
//! [`TollgateLayer::fail_open`].
//!
//! **Metering** is a consuming check before the handler: exact under concurrency (no burst
//! gets past a quota), and a request the handler then fails still counts, as at the gateway.
//! The allowed [`Caller`] (with its decision) is put in the request's extensions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tollgate_client::{CheckRequest, Client, ClientError, Decision};
use tower::{Layer, Service};

/// A route to gate: a feature the plan must include, a meter each request counts `cost` of,
/// or both. Path patterns are the gateway's: literal segments, `{name}` or `*` for one
/// non-empty segment, a trailing `*` for everything below.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Option<Method>,
    pub path: String,
    pub feature: Option<String>,
    pub meter: Option<String>,
    /// A decimal string.
    pub cost: String,
    /// Properties of the recorded usage event (e.g. the meter's filter).
    pub properties: serde_json::Map<String, Value>,
}

impl Route {
    /// Requests to `path` need `feature` in the caller's plan.
    pub fn feature(path: &str, feature: &str) -> Route {
        Route {
            method: None,
            path: path.to_owned(),
            feature: Some(feature.to_owned()),
            meter: None,
            cost: "1".into(),
            properties: serde_json::Map::new(),
        }
    }

    /// Each request to `path` counts one of `meter` (a consuming check).
    pub fn meter(path: &str, meter: &str) -> Route {
        Route {
            feature: None,
            meter: Some(meter.to_owned()),
            ..Route::feature(path, "")
        }
    }

    /// Also gated by a feature.
    pub fn and_feature(mut self, feature: &str) -> Route {
        self.feature = Some(feature.to_owned());
        self
    }

    /// Each request counts `cost` (a decimal string) instead of one.
    pub fn cost(mut self, cost: &str) -> Route {
        self.cost = cost.to_owned();
        self
    }

    /// Only requests of this method.
    pub fn method(mut self, method: Method) -> Route {
        self.method = Some(method);
        self
    }

    /// A property of the usage event (`level: supervisor` for a filtered meter).
    pub fn property(mut self, name: &str, value: Value) -> Route {
        self.properties.insert(name.to_owned(), value);
        self
    }

    /// Whether the route covers a request (the gateway's matching, exact about a trailing `/`).
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        let split = |p: &str| -> Vec<String> {
            if p == "/" {
                Vec::new()
            } else {
                p.trim_matches('/').split('/').map(str::to_owned).collect()
            }
        };
        let pattern = split(&self.path);
        let parts = split(path);
        let wildcard_tail = pattern.last().is_some_and(|p| p == "*");
        if path.ends_with('/') != self.path.ends_with('/') && !wildcard_tail {
            return false;
        }
        for (i, p) in pattern.iter().enumerate() {
            if p == "*" && i == pattern.len() - 1 {
                return true;
            }
            let Some(part) = parts.get(i) else {
                return false;
            };
            if p == "*" || (p.starts_with('{') && p.ends_with('}')) {
                if part.is_empty() {
                    return false;
                }
            } else if p != part {
                return false;
            }
        }
        parts.len() == pattern.len()
    }
}

/// Who an allowed request is from, in its extensions for the handler.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The customer, when [`TollgateLayer::customer_from`] named it.
    pub customer: Option<String>,
    pub subject: Option<String>,
    /// The last decision (the meter's when the route has one).
    pub decision: Option<Decision>,
}

type CustomerFn = Arc<dyn Fn(&Request) -> Option<String> + Send + Sync>;

/// The layer: see the crate docs.
#[derive(Clone)]
pub struct TollgateLayer {
    config: Arc<Config>,
}

struct Config {
    client: Client,
    routes: Vec<Route>,
    customer_from: Option<CustomerFn>,
    subject_header: Option<String>,
    fail_open: bool,
}

impl TollgateLayer {
    /// Gates with `client` (its key is used for checks only when `customer_from` is set).
    pub fn new(client: Client) -> TollgateLayer {
        TollgateLayer {
            config: Arc::new(Config {
                client,
                routes: Vec::new(),
                customer_from: None,
                subject_header: None,
                fail_open: false,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> TollgateLayer {
        if let Some(config) = Arc::get_mut(&mut self.config) {
            f(config);
        }
        self
    }

    /// Adds a route; the first route that matches a request applies.
    pub fn route(self, route: Route) -> TollgateLayer {
        self.edit(|c| c.routes.push(route))
    }

    /// Names the customer from the request (the app's own authentication) instead of the
    /// caller's Tollgate key; `None` is refused with 401.
    pub fn customer_from(
        self,
        f: impl Fn(&Request) -> Option<String> + Send + Sync + 'static,
    ) -> TollgateLayer {
        self.edit(|c| c.customer_from = Some(Arc::new(f)))
    }

    /// The header naming the user inside the customer, for per-user limits (`X-User-Id`).
    pub fn subject_header(self, name: &str) -> TollgateLayer {
        let name = name.to_ascii_lowercase();
        self.edit(|c| c.subject_header = Some(name))
    }

    /// Lets requests through when Tollgate cannot be reached (default: 503).
    pub fn fail_open(self, yes: bool) -> TollgateLayer {
        self.edit(|c| c.fail_open = yes)
    }
}

impl<S> Layer<S> for TollgateLayer {
    type Service = TollgateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TollgateService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service the layer wraps around the app.
#[derive(Clone)]
pub struct TollgateService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Service<Request> for TollgateService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone that was driven ready serves this request (tower's rule for cloned services).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let Some(route) = config
                .routes
                .iter()
                .find(|r| r.matches(request.method(), request.uri().path()))
                .cloned()
            else {
                return inner.call(request).await;
            };
            let who = match identify(&config, &request) {
                Ok(who) => who,
                Err(refusal) => return Ok(refusal),
            };
            match admit(&config, &route, who).await {
                Ok(Some(caller)) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Ok(None) => inner.call(request).await,
                Err(refusal) => Ok(refusal),
            }
        })
    }
}

/// The caller's Tollgate key: `Authorization: Bearer` or `X-API-Key`.
fn api_key(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let x_api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    bearer
        .or(x_api_key)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// Who calls, read from the request before anything is awaited (its body is not `Sync`): the
/// client to check with, the customer when the app named it, the subject.
struct Who {
    client: Client,
    customer: Option<String>,
    subject: Option<String>,
}

// The refusal is the answer itself, built once for a refused request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn identify(config: &Config, request: &Request) -> Result<Who, Response> {
    let unauthorized = |detail: &str| {
        problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            detail,
            json!({}),
            HeaderMap::new(),
        )
    };
    let (client, customer) = match &config.customer_from {
        Some(f) => match f(request) {
            Some(customer) => (config.client.clone(), Some(customer)),
            None => return Err(unauthorized("the request names no customer")),
        },
        None => match api_key(request.headers()) {
            None => {
                return Err(unauthorized(
                    "send your API key as `Authorization: Bearer <key>` or `X-API-Key`",
                ));
            }
            Some(k) if k.starts_with("tg_admin_") => {
                return Err(unauthorized("an admin key is not a customer's key"));
            }
            Some(k) => (config.client.with_key(&k), None),
        },
    };
    let subject = config.subject_header.as_ref().and_then(|h| {
        request
            .headers()
            .get(h.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    Ok(Who {
        client,
        customer,
        subject,
    })
}

/// Checks the route for the caller: `Ok(Some)` allowed, `Ok(None)` let through unchecked
/// (fail open), `Err` the refusal to answer.
// The refusal is the answer itself, built once for a refused request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
async fn admit(config: &Config, route: &Route, who: Who) -> Result<Option<Caller>, Response> {
    let Who {
        client,
        customer,
        subject,
    } = who;
    let mut decision = None;
    let base = CheckRequest {
        customer: customer.clone(),
        subject: subject.clone(),
        ..CheckRequest::default()
    };
    if let Some(feature) = &route.feature {
        let check = CheckRequest {
            feature: Some(feature.clone()),
            ..base.clone()
        };
        let d = checked(config, &client, &check).await?;
        let Some(d) = d else { return Ok(None) };
        if !d.allowed {
            return Err(refusal(&d, &format!("feature `{feature}`")));
        }
        decision = Some(d);
    }
    if let Some(meter) = &route.meter {
        let check = CheckRequest {
            meter: Some(meter.clone()),
            quantity: Some(route.cost.clone()),
            consume: true,
            event_id: Some(format!("mw_{:032x}", rand::random::<u128>())),
            properties: route.properties.clone(),
            ..base
        };
        let d = checked(config, &client, &check).await?;
        let Some(d) = d else { return Ok(None) };
        if !d.allowed {
            return Err(refusal(&d, &format!("meter `{meter}`")));
        }
        decision = Some(d);
    }
    Ok(Some(Caller {
        customer,
        subject,
        decision,
    }))
}

/// One check; a failure of Tollgate itself becomes the refusal the crate docs name, or `None`
/// (let through) when failing open.
// The refusal is the answer itself, built once for a refused request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
async fn checked(
    config: &Config,
    client: &Client,
    check: &CheckRequest,
) -> Result<Option<Decision>, Response> {
    match client.check(check).await {
        Ok(d) => Ok(Some(d)),
        Err(e) => {
            let empty = || (json!({}), HeaderMap::new());
            match (e.status(), e.code()) {
                (Some(StatusCode::UNAUTHORIZED), _) => {
                    let (x, h) = empty();
                    Err(problem(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        &detail(&e),
                        x,
                        h,
                    ))
                }
                (Some(StatusCode::FORBIDDEN), Some("customer_suspended")) => {
                    let (x, h) = empty();
                    Err(problem(
                        StatusCode::PAYMENT_REQUIRED,
                        "customer_suspended",
                        &detail(&e),
                        x,
                        h,
                    ))
                }
                (Some(StatusCode::NOT_FOUND), _) => {
                    let (x, h) = empty();
                    Err(problem(
                        StatusCode::PAYMENT_REQUIRED,
                        "no_subscription",
                        "the customer is not known to Tollgate",
                        x,
                        h,
                    ))
                }
                (Some(s), _) if s.is_client_error() && s != StatusCode::TOO_MANY_REQUESTS => {
                    tracing::error!(error = %e, "tollgate refused the layer's check");
                    let (x, h) = empty();
                    Err(problem(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "tollgate_check_failed",
                        "the entitlement check failed; see the app's log",
                        x,
                        h,
                    ))
                }
                _ if config.fail_open => {
                    tracing::warn!(error = %e, "tollgate unreachable, letting the request through");
                    Ok(None)
                }
                _ => {
                    tracing::error!(error = %e, "tollgate unreachable");
                    let (x, h) = empty();
                    Err(problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "tollgate_unavailable",
                        "entitlements cannot be checked right now",
                        x,
                        h,
                    ))
                }
            }
        }
    }
}

fn detail(e: &ClientError) -> String {
    match e {
        ClientError::Api(api) => api.problem.detail.clone().unwrap_or_else(|| e.to_string()),
        other => other.to_string(),
    }
}

/// A denied decision as the metering gateway answers it (`gateway/refusal.rs`).
pub fn refusal(decision: &Decision, target: &str) -> Response {
    let hint = decision
        .upgrade
        .as_ref()
        .and_then(|u| u.get("plan"))
        .and_then(Value::as_str)
        .map(|plan| format!("; plan `{plan}` allows it"))
        .unwrap_or_default();
    let (status, detail) = match decision.reason.as_str() {
        "rate_limited" => (
            StatusCode::TOO_MANY_REQUESTS,
            "request rate limit reached".to_owned(),
        ),
        "quota_exceeded" => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("the quota of {target} is used up{hint}"),
        ),
        "feature_not_in_plan" => (
            StatusCode::FORBIDDEN,
            format!("the plan does not include {target}{hint}"),
        ),
        "feature_limit_exceeded" => (
            StatusCode::FORBIDDEN,
            format!("the plan's limit of {target} is reached{hint}"),
        ),
        "customer_suspended" => (
            StatusCode::PAYMENT_REQUIRED,
            "the customer is suspended".to_owned(),
        ),
        "subscription_paused" => (
            StatusCode::PAYMENT_REQUIRED,
            "the customer's subscription is paused".to_owned(),
        ),
        "customer_archived" => (StatusCode::FORBIDDEN, "the customer is archived".to_owned()),
        "no_subscription" => (
            StatusCode::PAYMENT_REQUIRED,
            "the customer has no active subscription".to_owned(),
        ),
        other => {
            tracing::error!(%target, reason = other, "a route names something the customer's catalog does not have");
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "route_target_unknown",
                "the layer's route names a feature or meter the catalog does not have",
                json!({}),
                HeaderMap::new(),
            );
        }
    };
    let mut headers = HeaderMap::new();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let seconds = decision.retry_after.unwrap_or(1).max(1);
        if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
            headers.insert(header::RETRY_AFTER, v);
        }
    }
    let mut extra = json!({ "decision": decision_json(decision) });
    if let Some(upgrade) = &decision.upgrade {
        extra["upgrade"] = upgrade.clone();
    }
    problem(status, &decision.reason, &detail, extra, headers)
}

fn decision_json(d: &Decision) -> Value {
    json!({
        "allowed": d.allowed,
        "reason": d.reason,
        "limit": d.limit,
        "used": d.used,
        "remaining": d.remaining,
        "reset_at": d.reset_at,
        "retry_after": d.retry_after,
    })
}

/// An RFC 9457 problem answer with a stable `code`.
fn problem(
    status: StatusCode,
    code: &str,
    detail: &str,
    extra: Value,
    headers: HeaderMap,
) -> Response {
    let mut body = json!({
        "type": format!("urn:tollgate:problem:{code}"),
        "title": status.canonical_reason().unwrap_or(""),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    if let (Some(fields), Value::Object(more)) = (body.as_object_mut(), extra) {
        fields.extend(more);
    }
    let mut response = (status, headers, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_as_the_gateway_matches_them() {
        let r = |p: &str| Route::feature(p, "f");
        let get = Method::GET;
        assert!(r("/v1/runs").matches(&get, "/v1/runs"));
        assert!(!r("/v1/runs").matches(&get, "/v1/runs/"));
        assert!(r("/v1/runs/{id}").matches(&get, "/v1/runs/7"));
        assert!(!r("/v1/runs/{id}").matches(&get, "/v1/runs"));
        assert!(r("/v1/*").matches(&get, "/v1/anything/below"));
        assert!(r("/v1/*").matches(&get, "/v1/"));
        assert!(!r("/v2/*").matches(&get, "/v1/x"));
        assert!(!r("/v1/runs").method(Method::POST).matches(&get, "/v1/runs"));
    }
}
