//! Verification of a workspace's log, from its rows alone: every leaf recomputed from its
//! entry's text, every entry compared with the record it was made from as stored now, the root
//! recomputed at every checkpoint and checked against it and its signature, and the head last.
//! The first thing wrong is named (its index and record), so an auditor knows where to look.
//!
//! Checkpoint signatures are checked against the workspace's signing keys as the store holds
//! them (every key, retired ones too: a checkpoint stays valid after its key retires). An
//! auditor who saved the published keys (`GET /v1/license_keys`) can pass them instead, so a
//! key slipped into the store does not verify.

use serde::Serialize;
use tollgate_core::ids::WorkspaceId;
use tollgate_verify::merkle::{CompactRange, leaf_hash};
use tollgate_verify::{Checkpoint, NoteKey, PublicKey};

use super::{entry_text, hex_hash, origin, parse_hash};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// Entries read per round trip.
const PAGE: i64 = 10_000;

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// The entry's index, when an entry is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// The record the entry was made from (a usage event's id, a domain event's `evt_` id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The checkpoint's size, when a checkpoint is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<i64>,
    /// `entry_hash_mismatch`, `record_changed`, `record_missing`, `entries_missing`,
    /// `checkpoint_root_mismatch`, `checkpoint_bad_signature` or `head_root_mismatch`.
    #[schema(value_type = String)]
    pub problem: &'static str,
    pub detail: String,
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub workspace: String,
    /// The log's size and root, as recomputed.
    pub size: u64,
    pub root_hash: String,
    /// Entries whose record was compared (those in the range asked for).
    pub records_checked: u64,
    pub checkpoints_verified: u64,
    /// `true` when nothing is wrong.
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<Finding>,
}

/// Which entries to compare with their records (every leaf is hashed regardless, to reach the
/// roots), and which keys to trust for checkpoints (`None`: the store's).
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub keys: Option<Vec<PublicKey>>,
}

