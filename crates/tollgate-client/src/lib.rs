//! A typed async client for the Tollgate HTTP API (`docs/API.md`), on reqwest.
//!
//! One method per endpoint, request and answer shapes as structs (answers read leniently:
//! unknown fields are ignored, so a newer server does not break an older client). Errors are
//! values: the server's problem+json ([`ApiError`], with its stable `code`), an unreachable
//! server, or an answer that does not decode.
//!
//! **Retries.** A request that meets a transport error, `429` or a `5xx` is sent again, up to
//! [`Client::with_retries`] times (3 by default), after `Retry-After` when the server sent one,
//! else an exponential backoff with jitter (0.25 s, 0.5 s, 1 s, ... at most 8 s). Every POST
//! carries an `Idempotency-Key` made once per call, so a retried POST whose first attempt did
//! reach the server is answered with the stored result instead of being applied twice (the
//! server keeps keys 24 hours); events are idempotent by their own ids besides.
//!
//! The `tollgate` CLI uses this crate for everything it asks a server.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use reqwest::{Method, StatusCode};

/// A client bound to one server and one key (admin or customer).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
    retries: u32,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or the connection broke (after every retry).
    #[error("cannot reach the server at {url}: {}", root_cause(.source))]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status (its problem+json body, when it sent one).
    #[error(transparent)]
    Api(#[from] Box<ApiError>),
    /// The server answered 2xx with a body this client does not understand.
    #[error("unexpected answer from {url}: {source}")]
    Decode {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

impl ClientError {
    /// The API's stable error code (`quota_exceeded`, `not_found`, ...), for an error answer.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api(e) => e.problem.code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api(e) => Some(e.status),
            _ => None,
        }
    }
}

/// reqwest's own message is "error sending request for url (...)"; the root cause (connection
/// refused, timeout) is what a person needs.
fn root_cause(e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    root.to_string()
}

/// An error answer from the API.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(self))]
pub struct ApiError {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub problem: Problem,
}

fn describe(e: &ApiError) -> String {
    let mut s = format!("{} {} failed with {}", e.method, e.path, e.status);
    let p = &e.problem;
    if let Some(title) = &p.title {
        s.push_str(&format!(": {title}"));
    }
    if let Some(code) = &p.code {
        s.push_str(&format!(" [{code}]"));
    }
    if let Some(detail) = &p.detail {
        s.push_str(&format!(": {detail}"));
    }
    for f in &p.errors {
        s.push_str(&format!("\n  {}: {}", f.path, f.message));
    }
    s
}

/// The fields of an RFC 9457 problem document.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    /// Per-field errors, e.g. every mistake of a rejected catalog.
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

/// One mistake at one place of a request body.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldError {
    #[serde(default)]
    pub path: String,
    pub message: String,
}

/// `POST /v1/workspaces`.
#[derive(Debug, Serialize)]
pub struct NewWorkspace<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

/// The answer to `POST /v1/workspaces`: the new workspace's admin key, shown once.
#[derive(Debug, Deserialize)]
pub struct CreatedWorkspace {
    pub admin_key: String,
}

/// `GET /v1/catalog`: the current version and the catalog in its stored JSON form.
#[derive(Debug, Deserialize)]
pub struct CatalogVersion {
    pub version: u64,
    pub catalog: serde_json::Value,
}

/// `PUT /v1/catalog` with the file's text, so the server parses exactly what the operator wrote
/// (numbers stay exact decimals, errors carry the file's paths).
#[derive(Debug, Serialize)]
struct CatalogYaml<'a> {
    yaml: &'a str,
}

/// The answer to `PUT /v1/catalog`.
#[derive(Debug, Deserialize)]
pub struct AppliedCatalog {
    pub version: u64,
}

/// `POST /v1/customers`.
#[derive(Debug, Default, Serialize)]
pub struct NewCustomer<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<&'a str>,
    pub has_payment_method: bool,
}

/// `POST /v1/customers/{id}/subscriptions`.
#[derive(Debug, Serialize)]
pub struct NewSubscription<'a> {
    pub plan: &'a str,
    pub trial: bool,
    pub addons: std::collections::BTreeMap<&'a str, u32>,
}

/// `POST /v1/customers/{id}/keys`.
#[derive(Debug, Serialize)]
struct NewKey<'a> {
    name: &'a str,
}

