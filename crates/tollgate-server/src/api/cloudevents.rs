//! CloudEvents 1.0 on `POST /v1/events`, as OpenMeter takes them: structured mode (one event,
//! `Content-Type: application/cloudevents+json`) and batch mode (a JSON array,
//! `application/cloudevents-batch+json`). Each CloudEvent becomes one Tollgate event:
//!
//! | CloudEvents | Tollgate |
//! |---|---|
//! | `id`, `source` | `id` = `source` + `/` + `id` (CloudEvents ids are unique per source) |
//! | `type` | `type` |
//! | `subject` | `customer` (as OpenMeter's subject; with a customer key it may be left out) |
//! | `time` | `timestamp` (default: now) |
//! | `data` (a JSON object) | `properties` (the subject inside the customer from its `user`) |
//!
//! Every event then goes through the same validation and deduplication as a native one.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::Deserialize;
use tollgate_core::code::Code;

use crate::api::body::JsonBody;
use crate::api::error::ApiError;
use crate::api::events::EventsIn;
use crate::engine::EventIn;

/// The media type of one CloudEvent in structured mode.
pub const STRUCTURED: &str = "application/cloudevents+json";
/// The media type of a batch of CloudEvents.
pub const BATCH: &str = "application/cloudevents-batch+json";

/// One CloudEvent (version 1.0, JSON format). Extension attributes are accepted and not kept.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CloudEventIn {
    /// Must be `1.0`.
    pub specversion: String,
    pub id: String,
    /// Where the event comes from (a URI reference); with `id`, what makes it unique.
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The customer the event is metered to.
    pub subject: Option<String>,
    /// RFC 3339; default: now.
    pub time: Option<String>,
    /// `application/json` (or absent): `data` is a JSON object.
    pub datacontenttype: Option<String>,
    /// The event's properties.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

impl CloudEventIn {
    /// The Tollgate event, or why this CloudEvent cannot be one.
    pub fn into_event(self, index: Option<usize>) -> Result<EventIn, ApiError> {
        let at = index.map_or_else(String::new, |i| format!(" (event {i})"));
        let bad = |what: String| ApiError::bad_request(Code::InvalidJson, format!("{what}{at}"));
        if self.specversion != "1.0" {
            return Err(bad(format!(
                "`specversion` {:?}: only CloudEvents 1.0 is read",
                self.specversion
            )));
        }
        if let Some(kind) = &self.datacontenttype {
            let essence = kind.split(';').next().unwrap_or_default().trim();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(bad(format!(
                    "`datacontenttype` {kind:?}: only JSON data is read"
                )));
            }
        }
        let properties = match self.data {
            None | Some(serde_json::Value::Null) => serde_json::Map::new(),
            Some(serde_json::Value::Object(map)) => map,
            Some(_) => return Err(bad("`data` must be a JSON object".to_owned())),
        };
        if self.id.is_empty() || self.source.is_empty() {
            return Err(bad("`id` and `source` must not be empty".to_owned()));
        }
        Ok(EventIn {
            id: Some(format!("{}/{}", self.source, self.id)),
            customer: self.subject,
            event_type: Some(self.event_type),
            timestamp: self.time,
            subject: None,
            properties,
        })
    }
}

/// The body of `POST /v1/events`: Tollgate's own `{"events": [...]}`, or CloudEvents by their
/// media type.
pub struct IngestBody(pub Vec<EventIn>);

impl<S: Send + Sync> FromRequest<S> for IngestBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let essence = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        match essence.as_str() {
            STRUCTURED => {
                let JsonBody(event) = JsonBody::<CloudEventIn>::from_request(req, state).await?;
                Ok(IngestBody(vec![event.into_event(None)?]))
            }
            BATCH => {
                let JsonBody(events) =
                    JsonBody::<Vec<CloudEventIn>>::from_request(req, state).await?;
                let events = events
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| e.into_event(Some(i)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(IngestBody(events))
            }
            _ => {
                let JsonBody(body) = JsonBody::<EventsIn>::from_request(req, state).await?;
                Ok(IngestBody(body.events))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(json: serde_json::Value) -> Result<EventIn, ApiError> {
        serde_json::from_value::<CloudEventIn>(json)
            .unwrap()
            .into_event(Some(3))
    }

    #[test]
    fn attributes_map_to_an_event() {
        let e = cloud(serde_json::json!({
            "specversion": "1.0", "id": "42", "source": "//billing/api", "type": "api.call",
            "subject": "acme", "time": "2026-11-10T10:00:00Z", "datacontenttype": "application/json",
            "data": {"tokens": 7, "user": "ann"}, "traceparent": "00-ignored"
        }))
        .unwrap();
        assert_eq!(e.id.as_deref(), Some("//billing/api/42"));
        assert_eq!(e.customer.as_deref(), Some("acme"));
        assert_eq!(e.event_type.as_deref(), Some("api.call"));
        assert_eq!(e.timestamp.as_deref(), Some("2026-11-10T10:00:00Z"));
        assert_eq!(e.properties["tokens"], 7);
        assert!(e.subject.is_none(), "taken from `user` by ingest");
    }

    #[test]
    fn what_cannot_be_an_event_is_refused() {
        let base = |k: &str, v: serde_json::Value| {
            let mut e =
                serde_json::json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t"});
            e[k] = v;
            e
        };
        for (k, v) in [
            ("specversion", serde_json::json!("0.3")),
            ("datacontenttype", serde_json::json!("text/plain")),
            ("data", serde_json::json!("text")),
            ("id", serde_json::json!("")),
        ] {
            let err = cloud(base(k, v)).unwrap_err();
            assert_eq!(err.code, Code::InvalidJson, "{k}");
            assert!(err.detail.contains("(event 3)"), "{}", err.detail);
        }
        assert!(cloud(base("data", serde_json::Value::Null)).is_ok());
    }
}
