//! Group commit for SQLite ingest: the batches that arrive while one is being written join its
//! write transaction, and one `COMMIT` (one fsync of the WAL) makes all of them durable.
//!
//! Each batch runs inside its own `SAVEPOINT`, in arrival order, so an error in one batch rolls
//! back that batch only and its neighbours go on; duplicates across batches of one group are
//! decided as if the batches ran one after the other (a later batch sees the earlier ones' rows).
//! A batch's caller gets its outcomes only after the commit that holds them, and a failed commit
//! fails every batch of the group: "a 2xx means durable" holds per batch exactly as before.
//!
//! Nobody waits on a timer. A group is committed as soon as no new batch is queued behind it (or
//! it is full), by a small task spawned per batch: the task, not the request, commits, so a
//! request cancelled by its client (its future dropped) cannot leave the group open. A batch
//! cancelled half-way through its statements leaves the group marked `dirty`; whoever takes the
//! group next rolls the whole transaction back and fails the group, since what that batch left
//! behind cannot be told apart from what its neighbours wrote.

use sqlx::{Sqlite, SqlitePool, Transaction};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{Mutex, watch};

use super::ingest;
use crate::{IngestItem, IngestOutcome, StoreError, StoreResult};

/// A group is committed once it holds this many events, even with batches queued behind it: a
/// bound on how long the first batch of a group waits and on the transaction's size.
const MAX_GROUP_EVENTS: usize = 16_384;

/// The commit result of one group, shared by its batches (`None` while still open).
type Outcome = Option<Result<(), Arc<str>>>;

/// The group commit of one SQLite store.
pub(super) struct GroupCommit {
    open: Mutex<Open>,
    /// Batches waiting to join a group (queued on `open`); a group is not committed while there
    /// are some, since they would join it.
    arrivals: AtomicUsize,
    /// Groups committed, for the tests that check batches really share commits.
    commits: AtomicU64,
}

/// The group being written, if any.
struct Open {
    tx: Option<Transaction<'static, Sqlite>>,
    /// Counts groups, so a task knows whether the group it was spawned for is still open.
    epoch: u64,
    done: watch::Sender<Outcome>,
    events: usize,
    /// A batch is between `SAVEPOINT` and its release: if the lock is taken in that state, that
    /// batch was cancelled half-way.
    dirty: bool,
}

/// Decrements `arrivals` however the wait for the lock ends (it can be cancelled).
struct Arrival<'a>(&'a AtomicUsize);

