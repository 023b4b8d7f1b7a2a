//! The ledger (docs/TRUST.md, "The ledger"): every accepted usage event and every domain event
//! (the operator's actions and what they changed) appended to the workspace's RFC 6962 Merkle
//! log, with signed checkpoints; its verification; and the proofs a customer or an auditor
//! checks offline with `tollgate-verify`.
//!
//! - `seal`: the background pass that appends what was written since the last one, and signs a
//!   checkpoint when the log grew (run by the server every `ledger_interval`, and on demand).
//! - `verify`: recomputes every leaf and root, compares each entry with the record it was made
//!   from as stored now, checks every checkpoint's root and signature; names the first bad one.
//! - `proof`: inclusion proofs of one record, consistency proofs between two checkpoints.
//! - `evidence`: a customer's events of a period with their ledger entries, counts per meter and
//!   a verification of the log, for an auditor (JSON or PDF).
//! - `invoice_evidence`: an invoice's usage lines with the proven events they were rated from,
//!   for its customer to recompute offline.

pub mod evidence;
pub mod invoice_evidence;
pub mod proof;
pub mod seal;
pub mod verify;

pub use evidence::{EvidenceReport, EvidenceRequest, evidence};
pub use invoice_evidence::{InvoiceEvidence, invoice_evidence};
pub use proof::{ConsistencyProof, InclusionProof, consistency, inclusion};
pub use seal::{PASS_LIMIT, Reach, SealReport, entry_text, origin, seal, seal_with};
pub use verify::{Finding, VerifyReport, verify};

use tollgate_verify::merkle::Hash;

use crate::error::{AppResult, Error};

pub(crate) fn hex_hash(hash: &Hash) -> String {
    hex::encode(hash)
}

pub(crate) fn parse_hash(text: &str) -> AppResult<Hash> {
    let bytes = hex::decode(text).map_err(|e| Error::internal(format!("a stored hash: {e}")))?;
    bytes
        .try_into()
        .map_err(|_| Error::internal("a stored hash is not 32 bytes"))
}

/// The base64 Ed25519 keys that sign the workspace's checkpoints (its license signing keys, as
/// `GET /v1/license_keys` publishes them).
pub(crate) async fn checkpoint_keys(
    engine: &crate::engine::Engine,
    ws: &tollgate_core::ids::WorkspaceId,
) -> AppResult<Vec<String>> {
    Ok(engine
        .store()
        .signing_keys(ws)
        .await?
        .into_iter()
        .map(|k| k.public_key)
        .collect())
}
