//! The monthly partitions of `events` on PostgreSQL (migration 0026, docs/SCALING.md): created
//! ahead by the scheduler, listed and detached by the operator. SQLite keeps one `events` table:
//! creating is nothing to do there, listing and detaching are refused.
//!
//! The DDL runs inside two `SECURITY DEFINER` functions the migration made, called as
//! `tollgate_app` like every other statement: the server never holds the owner's rights, and
//! those functions can do nothing but create or detach a month's partition.

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use tollgate_core::code::Code;

use crate::backend::{Backend, Conn, args};
use crate::codec::Columns;
use crate::{StoreError, StoreResult, sql};

/// A calendar month in UTC, the range of one partition: `[start, start of the next month)` of
/// `received_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventMonth {
    year: i16,
    month: i8,
}

impl EventMonth {
    /// The years a partition may cover (the migration's function refuses others too).
    pub const YEARS: std::ops::RangeInclusive<i16> = 1900..=9998;

    /// `None` outside [`Self::YEARS`] or for a month not in 1..=12.
    pub fn new(year: i16, month: i8) -> Option<EventMonth> {
        (Self::YEARS.contains(&year) && (1..=12).contains(&month))
            .then_some(EventMonth { year, month })
    }

    /// The month `at` falls in, in UTC (`None` outside [`Self::YEARS`]).
    pub fn of(at: Timestamp) -> Option<EventMonth> {
        let date = at.to_zoned(jiff::tz::TimeZone::UTC).date();
        EventMonth::new(date.year(), date.month())
    }

    pub fn year(self) -> i16 {
        self.year
    }

    pub fn month(self) -> i8 {
        self.month
    }

    /// The month after this one (`None` after December 9998).
    pub fn next(self) -> Option<EventMonth> {
        match self.month {
            12 => EventMonth::new(self.year.checked_add(1)?, 1),
            m => EventMonth::new(self.year, m + 1),
        }
    }

