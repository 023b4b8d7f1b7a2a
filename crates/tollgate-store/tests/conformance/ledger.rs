//! The ledger's rows (`LedgerStore`): a sealing pass appends each waiting record once, in write
//! order, with gapless indexes; a pass with nothing waiting writes nothing; a pass that looks
//! back no further than the newest record sealed does not see a record committed late with an
//! older write time, and one that looks back far enough seals it; `limit` bounds a pass;
//! checkpoints come back smallest first; another workspace's log is untouched.

use jiff::{SignedDuration, Timestamp};
use tollgate_core::ids::WorkspaceId;
use tollgate_store::ledger::{
    CheckpointRecord, EntryKind, LedgerEntryRecord, LedgerHeadRecord, LedgerSource, Sealed,
};
use tollgate_store::{IngestItem, StoreResult};

use super::Harness;
use super::support::{event, ts};

/// A stand-in for the app's sealing (it hashes; here an entry is its reference): appends the
/// sources after the head, in the order given.
fn append(
    ws: &str,
    head: Option<LedgerHeadRecord>,
    sources: Vec<LedgerSource>,
) -> StoreResult<Sealed> {
    let ws = ws.to_owned();
    let (size, until) = head
        .as_ref()
        .map_or((0, Timestamp::UNIX_EPOCH), |h| (h.size, h.sealed_until));
    let now = ts("2026-01-05T12:00:00Z");
    let entries: Vec<LedgerEntryRecord> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| LedgerEntryRecord {
            workspace: ws.clone(),
            seq: size + i64::try_from(i).unwrap(),
            kind: s.kind,
            reference: s.reference.clone(),
            customer: s.customer.clone(),
            entry: format!("{}:{}", s.kind.as_str(), s.reference),
            leaf_hash: format!("{:064x}", size + i64::try_from(i).unwrap()),
            sealed_at: now,
        })
        .collect();
    let size = size + i64::try_from(entries.len()).unwrap();
    Ok(Sealed {
        head: LedgerHeadRecord {
            workspace: ws,
            size,
            frontier: vec![format!("{size:064x}")],
            root_hash: format!("root-{size}"),
            sealed_until: sources
                .iter()
                .map(|s| s.written_at)
                .max()
                .unwrap_or(until)
                .max(until),
            updated_at: now,
        },
        entries,
    })
}

async fn seal(h: &Harness, limit: i64, look_back_secs: i64) -> Option<LedgerHeadRecord> {
    h.store
        .seal_ledger(
            &WorkspaceId::from(&h.ws),
            ts("2026-01-05T12:00:00Z"),
            limit,
            SignedDuration::from_secs(look_back_secs),
            &|head, sources| append(&h.ws, head, sources),
        )
        .await
        .unwrap()
}

async fn ingest_at(h: &Harness, id: &str, written: &str) {
    let item = IngestItem {
        event: event(&h.ws, id, "acme", ts(written)),
        updates: Vec::new(),
    };
    h.ingest(&h.ws, &[item]).await;
}

