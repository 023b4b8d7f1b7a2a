//! A small typed client for the parts of the Tollgate HTTP API the CLI uses.
//!
//! One method per endpoint, with the request and response shapes as structs, so that when the
//! API's shapes move the change here is one line and the compiler finds every caller. Responses
//! are read leniently (unknown fields ignored) because the CLI only needs a few fields of each.

use std::fmt;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A client bound to one server and one key (admin or customer).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The server could not be reached, or the connection broke.
    Transport { url: String, source: reqwest::Error },
    /// The server answered with an error status (its problem+json body, when it sent one).
    Api(ApiError),
    /// The server answered 2xx with a body the CLI does not understand.
    Decode { url: String, source: reqwest::Error },
}

/// An error answer from the API.
#[derive(Debug)]
pub struct ApiError {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub problem: Problem,
}

/// The fields of an RFC 9457 problem document that the CLI shows.
#[derive(Debug, Default, Deserialize)]
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

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Transport { url, source } => {
                // reqwest's own message is "error sending request for url (...)"; the root
                // cause (connection refused, timeout) is what the user needs.
                let mut root: &dyn std::error::Error = source;
                while let Some(next) = root.source() {
                    root = next;
                }
                write!(f, "cannot reach the server at {url}: {root}")
            }
            ClientError::Api(e) => e.fmt(f),
            ClientError::Decode { url, source } => {
                write!(f, "unexpected answer from {url}: {source}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} failed with {}",
            self.method, self.path, self.status
        )?;
        let p = &self.problem;
        if let Some(title) = &p.title {
            write!(f, ": {title}")?;
        }
        if let Some(code) = &p.code {
            write!(f, " [{code}]")?;
        }
        if let Some(detail) = &p.detail {
            write!(f, ": {detail}")?;
        }
        for e in &p.errors {
            write!(f, "\n  {}: {}", e.path, e.message)?;
        }
        Ok(())
    }
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
#[derive(Debug, Serialize)]
pub struct NewCustomer<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub email: &'a str,
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

/// One usage event of `POST /v1/events`.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: String,
    pub customer: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: jiff::Timestamp,
    pub properties: serde_json::Value,
}

/// The answer to `POST /v1/events`: per-batch counts and one result per event.
#[derive(Debug, Deserialize)]
pub struct IngestReport {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    #[serde(default)]
    pub results: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct EventBatch<'a> {
    events: &'a [Event],
}

impl Client {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`), calling with `key`.
    pub fn new(base: &str, key: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("tollgate-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
        })
    }

    /// The same server, another key.
    pub fn with_key(&self, key: &str) -> Self {
        Client {
            key: key.to_string(),
            ..self.clone()
        }
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

    pub async fn send_events(&self, events: &[Event]) -> Result<IngestReport, ClientError> {
        self.call(Method::POST, "/v1/events", Some(&EventBatch { events }))
            .await
    }

    /// Sends one request and decodes a 2xx answer as `T`, anything else as an [`ApiError`].
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|source| ClientError::Decode { url, source });
        }
        // An error body that is not a problem document (a proxy's HTML page) still gives a
        // useful message: the status line.
        let text = response.text().await.unwrap_or_default();
        let problem = serde_json::from_str(&text).unwrap_or_else(|_| Problem {
            detail: Some(text.trim().chars().take(200).collect())
                .filter(|d: &String| !d.is_empty()),
            ..Problem::default()
        });
        Err(ClientError::Api(ApiError {
            method,
            path: path.to_string(),
            status,
            problem,
        }))
    }
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
    fn events_serialize_with_the_type_field() {
        let e = Event {
            id: "e1".into(),
            customer: "acme".into(),
            kind: "api.call".into(),
            timestamp: "2026-11-02T08:00:00Z".parse().unwrap(),
            properties: serde_json::json!({}),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "api.call");
        assert_eq!(v["timestamp"], "2026-11-02T08:00:00Z");
    }
}
