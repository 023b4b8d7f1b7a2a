//! The ledger's rows (docs/TRUST.md, "The ledger"): the entries of each workspace's Merkle log,
//! its head, and its signed checkpoints.
//!
//! Nothing here runs on the ingest path. A sealing pass ([`LedgerStore::seal_ledger`]) takes the
//! workspace's head row first (so two nodes never append at once), reads the usage events and
//! domain events written since the last pass that are not in the log yet, lets the caller turn
//! them into entries and a new head (the hashing is the caller's: the store only keeps rows), and
//! writes both in one transaction. Reading "written since" with a margin and "not in the log" by
//! its unique key means an event committed late by a slow transaction is sealed by a later pass,
//! never skipped.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tollgate_core::ids::WorkspaceId;

use crate::backend::{Arg, Backend, Conn, args, run_all, run_optional};
use crate::codec::Columns;
use crate::{StoreError, StoreResult, sql};

/// How far before the head's `sealed_until` a sweep looks again, for events whose transaction
/// committed after a later one was sealed (far longer than any write transaction runs).
pub const RESEAL_MARGIN: SignedDuration = SignedDuration::from_mins(10);
/// How far every pass looks back: write transactions of ingest last milliseconds, so a record
/// committed later than this after a newer one was sealed waits for the next sweep.
pub const RECENT_MARGIN: SignedDuration = SignedDuration::from_secs(30);

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// An accepted usage event (`ref`: its id).
    Usage,
    /// A domain event: an operator's action or a change it caused (`ref`: the `evt_` id).
    Action,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Usage => "usage",
            EntryKind::Action => "action",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "usage" => Ok(EntryKind::Usage),
            "action" => Ok(EntryKind::Action),
            other => Err(StoreError::Corrupt(format!("ledger entry kind {other:?}"))),
        }
    }
}

/// One leaf of the log: `entry` is the exact text hashed (`leaf_hash`, hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntryRecord {
    pub workspace: String,
    /// The leaf's index, from 0, gapless.
    pub seq: i64,
    pub kind: EntryKind,
    pub reference: String,
    pub customer: Option<String>,
    pub entry: String,
    pub leaf_hash: String,
    pub sealed_at: Timestamp,
}

/// The log's head: its size, its compact range (`frontier`: the perfect subtrees' roots, hex,
/// as a JSON array) and root, and the write time of the newest record sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerHeadRecord {
    pub workspace: String,
    pub size: i64,
    pub frontier: Vec<String>,
    pub root_hash: String,
    pub sealed_until: Timestamp,
    pub updated_at: Timestamp,
}

/// A signed checkpoint of the log at `size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub workspace: String,
    pub size: i64,
    pub root_hash: String,
    pub note: String,
    pub created_at: Timestamp,
}

/// A record as the log sees it: a usage event or a domain event, with its stored fields.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerSource {
    pub kind: EntryKind,
    pub reference: String,
    pub customer: Option<String>,
    /// The event's type (`cloud.cost`, `invoice.finalized`).
    pub event_type: String,
    /// When it happened: the usage event's timestamp, the domain event's `occurred_at`.
    pub at: Timestamp,
    pub subject: Option<String>,
    /// Its properties (usage) or data (domain event), as stored.
    pub body: serde_json::Value,
    /// When it was written: what passes order and resume by.
    pub written_at: Timestamp,
}

/// What a sealing pass appends: computed by the caller from the head and the new records.
pub struct Sealed {
    pub head: LedgerHeadRecord,
    pub entries: Vec<LedgerEntryRecord>,
}

/// Turns the head (absent before the first pass) and the records read into what to write.
pub type SealFn<'a> =
    dyn Fn(Option<LedgerHeadRecord>, Vec<LedgerSource>) -> StoreResult<Sealed> + Send + Sync + 'a;