pub(crate) async fn ledger_passes_append_once_and_find_late_commits(h: &Harness) {
    let ws = WorkspaceId::from(&h.ws);
    h.customer(&h.ws, "acme").await;
    assert!(
        seal(h, 10, 0).await.is_none(),
        "an empty log: nothing to seal"
    );
    ingest_at(h, "e1", "2026-01-05T10:00:00Z").await;
    ingest_at(h, "e2", "2026-01-05T10:00:05Z").await;

    let head = seal(h, 10, 0).await.expect("two records waiting");
    assert_eq!(head.size, 2);
    assert_eq!(head.sealed_until, ts("2026-01-05T10:00:05Z"));
    assert_eq!(h.store.ledger_head(&ws).await.unwrap(), Some(head));
    assert!(
        seal(h, 10, 600).await.is_none(),
        "sealed once, however far a pass looks"
    );

    // e3 commits late: written before the newest record sealed. A pass that looks back no
    // further than that record seals e4 only; one that looks back 30 s finds e3.
    ingest_at(h, "e3", "2026-01-05T10:00:02Z").await;
    ingest_at(h, "e4", "2026-01-05T10:00:06Z").await;
    assert_eq!(seal(h, 10, 0).await.unwrap().size, 3);
    let late = seal(h, 10, 30).await.expect("the late record");
    assert_eq!(late.size, 4);
    assert_eq!(
        late.sealed_until,
        ts("2026-01-05T10:00:06Z"),
        "never moves back"
    );

    // `limit` bounds a pass; the next one goes on.
    for (id, at) in [("e5", "10:00:07"), ("e6", "10:00:08"), ("e7", "10:00:09")] {
        ingest_at(h, id, &format!("2026-01-05T{at}Z")).await;
    }
    assert_eq!(seal(h, 2, 0).await.unwrap().size, 6);
    assert_eq!(seal(h, 2, 0).await.unwrap().size, 7);
    assert!(seal(h, 2, 30).await.is_none());

    let entries = h.store.ledger_entries(&ws, 0, 100).await.unwrap();
    let order: Vec<(i64, &str)> = entries
        .iter()
        .map(|e| (e.seq, e.reference.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (0, "e1"),
            (1, "e2"),
            (2, "e4"),
            (3, "e3"),
            (4, "e5"),
            (5, "e6"),
            (6, "e7")
        ]
    );
    assert_eq!(h.store.ledger_entries(&ws, 2, 4).await.unwrap().len(), 2);
    let e3 = h
        .store
        .ledger_entry_of(&ws, EntryKind::Usage, "e3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((e3.seq, e3.entry.as_str()), (3, "usage:e3"));
    assert_eq!(e3.customer.as_deref(), Some("acme"));
    let source = h
        .store
        .ledger_source(&ws, EntryKind::Usage, "e3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(source.event_type, "api_call");
    assert_eq!(source.at, ts("2026-01-05T10:00:02Z"));
    assert_eq!(source.body["model"], "gpt-4");
    assert!(
        h.store
            .ledger_entry_of(&ws, EntryKind::Action, "e3")
            .await
            .unwrap()
            .is_none()
    );

    for size in [7, 4] {
        h.store
            .add_checkpoint(&CheckpointRecord {
                workspace: h.ws.clone(),
                size,
                root_hash: format!("root-{size}"),
                note: format!("note {size}"),
                created_at: ts("2026-01-05T12:00:00Z"),
            })
            .await
            .unwrap();
    }
    let sizes: Vec<i64> = h
        .store
        .checkpoints(&ws)
        .await
        .unwrap()
        .iter()
        .map(|c| c.size)
        .collect();
    assert_eq!(sizes, [4, 7], "smallest first");
    let latest = h.store.latest_checkpoint(&ws).await.unwrap().unwrap();
    assert_eq!(
        (latest.size, latest.note.as_str()),
        (7, "note 7"),
        "the largest"
    );

    let other = WorkspaceId::from(h.other_workspace().await.as_str());
    assert!(h.store.ledger_head(&other).await.unwrap().is_none());
    assert!(
        h.store
            .ledger_entries(&other, 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(h.store.checkpoints(&other).await.unwrap().is_empty());
    assert!(h.store.latest_checkpoint(&other).await.unwrap().is_none());
}

/// Passes running at once (two nodes' sealing loops, a `POST /v1/ledger/seal` beside the
/// background pass): each builds its entries before taking the write lock, on the head it read;
/// one that finds the head moved under the lock reads again and builds on the new head, so every
/// record is appended once and the indexes stay gapless, however the passes interleave.
pub(crate) async fn concurrent_passes_append_each_record_once(h: &Harness) {
    let ws = WorkspaceId::from(&h.ws);
    h.customer(&h.ws, "acme").await;
    let mut expected = 0;
    for round in 0..5 {
        for i in 0..20 {
            let id = format!("r{round}e{i:02}");
            ingest_at(h, &id, &format!("2026-01-05T10:{round:02}:{i:02}Z")).await;
            expected += 1;
        }
        // Four passes at once, each one looking back 30 s, three of them bounded to 7 records.
        let (a, b, c, d) = tokio::join!(
            seal(h, 7, 30),
            seal(h, 7, 30),
            seal(h, 100, 30),
            seal(h, 7, 30)
        );
        let sizes: Vec<i64> = [a, b, c, d]
            .into_iter()
            .flatten()
            .map(|head| head.size)
            .collect();
        assert!(!sizes.is_empty(), "some pass sealed round {round}");
        // Whatever the bounded passes left, a last one finishes.
        while seal(h, 100, 30).await.is_some() {}
        let head = h.store.ledger_head(&ws).await.unwrap().unwrap();
        assert_eq!(head.size, expected, "round {round}: every record once");
    }
    let entries = h.store.ledger_entries(&ws, 0, 1000).await.unwrap();
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..expected).collect::<Vec<_>>(), "gapless");
    let mut refs: Vec<&str> = entries.iter().map(|e| e.reference.as_str()).collect();
    refs.sort_unstable();
    refs.dedup();
    assert_eq!(refs.len(), entries.len(), "no record appended twice");
    // The stand-in's entry text names its index: an entry built on a stale head would carry the
    // index it was given there, not the one it was stored at.
    for e in &entries {
        assert_eq!(e.leaf_hash, format!("{:064x}", e.seq));
    }
}