/// The answer to `POST /v1/customers/{id}/keys`: the secret, shown once.
#[derive(Debug, Deserialize)]
pub struct CreatedKey {
    pub id: String,
    pub secret: String,
}

/// One usage event of `POST /v1/events`. `timestamp: None` is the server's now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: String,
    pub customer: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<jiff::Timestamp>,
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// The answer to `POST /v1/events`: per-batch counts and one result per event.
#[derive(Debug, Deserialize)]
pub struct IngestReport {
    pub accepted: usize,
    pub duplicates: usize,
    /// Duplicates that replaced the stored value (`on_duplicate: latest_replaces`).
    #[serde(default)]
    pub amended: usize,
    pub rejected: usize,
    #[serde(default)]
    pub results: Vec<IngestResult>,
}

/// What happened to one event of a batch.
#[derive(Debug, Clone, Deserialize)]
pub struct IngestResult {
    pub index: usize,
    #[serde(default)]
    pub id: Option<String>,
    /// `accepted`, `duplicate`, `amended` or `rejected`.
    pub status: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Serialize)]
struct EventBatch<'a> {
    events: &'a [Event],
}

/// `POST /v1/check`: may `customer` use `feature`, or `quantity` of `meter`, now?
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckRequest {
    /// The customer; `None` with a customer key (the key's own customer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
    /// A decimal string; the server's default is 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<String>,
    /// The user of the customer a per-subject limit counts for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Count the quantity if allowed (a usage event, idempotent by `event_id`).
    pub consume: bool,
    /// Properties of the usage event a consuming check records (e.g. a meter's filter).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub properties: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// The answer to a check. Decimal quantities are kept as the server wrote them.
#[derive(Debug, Clone, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    /// `allowed`, `quota_exceeded`, `feature_not_in_plan`, `rate_limited`, ...
    pub reason: String,
    #[serde(default)]
    pub limit: Option<serde_json::Value>,
    #[serde(default)]
    pub used: Option<serde_json::Value>,
    #[serde(default)]
    pub remaining: Option<serde_json::Value>,
    #[serde(default)]
    pub reset_at: Option<jiff::Timestamp>,
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// The cheapest plan that would allow what was denied.
    #[serde(default)]
    pub upgrade: Option<serde_json::Value>,
}

