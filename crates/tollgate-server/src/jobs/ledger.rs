//! The ledger's sealing loop: every `ledger_interval`, each workspace's new usage events and
//! domain events are appended to its log and a checkpoint is signed (`app::ledger::seal`).
//! Several nodes may run it: the head row's lock makes their passes take turns. Most passes
//! look back only the last seconds for records committed late; one every [`SWEEP_EVERY`]
//! looks back the whole margin (`app::ledger::Reach`).

use std::sync::Arc;
use std::time::Duration;

use crate::app::ledger;
use crate::engine::Engine;

/// How often a pass is a sweep (well inside the sweep's 10-minute look-back, so a record
/// committed up to 5 minutes late is still found).
pub const SWEEP_EVERY: Duration = Duration::from_secs(5 * 60);

pub async fn run_forever(engine: Arc<Engine>, interval: Duration) {
    let mut last_sweep: Option<std::time::Instant> = None;
    loop {
        tokio::time::sleep(interval).await;
        let reach = match last_sweep {
            Some(at) if at.elapsed() < SWEEP_EVERY => ledger::Reach::Recent,
            _ => {
                last_sweep = Some(std::time::Instant::now());
                ledger::Reach::Sweep
            }
        };
        let workspaces = match engine.store().list_workspaces().await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "ledger pass: cannot list workspaces");
                continue;
            }
        };
        for ws in workspaces {
            // One workspace's failure does not stop the others'.
            if let Err(e) = ledger::seal_with(&engine, &ws.id, engine.now(), reach).await {
                tracing::warn!(workspace = %ws.id, error = %e.describe(), "ledger pass failed");
            }
        }
    }
}
