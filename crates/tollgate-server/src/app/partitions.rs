//! The monthly partitions of `events` on PostgreSQL (docs/SCALING.md, docs/OPERATIONS.md):
//! the scheduler prepares the current and next month's partitions ahead, and an operator lists
//! them and detaches an old month (`tollgate events partitions`, `detach-partition`). On SQLite
//! preparing is nothing to do, and listing and detaching are refused with
//! `events_not_partitioned`.

use tollgate_core::code::Code;
pub use tollgate_store::partitions::{EventMonth, EventPartition};

use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The months whose partitions [`prepare`] makes: the one `now` is in and the next, so a new
/// month's first events never wait for the scheduler (nor land in the default partition).
pub fn months_ahead(now: jiff::Timestamp) -> Vec<EventMonth> {
    let current = EventMonth::of(now);
    current
        .into_iter()
        .chain(current.and_then(EventMonth::next))
        .collect()
}

/// Creates the partitions of [`months_ahead`] that are missing (idempotent; several nodes may
/// run it at once). The months created now.
pub async fn prepare(engine: &Engine) -> AppResult<Vec<EventMonth>> {
    let store = engine.store();
    let mut created = Vec::new();
    if !store.events_partitioned() {
        return Ok(created);
    }
    for month in months_ahead(engine.now()) {
        if store.create_event_partition(month).await? {
            created.push(month);
        }
    }
    Ok(created)
}

/// The refusal on SQLite, which keeps one `events` table.
fn not_partitioned() -> Error {
    Error::invalid(
        Code::EventsNotPartitioned,
        "events are partitioned by month on PostgreSQL only: this store is SQLite, which keeps \
         one events table (old rows are deleted there by received_at)",
    )
}

/// Every partition (attached or detached) and the default one, by name.
pub async fn list(engine: &Engine) -> AppResult<Vec<EventPartition>> {
    let store = engine.store();
    if !store.events_partitioned() {
        return Err(not_partitioned());
    }
    Ok(store.event_partitions().await?)
}

/// Detaches `month`'s partition: its events leave every read (the table stays, to archive and
/// drop), their ids stay, so a retry of one of them is still a duplicate. Refused for the
/// current month and later ones (`partition_month_open`: events are still arriving there), and
/// on SQLite. `not_found` when no such partition is attached.
pub async fn detach(engine: &Engine, month: EventMonth) -> AppResult<EventMonth> {
    let store = engine.store();
    if !store.events_partitioned() {
        return Err(not_partitioned());
    }
    let now = engine.now();
    if month.end() > now {
        return Err(Error::invalid(
            Code::PartitionMonthOpen,
            format!(
                "{month} has not ended (it is {now} now): only a month before the current one \
                 may be detached"
            ),
        ));
    }
    if !store.detach_event_partition(month).await? {
        return Err(Error::not_found("attached partition", &month.table()));
    }
    tracing::info!(%month, table = %month.table(), "events partition detached");
    Ok(month)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_and_next_months_are_prepared() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let months = |s| {
            months_ahead(at(s))
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(months("2026-12-31T23:59:59Z"), ["2026-12", "2027-01"]);
        assert_eq!(months("2027-01-01T00:00:00Z"), ["2027-01", "2027-02"]);
    }
}
