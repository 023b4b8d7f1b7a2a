//! The ledger's sealing loop: every `ledger_interval`, each workspace's new usage events and
//! domain events are appended to its log and a checkpoint is signed (`app::ledger::seal`).
//! Several nodes may run it: the head row's lock makes their passes take turns.

use std::sync::Arc;
use std::time::Duration;

use crate::app::ledger;
use crate::engine::Engine;

pub async fn run_forever(engine: Arc<Engine>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let workspaces = match engine.store().list_workspaces().await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "ledger pass: cannot list workspaces");
                continue;
            }
        };
        for ws in workspaces {
            // One workspace's failure does not stop the others'.
            if let Err(e) = ledger::seal(&engine, &ws.id, engine.now()).await {
                tracing::warn!(workspace = %ws.id, error = %e.describe(), "ledger pass failed");
            }
        }
    }
}
