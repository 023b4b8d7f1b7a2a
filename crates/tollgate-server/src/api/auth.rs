//! The caller of an API request: its key, from the headers, authenticated by the engine.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::api::error::ApiError;
use crate::auth::Principal;
use crate::error::Error;
use crate::state::AppState;

/// The secret from `Authorization: Bearer` or `X-API-Key`.
pub fn presented_secret(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let value = value.trim();
        if let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        {
            return Some(token.trim());
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let secret = presented_secret(&parts.headers).ok_or_else(|| {
            Error::unauthenticated(
                "missing API key: send `Authorization: Bearer <key>` or `X-API-Key`",
            )
        })?;
        Ok(state.engine.authenticate(secret).await?)
    }
}
