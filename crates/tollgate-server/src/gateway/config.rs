//! The `[gateway]` section of the config file, read with serde and checked once at start, so a
//! mistake (a misspelt key, a bad path pattern, a route with no target) stops the gateway before
//! it takes traffic instead of letting requests through unmetered.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use axum::http::{HeaderName, Method, Uri};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

use super::GatewayError;
use super::routes::PathPattern;

/// How long the gateway waits for the upstream's response headers when nothing says otherwise.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// The gateway: where it listens, where it forwards, and what each route costs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address the gateway listens on (its own port, apart from the API).
    pub listen: SocketAddr,
    /// The app behind the gateway: `http://host:port`, optionally with a path prefix.
    pub upstream: Upstream,
    /// Only keys of this workspace are accepted (any workspace's customer keys if unset).
    #[serde(default)]
    pub workspace: Option<String>,
    /// Routes, tried in order; the first whose method and path match wins.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// What happens to a request no route matches.
    #[serde(default)]
    pub unmatched: Unmatched,
    /// Time allowed from sending a request upstream to its response headers (`"30s"`, `"500ms"`,
    /// or seconds as an integer). The body may take longer: streams are not cut.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub upstream_timeout: Duration,
    /// Bill requests whose upstream failed (5xx, timeout, connection error) too.
    #[serde(default)]
    pub meter_failures: bool,
    /// Request header naming the subject (e.g. a user id) for routes that name none.
    #[serde(default, deserialize_with = "header_name")]
    pub subject_header: Option<HeaderName>,
    /// How tokens are read from OpenAI-compatible responses (routes with `openai = true`).
    #[serde(default)]
    pub openai: Option<OpenAiMetering>,
}

/// One route: which requests it matches and what they need and cost.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `GET`, `POST`, ... (any method if absent or `*`).
    #[serde(default, deserialize_with = "method")]
    pub method: Option<Method>,
    /// `/v1/projects/{id}`: literal segments, `{name}` for any one segment, `*` for any one
    /// segment or, as the last segment, for everything below.
    pub path: PathPattern,
    /// A feature of the plan the request needs.
    #[serde(default)]
    pub feature: Option<String>,
    /// A meter each forwarded request adds `cost` to, within its quotas.
    #[serde(default)]
    pub meter: Option<String>,
    /// Units of `meter` a request costs (default 1); a string or an integer, never a float.
    #[serde(default = "one", deserialize_with = "quantity")]
    pub cost: Decimal,
    /// Request header naming the subject, overriding the gateway's `subject_header`.
    #[serde(default, deserialize_with = "header_name")]
    pub subject_header: Option<HeaderName>,
    /// Read prompt and completion tokens from the response (OpenAI-compatible upstream).
    #[serde(default)]
    pub openai: bool,
}

/// What to do with a request no route matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// Answer 404 `route_not_found` without forwarding.
    #[default]
    Refuse,
    /// Forward without a key check or metering (credentials are still stripped).
    PassThrough,
}

/// Token metering for OpenAI-compatible upstreams. Each answered request with a `usage` object
/// becomes one usage event; catalog meters sum its properties (e.g. `property: prompt_tokens`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiMetering {
    /// Type of the usage event.
    pub event: String,
    /// Event property names for the model and the token counts.
    pub model_property: String,
    pub prompt_property: String,
    pub completion_property: String,
    pub total_property: String,
    /// Meters (typically token meters) whose hard quotas must have room for one more unit before
    /// a request is forwarded: tokens are known only after the answer.
    pub check_meters: Vec<String>,
    /// Add `stream_options.include_usage: true` to streamed requests, without which an
    /// OpenAI-compatible upstream sends no usage and the stream could not be metered.
    pub include_usage: bool,
    /// Most bytes of a request (to add `include_usage`) or of a JSON response (to read `usage`)
    /// the gateway copies; bodies stream either way, larger ones are just not inspected.
    pub max_body_bytes: usize,
    /// How long the gateway keeps reading a stream the client abandoned, to get its usage.
    #[serde(deserialize_with = "duration")]
    pub drain_timeout: Duration,
}

