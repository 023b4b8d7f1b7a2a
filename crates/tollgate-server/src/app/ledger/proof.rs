//! Proofs a customer or an auditor checks offline (`tollgate_verify::merkle`): that a record is
//! in the log under a signed checkpoint, and that a later checkpoint extends an earlier one.

use serde::Serialize;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::ledger::{CheckpointRecord, EntryKind};
use tollgate_verify::merkle::{self, Hash};

use super::{hex_hash, parse_hash};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// A record's place in the log, and the path from its leaf to a signed checkpoint's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InclusionProof {
    pub seq: i64,
    /// The entry's text: its leaf is `SHA-256(0x00 || entry)`.
    pub entry: String,
    pub leaf_hash: String,
    /// The checkpoint the proof leads to (the newest one), and its signed note.
    pub tree_size: i64,
    pub root_hash: String,
    pub checkpoint: String,
    /// Hex hashes, leaf side first (RFC 6962 section 2.1.1).
    pub proof: Vec<String>,
}

/// That the log at `to` extends the log at `from`, both signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsistencyProof {
    pub from: CheckpointOut,
    pub to: CheckpointOut,
    /// Hex hashes (RFC 6962 section 2.1.2).
    pub proof: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointOut {
    pub size: i64,
    pub root_hash: String,
    pub note: String,
}

impl From<&CheckpointRecord> for CheckpointOut {
    fn from(c: &CheckpointRecord) -> Self {
        CheckpointOut {
            size: c.size,
            root_hash: c.root_hash.clone(),
            note: c.note.clone(),
        }
    }
}

/// Every leaf hash of the first `size` entries (what a proof is computed from).
async fn leaves(engine: &Engine, ws: &WorkspaceId, size: i64) -> AppResult<Vec<Hash>> {
    engine
        .store()
        .ledger_entries(ws, 0, size)
        .await?
        .iter()
        .map(|e| parse_hash(&e.leaf_hash))
        .collect()
}

/// The inclusion proof of a record (a usage event's id, or a domain event's `evt_` id) under the
/// newest checkpoint. `ledger_not_sealed` until a checkpoint covers it.
pub async fn inclusion(
    engine: &Engine,
    workspace: &str,
    kind: EntryKind,
    reference: &str,
) -> AppResult<InclusionProof> {
    let ws = WorkspaceId::from(workspace);
    let store = engine.store();
    let entry = store
        .ledger_entry_of(&ws, kind, reference)
        .await?
        .ok_or_else(|| {
            Error::conflict(
                Code::LedgerNotSealed,
                format!(
                    "{} {reference} is not in the ledger yet (it is sealed within the ledger \
                     interval, or at once by POST /v1/ledger/seal)",
                    kind.as_str()
                ),
            )
        })?;
    let checkpoint = store
        .latest_checkpoint(&ws)
        .await?
        .filter(|c| c.size > entry.seq)
        .ok_or_else(|| {
            Error::conflict(
                Code::LedgerNotSealed,
                format!(
                    "no signed checkpoint covers entry {} yet (checkpoints need the master key)",
                    entry.seq
                ),
            )
        })?;
    let leaves = leaves(engine, &ws, checkpoint.size).await?;
    let index = usize::try_from(entry.seq).map_err(Error::internal)?;
    let proof = merkle::inclusion_proof(&leaves, index)
        .ok_or_else(|| Error::internal("the entry is outside its checkpoint"))?;
    Ok(InclusionProof {
        seq: entry.seq,
        entry: entry.entry,
        leaf_hash: entry.leaf_hash,
        tree_size: checkpoint.size,
        root_hash: checkpoint.root_hash,
        checkpoint: checkpoint.note,
        proof: proof.iter().map(hex_hash).collect(),
    })
}

/// The consistency proof between the checkpoints of sizes `from` and `to`.
pub async fn consistency(
    engine: &Engine,
    workspace: &str,
    from: i64,
    to: i64,
) -> AppResult<ConsistencyProof> {
    let ws = WorkspaceId::from(workspace);
    let checkpoints = engine.store().checkpoints(&ws).await?;
    let find = |size: i64| {
        checkpoints
            .iter()
            .find(|c| c.size == size)
            .ok_or_else(|| Error::not_found("checkpoint", &size.to_string()))
    };
    let (first, second) = (find(from)?, find(to)?);
    if from > to {
        return Err(Error::invalid(
            Code::InvalidRange,
            "`from` must not be after `to`",
        ));
    }
    let leaves = leaves(engine, &ws, to).await?;
    let size1 = usize::try_from(from).map_err(Error::internal)?;
    let proof = merkle::consistency_proof(&leaves, size1)
        .ok_or_else(|| Error::internal("a checkpoint is past the log"))?;
    Ok(ConsistencyProof {
        from: first.into(),
        to: second.into(),
        proof: proof.iter().map(hex_hash).collect(),
    })
}
