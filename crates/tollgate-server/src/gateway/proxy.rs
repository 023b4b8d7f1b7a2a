//! One request through the gateway: match a route, authenticate the key, check and reserve,
//! forward with the key stripped and the customer named, then settle the reservation by the
//! upstream's answer and meter tokens from the body as it streams back.
//!
//! Bodies are never collected: the client's request body is handed to the upstream as it
//! arrives, and the upstream's response body to the client frame by frame. The only exception
//! is a streamed OpenAI request, whose (small, JSON) body is read up to a cap to add
//! `include_usage`; anything larger streams through unchanged.

use std::net::SocketAddr;
use std::sync::Arc;
use tollgate_core::code::Code;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::config::{GatewayConfig, OpenAiMetering, Route, Unmatched};
use super::openai::{MeteredBody, TokenUsage, UsageScanner, add_include_usage};
use super::{refusal, routes};
use crate::api::auth::presented_secret;
use crate::api::check::rate_limit_headers;
use crate::api::error::ApiError;
use crate::auth::Principal;
use crate::engine::check::RateLimitState;
use crate::engine::gateway_support::{InFlight, Reservation, ReserveRequest, UsageWriter};
use crate::engine::{CheckRequest, CheckTarget, Engine, EventIn};

/// Headers the upstream receives about the caller.
pub const CUSTOMER_HEADER: &str = "x-tollgate-customer";
pub const PLAN_HEADER: &str = "x-tollgate-plan";
pub const SUBJECT_HEADER: &str = "x-tollgate-subject";
pub const REQUEST_ID_HEADER: &str = "x-tollgate-request-id";

/// Everything a request needs, shared by all of them.
pub struct Gateway {
    pub engine: Arc<Engine>,
    pub config: GatewayConfig,
    pub openai: Arc<OpenAiMetering>,
    pub client: Client<HttpConnector, Body>,
    pub inflight: Arc<InFlight>,
    /// Writes answered requests' usage in batches.
    pub usage: UsageWriter,
    pub counters: Counters,
}

/// `tollgate_gateway_requests_total` by outcome, looked up once: registering a labelled
/// counter hashes its key in the recorder's registry on every call.
pub struct Counters {
    pass_through: metrics::Counter,
    unmatched: metrics::Counter,
    admitted: metrics::Counter,
    refused: metrics::Counter,
}

impl Counters {
    /// Installs the recorder first (once per process), or the handles would stay no-ops.
    pub fn register() -> Self {
        crate::api::metrics::install_recorder();
        let outcome =
            |o: &'static str| metrics::counter!("tollgate_gateway_requests_total", "outcome" => o);
        Counters {
            pass_through: outcome("pass_through"),
            unmatched: outcome("unmatched"),
            admitted: outcome("admitted"),
            refused: outcome("refused"),
        }
    }
}

/// A request the engine let through.
struct Admitted {
    principal: Principal,
    customer: String,
    plan: Option<String>,
    subject: Option<String>,
    rate_limit: Option<RateLimitState>,
    reservation: Option<Reservation>,
}

pub async fn handle(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let request_id = uuid::Uuid::now_v7().simple().to_string();
    let Some(route) = routes::find(&gw.config.routes, req.method(), req.uri().path()) else {
        if gw.config.unmatched == Unmatched::PassThrough {
            gw.counters.pass_through.increment(1);
            return gw.forward(req, peer, &request_id, None, None).await;
        }
        gw.counters.unmatched.increment(1);
        let detail = format!("no gateway route for {} {}", req.method(), req.uri().path());
        return refusal::problem(
            ApiError::new(StatusCode::NOT_FOUND, Code::RouteNotFound, detail),
            Vec::new(),
            None,
        );
    };
    match gw.admit(route, req.headers(), &request_id).await {
        Ok(admitted) => {
            gw.counters.admitted.increment(1);
            gw.forward(req, peer, &request_id, Some(route), Some(admitted))
                .await
        }
        Err(refused) => {
            gw.counters.refused.increment(1);
            refused
        }
    }
}

