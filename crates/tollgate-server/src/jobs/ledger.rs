//! The ledger's sealing loop: every `ledger_interval`, each workspace's new usage events and
//! domain events are appended to its log and a checkpoint is signed (`app::ledger::seal`).
//! Several nodes may run it: the head row's lock makes their passes take turns. Most passes
//! read only what was written since the newest record sealed; one every [`RECENT_EVERY`] looks
//! back the last seconds for records committed late, one every [`SWEEP_EVERY`] the whole
//! margin (`app::ledger::Reach`).

use std::sync::Arc;
use std::time::Duration;

use crate::app::ledger;
use crate::engine::Engine;

/// How often a pass is a sweep (well inside the sweep's 10-minute look-back, so a record
/// committed up to 5 minutes late is still found).
pub const SWEEP_EVERY: Duration = Duration::from_secs(5 * 60);

/// How often a pass looks back the recent margin (30 s): a record whose transaction committed
/// up to 20 s after a later one is sealed by the next such pass, the rest by a sweep.
pub const RECENT_EVERY: Duration = Duration::from_secs(10);

/// The reach of a pass `since_recent` after the last recent one and `since_sweep` after the
/// last sweep (`None`: there was none yet).
pub fn reach_for(since_recent: Option<Duration>, since_sweep: Option<Duration>) -> ledger::Reach {
    match (since_recent, since_sweep) {
        (_, None) => ledger::Reach::Sweep,
        (_, Some(s)) if s >= SWEEP_EVERY => ledger::Reach::Sweep,
        (Some(r), _) if r < RECENT_EVERY => ledger::Reach::Tail,
        _ => ledger::Reach::Recent,
    }
}

pub async fn run_forever(engine: Arc<Engine>, interval: Duration) {
    let mut last_sweep: Option<std::time::Instant> = None;
    let mut last_recent: Option<std::time::Instant> = None;
    loop {
        tokio::time::sleep(interval).await;
        let now = std::time::Instant::now();
        let reach = reach_for(
            last_recent.map(|at| at.elapsed()),
            last_sweep.map(|at| at.elapsed()),
        );
        match reach {
            ledger::Reach::Sweep => {
                last_sweep = Some(now);
                last_recent = Some(now);
            }
            ledger::Reach::Recent => last_recent = Some(now),
            ledger::Reach::Tail => {}
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_passes_are_tail_passes_with_recent_and_sweep_ones_between() {
        let secs = Duration::from_secs;
        assert_eq!(reach_for(None, None), ledger::Reach::Sweep);
        assert_eq!(reach_for(Some(secs(1)), Some(secs(1))), ledger::Reach::Tail);
        assert_eq!(reach_for(Some(secs(9)), Some(secs(9))), ledger::Reach::Tail);
        assert_eq!(
            reach_for(Some(secs(10)), Some(secs(10))),
            ledger::Reach::Recent
        );
        assert_eq!(reach_for(None, Some(secs(3))), ledger::Reach::Recent);
        assert_eq!(
            reach_for(Some(secs(1)), Some(secs(300))),
            ledger::Reach::Sweep
        );
    }
}
