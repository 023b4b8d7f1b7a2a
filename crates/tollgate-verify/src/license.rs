//! Signed license files: the format, signing and offline verification.
//!
//! A license file is an armored block:
//!
//! ```text
//! -----BEGIN TOLLGATE LICENSE-----
//! Format: tollgate-license/1
//! Key: 3f1c0d9a5b7e2468
//! Signature: <base64 of the 64-byte Ed25519 signature>
//!
//! <base64 of the payload bytes, in lines of 64 characters>
//! -----END TOLLGATE LICENSE-----
//! ```
//!
//! The payload is a JSON document a person can read (`tollgate license show` prints it). Its
//! exact bytes are what is signed and what is carried: the signature covers
//! `"tollgate-license/1\n" || payload`, and the payload is never re-serialized, so no canonical
//! JSON form is needed and a verifier in another language checks the same bytes. Text around the
//! block (an e-mail, a comment), CRLF line ends and indentation are ignored.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::keys::{Keyring, PublicKey};

/// The format this crate reads and writes.
pub const FORMAT: &str = "tollgate-license/1";
const BEGIN: &str = "-----BEGIN TOLLGATE LICENSE-----";
const END: &str = "-----END TOLLGATE LICENSE-----";

/// Why a license file is not accepted. `code()` is stable: products match on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// Not a license file: no armor, bad base64, a missing header, a payload that is not JSON.
    #[error("malformed license file: {0}")]
    Malformed(String),
    /// A format this verifier does not know (a newer one).
    #[error("unsupported license format {0:?}")]
    UnsupportedFormat(String),
    /// Signed by a key this verifier does not trust (or a retired one).
    #[error("signed by unknown key {0}")]
    UnknownKey(String),
    /// The signature does not match the payload: the file was altered or not made by the key.
    #[error("the signature does not match the license")]
    BadSignature,
    /// Used before its issue time.
    #[error("not valid before {0}")]
    NotYetValid(Timestamp),
    /// Past its expiry and its grace period.
    #[error("expired at {expired}, grace ended at {grace_ended}")]
    Expired {
        /// When the term ended.
        expired: Timestamp,
        /// When the grace period ended.
        grace_ended: Timestamp,
    },
    /// Bound to another machine than the one it is used on.
    #[error("bound to another machine")]
    WrongMachine,
}

impl Reason {
    /// The stable code: `malformed`, `unsupported_format`, `unknown_key`, `bad_signature`,
    /// `not_yet_valid`, `expired`, `wrong_machine`. (`revoked` is only known online.)
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Malformed(_) => "malformed",
            Reason::UnsupportedFormat(_) => "unsupported_format",
            Reason::UnknownKey(_) => "unknown_key",
            Reason::BadSignature => "bad_signature",
            Reason::NotYetValid(_) => "not_yet_valid",
            Reason::Expired { .. } => "expired",
            Reason::WrongMachine => "wrong_machine",
        }
    }
}

/// What a license grants: the payload of a file, as issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct License {
    /// Always [`FORMAT`].
    pub format: String,
    /// The license id (`lic_...`).
    pub id: String,
    /// Who issued it: the workspace.
    pub issuer: String,
    /// The customer it was issued to.
    pub customer: String,
    /// The plan it was issued from.
    pub plan: String,
    /// The features it enables.
    #[serde(default)]
    pub features: Vec<String>,
    /// Named integer limits (`requests_per_month`, `agents`, `seats`, ...).
    #[serde(default)]
    pub limits: BTreeMap<String, u64>,
    /// When it was issued; not valid before.
    pub issued: Timestamp,
    /// When its term ends.
    pub expires: Timestamp,
    /// Seconds after `expires` during which it still works, flagged as in grace.
    #[serde(default)]
    pub grace_seconds: u64,
    /// The machine fingerprint it is bound to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

impl License {
    /// The end of the grace period.
    pub fn grace_ends(&self) -> Timestamp {
        let grace =
            SignedDuration::from_secs(i64::try_from(self.grace_seconds).unwrap_or(i64::MAX));
        self.expires.checked_add(grace).unwrap_or(Timestamp::MAX)
    }

