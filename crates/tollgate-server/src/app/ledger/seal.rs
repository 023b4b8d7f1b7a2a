//! Sealing: appends the usage events and domain events written since the last pass to the log,
//! then signs a checkpoint of the new size (when the operator's master key is configured: the
//! checkpoint is signed with the workspace's Ed25519 key, the one that signs licenses).

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};
use tollgate_core::ids::WorkspaceId;
use tollgate_store::StoreError;
use tollgate_store::ledger::{
    CheckpointRecord, LedgerEntryRecord, LedgerHeadRecord, LedgerSource, RECENT_MARGIN,
    RESEAL_MARGIN, Sealed,
};
use tollgate_verify::Checkpoint;
use tollgate_verify::merkle::{CompactRange, leaf_hash};

use super::{hex_hash, parse_hash};
use crate::app::licenses::active_signing_key;
use crate::engine::Engine;
use crate::error::AppResult;

/// Records sealed per pass, at most; a pass that fills it is followed by another at once. Each
/// pass is one write transaction: small ones let ingest (SQLite's one writer) in between.
const PASS_LIMIT: i64 = 1_000;

/// What one call of [`seal`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealReport {
    /// Entries appended by this call.
    pub appended: u64,
    /// The log's size and root after it.
    pub size: u64,
    pub root_hash: String,
    /// The checkpoint signed by this call, if any (none without a master key, or when the log
    /// did not grow since the last one).
    pub checkpoint: Option<String>,
}

/// The log's name in its checkpoints.
pub fn origin(workspace: &str) -> String {
    format!("tollgate.ledger/{workspace}")
}

/// The text an entry hashes: canonical JSON of the record (keys sorted at every depth, no
/// whitespace, numbers as stored), so it is rebuilt byte for byte from the stored record.
pub fn entry_text(source: &LedgerSource) -> String {
    let mut entry = Map::new();
    entry.insert("kind".into(), Value::from(source.kind.as_str()));
    entry.insert("id".into(), Value::from(source.reference.clone()));
    entry.insert(
        "customer".into(),
        source.customer.clone().map_or(Value::Null, Value::from),
    );
    entry.insert("type".into(), Value::from(source.event_type.clone()));
    entry.insert("at".into(), Value::from(source.at.to_string()));
    if let Some(subject) = &source.subject {
        entry.insert("subject".into(), Value::from(subject.clone()));
    }
    entry.insert("body".into(), source.body.clone());
    canonical(&Value::Object(entry)).to_string()
}

/// The same value with every object's keys in sorted order (whatever order the JSON map keeps).
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut sorted = Map::new();
            for key in keys {
                sorted.insert(key.clone(), canonical(&map[key]));
            }
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// How far a pass looks back for records committed late (written before the newest record
/// already sealed, by a transaction that committed after it):
///
/// - [`Reach::Tail`]: not at all: only what was written since the newest record sealed. The
///   cheapest pass (it reads no sealed record again), what most background passes are.
/// - [`Reach::Recent`]: the last 30 s, every ten seconds in the background loop.
/// - [`Reach::Sweep`]: the whole 10-minute margin a slow transaction could need, every five
///   minutes and on demand.
///
/// A record is skipped by a pass only if its transaction committed after a later one's; the
/// next wider pass seals it, so nothing written is ever left out of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Tail,
    Recent,
    Sweep,
}

impl Reach {
    fn look_back(self) -> SignedDuration {
        match self {
            Reach::Tail => SignedDuration::ZERO,
            Reach::Recent => RECENT_MARGIN,
            Reach::Sweep => RESEAL_MARGIN,
        }
    }
}

/// Appends everything waiting (pass after pass), then signs a checkpoint of the new size: a
/// sweep, what `POST /v1/ledger/seal` asks for.
pub async fn seal(engine: &Engine, workspace: &str, now: Timestamp) -> AppResult<SealReport> {
    seal_with(engine, workspace, now, Reach::Sweep).await
}

/// Passes of `reach` until one finds less than a full chunk; how many entries they appended.
async fn passes(
    engine: &Engine,
    ws: &WorkspaceId,
    workspace: &str,
    now: Timestamp,
    reach: Reach,
) -> AppResult<u64> {
    let mut appended = 0u64;
    loop {
        let before = engine.store().ledger_head(ws).await?.map_or(0, |h| h.size);
        let append = |head: Option<LedgerHeadRecord>, sources: Vec<LedgerSource>| {
            append_to(workspace, head, sources, now)
        };
        let Some(head) = engine
            .store()
            .seal_ledger(ws, now, PASS_LIMIT, reach.look_back(), &append)
            .await?
        else {
            return Ok(appended);
        };
        let added = u64::try_from(head.size - before).unwrap_or(0);
        appended += added;
        if added < u64::try_from(PASS_LIMIT).unwrap_or(u64::MAX) {
            return Ok(appended);
        }
    }
}