impl Gateway {
    /// Authenticates the key and runs the route's checks; a refusal is the response to send.
    async fn admit(
        &self,
        route: &Route,
        headers: &HeaderMap,
        request_id: &str,
    ) -> Result<Admitted, Response> {
        let secret = presented_secret(headers)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                refusal::unauthorized(
                    "missing API key: send `Authorization: Bearer <key>` or `X-API-Key`",
                )
            })?;
        let principal = self
            .engine
            .authenticate(secret)
            .await
            .map_err(|e| refusal::from_api_error(e, None))?;
        let Principal::Customer {
            workspace,
            customer,
            ..
        } = &principal
        else {
            return Err(refusal::unauthorized(
                "the gateway takes customer keys, not admin keys",
            ));
        };
        if self
            .config
            .workspace
            .as_ref()
            .is_some_and(|ws| ws != workspace)
        {
            // The same answer as an unknown key: a key never learns which workspaces exist.
            return Err(refusal::unauthorized("unknown or revoked API key"));
        }
        let (workspace, customer) = (workspace.clone(), customer.clone());
        let subject = route
            .subject_header
            .as_ref()
            .or(self.config.subject_header.as_ref())
            .and_then(|h| headers.get(h))
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let check = |target: CheckTarget, quantity: Decimal| CheckRequest {
            workspace: workspace.clone(),
            customer: customer.clone(),
            target,
            quantity,
            subject: subject.clone(),
            consume: false,
            event_id: None,
            properties: Map::new(),
        };

        // One check per request, so the rate limit counts each request once.
        let mut rate_limit = None;
        if let Some(feature) = &route.feature {
            let outcome = self
                .engine
                .check(&check(CheckTarget::Feature(feature.clone()), Decimal::ONE))
                .await
                .map_err(|e| refusal::from_api_error(e, None))?;
            rate_limit = outcome.rate_limit;
            if !outcome.decision.allowed {
                return Err(refusal::denied(
                    outcome.decision,
                    &format!("feature `{feature}`"),
                    rate_limit,
                ));
            }
        }
        let mut reservation = None;
        if let Some(meter) = &route.meter {
            let target = format!("meter `{meter}`");
            if route.feature.is_none() {
                let outcome = self
                    .engine
                    .check(&check(CheckTarget::Meter(meter.clone()), route.cost))
                    .await
                    .map_err(|e| refusal::from_api_error(e, None))?;
                rate_limit = outcome.rate_limit;
                if !outcome.decision.allowed {
                    return Err(refusal::denied(outcome.decision, &target, rate_limit));
                }
            }
            let mut properties = Map::new();
            properties.insert(
                "route".into(),
                Value::String(route.path.as_str().to_owned()),
            );
            let reserve = ReserveRequest {
                workspace: workspace.clone(),
                customer: customer.clone(),
                meter: meter.clone(),
                quantity: route.cost,
                subject: subject.clone(),
                event_id: format!("gw_{request_id}"),
                properties,
            };
            match self.engine.reserve_in_flight(&self.inflight, reserve).await {
                Ok(Ok(r)) => reservation = Some(r),
                Ok(Err(decision)) => return Err(refusal::denied(*decision, &target, rate_limit)),
                Err(e) => return Err(refusal::from_api_error(e, rate_limit)),
            }
        }
        if route.openai {
            for meter in &self.openai.check_meters {
                let denied = self
                    .engine
                    .quota_headroom(
                        &self.inflight,
                        &workspace,
                        &customer,
                        meter,
                        subject.as_deref(),
                        Decimal::ONE,
                    )
                    .await
                    .map_err(|e| refusal::from_api_error(e, rate_limit))?;
                if let Some(decision) = denied {
                    return Err(refusal::denied(
                        decision,
                        &format!("meter `{meter}`"),
                        rate_limit,
                    ));
                }
            }
        }
        let plan = match &reservation {
            Some(r) => r.plan().map(str::to_owned),
            None => self
                .engine
                .plan_of(&workspace, &customer)
                .await
                .map_err(|e| refusal::from_api_error(e, rate_limit))?,
        };
        Ok(Admitted {
            principal,
            customer,
            plan,
            subject,
            rate_limit,
            reservation,
        })
    }

    /// Forwards to the upstream and streams its answer back. `admitted` is `None` for a
    /// pass-through request (no customer, nothing metered).
    async fn forward(
        &self,
        req: Request,
        peer: SocketAddr,
        request_id: &str,
        route: Option<&Route>,
        admitted: Option<Admitted>,
    ) -> Response {
        let (mut parts, body) = req.into_parts();
        let rate_limit = admitted.as_ref().and_then(|a| a.rate_limit);
        let mut admitted = admitted;
        // Dropped on any early return below, which gives the units back.
        let reservation = admitted.as_mut().and_then(|a| a.reservation.take());
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        parts.uri = match self.config.upstream.join(&path_and_query) {
            Ok(uri) => uri,
            Err(e) => {
                return refusal::problem(
                    ApiError::bad_request(Code::InvalidPath, e.to_string()),
                    Vec::new(),
                    rate_limit,
                );
            }
        };
        identify(&mut parts.headers, peer, request_id, admitted.as_ref());
        let openai = route.is_some_and(|r| r.openai) && admitted.is_some();
        let body = if openai {
            match self.prepare_openai_request(&mut parts, body).await {
                Ok(body) => body,
                Err(error) => return refusal::problem(error, Vec::new(), rate_limit),
            }
        } else {
            body
        };
        parts.version = Version::HTTP_11;

        let sent = tokio::time::timeout(
            self.config.upstream_timeout,
            self.client.request(Request::from_parts(parts, body)),
        );
        let response = match sent.await {
            Err(_) => {
                self.settle(reservation, self.config.meter_failures);
                let detail = format!(
                    "the upstream did not answer within {:?}",
                    self.config.upstream_timeout
                );
                let error =
                    ApiError::new(StatusCode::GATEWAY_TIMEOUT, Code::UpstreamTimeout, detail);
                return refusal::problem(error, Vec::new(), rate_limit);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, upstream = %self.config.upstream.uri, "upstream request failed");
                self.settle(reservation, self.config.meter_failures);
                let error = ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    Code::UpstreamUnavailable,
                    "the upstream could not be reached",
                );
                return refusal::problem(error, Vec::new(), rate_limit);
            }
            Ok(Ok(response)) => response,
        };

        let billable = !response.status().is_server_error() || self.config.meter_failures;
        self.settle(reservation, billable);
        let (mut parts, incoming) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        if let Some(rl) = rate_limit {
            rate_limit_headers(&mut parts.headers, rl);
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let scanner = UsageScanner::for_content_type(content_type, self.openai.max_body_bytes);
        let body = match (openai && billable, scanner, admitted) {
            (true, Some(scanner), Some(a)) => {
                let on_usage = self.token_recorder(a.principal, a.subject, request_id.to_owned());
                Body::new(MeteredBody::new(
                    incoming,
                    scanner,
                    self.openai.drain_timeout,
                    on_usage,
                ))
            }
            _ => Body::new(incoming),
        };
        Response::from_parts(parts, body)
    }

    /// Asks for an answer the gateway can read the usage of: no compression, and a streamed
    /// request gets `include_usage` added.
    async fn prepare_openai_request(
        &self,
        parts: &mut axum::http::request::Parts,
        body: Body,
    ) -> Result<Body, ApiError> {
        parts.headers.remove(header::ACCEPT_ENCODING);
        if !self.openai.include_usage || parts.method != Method::POST {
            return Ok(body);
        }
        let (body, rewritten_len) = with_include_usage(body, self.openai.max_body_bytes)
            .await
            .map_err(|e| {
                ApiError::bad_request(
                    Code::InvalidBody,
                    format!("reading the request body failed: {e}"),
                )
            })?;
        if let Some(len) = rewritten_len {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        Ok(body)
    }

    /// Records a reservation (queued for the batch writer: the answer does not wait for the
    /// write, and the units stay counted in flight until it is done) or gives it back.
    fn settle(&self, reservation: Option<Reservation>, bill: bool) {
        let Some(reservation) = reservation else {
            return;
        };
        if !bill {
            drop(reservation);
            return;
        }
        self.usage.record(reservation);
    }

    /// What to do with the token usage once the answer's body ended.
    fn token_recorder(
        &self,
        principal: Principal,
        subject: Option<String>,
        request_id: String,
    ) -> super::openai::OnUsage {
        let engine = self.engine.clone();
        let config = self.openai.clone();
        Box::new(move |usage: Option<TokenUsage>| {
            let Some(usage) = usage else {
                metrics::counter!("tollgate_gateway_unmetered_answers_total").increment(1);
                tracing::warn!(%request_id, "an OpenAI-compatible answer carried no usage: tokens not metered");
                return;
            };
            let event = EventIn {
                id: Some(format!("gw_{request_id}_tokens")),
                customer: None,
                event_type: Some(config.event.clone()),
                timestamp: None,
                subject,
                properties: usage.properties(&config),
            };
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            runtime.spawn(async move {
                match engine.ingest(&principal, vec![event]).await {
                    Ok(report) if report.rejected == 0 => {}
                    Ok(report) => tracing::error!(results = ?report.results, "the token usage event was rejected"),
                    Err(e) => tracing::error!(code = e.code.as_str(), detail = %e.detail, "recording token usage failed"),
                }
            });
        })
    }
}

