//! Offline verification for Tollgate: what an operator embeds in its self-hosted product.
//!
//! - [`license`]: signed license files (armored, Ed25519), read and checked against embedded
//!   public keys, with the reasons a product shows: `expired`, `not_yet_valid`, `bad_signature`,
//!   `unknown_key` (and `revoked`, which only the online check knows).
//! - [`merkle`]: RFC 6962 Merkle tree hashing, inclusion and consistency proofs, for the ledger.
//! - [`checkpoint`]: signed checkpoints of a ledger (signed-note style).
//!
//! The crate depends on no Tollgate crate, no async runtime, no network and no database, and
//! never reads the clock: time is an argument. The format is described in `docs/TRUST.md`.

pub mod checkpoint;
pub mod keys;
pub mod license;
pub mod merkle;

pub use checkpoint::{Checkpoint, CheckpointError, NoteKey};
pub use ed25519_dalek::SigningKey;
pub use keys::{KeyError, Keyring, PublicKey};
pub use license::{License, LicenseFile, Options, Reason, Status, Verified, verify};
pub use merkle::{Hash, ProofError};
