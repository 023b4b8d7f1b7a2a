//! Public keys, their ids, and the set of keys a verifier trusts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

/// Why a public key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an Ed25519 public key: {0}")]
pub struct KeyError(pub(crate) &'static str);

/// An Ed25519 public key a verifier trusts, with the id license files name it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PublicKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        VerifyingKey::from_bytes(bytes)
            .map(|key| Self { key })
            .map_err(|_| KeyError("not a point on the curve"))
    }

    /// A key from the standard base64 of its 32 bytes (as `GET /v1/license_keys` publishes it).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError("not base64"))?;
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError("not 32 bytes"))?;
        Self::from_bytes(&bytes)
    }

    /// The key's 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The standard base64 of the key's 32 bytes.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key.as_bytes())
    }

    /// The key's id: the first 8 bytes of `SHA-256("tollgate-key/1\n" || key)`, in lowercase hex
    /// (16 characters). Derived, so a file cannot name a key by an id that is not its own.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"tollgate-key/1\n");
        h.update(self.key.as_bytes());
        let digest = h.finalize();
        let mut out = String::with_capacity(16);
        for b in &digest[..8] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl From<VerifyingKey> for PublicKey {
    fn from(key: VerifyingKey) -> Self {
        Self { key }
    }
}

/// The public keys a verifier trusts (an operator embeds them in its product). A rotated
/// workspace has several: licenses signed by the previous key verify until that key is removed.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<PublicKey>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a trusted key.
    pub fn with(mut self, key: PublicKey) -> Self {
        self.add(key);
        self
    }

    /// Adds a trusted key.
    pub fn add(&mut self, key: PublicKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// The trusted key with this id.
    pub fn get(&self, id: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.id() == id)
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
}