/// Reads a request body up to `cap` to add `include_usage`; a larger body streams through
/// unchanged. Returns the body to send and its new length when it was rewritten.
async fn with_include_usage(
    mut body: Body,
    cap: usize,
) -> Result<(Body, Option<usize>), axum::Error> {
    let mut prefix = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        prefix.extend_from_slice(&data);
        if prefix.len() > cap {
            let head =
                futures_util::stream::once(
                    async move { Ok::<Bytes, axum::Error>(prefix.freeze()) },
                );
            return Ok((Body::from_stream(head.chain(body.into_data_stream())), None));
        }
    }
    let bytes = prefix.freeze();
    Ok(match add_include_usage(&bytes) {
        Some(rewritten) => {
            let len = rewritten.len();
            (Body::from(rewritten), Some(len))
        }
        None => (Body::from(bytes), None),
    })
}

/// The names the gateway sets or strips, built once at compile time (`from_static` at run time
/// validates the name on every call, which showed in the profile).
static H_REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);
static H_CUSTOMER: HeaderName = HeaderName::from_static(CUSTOMER_HEADER);
static H_PLAN: HeaderName = HeaderName::from_static(PLAN_HEADER);
static H_SUBJECT: HeaderName = HeaderName::from_static(SUBJECT_HEADER);
static H_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
static H_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static H_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static H_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The request headers the upstream gets: the client's, cleaned, plus who is calling.
fn identify(
    headers: &mut HeaderMap,
    peer: SocketAddr,
    request_id: &str,
    admitted: Option<&Admitted>,
) {
    let original_host = sanitize_request_headers(headers);
    forwarded_headers(headers, peer, original_host);
    put(headers, &H_REQUEST_ID, request_id);
    if let Some(a) = admitted {
        put(headers, &H_CUSTOMER, &a.customer);
        if let Some(plan) = &a.plan {
            put(headers, &H_PLAN, plan);
        }
        if let Some(subject) = &a.subject {
            put(headers, &H_SUBJECT, subject);
        }
    }
}

