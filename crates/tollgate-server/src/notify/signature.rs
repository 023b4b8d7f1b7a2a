//! Standard Webhooks signatures: `v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`, keyed
//! by the base64-decoded secret after `whsec_`.
//!
//! HMAC (RFC 2104) is written here over the `sha2` the workspace already has (the `hmac` crate
//! in the lock file is built on another `digest` major version); the RFC 4231 vectors below and
//! the `standardwebhooks` package in `.ci/verify_webhooks.py` hold it to the standard.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

pub const SECRET_PREFIX: &str = "whsec_";

/// A fresh secret: `whsec_` + base64 of 24 random bytes.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a secret; `None` when it is not `whsec_` + base64.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX)?)
        .ok()
        .filter(|k| !k.is_empty())
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// One `v1,<base64>` signature of `id.timestamp.body` with `key`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let message = format!("{id}.{timestamp}.{body}");
    format!(
        "v1,{}",
        STANDARD.encode(hmac_sha256(key, message.as_bytes()))
    )
}

/// The `webhook-signature` header: one signature per key, separated by a space.
pub fn header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &str) -> String {
    keys.iter()
        .map(|k| sign(k, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rfc_4231_vectors() {
        // Test case 1: a 20-byte key.
        let mac = hmac_sha256(&[0x0b; 20], b"Hi There");
        assert_eq!(
            hex::encode(mac),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 6: a key longer than the block (hashed first).
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn secrets_round_trip_and_sign_with_both_keys() {
        let secret = new_secret();
        assert!(secret.starts_with(SECRET_PREFIX));
        let key = secret_key(&secret).unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(secret_key("whsec_!!"), None);
        assert_eq!(secret_key("nope"), None);
        let other = secret_key(&new_secret()).unwrap();
        let h = header(&[key.clone(), other], "evt_1", 1_700_000_000, "{}");
        let parts: Vec<_> = h.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(&key, "evt_1", 1_700_000_000, "{}"));
        assert_ne!(parts[0], parts[1]);
    }
}