    /// The payload bytes to sign: pretty JSON, fields in declaration order, ending in a newline.
    pub fn to_payload(&self) -> Result<Vec<u8>, Reason> {
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| Reason::Malformed(e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// A license file read from its armor, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseFile {
    /// The `Format` header.
    pub format: String,
    /// The `Key` header: the id of the key that signed it.
    pub key_id: String,
    /// The signature.
    pub signature: [u8; 64],
    /// The payload's exact bytes.
    pub payload: Vec<u8>,
}

fn message(payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(FORMAT.len() + 1 + payload.len());
    m.extend_from_slice(FORMAT.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(payload);
    m
}

impl LicenseFile {
    /// Signs these payload bytes as they are.
    pub fn sign(payload: Vec<u8>, key: &SigningKey) -> Self {
        let signature = key.sign(&message(&payload)).to_bytes();
        Self {
            format: FORMAT.to_owned(),
            key_id: PublicKey::from(key.verifying_key()).id(),
            signature,
            payload,
        }
    }

    /// Issues a license: its payload from [`License::to_payload`], signed.
    pub fn issue(license: &License, key: &SigningKey) -> Result<Self, Reason> {
        Ok(Self::sign(license.to_payload()?, key))
    }

    /// The armored text.
    pub fn to_armored(&self) -> String {
        let mut out = String::new();
        out.push_str(BEGIN);
        out.push('\n');
        out.push_str(&format!("Format: {}\n", self.format));
        out.push_str(&format!("Key: {}\n", self.key_id));
        out.push_str(&format!(
            "Signature: {}\n\n",
            STANDARD.encode(self.signature)
        ));
        let body = STANDARD.encode(&self.payload);
        for chunk in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str(END);
        out.push('\n');
        out
    }

    /// Reads the armored text (the first block in it).
    pub fn parse(text: &str) -> Result<Self, Reason> {
        let malformed = |what: &str| Reason::Malformed(what.to_owned());
        let mut lines = text.lines().map(str::trim);
        if !lines.any(|l| l == BEGIN) {
            return Err(malformed("no BEGIN TOLLGATE LICENSE line"));
        }
        let mut headers = BTreeMap::new();
        for line in lines.by_ref() {
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| malformed("a header line without ':'"))?;
            if headers
                .insert(name.trim().to_owned(), value.trim().to_owned())
                .is_some()
            {
                return Err(malformed("a header given twice"));
            }
        }
        let mut body = String::new();
        let mut ended = false;
        for line in lines {
            if line == END {
                ended = true;
                break;
            }
            body.push_str(line);
        }
        if !ended {
            return Err(malformed("no END TOLLGATE LICENSE line"));
        }
        let header = |name: &str| {
            headers
                .get(name)
                .cloned()
                .ok_or_else(|| Reason::Malformed(format!("no {name} header")))
        };
        let format = header("Format")?;
        if format != FORMAT {
            return Err(Reason::UnsupportedFormat(format));
        }
        if headers.len() != 3 {
            return Err(malformed("unknown headers"));
        }
        let key_id = header("Key")?;
        let signature = STANDARD
            .decode(header("Signature")?)
            .map_err(|_| malformed("the signature is not base64"))?;
        let signature: [u8; 64] = signature
            .as_slice()
            .try_into()
            .map_err(|_| malformed("the signature is not 64 bytes"))?;
        let payload = STANDARD
            .decode(body)
            .map_err(|_| malformed("the payload is not base64"))?;
        Ok(Self {
            format,
            key_id,
            signature,
            payload,
        })
    }

    /// Checks the signature against the trusted keys and reads the payload. No clock: see
    /// [`Verified::status_at`] and [`verify`].
    pub fn check_signature(&self, keys: &Keyring) -> Result<License, Reason> {
        let key = keys
            .get(&self.key_id)
            .ok_or_else(|| Reason::UnknownKey(self.key_id.clone()))?;
        key.verifying_key()
            .verify_strict(
                &message(&self.payload),
                &Signature::from_bytes(&self.signature),
            )
            .map_err(|_| Reason::BadSignature)?;
        let license: License = serde_json::from_slice(&self.payload)
            .map_err(|e| Reason::Malformed(format!("payload: {e}")))?;
        if license.format != self.format {
            return Err(Reason::Malformed(
                "the payload's format differs from the header's".to_owned(),
            ));
        }
        Ok(license)
    }
}

/// Where a verified license stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Within its term.
    Active,
    /// Past its term, within its grace period: working, to be renewed before `ends`.
    Grace {
        /// When the grace period ends.
        ends: Timestamp,
    },
}

/// A license whose signature holds, at a time when it is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// What it grants.
    pub license: License,
    /// The id of the key that signed it.
    pub key_id: String,
    /// Active or in grace.
    pub status: Status,
}

impl Verified {
    /// Whether a feature is enabled.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.license.features.iter().any(|f| f == feature)
    }

    /// A named limit.
    pub fn limit(&self, name: &str) -> Option<u64> {
        self.license.limits.get(name).copied()
    }
}

/// How to verify: the time (the caller's clock; this crate never reads one) and the machine's
/// fingerprint when the product binds licenses to machines.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The current time.
    pub now: Timestamp,
    /// This machine's fingerprint; a license bound to another is refused. `None`: not checked.
    pub machine: Option<&'a str>,
}

/// Where a license with a valid signature stands at `now`.
pub fn status_at(license: &License, now: Timestamp) -> Result<Status, Reason> {
    if now < license.issued {
        return Err(Reason::NotYetValid(license.issued));
    }
    if now < license.expires {
        return Ok(Status::Active);
    }
    let ends = license.grace_ends();
    if now < ends {
        Ok(Status::Grace { ends })
    } else {
        Err(Reason::Expired {
            expired: license.expires,
            grace_ended: ends,
        })
    }
}

/// Verifies an armored license offline: format, trusted key, signature, validity at
/// `options.now`, machine binding. The first failing check is the reason.
pub fn verify(text: &str, keys: &Keyring, options: Options<'_>) -> Result<Verified, Reason> {
    let file = LicenseFile::parse(text)?;
    let license = file.check_signature(keys)?;
    let status = status_at(&license, options.now)?;
    if let (Some(bound), Some(here)) = (&license.machine, options.machine)
        && bound != here
    {
        return Err(Reason::WrongMachine);
    }
    Ok(Verified {
        license,
        key_id: file.key_id,
        status,
    })
}
