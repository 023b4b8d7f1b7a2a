//! Request bodies: JSON read under one rule for every endpoint.
//!
//! - A body with a `Content-Type` other than JSON is refused with 415 `unsupported_media_type`;
//!   a body without one, or labelled `application/x-www-form-urlencoded` (what `curl -d` sends),
//!   is read as JSON, so a bare `curl -d '{...}'` works.
//! - Malformed JSON and JSON of the wrong shape are both 400 `invalid_json`, with the path of
//!   the field that did not fit.
//! - A NUL character (`\u0000`) anywhere in a string is refused with 400 `nul_byte`: PostgreSQL
//!   cannot store it in text, and no identifier, name or property needs it, so both backends
//!   refuse it alike, before anything is stored.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use tollgate_core::code::Code;

use crate::api::error::ApiError;
use axum::http::StatusCode;

/// A JSON body that must be present.
pub struct JsonBody<T>(pub T);

/// A JSON body that may be absent (empty): `None` then.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read(req, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        parse(&bytes).map(|v| OptionalJsonBody(Some(v)))
    }
}

/// A catalog as sent to `PUT /v1/catalog`: the YAML file itself (`Content-Type:
/// application/yaml`, `application/x-yaml` or `text/yaml`), or JSON under the one rule above.
pub enum CatalogBody {
    Yaml(String),
    Json(serde_json::Value),
}

impl<S: Send + Sync> FromRequest<S> for CatalogBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let yaml = req
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
            .is_some_and(|t| {
                matches!(
                    t.as_str(),
                    "application/yaml" | "application/x-yaml" | "text/yaml"
                )
            });
        if !yaml {
            return JsonBody::from_request(req, state)
                .await
                .map(|JsonBody(v)| CatalogBody::Json(v));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::BodyTooLarge,
                rejection.body_text(),
            )
        })?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_request(Code::InvalidBody, "the YAML is not UTF-8"))?;
        if text.contains('\0') {
            return Err(ApiError::bad_request(
                Code::NulByte,
                "strings must not contain the NUL character",
            ));
        }
        Ok(CatalogBody::Yaml(text))
    }
}

async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        // `curl -d` labels every body `application/x-www-form-urlencoded`; no endpoint takes a
        // form, so such a body is read as the JSON it is.
        let json_like = essence == "application/json"
            || essence.ends_with("+json")
            || essence == "application/x-www-form-urlencoded";
        if !json_like {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::UnsupportedMediaType,
                format!("send JSON (`Content-Type: application/json`), not {essence:?}"),
            ));
        }
    }
    Bytes::from_request(req, state).await.map_err(|rejection| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::BodyTooLarge,
            rejection.body_text(),
        )
    })
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if has_nul_escape(bytes) {
        return Err(ApiError::bad_request(
            Code::NulByte,
            "strings must not contain the NUL character (\\u0000)",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = if path == "." || path.is_empty() {
                String::new()
            } else {
                format!(" at `{path}`")
            };
            ApiError::bad_request(
                Code::InvalidJson,
                format!("the body is not valid{at}: {inner}"),
            )
        })
        .and_then(|value| {
            deserializer.end().map_err(|e| {
                ApiError::bad_request(Code::InvalidJson, format!("the body is not valid: {e}"))
            })?;
            Ok(value)
        })
}

/// Whether the JSON text holds the escape `\u0000` (a raw NUL byte is invalid JSON already).
/// A backslash counts only when not itself escaped, so the text `\\u0000` is allowed.
fn has_nul_escape(bytes: &[u8]) -> bool {
    let mut backslashes = 0usize;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\\' {
            backslashes += 1;
            continue;
        }
        if *b == b'u' && backslashes % 2 == 1 && bytes.get(i + 1..i + 5) == Some(b"0000") {
            return true;
        }
        backslashes = 0;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        assert!(has_nul_escape(br#"{"id":"a\u0000b"}"#));
        assert!(has_nul_escape(br#"{"id":"a\\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"id":"a\\u0000b"}"#));
        assert!(!has_nul_escape(br#"{"id":"\u0001"}"#));
    }
}
