//! Who is calling: an operator with a workspace admin key, or a customer with its own API key.
//!
//! Secrets are random, shown once, and stored only as SHA-256 hashes (they carry 190 bits of
//! entropy, so a slow password hash would buy nothing but latency on the hot path). Lookups are
//! cached by hash; revocation and suspension update the cache at once.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// Prefix of customer API keys.
pub const CUSTOMER_KEY_PREFIX: &str = "tg_live_";
/// Prefix of workspace admin keys.
pub const ADMIN_KEY_PREFIX: &str = "tg_admin_";

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Full access to one workspace.
    Admin { workspace: String },
    /// Access to one customer of one workspace, and nothing else.
    Customer {
        workspace: String,
        customer: String,
        key_id: String,
    },
}

impl Principal {
    pub fn workspace(&self) -> &str {
        match self {
            Principal::Admin { workspace } | Principal::Customer { workspace, .. } => workspace,
        }
    }

    /// Fails unless the caller is an admin of its workspace.
    pub fn require_admin(&self) -> Result<&str, ApiError> {
        match self {
            Principal::Admin { workspace } => Ok(workspace),
            Principal::Customer { .. } => {
                Err(ApiError::forbidden("this call needs a workspace admin key"))
            }
        }
    }

    /// Fails unless the caller may act for `customer`: an admin, or that customer's own key.
    pub fn require_customer(&self, customer: &str) -> Result<&str, ApiError> {
        match self {
            Principal::Admin { workspace } => Ok(workspace),
            Principal::Customer {
                workspace,
                customer: own,
                ..
            } if own == customer => Ok(workspace),
            // Same answer as a missing customer: a key never learns whether others exist.
            Principal::Customer { .. } => Err(ApiError::not_found("customer", customer)),
        }
    }
}

/// A new random secret with the given prefix.
pub fn generate_secret(prefix: &str) -> String {
    let body: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
}

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

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
            ApiError::unauthorized(
                "missing API key: send `Authorization: Bearer <key>` or `X-API-Key`",
            )
        })?;
        state.engine.authenticate(secret).await
    }
}
