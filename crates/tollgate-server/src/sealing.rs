//! The operator's master key, and the sealing of license signing keys at rest with it.
//!
//! The master key (32 random bytes) comes from the environment or a file (`TOLLGATE_MASTER_KEY`,
//! `TOLLGATE_MASTER_KEY_FILE`, read by the CLI); without it the license features refuse to work
//! (`master_key_missing`). A private key is sealed with XChaCha20-Poly1305 under a random 24-byte
//! nonce, with the workspace and key id as associated data, so a sealed key copied onto another
//! row does not open.
//!
//! The master key also derives the keys of other secrets the server needs no storage for
//! ([`MasterKey::derive`]): the HMAC key of a workspace's download links.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2_11::Sha256;

/// Why a master key or a sealed value cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "the master key must be 32 bytes, written as 64 hex digits or in base64 (e.g. `openssl rand -base64 32`)"
    )]
    BadMasterKey,
    #[error("a sealed key does not open under this master key (another key, or altered)")]
    Open,
    #[error("sealing failed")]
    Seal,
}

/// The master key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<secret>)")
    }
}

impl MasterKey {
    /// Reads a key written as 64 hex digits or standard base64 of 32 bytes (whitespace around it
    /// ignored, as in a file).
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| SealError::BadMasterKey)?
        } else {
            STANDARD.decode(text).map_err(|_| SealError::BadMasterKey)?
        };
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SealError::BadMasterKey)?;
        Ok(Self { bytes })
    }

    fn cipher(&self) -> Result<XChaCha20Poly1305, SealError> {
        XChaCha20Poly1305::new_from_slice(&self.bytes).map_err(|_| SealError::BadMasterKey)
    }

    /// Seals `secret` bound to `context`: base64 of nonce || ciphertext.
    pub fn seal(&self, secret: &[u8], context: &str) -> Result<String, SealError> {
        let nonce: [u8; 24] = rand::random();
        let sealed = self
            .cipher()?
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    /// A 32-byte key for `context`, derived from the master key: HMAC-SHA256(master key,
    /// context). Different contexts give independent keys; the same context the same key.
    pub fn derive(&self, context: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(context.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Opens what [`MasterKey::seal`] sealed under the same context.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let raw = STANDARD.decode(sealed).map_err(|_| SealError::Open)?;
        if raw.len() < 24 {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = raw.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| SealError::Open)?;
        self.cipher()?
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_key_and_context() {
        let key = MasterKey::parse(&"ab".repeat(32)).unwrap();
        let sealed = key.seal(b"secret bytes", "ws_1/k1").unwrap();
        assert_eq!(key.open(&sealed, "ws_1/k1").unwrap(), b"secret bytes");
        assert_eq!(key.open(&sealed, "ws_2/k1"), Err(SealError::Open));
        let other = MasterKey::parse(&STANDARD.encode([7u8; 32])).unwrap();
        assert_eq!(other.open(&sealed, "ws_1/k1"), Err(SealError::Open));
        let mut raw = STANDARD.decode(&sealed).unwrap();
        raw[30] ^= 1;
        assert_eq!(
            key.open(&STANDARD.encode(raw), "ws_1/k1"),
            Err(SealError::Open)
        );
        assert!(MasterKey::parse("short").is_err());
        assert!(!format!("{key:?}").contains("ab"));
    }
}