impl Default for OpenAiMetering {
    fn default() -> Self {
        OpenAiMetering {
            event: "llm.tokens".into(),
            model_property: "model".into(),
            prompt_property: "prompt_tokens".into(),
            completion_property: "completion_tokens".into(),
            total_property: "total_tokens".into(),
            check_meters: Vec::new(),
            include_usage: true,
            max_body_bytes: 4 << 20,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// The upstream's base URI: `http` scheme, an authority, optionally a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub uri: Uri,
}

impl Upstream {
    /// The upstream URI of a request's path and query, below the upstream's prefix.
    pub fn join(&self, path_and_query: &str) -> Result<Uri, axum::http::Error> {
        let prefix = self.uri.path().trim_end_matches('/');
        let authority = self.uri.authority().map(|a| a.as_str()).unwrap_or_default();
        Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(format!("{prefix}{path_and_query}"))
            .build()
    }
}

impl FromStr for Upstream {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let uri: Uri = s
            .parse()
            .map_err(|e| format!("upstream {s:?} is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "upstream {s:?}: https upstreams are not supported yet"
                ));
            }
            _ => return Err(format!("upstream {s:?} must start with http://")),
        }
        if uri.authority().is_none() {
            return Err(format!("upstream {s:?} has no host"));
        }
        if uri.query().is_some() {
            return Err(format!("upstream {s:?} must not have a query"));
        }
        Ok(Upstream { uri })
    }
}

impl<'de> Deserialize<'de> for Upstream {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl GatewayConfig {
    /// Reads the `[gateway]` section of a TOML document; other sections are not looked at.
    pub fn from_toml(text: &str) -> Result<Self, GatewayError> {
        #[derive(Deserialize)]
        struct Document {
            gateway: Option<GatewayConfig>,
        }
        let doc: Document = toml::from_str(text)
            .map_err(|e| GatewayError::Config(e.to_string().trim_end().to_owned()))?;
        let config = doc
            .gateway
            .ok_or_else(|| GatewayError::Config("no [gateway] section".into()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: every route gates or meters something, costs are not negative.
    pub fn validate(&self) -> Result<(), GatewayError> {
        let fail =
            |i: usize, msg: &str| Err(GatewayError::Config(format!("gateway.routes[{i}]: {msg}")));
        for (i, route) in self.routes.iter().enumerate() {
            if route.feature.is_none() && route.meter.is_none() {
                return fail(i, "give `feature`, `meter` or both");
            }
            if route.cost.is_sign_negative() {
                return fail(i, "`cost` must not be negative");
            }
            if tollgate_core::quantity::bounded(route.cost).is_err() {
                return fail(i, "`cost` must be at most 1000000000000");
            }
            if route.meter.is_none() && route.cost != Decimal::ONE {
                return fail(i, "`cost` needs a `meter`");
            }
        }
        if let Some(openai) = &self.openai
            && openai.event.is_empty()
        {
            return Err(GatewayError::Config(
                "gateway.openai.event must not be empty".into(),
            ));
        }
        Ok(())
    }

    /// The token metering settings (the defaults when the section is absent).
    pub fn openai(&self) -> OpenAiMetering {
        self.openai.clone().unwrap_or_default()
    }
}

fn default_timeout() -> Duration {
    DEFAULT_UPSTREAM_TIMEOUT
}

fn one() -> Decimal {
    Decimal::ONE
}

/// `"30s"`, `"250ms"`, `"2m"`, `"1h"`, or an integer number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like \"30s\""))?;
    Ok(match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {text:?} (ms, s, m, h)"
            ));
        }
    })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrText {
    Int(u64),
    Text(String),
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match IntOrText::deserialize(d)? {
        IntOrText::Int(n) => Ok(Duration::from_secs(n)),
        IntOrText::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

/// A cost as an exact decimal: TOML floats are refused, since they would pass through `f64`.
fn quantity<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    match IntOrText::deserialize(d)
        .map_err(|_| serde::de::Error::custom("write `cost` as an integer or a string"))?
    {
        IntOrText::Int(n) => Ok(Decimal::from(n)),
        IntOrText::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("cost {t:?} is not a number"))),
    }
}

fn method<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Method>, D::Error> {
    let text = String::deserialize(d)?;
    if text == "*" {
        return Ok(None);
    }
    Method::from_bytes(text.to_ascii_uppercase().as_bytes())
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{text:?} is not an HTTP method")))
}

fn header_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HeaderName>, D::Error> {
    let text = String::deserialize(d)?;
    HeaderName::from_str(&text)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a header name")))
}
