//! Signed checkpoints of a Merkle log, in the signed-note style of the transparency logs:
//!
//! ```text
//! tollgate.example/ws_1234          <- origin: whose log
//! 42                                <- size: number of entries
//! 2hW1q1bE...=                      <- root hash, standard base64
//!                                   <- empty line
//! — tollgate.example/ws_1234 AbCd...   <- signature line(s)
//! ```
//!
//! The signed text is the body: the three lines, each ending in `\n`. A signature line is an em
//! dash, a space, the key's name, a space, and base64 of a 4-byte key hash followed by the
//! 64-byte Ed25519 signature. The key hash is the first 4 bytes of
//! `SHA-256(name || "\n" || 0x01 || public key)`, as in the signed-note format, so a checkpoint can
//! also be checked with other tools of that format given the verifier key
//! [`NoteKey::verifier_key`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey};
use sha2::{Digest, Sha256};

use crate::keys::PublicKey;
use crate::merkle::Hash;

const DASH: &str = "\u{2014} ";

/// Why a checkpoint is not accepted. `code()` is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Not a checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// No signature by a trusted key.
    #[error("no signature by a trusted key")]
    UnknownKey,
    /// A signature by a trusted key does not match the body: the checkpoint was altered.
    #[error("the signature of {0} does not match the checkpoint")]
    BadSignature(String),
}

impl CheckpointError {
    /// `malformed`, `unknown_key` or `bad_signature`.
    pub fn code(&self) -> &'static str {
        match self {
            CheckpointError::Malformed(_) => "malformed",
            CheckpointError::UnknownKey => "unknown_key",
            CheckpointError::BadSignature(_) => "bad_signature",
        }
    }
}

/// A named public key that signs checkpoints (the name is usually the log's origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteKey {
    /// The key's name, as on signature lines.
    pub name: String,
    /// The key.
    pub key: PublicKey,
}

impl NoteKey {
    /// The 4-byte key hash of the signed-note format.
    pub fn key_hash(&self) -> [u8; 4] {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update(b"\n\x01");
        h.update(self.key.to_bytes());
        let d = h.finalize();
        [d[0], d[1], d[2], d[3]]
    }

    /// The verifier key string of the signed-note format: `name+hash+base64(0x01 || key)`.
    pub fn verifier_key(&self) -> String {
        let mut raw = vec![1u8];
        raw.extend_from_slice(&self.key.to_bytes());
        let hash: String = self.key_hash().iter().map(|b| format!("{b:02x}")).collect();
        format!("{}+{}+{}", self.name, hash, STANDARD.encode(raw))
    }
}

/// A checkpoint: a log's size and root hash at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Whose log.
    pub origin: String,
    /// The number of entries.
    pub size: u64,
    /// The Merkle root over them.
    pub root: Hash,
}

impl Checkpoint {
    /// The signed text: three lines.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// The signed note: body, empty line, one signature line by `key` under `name`.
    pub fn sign(&self, name: &str, key: &SigningKey) -> String {
        let body = self.body();
        let note_key = NoteKey {
            name: name.to_owned(),
            key: PublicKey::from(key.verifying_key()),
        };
        let mut sig = note_key.key_hash().to_vec();
        sig.extend_from_slice(&key.sign(body.as_bytes()).to_bytes());
        format!("{body}\n{DASH}{name} {}\n", STANDARD.encode(sig))
    }

    /// Reads a signed note and checks it: at least one signature by a trusted key, and every
    /// signature by a trusted key valid. Signatures by other keys are ignored.
    pub fn verify(note: &str, keys: &[NoteKey]) -> Result<Self, CheckpointError> {
        let (body, sigs) = note
            .split_once("\n\n")
            .ok_or(CheckpointError::Malformed("no empty line after the body"))?;
        let body = format!("{body}\n");
        let checkpoint = Self::parse_body(&body)?;
        let mut trusted = 0usize;
        for line in sigs.lines() {
            let rest = line.strip_prefix(DASH).ok_or(CheckpointError::Malformed(
                "a signature line without the dash",
            ))?;
            let (name, b64) = rest.split_once(' ').ok_or(CheckpointError::Malformed(
                "a signature line without a name",
            ))?;
            let raw = STANDARD
                .decode(b64)
                .map_err(|_| CheckpointError::Malformed("a signature that is not base64"))?;
            if raw.len() != 68 {
                return Err(CheckpointError::Malformed(
                    "a signature of the wrong length",
                ));
            }
            let Some(key) = keys
                .iter()
                .find(|k| k.name == name && k.key_hash()[..] == raw[..4])
            else {
                continue;
            };
            let sig: [u8; 64] = raw[4..]
                .try_into()
                .map_err(|_| CheckpointError::Malformed("a signature of the wrong length"))?;
            key.key
                .verifying_key()
                .verify_strict(body.as_bytes(), &Signature::from_bytes(&sig))
                .map_err(|_| CheckpointError::BadSignature(name.to_owned()))?;
            trusted += 1;
        }
        if trusted == 0 {
            return Err(CheckpointError::UnknownKey);
        }
        Ok(checkpoint)
    }

    fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let mut lines = body.lines();
        let (Some(origin), Some(size), Some(root), None) =
            (lines.next(), lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::Malformed("the body is not three lines"));
        };
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("an empty origin"));
        }
        // Decimal without sign or leading zeros, as written.
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(CheckpointError::Malformed("the size is not a number"));
        }
        let size = size
            .parse()
            .map_err(|_| CheckpointError::Malformed("the size is not a number"))?;
        let root = STANDARD
            .decode(root)
            .map_err(|_| CheckpointError::Malformed("the root is not base64"))?;
        let root: Hash = root
            .as_slice()
            .try_into()
            .map_err(|_| CheckpointError::Malformed("the root is not 32 bytes"))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}
