//! Sealing: appends the usage events and domain events written since the last pass to the log,
//! then signs a checkpoint of the new size (when the operator's master key is configured: the
//! checkpoint is signed with the workspace's Ed25519 key, the one that signs licenses).

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
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

/// Records sealed per pass, at most; a pass that fills it is followed by another at once.
///
/// Each pass is one write transaction, so one fsync: on SQLite's one writer a pass of 1,000
/// cost about what an ingest batch of 1,000 events does, and sealing every second beside a
/// burst of 1,000-event batches doubled the commits ingest waits behind. 10,000 entries hold
/// the writer for tens of milliseconds (their rows are appended 64 to a statement) and keep a
/// pass's records, about 1 kB each while hashed, to about 10 MB.
pub const PASS_LIMIT: i64 = 10_000;

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
///
/// Written straight into one string (no sorted copy of the body is built): sealing runs this
/// once per event, beside ingest on the same writer.
pub fn entry_text(source: &LedgerSource) -> String {
    let mut out = Vec::with_capacity(320);
    // The top-level keys, already in sorted order: at, body, customer, id, kind, subject, type.
    out.extend_from_slice(b"{\"at\":");
    push_str_value(&mut out, &source.at.to_string());
    out.extend_from_slice(b",\"body\":");
    push_canonical(&mut out, &source.body);
    out.extend_from_slice(b",\"customer\":");
    match &source.customer {
        Some(customer) => push_str_value(&mut out, customer),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"id\":");
    push_str_value(&mut out, &source.reference);
    out.extend_from_slice(b",\"kind\":");
    push_str_value(&mut out, source.kind.as_str());
    if let Some(subject) = &source.subject {
        out.extend_from_slice(b",\"subject\":");
        push_str_value(&mut out, subject);
    }
    out.extend_from_slice(b",\"type\":");
    push_str_value(&mut out, &source.event_type);
    out.push(b'}');
    // Only JSON's own bytes and escaped UTF-8 strings were written.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A JSON string literal, escaped as serde_json escapes it, written in place (no `Value`, no
/// `String` per string: a pass writes tens of thousands of them).
fn push_str_value(out: &mut Vec<u8>, text: &str) {
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// `value` as canonical JSON: every object's keys in sorted order, whatever order the map keeps.
fn push_canonical(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_str_value(out, key);
                out.push(b':');
                push_canonical(out, &map[key]);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_canonical(out, item);
            }
            out.push(b']');
        }
        // Numbers as stored (arbitrary precision), `true`, `false`, `null`.
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
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
    let newest = engine.store().latest_checkpoint(&ws).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Map;
    use tollgate_store::ledger::EntryKind;

    /// The text as the first version of the ledger wrote it (a sorted copy of the whole record,
    /// serialized): entries sealed then must verify now, so the two must agree byte for byte.
    fn entry_text_by_copy(source: &LedgerSource) -> String {
        fn sorted(value: &Value) -> Value {
            match value {
                Value::Object(map) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    let mut out = Map::new();
                    for key in keys {
                        out.insert(key.clone(), sorted(&map[key]));
                    }
                    Value::Object(out)
                }
                Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
                other => other.clone(),
            }
        }
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
        sorted(&Value::Object(entry)).to_string()
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "-?(0|[1-9][0-9]{0,29})(\\.[0-9]{1,20})?"
                .prop_map(|n| serde_json::from_str(&n).unwrap()),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn entry_text_is_the_sorted_copy_serialized(
            body in json_value(),
            reference in any::<String>(),
            customer in proptest::option::of(any::<String>()),
            subject in proptest::option::of(any::<String>()),
            event_type in any::<String>(),
            usage in any::<bool>(),
            micros in 0i64..4_000_000_000_000_000,
        ) {
            let at = Timestamp::from_microsecond(micros).unwrap();
            let source = LedgerSource {
                kind: if usage { EntryKind::Usage } else { EntryKind::Action },
                reference,
                customer,
                event_type,
                at,
                subject,
                body,
                written_at: at,
            };
            prop_assert_eq!(entry_text(&source), entry_text_by_copy(&source));
        }
    }
}