impl<'a> Arrival<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Arrival(n)
    }
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("arrivals", &self.arrivals.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    pub(super) fn new() -> Self {
        GroupCommit {
            open: Mutex::new(Open {
                tx: None,
                epoch: 0,
                done: watch::channel(None).0,
                events: 0,
                dirty: false,
            }),
            arrivals: AtomicUsize::new(0),
            commits: AtomicU64::new(0),
        }
    }

    /// Stores one batch in the current group (starting one if none is open) and returns its
    /// outcomes once the group is committed.
    pub(super) async fn ingest(
        self: &Arc<Self>,
        pool: &SqlitePool,
        workspace: &str,
        items: &[IngestItem],
    ) -> StoreResult<Vec<IngestOutcome>> {
        let mut open = {
            let _arrival = Arrival::new(&self.arrivals);
            self.open.lock().await
        };
        if open.dirty {
            open.abort("an earlier batch of the group was interrupted half-way")
                .await;
        }
        if open.tx.is_none() {
            let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            open.tx = Some(tx);
            open.epoch = open.epoch.wrapping_add(1);
            open.done = watch::channel(None).0;
            open.events = 0;
        }
        let mut done = open.done.subscribe();
        // Spawned before the batch runs, so it also cleans up after a batch cancelled half-way.
        tokio::spawn(Arc::clone(self).finish(open.epoch));

        let state: &mut Open = &mut open;
        let Some(tx) = state.tx.as_mut() else {
            return Err(group_failed("no transaction is open"));
        };
        state.dirty = true;
        let written = run_batch(tx, workspace, items).await;
        let outcomes = match written {
            Ok(outcomes) => outcomes,
            Err(BatchError::Own(e)) => {
                // Rolled back to its savepoint: the group goes on without it.
                open.dirty = false;
                return Err(e);
            }
            Err(BatchError::Group(e)) => {
                open.abort(&e.to_string()).await;
                return Err(e);
            }
        };
        open.dirty = false;
        open.events = open.events.saturating_add(items.len());
        drop(open);

        let committed = done.wait_for(Option::is_some).await.map(|r| r.clone());
        match committed {
            Ok(Some(Ok(()))) => Ok(outcomes),
            Ok(Some(Err(message))) => Err(group_failed(&message)),
            Ok(None) | Err(_) => Err(group_failed("the group ended without committing")),
        }
    }

    /// Commits group `epoch` once nothing is queued to join it; returns if it is already over.
    async fn finish(self: Arc<Self>, epoch: u64) {
        loop {
            let mut open = self.open.lock().await;
            if open.epoch != epoch || open.tx.is_none() {
                return;
            }
            if open.dirty {
                open.abort("a batch of the group was interrupted half-way")
                    .await;
                return;
            }
            if self.arrivals.load(Ordering::SeqCst) == 0 || open.events >= MAX_GROUP_EVENTS {
                if open.commit().await {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            // Let the queued batches in first (the lock is fair: they are ahead of this task).
            drop(open);
            tokio::task::yield_now().await;
        }
    }
}

impl Open {
    /// Commits the group and tells its batches; true if the commit succeeded.
    async fn commit(&mut self) -> bool {
        let Some(tx) = self.tx.take() else {
            return false;
        };
        let result = tx.commit().await.map_err(|e| Arc::from(e.to_string()));
        if let Err(error) = &result {
            tracing::error!(%error, "the group commit of an ingest failed");
        }
        let ok = result.is_ok();
        self.done.send_replace(Some(result));
        ok
    }

    /// Rolls the whole group back and fails every batch in it.
    async fn abort(&mut self, why: &str) {
        self.dirty = false;
        if let Some(tx) = self.tx.take() {
            // The rollback's own error changes nothing: the batches have failed either way, and
            // a connection left in a bad state is closed by the pool.
            let _ = tx.rollback().await;
        }
        tracing::error!(why, "an ingest group was rolled back");
        self.done.send_replace(Some(Err(Arc::from(why))));
    }
}

enum BatchError {
    /// The batch failed and was rolled back on its own.
    Own(StoreError),
    /// The transaction cannot go on: the whole group fails.
    Group(StoreError),
}

/// One batch between `SAVEPOINT` and `RELEASE`, or rolled back to its savepoint on error.
async fn run_batch(
    tx: &mut Transaction<'static, Sqlite>,
    workspace: &str,
    items: &[IngestItem],
) -> Result<Vec<IngestOutcome>, BatchError> {
    let group = |e: sqlx::Error| BatchError::Group(e.into());
    sqlx::query("SAVEPOINT ingest_batch")
        .execute(&mut **tx)
        .await
        .map_err(group)?;
    match ingest::ingest(tx, workspace, items).await {
        Ok(outcomes) => {
            sqlx::query("RELEASE ingest_batch")
                .execute(&mut **tx)
                .await
                .map_err(group)?;
            Ok(outcomes)
        }
        Err(e) => {
            sqlx::query("ROLLBACK TO ingest_batch")
                .execute(&mut **tx)
                .await
                .map_err(group)?;
            sqlx::query("RELEASE ingest_batch")
                .execute(&mut **tx)
                .await
                .map_err(group)?;
            Err(BatchError::Own(e))
        }
    }
}

fn group_failed(message: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!(
        "the group commit holding this batch failed: {message}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;
    use crate::{
        AggregateOp, AggregateUpdate, CustomerRecord, EventRecord, Store, WorkspaceRecord,
    };
    use jiff::Timestamp;
    use rust_decimal::Decimal;
    use std::str::FromStr;
    use tollgate_core::ids::{CustomerId, WorkspaceId};

    const WS: &str = "ws_group";

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn item(id: &str, calls: &str) -> IngestItem {
        IngestItem {
            event: EventRecord {
                workspace: WS.to_owned(),
                id: id.to_owned(),
                customer: "cus_a".to_owned(),
                event_type: "api_call".to_owned(),
                timestamp: at("2026-01-05T00:00:00Z"),
                subject: None,
                properties: serde_json::json!({"n": id}),
                received_at: at("2026-01-05T00:00:01Z"),
            },
            updates: vec![AggregateUpdate {
                meter: "calls".to_owned(),
                period_start: at("2026-01-01T00:00:00Z"),
                subject: String::new(),
                group_key: String::new(),
                op: AggregateOp::Add(Decimal::from_str(calls).unwrap()),
            }],
        }
    }

    async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        store
            .create_workspace(&WorkspaceRecord {
                id: WS.to_owned(),
                name: "Group".to_owned(),
                created_at: at("2026-01-01T00:00:00Z"),
            })
            .await
            .unwrap();
        store
            .create_customer(&CustomerRecord {
                workspace: WS.to_owned(),
                id: "cus_a".to_owned(),
                name: None,
                email: None,
                suspended: false,
                has_payment_method: false,
                test_clock: None,
                metadata: serde_json::json!({}),
                created_at: at("2026-01-01T00:00:00Z"),
                address: serde_json::json!({}),
                tax_ids: serde_json::json!([]),
                archived_at: None,
            })
            .await
            .unwrap();
        store
    }

    async fn calls(store: &SqliteStore) -> Decimal {
        store
            .aggregates(
                &WorkspaceId::from(WS),
                &CustomerId::from("cus_a"),
                at("2026-01-01T00:00:00Z"),
            )
            .await
            .unwrap()
            .iter()
            .find(|r| r.meter == "calls")
            .map(|r| r.value)
            .unwrap_or_default()
    }

    /// Sends `batches` while the group is held, each queued behind the one before (the lock is
    /// fair), so they form one group in this order; returns each batch's result.
    async fn queued(
        store: &SqliteStore,
        batches: Vec<Vec<IngestItem>>,
    ) -> Vec<StoreResult<Vec<IngestOutcome>>> {
        let held = store.group.open.lock().await;
        let mut tasks = Vec::new();
        for (n, batch) in batches.into_iter().enumerate() {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.ingest(&WorkspaceId::from(WS), &batch).await
            }));
            while store.group.arrivals.load(Ordering::SeqCst) <= n {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        results
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_batches_share_one_commit_and_see_each_other_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let before = store.group.commits.load(Ordering::Relaxed);
        let results = queued(
            &store,
            vec![
                vec![item("shared", "100"), item("a", "1")],
                vec![item("b", "1"), item("shared", "100")],
                vec![item("shared", "100"), item("c", "1"), item("c", "1")],
            ],
        )
        .await;
        let outcomes: Vec<_> = results.into_iter().map(Result::unwrap).collect();
        use IngestOutcome::{Accepted, Duplicate};
        assert_eq!(
            outcomes,
            vec![
                vec![Accepted, Accepted],
                vec![Accepted, Duplicate],
                vec![Duplicate, Accepted, Duplicate],
            ]
        );
        assert_eq!(store.group.commits.load(Ordering::Relaxed) - before, 1);
        assert_eq!(calls(&store).await, Decimal::from(103));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_batch_leaves_its_group_neighbours_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let huge = Decimal::MAX.to_string();
        // The middle batch's sum overflows: its events are inserted before its updates are
        // summed and fail, so they must be rolled back with it.
        let results = queued(
            &store,
            vec![
                vec![item("first", "1")],
                vec![item("over_1", "1"), item("over_2", &huge)],
                vec![item("after", "1")],
            ],
        )
        .await;
        assert!(results[0].is_ok());
        assert!(results[1].is_err(), "{:?}", results[1]);
        assert!(results[2].is_ok());
        assert_eq!(calls(&store).await, Decimal::from(2));
        // The failed batch stored nothing: its events are new when sent again.
        let again = store
            .ingest(&WorkspaceId::from(WS), &[item("over_1", "0")])
            .await
            .unwrap();
        assert_eq!(again, vec![IngestOutcome::Accepted]);
        let dup = store
            .ingest(&WorkspaceId::from(WS), &[item("after", "0")])
            .await
            .unwrap();
        assert_eq!(dup, vec![IngestOutcome::Duplicate]);
    }
}