fn put(headers: &mut HeaderMap, name: &HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name.clone(), v);
    }
}

/// Removes what must not reach the upstream: hop-by-hop headers, the caller's credentials, and
/// any `X-Tollgate-*` header the caller sent (the upstream trusts those to come from us).
/// Returns the client's `Host`.
fn sanitize_request_headers(headers: &mut HeaderMap) -> Option<HeaderValue> {
    strip_hop_by_hop(headers);
    headers.remove(header::AUTHORIZATION);
    headers.remove(&H_API_KEY);
    let host = headers.remove(header::HOST);
    if headers
        .keys()
        .any(|k| k.as_str().starts_with("x-tollgate-"))
    {
        let spoofed: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("x-tollgate-"))
            .cloned()
            .collect();
        for name in spoofed {
            headers.remove(name);
        }
    }
    host
}

/// Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection, not to the message.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes the hop-by-hop headers and those `Connection` names. Most messages carry none: one
/// pass over the names finds that without hashing each of them into the map.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(|k| HOP_BY_HOP.contains(k)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

fn forwarded_headers(
    headers: &mut HeaderMap,
    peer: SocketAddr,
    original_host: Option<HeaderValue>,
) {
    let ip = peer.ip().to_string();
    let chain = match headers.get(&H_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(before) => format!("{before}, {ip}"),
        None => ip,
    };
    put(headers, &H_FORWARDED_FOR, &chain);
    headers.insert(H_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    if let Some(host) = original_host {
        headers.insert(H_FORWARDED_HOST.clone(), host);
    }
}