/// [`seal`] looking back as far as `reach` says.
pub async fn seal_with(
    engine: &Engine,
    workspace: &str,
    now: Timestamp,
    reach: Reach,
) -> AppResult<SealReport> {
    let ws = WorkspaceId::from(workspace);
    // Catch up on what was written since the newest record sealed first (tail passes read no
    // sealed record again), then look back as far as `reach` says once: a wide pass that ran
    // chunk after chunk would re-read its whole window for every chunk.
    let mut appended = passes(engine, &ws, workspace, now, Reach::Tail).await?;
    if reach != Reach::Tail {
        appended += passes(engine, &ws, workspace, now, reach).await?;
    }
    let head = engine.store().ledger_head(&ws).await?;
    let (size, root_hash) = head
        .as_ref()
        .map(|h| (u64::try_from(h.size).unwrap_or(0), h.root_hash.clone()))
        .unwrap_or((0, hex_hash(&tollgate_verify::merkle::empty_root())));
    let checkpoint = match head {
        Some(head) if engine.master_key().is_some() => checkpoint(engine, &head, now).await?,
        _ => None,
    };
    Ok(SealReport {
        appended,
        size,
        root_hash,
        checkpoint,
    })
}

/// The entries for `sources` and the head after them: pure, run inside the store's transaction.
fn append_to(
    workspace: &str,
    head: Option<LedgerHeadRecord>,
    sources: Vec<LedgerSource>,
    now: Timestamp,
) -> Result<Sealed, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("ledger head: {what}"));
    let (mut range, mut sealed_until) = match &head {
        None => (CompactRange::new(), Timestamp::UNIX_EPOCH),
        Some(h) => {
            let peaks = h
                .frontier
                .iter()
                .map(|p| parse_hash(p).map_err(|e| corrupt(e.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            let size = u64::try_from(h.size).map_err(|e| corrupt(e.to_string()))?;
            let range = CompactRange::from_parts(size, peaks)
                .ok_or_else(|| corrupt("its frontier does not fit its size".into()))?;
            (range, h.sealed_until)
        }
    };
    let mut entries = Vec::with_capacity(sources.len());
    for source in sources {
        let text = entry_text(&source);
        let leaf = leaf_hash(text.as_bytes());
        let seq = i64::try_from(range.size()).map_err(|e| corrupt(e.to_string()))?;
        range.push(leaf);
        sealed_until = sealed_until.max(source.written_at);
        entries.push(LedgerEntryRecord {
            workspace: workspace.to_owned(),
            seq,
            kind: source.kind,
            reference: source.reference,
            customer: source.customer,
            entry: text,
            leaf_hash: hex_hash(&leaf),
            sealed_at: now,
        });
    }
    Ok(Sealed {
        head: LedgerHeadRecord {
            workspace: workspace.to_owned(),
            size: i64::try_from(range.size()).map_err(|e| corrupt(e.to_string()))?,
            frontier: range.peaks().iter().map(hex_hash).collect(),
            root_hash: hex_hash(&range.root()),
            sealed_until,
            updated_at: now,
        },
        entries,
    })
}

/// Signs a checkpoint of `head` unless the newest one already has its size.
async fn checkpoint(
    engine: &Engine,
    head: &LedgerHeadRecord,
    now: Timestamp,
) -> AppResult<Option<String>> {
    let ws = WorkspaceId::from(&head.workspace);
    let newest = engine.store().checkpoints(&ws).await?.into_iter().last();
    if newest.is_some_and(|c| c.size >= head.size) {
        return Ok(None);
    }
    let key = active_signing_key(engine, &head.workspace, now).await?;
    let note = Checkpoint {
        origin: origin(&head.workspace),
        size: u64::try_from(head.size).unwrap_or(0),
        root: parse_hash(&head.root_hash)?,
    }
    .sign(&origin(&head.workspace), &key);
    engine
        .store()
        .add_checkpoint(&CheckpointRecord {
            workspace: head.workspace.clone(),
            size: head.size,
            root_hash: head.root_hash.clone(),
            note: note.clone(),
            created_at: now,
        })
        .await?;
    Ok(Some(note))
}
