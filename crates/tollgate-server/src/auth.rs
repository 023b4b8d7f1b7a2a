//! Who is calling: an operator with a workspace admin key, or a customer with its own API key.
//!
//! Secrets are random, shown once, and stored only as SHA-256 hashes (they carry 190 bits of
//! entropy, so a slow password hash would buy nothing but latency on the hot path). Lookups are
//! cached by hash; revocation and suspension update the cache at once.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

use crate::error::Error;

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
    pub fn require_admin(&self) -> Result<&str, Error> {
        match self {
            Principal::Admin { workspace } => Ok(workspace),
            Principal::Customer { .. } => {
                Err(Error::forbidden("this call needs a workspace admin key"))
            }
        }
    }

    /// Fails unless the caller may act for `customer`: an admin, or that customer's own key.
    pub fn require_customer(&self, customer: &str) -> Result<&str, Error> {
        match self {
            Principal::Admin { workspace } => Ok(workspace),
            Principal::Customer {
                workspace,
                customer: own,
                ..
            } if own == customer => Ok(workspace),
            // Same answer as a missing customer: a key never learns whether others exist.
            Principal::Customer { .. } => Err(Error::not_found("customer", customer)),
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

/// [`hash_secret`] written into `buf` instead of a new `String`: the key cache is looked up by
/// it on every request, and only a miss needs it owned.
pub fn hash_secret_into<'b>(secret: &str, buf: &'b mut [u8; 64]) -> &'b str {
    let digest = Sha256::digest(secret.as_bytes());
    // 32 bytes always fit 64 hex digits, and hex digits are ASCII: neither can fail.
    if hex::encode_to_slice(digest, buf).is_err() {
        buf.fill(b'0');
    }
    std::str::from_utf8(buf).unwrap_or_default()
}
