//! The bill run's workers: each claims a chunk of customers ([`BillingStore::claim_bill_customers`],
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL), reads and rates it, and hands its common invoices to
//! its writer through a channel of one chunk, so the next chunk is claimed, read and rated while
//! the last one is written. At most three chunks per worker are in memory: one rated, one
//! waiting, one being written.
//!
//! A worker releases its customers once their invoices are written, and stops when its pass has
//! nothing left: no customer it has not seen billed since it began, none held by another worker
//! (of this run, of a run at the same moment, of another node). Customers another run claimed
//! before this one began are billed again by this one once released (the other's "now" may be
//! earlier than this run's); their invoices are found by their keys, so nothing is billed twice
//! (`docs/SCALING.md`, "The bill run").
//!
//! [`BillingStore::claim_bill_customers`]: tollgate_store::billing::BillingStore::claim_bill_customers

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::SubscriptionRecord;
use tollgate_store::billing::{InvoiceEffects, InvoiceRecord};
use tollgate_store::jobs::Lease;

use super::{BillRunReport, CHUNK, flush, rate_chunk, read_chunk};
use crate::billing::profiles::SellerProfile;
use crate::engine::Engine;
use crate::error::AppResult;

/// How long a claim holds its customers: a worker that stops (a crash, a lost node) leaves
/// them to others after this. Far longer than a chunk takes; a chunk that took longer would be
/// billed by two workers, and its invoices found by their keys by the second.
const LEASE: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);

/// How often a worker with nothing to claim looks again while other workers hold customers.
const WAIT: Duration = Duration::from_millis(100);

/// What every worker of a run shares.
#[derive(Clone)]
pub(super) struct Run {
    pub engine: Arc<Engine>,
    pub workspace: String,
    /// The pass this run began ([`BillingStore::begin_bill_pass`]).
    ///
    /// [`BillingStore::begin_bill_pass`]: tollgate_store::billing::BillingStore::begin_bill_pass
    pub pass: i64,
    pub seller: Arc<Option<SellerProfile>>,
    /// False for the benchmark's baseline (each subscription's rows read alone).
    pub chunked: bool,
    /// Set by a worker that failed: the others claim nothing more.
    pub stop: Arc<AtomicBool>,
}

/// A chunk rated, on its way to the writer.
struct Rated {
    customers: Vec<String>,
    batch: Vec<(SubscriptionRecord, InvoiceRecord, InvoiceEffects)>,
    report: BillRunReport,
}

/// One worker (`name`, unique across nodes: it holds the leases), until its pass has nothing
/// left; each chunk's report goes to `written` once the chunk is written.
pub(super) async fn work(
    run: Run,
    name: String,
    written: mpsc::Sender<BillRunReport>,
) -> AppResult<()> {
    let outcome = work_until_done(&run, &name, &written).await;
    if outcome.is_err() {
        run.stop.store(true, Ordering::Relaxed);
    }
    outcome
}

async fn work_until_done(
    run: &Run,
    name: &str,
    written: &mpsc::Sender<BillRunReport>,
) -> AppResult<()> {
    let ws = WorkspaceId::from(run.workspace.as_str());
    loop {
        pipeline(run, name, written).await?;
        if run.stop.load(Ordering::Relaxed)
            || run
                .engine
                .store()
                .bill_pass_remaining(&ws, run.pass)
                .await?
                == 0
        {
            return Ok(());
        }
        // Others hold customers: they may stop before releasing them (then their lease runs
        // out and they are claimed here), or release customers this pass must bill again.
        tokio::time::sleep(WAIT).await;
    }
}

/// Claims, reads and rates chunks while the writer writes the one before, until nothing is
/// left to claim.
async fn pipeline(run: &Run, name: &str, written: &mpsc::Sender<BillRunReport>) -> AppResult<()> {
    let store = run.engine.store();
    let ws = WorkspaceId::from(run.workspace.as_str());
    let (to_writer, mut rated) = mpsc::channel::<Rated>(1);
    let rate = async {
        let to_writer = to_writer;
        // Claims go on after the last customer claimed, so none scans again the customers
        // billed before it; one that finds nothing there looks again from the first (customers
        // others held then, or released for this pass to bill again).
        let mut after = String::new();
        while !run.stop.load(Ordering::Relaxed) {
            let now = run.engine.now();
            let lease = Lease {
                worker: name.to_owned(),
                now,
                until: now.checked_add(LEASE).unwrap_or(now),
            };
            let customers = store
                .claim_bill_customers(
                    &ws,
                    run.pass,
                    &lease,
                    &after,
                    i64::try_from(CHUNK).unwrap_or(i64::MAX),
                )
                .await?;
            let Some(last) = customers.last() else {
                if after.is_empty() {
                    break;
                }
                after.clear();
                continue;
            };
            after.clone_from(last);
            let subs = store.subscriptions_of_customers(&ws, &customers).await?;
            let mut report = BillRunReport::default();
            let seller = run.seller.as_ref().as_ref();
            let read = read_chunk(&run.engine, &run.workspace, &subs, seller, run.chunked).await;
            let batch = rate_chunk(&run.engine, &subs, read, &mut report).await;
            let chunk = Rated {
                customers,
                batch,
                report,
            };
            if to_writer.send(chunk).await.is_err() {
                // The writer failed: its error is the pipeline's.
                break;
            }
        }
        Ok(())
    };
    let write = async {
        while let Some(mut chunk) = rated.recv().await {
            flush(
                &run.engine,
                &run.workspace,
                &mut chunk.batch,
                &mut chunk.report,
            )
            .await;
            store
                .release_bill_customers(&ws, name, &chunk.customers)
                .await?;
            // The run's reader stopped only if the run is over.
            let _ = written.send(chunk.report).await;
        }
        Ok(())
    };
    let (reader, writer) = tokio::join!(rate, write);
    reader.and(writer)
}