pub async fn verify(
    engine: &Engine,
    workspace: &str,
    options: &VerifyOptions,
) -> AppResult<VerifyReport> {
    let ws = WorkspaceId::from(workspace);
    let store = engine.store();
    let keys: Vec<NoteKey> = match &options.keys {
        Some(keys) => keys.clone(),
        None => store
            .signing_keys(&ws)
            .await?
            .iter()
            .map(|k| PublicKey::from_base64(&k.public_key).map_err(Error::internal))
            .collect::<AppResult<_>>()?,
    }
    .into_iter()
    .map(|key| NoteKey {
        name: origin(workspace),
        key,
    })
    .collect();
    let checkpoints = store.checkpoints(&ws).await?;
    let head = store.ledger_head(&ws).await?;
    let size = head.as_ref().map_or(0, |h| h.size);
    let mut report = VerifyReport {
        workspace: workspace.to_owned(),
        size: 0,
        root_hash: hex_hash(&CompactRange::new().root()),
        records_checked: 0,
        checkpoints_verified: 0,
        ok: true,
        first_bad: None,
    };
    let bad = |report: &mut VerifyReport, finding: Finding| {
        report.ok = false;
        report.first_bad = Some(finding);
    };
    let mut range = CompactRange::new();
    let mut next_checkpoint = checkpoints.iter().peekable();
    // A checkpoint of the empty log (none is ever signed, but a forged one would be checked).
    let mut from = 0;
    'pages: while from < size {
        let page = store
            .ledger_entries(&ws, from, from.saturating_add(PAGE).min(size))
            .await?;
        if page.is_empty() {
            bad(
                &mut report,
                Finding {
                    seq: Some(from),
                    reference: None,
                    checkpoint: None,
                    problem: "entries_missing",
                    detail: format!("the log's head says {size} entries; entry {from} is missing"),
                },
            );
            break;
        }
        for e in page {
            if e.seq != i64::try_from(range.size()).unwrap_or(-1) {
                bad(
                    &mut report,
                    Finding {
                        seq: Some(i64::try_from(range.size()).unwrap_or(i64::MAX)),
                        reference: None,
                        checkpoint: None,
                        problem: "entries_missing",
                        detail: format!("entry {} follows entry {}", e.seq, range.size()),
                    },
                );
                break 'pages;
            }
            let leaf = leaf_hash(e.entry.as_bytes());
            let finding = |problem, detail: String| Finding {
                seq: Some(e.seq),
                reference: Some(e.reference.clone()),
                checkpoint: None,
                problem,
                detail,
            };
            if hex_hash(&leaf) != e.leaf_hash {
                let detail = format!(
                    "entry {} ({} {}): its text does not hash to its stored leaf",
                    e.seq,
                    e.kind.as_str(),
                    e.reference
                );
                bad(&mut report, finding("entry_hash_mismatch", detail));
                break 'pages;
            }
            let in_range =
                options.from.is_none_or(|f| e.seq >= f) && options.to.is_none_or(|t| e.seq < t);
            if in_range {
                report.records_checked += 1;
                match store.ledger_source(&ws, e.kind, &e.reference).await? {
                    None => {
                        let detail = format!(
                            "entry {}: {} {} is no longer stored",
                            e.seq,
                            e.kind.as_str(),
                            e.reference
                        );
                        bad(&mut report, finding("record_missing", detail));
                        break 'pages;
                    }
                    Some(source) if entry_text(&source) != e.entry => {
                        let detail = format!(
                            "entry {}: {} {} was changed after it was logged",
                            e.seq,
                            e.kind.as_str(),
                            e.reference
                        );
                        bad(&mut report, finding("record_changed", detail));
                        break 'pages;
                    }
                    Some(_) => {}
                }
            }
            range.push(leaf);
            while let Some(c) = next_checkpoint.next_if(|c| c.size <= e.seq + 1) {
                if let Some(f) = check_checkpoint(c, &range, &keys) {
                    bad(&mut report, f);
                    break 'pages;
                }
                report.checkpoints_verified += 1;
            }
        }
        from = i64::try_from(range.size()).unwrap_or(i64::MAX);
    }
    report.size = range.size();
    report.root_hash = hex_hash(&range.root());
    if report.ok {
        if let Some(c) = next_checkpoint.next() {
            bad(
                &mut report,
                Finding {
                    seq: None,
                    reference: None,
                    checkpoint: Some(c.size),
                    problem: "entries_missing",
                    detail: format!(
                        "a checkpoint of size {} is past the log's {} entries",
                        c.size,
                        range.size()
                    ),
                },
            );
        } else if let Some(h) = head.filter(|h| h.root_hash != report.root_hash) {
            let computed = report.root_hash.clone();
            bad(
                &mut report,
                Finding {
                    seq: None,
                    reference: None,
                    checkpoint: None,
                    problem: "head_root_mismatch",
                    detail: format!(
                        "the head's root {} is not the entries' root {}",
                        h.root_hash, computed
                    ),
                },
            );
        }
    }
    Ok(report)
}

/// A checkpoint whose size the range just reached: its stored root, its note's root and its
/// signature. `None` when all hold.
fn check_checkpoint(
    c: &tollgate_store::ledger::CheckpointRecord,
    range: &CompactRange,
    keys: &[NoteKey],
) -> Option<Finding> {
    let root = range.root();
    let finding = |problem, detail: String| Finding {
        seq: None,
        reference: None,
        checkpoint: Some(c.size),
        problem,
        detail,
    };
    if parse_hash(&c.root_hash).ok() != Some(root) {
        return Some(finding(
            "checkpoint_root_mismatch",
            format!(
                "the checkpoint at size {} records a root the entries do not give",
                c.size
            ),
        ));
    }
    match Checkpoint::verify(&c.note, keys) {
        Err(e) => Some(finding(
            "checkpoint_bad_signature",
            format!("the checkpoint at size {}: {e}", c.size),
        )),
        Ok(note) if note.root != root || i64::try_from(note.size).ok() != Some(c.size) => {
            Some(finding(
                "checkpoint_root_mismatch",
                format!(
                    "the signed note at size {} names another size or root",
                    c.size
                ),
            ))
        }
        Ok(_) => None,
    }
}