    /// Midnight UTC on the first day of the month.
    pub fn start(self) -> Timestamp {
        // In range by construction: years 1900..=9998 are dates jiff holds.
        Date::new(self.year, self.month, 1)
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Midnight UTC on the first day of the next month (the range's excluded end).
    pub fn end(self) -> Timestamp {
        match self.next() {
            Some(next) => next.start(),
            None => Timestamp::MAX,
        }
    }

    /// The partition's table: `events_2026_01`.
    pub fn table(self) -> String {
        format!("events_{:04}_{:02}", self.year, self.month)
    }

    /// The month of a partition's table name (`events_2026_01`), if it is one.
    fn of_table(name: &str) -> Option<EventMonth> {
        let rest = name.strip_prefix("events_")?;
        let (year, month) = rest.split_once('_')?;
        if year.len() != 4 || month.len() != 2 {
            return None;
        }
        EventMonth::new(year.parse().ok()?, month.parse().ok()?)
    }
}

/// `2026-01`.
impl std::fmt::Display for EventMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Reads `YYYY-MM`.
impl std::str::FromStr for EventMonth {
    type Err = String;

    fn from_str(s: &str) -> Result<EventMonth, String> {
        let bad = || format!("{s:?} is not a month as YYYY-MM (e.g. 2026-01)");
        let (year, month) = s.split_once('-').ok_or_else(bad)?;
        if year.len() != 4
            || month.len() != 2
            || !(year.bytes().chain(month.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let (year, month) = (
            year.parse().map_err(|_| bad())?,
            month.parse().map_err(|_| bad())?,
        );
        EventMonth::new(year, month).ok_or_else(|| {
            format!(
                "{s:?} is outside the months a partition may cover (years {} to {})",
                Self::YEARS.start(),
                Self::YEARS.end()
            )
        })
    }
}

/// One table of `events`' partitioning as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPartition {
    /// `events_2026_01`, or `events_default`.
    pub table: String,
    /// The month it holds; `None` for the default partition (anything outside the months).
    pub month: Option<EventMonth>,
    /// False once detached: the table is still there, out of every read.
    pub attached: bool,
    /// PostgreSQL's estimate of its rows (planner statistics and live-row counters), not a count.
    pub rows_estimate: i64,
}

#[async_trait]
pub trait PartitionStore: Send + Sync {
    /// Whether `events` is partitioned by month (PostgreSQL).
    fn events_partitioned(&self) -> bool;
    /// Creates `month`'s partition unless it exists; true if this call created it. Events of
    /// that month already in the default partition move into it. Nothing to do on SQLite (false).
    async fn create_event_partition(&self, month: EventMonth) -> StoreResult<bool>;
    /// Every monthly table (attached or detached) and the default partition, by name.
    /// `events_not_partitioned` on SQLite.
    async fn event_partitions(&self) -> StoreResult<Vec<EventPartition>>;
    /// Detaches `month`'s partition: its events leave every read, their ids stay in
    /// `event_ids` (a retry of one is still a duplicate). False if no such partition is
    /// attached. `events_not_partitioned` on SQLite. The caller decides which months may go.
    async fn detach_event_partition(&self, month: EventMonth) -> StoreResult<bool>;
}

fn not_partitioned() -> StoreError {
    StoreError::Invalid {
        code: Code::EventsNotPartitioned,
        detail: "events are partitioned by month on PostgreSQL only; the SQLite store keeps one \
                 events table"
            .into(),
    }
}

fn month_args(month: EventMonth) -> [crate::backend::Arg<'static>; 2] {
    *args![i64::from(month.year), i64::from(month.month)]
}

#[async_trait]
impl<B: Backend> PartitionStore for B {
    fn events_partitioned(&self) -> bool {
        B::PARTITIONED_EVENTS
    }

    async fn create_event_partition(&self, month: EventMonth) -> StoreResult<bool> {
        if !B::PARTITIONED_EVENTS {
            return Ok(false);
        }
        let mut tx = self.maintenance().await?;
        let row = tx
            .fetch_optional(sql::CREATE_EVENT_PARTITION, &month_args(month))
            .await?;
        tx.commit().await?;
        row.map_or(Ok(false), |r| r.flag("done"))
    }

    async fn event_partitions(&self) -> StoreResult<Vec<EventPartition>> {
        if !B::PARTITIONED_EVENTS {
            return Err(not_partitioned());
        }
        let mut tx = self.maintenance().await?;
        let rows = tx.fetch_all(sql::EVENT_PARTITIONS, &[]).await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                let table = r.text("name")?;
                Ok(EventPartition {
                    month: EventMonth::of_table(&table),
                    table,
                    attached: r.flag("attached")?,
                    rows_estimate: r.int("rows_estimate")?,
                })
            })
            .collect()
    }

    async fn detach_event_partition(&self, month: EventMonth) -> StoreResult<bool> {
        if !B::PARTITIONED_EVENTS {
            return Err(not_partitioned());
        }
        let mut tx = self.maintenance().await?;
        let row = tx
            .fetch_optional(sql::DETACH_EVENT_PARTITION, &month_args(month))
            .await?;
        tx.commit().await?;
        row.map_or(Ok(false), |r| r.flag("done"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_read_print_and_bound_their_range() {
        let m: EventMonth = "2026-12".parse().unwrap();
        assert_eq!(m.to_string(), "2026-12");
        assert_eq!(m.table(), "events_2026_12");
        assert_eq!(
            m.start(),
            "2026-12-01T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            m.end(),
            "2027-01-01T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(m.next(), EventMonth::new(2027, 1));
        assert_eq!(EventMonth::of_table("events_2026_12"), Some(m));
        assert_eq!(EventMonth::of_table("events_default"), None);
        let last = "2026-12-31T23:59:59.999999Z".parse().unwrap();
        assert_eq!(EventMonth::of(last), Some(m));
        for bad in [
            "2026-13", "2026-00", "26-01", "2026-1", "2026/01", "+026-01", "1899-12",
        ] {
            assert!(bad.parse::<EventMonth>().is_err(), "{bad}");
        }
        assert_eq!(EventMonth::new(9998, 12).unwrap().next(), None);
    }
}