#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// One sealing pass over at most `limit` records written since `look_back` before the
    /// newest one sealed: found on a read session, appended in one transaction under the head's
    /// lock; the new head, or `None` when nothing was waiting (then nothing is written).
    async fn seal_ledger(
        &self,
        workspace: &WorkspaceId,
        now: Timestamp,
        limit: i64,
        look_back: SignedDuration,
        seal: &SealFn<'_>,
    ) -> StoreResult<Option<LedgerHeadRecord>>;
    async fn ledger_head(&self, workspace: &WorkspaceId) -> StoreResult<Option<LedgerHeadRecord>>;
    /// Entries with `from <= seq < to`, in order.
    async fn ledger_entries(
        &self,
        workspace: &WorkspaceId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<LedgerEntryRecord>>;
    async fn ledger_entry_of(
        &self,
        workspace: &WorkspaceId,
        kind: EntryKind,
        reference: &str,
    ) -> StoreResult<Option<LedgerEntryRecord>>;
    /// The record an entry was made from, as it is stored now (to check it was not changed).
    async fn ledger_source(
        &self,
        workspace: &WorkspaceId,
        kind: EntryKind,
        reference: &str,
    ) -> StoreResult<Option<LedgerSource>>;
    async fn add_checkpoint(&self, checkpoint: &CheckpointRecord) -> StoreResult<()>;
    /// Every checkpoint, smallest first.
    async fn checkpoints(&self, workspace: &WorkspaceId) -> StoreResult<Vec<CheckpointRecord>>;
    /// The largest checkpoint: one row, where every second's sealing pass and every proof
    /// would otherwise read a list that grows by one a second.
    async fn latest_checkpoint(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<CheckpointRecord>>;
}

fn entry(r: &impl Columns) -> StoreResult<LedgerEntryRecord> {
    Ok(LedgerEntryRecord {
        workspace: r.text("workspace")?,
        seq: r.int("seq")?,
        kind: EntryKind::parse(&r.text("kind")?)?,
        reference: r.text("ref")?,
        customer: r.opt_text("customer")?,
        entry: r.text("entry")?,
        leaf_hash: r.text("leaf_hash")?,
        sealed_at: r.time("sealed_at")?,
    })
}

fn head(r: &impl Columns) -> StoreResult<LedgerHeadRecord> {
    let frontier = r.text("frontier")?;
    Ok(LedgerHeadRecord {
        workspace: r.text("workspace")?,
        size: r.int("size")?,
        frontier: serde_json::from_str(&frontier)
            .map_err(|e| StoreError::Corrupt(format!("ledger frontier: {e}")))?,
        root_hash: r.text("root_hash")?,
        sealed_until: r.time("sealed_until")?,
        updated_at: r.time("updated_at")?,
    })
}

fn checkpoint(r: &impl Columns) -> StoreResult<CheckpointRecord> {
    Ok(CheckpointRecord {
        workspace: r.text("workspace")?,
        size: r.int("size")?,
        root_hash: r.text("root_hash")?,
        note: r.text("note")?,
        created_at: r.time("created_at")?,
    })
}

fn json(text: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}

fn usage_source(r: &impl Columns) -> StoreResult<LedgerSource> {
    Ok(LedgerSource {
        kind: EntryKind::Usage,
        reference: r.text("id")?,
        customer: Some(r.text("customer")?),
        event_type: r.text("event_type")?,
        at: r.time("ts")?,
        subject: r.opt_text("subject")?,
        body: json(&r.text("properties")?)?,
        written_at: r.time("received_at")?,
    })
}

fn action_source(r: &impl Columns) -> StoreResult<LedgerSource> {
    Ok(LedgerSource {
        kind: EntryKind::Action,
        reference: r.text("id")?,
        customer: r.opt_text("customer")?,
        event_type: r.text("type")?,
        at: r.time("occurred_at")?,
        subject: None,
        body: json(&r.text("data")?)?,
        written_at: r.time("created_at")?,
    })
}

/// Records written since `look_back` before the newest one sealed (everything before the first
/// pass) and not in the log yet, oldest first, at most `limit`.
async fn unsealed<C: Conn>(
    session: &mut C,
    workspace: &WorkspaceId,
    head: Option<&LedgerHeadRecord>,
    look_back: SignedDuration,
    limit: i64,
) -> StoreResult<Vec<LedgerSource>> {
    let since = head
        .map(|h| h.sealed_until)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .checked_sub(look_back)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let mut sources = Vec::new();
    for row in session
        .fetch_all(sql::LEDGER_UNSEALED_EVENTS, args![workspace, since, limit])
        .await?
    {
        sources.push(usage_source(&row)?);
    }
    for row in session
        .fetch_all(sql::LEDGER_UNSEALED_ACTIONS, args![workspace, since, limit])
        .await?
    {
        sources.push(action_source(&row)?);
    }
    sources.sort_by(|a, b| {
        (a.written_at, a.kind.as_str(), &a.reference).cmp(&(
            b.written_at,
            b.kind.as_str(),
            &b.reference,
        ))
    });
    sources.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(sources)
}

#[async_trait]
impl<B: Backend> LedgerStore for B {
    async fn seal_ledger(
        &self,
        workspace: &WorkspaceId,
        now: Timestamp,
        limit: i64,
        look_back: SignedDuration,
        seal: &SealFn<'_>,
    ) -> StoreResult<Option<LedgerHeadRecord>> {
        // Find what waits on a read session first: the scan holds no write lock (on SQLite,
        // the one writer ingest needs), and a pass that finds nothing writes nothing.
        let seen = run_optional(
            self.read(workspace),
            sql::LEDGER_HEAD,
            args![workspace],
            head,
        )
        .await?
        .filter(|h| !h.root_hash.is_empty());
        let mut session = self.read(workspace).await?;
        let sources = unsealed(&mut session, workspace, seen.as_ref(), look_back, limit).await?;
        session.commit().await?;
        if sources.is_empty() {
            return Ok(None);
        }
        // Hash before taking the write lock: building and hashing a pass's entries is most of
        // its CPU, and on SQLite the write lock is the one writer every ingest batch waits for.
        // Nearly always the head is still the one read above; if another pass sealed in
        // between, the entries are built again under the lock.
        let prepared = seal(seen.clone(), sources)?;
        let mut tx = self.write(workspace).await?;
        // The head's row lock (an update takes it on PostgreSQL; SQLite writes one at a time).
        let empty = serde_json::to_string(&Vec::<String>::new()).unwrap_or_default();
        tx.execute(
            sql::LEDGER_HEAD_INIT,
            args![workspace, &empty, "", Timestamp::UNIX_EPOCH, now],
        )
        .await?;
        tx.execute(sql::LEDGER_HEAD_LOCK, args![workspace, now])
            .await?;
        let current = tx
            .fetch_optional(sql::LEDGER_HEAD, args![workspace])
            .await?
            .as_ref()
            .map(head)
            .transpose()?
            .filter(|h| !h.root_hash.is_empty());
        // Another pass sealed in between: what it sealed may be in `prepared`; look again,
        // under the lock this time, and build the entries on the head as it is now.
        let state = |h: Option<&LedgerHeadRecord>| h.map(|h| (h.size, h.root_hash.clone()));
        let Sealed { head: new, entries } = if state(current.as_ref()) == state(seen.as_ref()) {
            prepared
        } else {
            let sources = unsealed(&mut tx, workspace, current.as_ref(), look_back, limit).await?;
            if sources.is_empty() {
                return Ok(None);
            }
            seal(current, sources)?
        };
        let mut rest = entries.as_slice();
        while !rest.is_empty() {
            // The largest power of two that fits: a 1,000-entry pass is 17 statements, not 1,000.
            let rows = rest.len().min(sql::LEDGER_INSERT_CHUNK);
            let rows = 1usize << rows.ilog2();
            let (chunk, tail) = rest.split_at(rows);
            let mut values = Vec::with_capacity(rows * 8);
            for e in chunk {
                values.extend([
                    Arg::from(&e.workspace),
                    Arg::from(e.seq),
                    Arg::from(e.kind.as_str()),
                    Arg::from(&e.reference),
                    Arg::from(e.customer.as_deref()),
                    Arg::from(&e.entry),
                    Arg::from(&e.leaf_hash),
                    Arg::from(e.sealed_at),
                ]);
            }
            tx.execute(
                sql::insert_ledger_entries(rows, Self::ANONYMOUS_PARAMETERS),
                &values,
            )
            .await?;
            rest = tail;
        }
        let frontier = serde_json::to_string(&new.frontier)
            .map_err(|e| StoreError::Corrupt(format!("ledger frontier: {e}")))?;
        let values = args![
            workspace,
            new.size,
            &frontier,
            &new.root_hash,
            new.sealed_until,
            now,
        ];
        tx.execute(sql::UPDATE_LEDGER_HEAD, values).await?;
        tx.commit().await?;
        Ok(Some(new))
    }

    async fn ledger_head(&self, workspace: &WorkspaceId) -> StoreResult<Option<LedgerHeadRecord>> {
        Ok(run_optional(
            self.read(workspace),
            sql::LEDGER_HEAD,
            args![workspace],
            head,
        )
        .await?
        .filter(|h| !h.root_hash.is_empty()))
    }

    async fn ledger_entries(
        &self,
        workspace: &WorkspaceId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<LedgerEntryRecord>> {
        let values = args![workspace, from, to];
        run_all(self.read(workspace), sql::LEDGER_ENTRIES, values, entry).await
    }

    async fn ledger_entry_of(
        &self,
        workspace: &WorkspaceId,
        kind: EntryKind,
        reference: &str,
    ) -> StoreResult<Option<LedgerEntryRecord>> {
        let values = args![workspace, kind.as_str(), reference];
        run_optional(self.read(workspace), sql::LEDGER_ENTRY_OF, values, entry).await
    }

    async fn ledger_source(
        &self,
        workspace: &WorkspaceId,
        kind: EntryKind,
        reference: &str,
    ) -> StoreResult<Option<LedgerSource>> {
        let values = args![workspace, reference];
        match kind {
            EntryKind::Usage => {
                run_optional(
                    self.read(workspace),
                    if Self::PARTITIONED_EVENTS {
                        sql::LEDGER_EVENT_ROUTED
                    } else {
                        sql::LEDGER_EVENT
                    },
                    values,
                    usage_source,
                )
                .await
            }
            EntryKind::Action => {
                run_optional(
                    self.read(workspace),
                    sql::LEDGER_ACTION,
                    values,
                    action_source,
                )
                .await
            }
        }
    }

    async fn add_checkpoint(&self, c: &CheckpointRecord) -> StoreResult<()> {
        let values = args![&c.workspace, c.size, &c.root_hash, &c.note, c.created_at];
        let mut tx = self.write(&c.workspace).await?;
        tx.execute(sql::INSERT_CHECKPOINT, values).await?;
        Ok(tx.commit().await?)
    }

    async fn checkpoints(&self, workspace: &WorkspaceId) -> StoreResult<Vec<CheckpointRecord>> {
        run_all(
            self.read(workspace),
            sql::CHECKPOINTS,
            args![workspace],
            checkpoint,
        )
        .await
    }

    async fn latest_checkpoint(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<CheckpointRecord>> {
        run_optional(
            self.read(workspace),
            sql::LATEST_CHECKPOINT,
            args![workspace],
            checkpoint,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use sqlx::AssertSqlSafe;

    /// The "not in the log yet" reads stay one key probe per record on PostgreSQL however stale
    /// the statistics are: on freshly migrated, never analyzed tables (the state right after a
    /// burst) the plan has no anti-join, which the planner would run as every record against
    /// every entry. Runs in a schema of its own, dropped after.
    #[tokio::test]
    #[cfg_attr(
        not(tollgate_pg),
        ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
    )]
    async fn unsealed_reads_probe_the_key_per_record_on_postgres() {
        let scratch = crate::scratch::Scratch::new("unsealed").await;
        let pool = &scratch.pool;
        crate::migrations::postgres().run(pool).await.unwrap();
        for statement in [
            crate::sql::LEDGER_UNSEALED_EVENTS,
            crate::sql::LEDGER_UNSEALED_ACTIONS,
        ] {
            let plan: Vec<(String,)> =
                sqlx::query_as(AssertSqlSafe(format!("EXPLAIN {statement}")))
                    .bind("ws")
                    .bind(0i64)
                    .bind(1000i64)
                    .fetch_all(pool)
                    .await
                    .unwrap();
            let plan = plan
                .into_iter()
                .map(|(line,)| line)
                .collect::<Vec<_>>()
                .join("\n");
            assert!(!plan.contains("Anti Join"), "{plan}");
            assert!(plan.contains("SubPlan"), "{plan}");
        }
        scratch.drop_schema().await;
    }
}
