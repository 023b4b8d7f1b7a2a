//! A look at a database without changing it, for `tollgate doctor`: which of this binary's
//! migrations it has applied (and any it has that this binary does not know), its server's
//! version and, for PostgreSQL, its clock. Opening a store migrates it; this never does.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

use crate::{StoreError, StoreResult};

/// How a database's applied migrations compare with this binary's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MigrationStatus {
    /// The newest version this binary carries.
    pub latest_known: i64,
    /// Versions applied successfully.
    pub applied: usize,
    /// Known to this binary, not applied yet: `tollgate serve` applies them when it starts.
    pub pending: Vec<i64>,
    /// Applied, unknown to this binary: a newer release migrated the database.
    pub unknown: Vec<i64>,
    /// Applied from a file whose checksum differs from this binary's: edited after it ran.
    pub changed: Vec<i64>,
    /// Recorded as failed.
    pub failed: Vec<i64>,
}

/// What [`inspect_sqlite`] and [`inspect_postgres`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseInfo {
    /// `SQLite 3.46.0`, `PostgreSQL 15.19`.
    pub server: String,
    pub migrations: MigrationStatus,
    /// The database server's clock (PostgreSQL's `clock_timestamp()`); `None` for SQLite, which
    /// runs in this process and reads this machine's clock.
    pub clock: Option<jiff::Timestamp>,
}

/// The SQLite database at `path`, opened read-only (a missing file is an error, not created).
pub async fn inspect_sqlite(path: &Path) -> StoreResult<DatabaseInfo> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    let pool: SqlitePool = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&pool)
        .await?;
    let has_table: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&pool)
    .await?;
    let rows = if has_table == 0 {
        Vec::new()
    } else {
        sqlx::query("SELECT version, checksum, success FROM _sqlx_migrations")
            .fetch_all(&pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("version")?,
                    r.try_get("checksum")?,
                    r.try_get("success")?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    };
    pool.close().await;
    Ok(DatabaseInfo {
        server: format!("SQLite {version}"),
        migrations: compare(&crate::migrations::sqlite(), &rows),
        clock: None,
    })
}

/// The PostgreSQL database at `url`: a single connection, read-only queries.
pub async fn inspect_postgres(url: &str) -> StoreResult<DatabaseInfo> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    let micros: i64 =
        sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")
            .fetch_one(&pool)
            .await?;
    let has_table: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&pool)
        .await?;
    let rows = if has_table {
        sqlx::query("SELECT version, checksum, success FROM _sqlx_migrations")
            .fetch_all(&pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("version")?,
                    r.try_get("checksum")?,
                    r.try_get("success")?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    } else {
        Vec::new()
    };
    pool.close().await;
    let clock = jiff::Timestamp::from_microsecond(micros)
        .map_err(|e| StoreError::Corrupt(format!("the database clock: {e}")))?;
    Ok(DatabaseInfo {
        server: format!("PostgreSQL {version}"),
        migrations: compare(&crate::migrations::postgres(), &rows),
        clock: Some(clock),
    })
}

/// `(version, checksum, success)` rows against the binary's migrations.
fn compare(migrator: &Migrator, rows: &[(i64, Vec<u8>, bool)]) -> MigrationStatus {
    let known = migrator.iter().collect::<Vec<_>>();
    let mut status = MigrationStatus {
        latest_known: known.iter().map(|m| m.version).max().unwrap_or(0),
        ..Default::default()
    };
    for m in &known {
        match rows.iter().find(|(v, _, _)| *v == m.version) {
            None => status.pending.push(m.version),
            Some((_, _, false)) => status.failed.push(m.version),
            Some((_, checksum, true)) if checksum.as_slice() != m.checksum.as_ref() => {
                status.applied += 1;
                status.changed.push(m.version);
            }
            Some(_) => status.applied += 1,
        }
    }
    for (version, _, _) in rows {
        if !known.iter().any(|m| m.version == *version) {
            status.unknown.push(*version);
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_unknown_changed_and_failed_are_told_apart() {
        let migrator = crate::migrations::sqlite();
        let all: Vec<_> = migrator.iter().collect();
        let mut rows: Vec<(i64, Vec<u8>, bool)> = all
            .iter()
            .map(|m| (m.version, m.checksum.to_vec(), true))
            .collect();
        assert_eq!(
            compare(&migrator, &rows),
            MigrationStatus {
                latest_known: all.last().unwrap().version,
                applied: all.len(),
                ..Default::default()
            }
        );
        let last = rows.pop().unwrap();
        rows[0].1 = vec![0; 4];
        rows[1].2 = false;
        rows.push((9_999, vec![], true));
        let status = compare(&migrator, &rows);
        assert_eq!(status.pending, [last.0]);
        assert_eq!(status.changed, [all[0].version]);
        assert_eq!(status.failed, [all[1].version]);
        assert_eq!(status.unknown, [9_999]);
        assert_eq!(status.applied, all.len() - 2);
    }
}