impl Client {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`), calling with `key`.
    pub fn new(base: &str, key: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("tollgate-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Build)?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            retries: 3,
        })
    }

    /// The same server, another key.
    pub fn with_key(&self, key: &str) -> Self {
        Client {
            key: key.to_string(),
            ..self.clone()
        }
    }

    /// How many times a call that met a transport error, 429 or 5xx is sent again (0: never).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    pub async fn create_workspace(
        &self,
        id: &str,
        name: &str,
    ) -> Result<CreatedWorkspace, ClientError> {
        self.call(
            Method::POST,
            "/v1/workspaces",
            Some(&NewWorkspace { id, name }),
        )
        .await
    }

    /// The workspace's current catalog, `None` when none was ever applied.
    pub async fn get_catalog(&self) -> Result<Option<CatalogVersion>, ClientError> {
        match self.call::<(), _>(Method::GET, "/v1/catalog", None).await {
            Ok(v) => Ok(Some(v)),
            Err(ClientError::Api(e)) if e.status == StatusCode::NOT_FOUND => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn put_catalog_yaml(&self, yaml: &str) -> Result<AppliedCatalog, ClientError> {
        self.call(Method::PUT, "/v1/catalog", Some(&CatalogYaml { yaml }))
            .await
    }

    pub async fn create_customer(
        &self,
        customer: &NewCustomer<'_>,
    ) -> Result<serde_json::Value, ClientError> {
        self.call(Method::POST, "/v1/customers", Some(customer))
            .await
    }

    pub async fn subscribe(
        &self,
        customer: &str,
        subscription: &NewSubscription<'_>,
    ) -> Result<serde_json::Value, ClientError> {
        let path = format!("/v1/customers/{customer}/subscriptions");
        self.call(Method::POST, &path, Some(subscription)).await
    }

    pub async fn create_key(&self, customer: &str, name: &str) -> Result<CreatedKey, ClientError> {
        let path = format!("/v1/customers/{customer}/keys");
        self.call(Method::POST, &path, Some(&NewKey { name })).await
    }

    /// Sends a batch of events (at most 10,000). Each event's fate is in the report: a batch
    /// with rejected events is still a 200.
    pub async fn send_events(&self, events: &[Event]) -> Result<IngestReport, ClientError> {
        self.call(Method::POST, "/v1/events", Some(&EventBatch { events }))
            .await
    }

    pub async fn check(&self, request: &CheckRequest) -> Result<Decision, ClientError> {
        self.call(Method::POST, "/v1/check", Some(request)).await
    }

    /// `GET /v1/customers/{id}/usage`: the period's usage per meter, as the server answers it.
    pub async fn usage(&self, customer: &str) -> Result<serde_json::Value, ClientError> {
        let path = format!("/v1/customers/{customer}/usage");
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Sends one request, again after a transport error, 429 or 5xx (see the crate docs), and
    /// decodes a 2xx answer as `T`, anything else as an [`ApiError`].
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let idempotency_key =
            (method == Method::POST).then(|| format!("tgc_{:032x}", rand::random::<u128>()));
        let mut attempt: u32 = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.key);
            if let Some(key) = &idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(source) => {
                    if attempt < self.retries {
                        tokio::time::sleep(backoff(attempt, None)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(ClientError::Transport { url, source });
                }
            };
            let status = response.status();
            if status.is_success() {
                return response
                    .json()
                    .await
                    .map_err(|source| ClientError::Decode { url, source });
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            if retryable && attempt < self.retries {
                tokio::time::sleep(backoff(attempt, Some(response.headers()))).await;
                attempt += 1;
                continue;
            }
            // An error body that is not a problem document (a proxy's HTML page) still gives a
            // useful message: its first characters.
            let text = response.text().await.unwrap_or_default();
            let problem = serde_json::from_str(&text).unwrap_or_else(|_| Problem {
                detail: Some(text.trim().chars().take(200).collect())
                    .filter(|d: &String| !d.is_empty()),
                ..Problem::default()
            });
            return Err(ClientError::Api(Box::new(ApiError {
                method,
                path: path.to_string(),
                status,
                problem,
            })));
        }
    }
}

/// How long to wait before retry number `attempt + 1`: the answer's `Retry-After` (seconds, at
/// most a minute), else 0.25 s doubled per attempt up to 8 s, with up to 50% jitter so clients
/// turned away together do not come back together.
fn backoff(attempt: u32, headers: Option<&HeaderMap>) -> Duration {
    if let Some(seconds) = headers
        .and_then(|h| h.get(RETRY_AFTER))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Duration::from_secs(seconds.min(60));
    }
    let base = Duration::from_millis(250)
        .saturating_mul(1u32 << attempt.min(5))
        .min(Duration::from_secs(8));
    let jitter = base.mul_f64(rand::random::<f64>() * 0.5);
    base + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_read_like_sentences_with_every_field_error() {
        let e = ApiError {
            method: Method::PUT,
            path: "/v1/catalog".into(),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            problem: Problem {
                title: Some("invalid catalog".into()),
                detail: None,
                code: Some("catalog_invalid".into()),
                errors: vec![FieldError {
                    path: "plans.free.base".into(),
                    message: "bad".into(),
                }],
            },
        };
        assert_eq!(
            e.to_string(),
            "PUT /v1/catalog failed with 422 Unprocessable Entity: invalid catalog [catalog_invalid]\n  plans.free.base: bad"
        );
    }

    #[test]
    fn events_serialize_with_the_type_field_and_no_timestamp_when_absent() {
        let mut e = Event {
            id: "e1".into(),
            customer: "acme".into(),
            kind: "api.call".into(),
            timestamp: Some("2026-11-02T08:00:00Z".parse().unwrap()),
            properties: serde_json::Map::new(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "api.call");
        assert_eq!(v["timestamp"], "2026-11-02T08:00:00Z");
        e.timestamp = None;
        assert!(serde_json::to_value(&e).unwrap().get("timestamp").is_none());
    }

    #[test]
    fn backoff_honours_retry_after_and_grows_otherwise() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(backoff(0, Some(&h)), Duration::from_secs(7));
        h.insert(RETRY_AFTER, "86400".parse().unwrap());
        assert_eq!(backoff(0, Some(&h)), Duration::from_secs(60));
        for attempt in 0..10 {
            let d = backoff(attempt, None);
            let base =
                Duration::from_millis(250 * (1u64 << attempt.min(5))).min(Duration::from_secs(8));
            assert!(d >= base && d <= base.mul_f64(1.5), "{attempt}: {d:?}");
        }
    }
}
