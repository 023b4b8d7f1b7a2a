//! The migrations of both backends, embedded in the binary.
//!
//! `sqlx::migrate!` would embed them too, but in sqlx 0.9 it sits behind the `macros` feature,
//! which also brings the compile-time-checked `query!` macros this crate deliberately does without
//! (they check against one database at build time). So the files are listed here by hand,
//! with the version and description the macro would derive from their names, so the checksums
//! and the `_sqlx_migrations` table look exactly as the sqlx CLI expects. A test keeps this list
//! and the `migrations/` folders in step.

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

/// `(version, description, file name, SQL)` for each migration, in order.
macro_rules! embed {
    ($dir:literal: $(($version:literal, $description:literal, $file:literal)),* $(,)?) => {
        &[$((
            $version,
            $description,
            $file,
            include_str!(concat!("../migrations/", $dir, "/", $file)),
        )),*]
    };
}

type Embedded = &'static [(i64, &'static str, &'static str, &'static str)];

const SQLITE: Embedded = embed!("sqlite": (1, "init", "0001_init.sql"), (2, "billing", "0002_billing.sql"), (3, "scheduled changes", "0003_scheduled_changes.sql"), (4, "subscription states", "0004_subscription_states.sql"), (5, "idempotency", "0005_idempotency.sql"), (6, "jobs", "0006_jobs.sql"), (7, "customer lifecycle", "0007_customer_lifecycle.sql"), (9, "invoicing", "0009_invoicing.sql"), (10, "trust", "0010_trust.sql"), (11, "devsurface", "0011_devsurface.sql"), (12, "growth", "0012_growth.sql"), (13, "webhooks", "0013_webhooks.sql"), (14, "email", "0014_email.sql"), (15, "payments", "0015_payments.sql"), (16, "ledger", "0016_ledger.sql"), (17, "customer balance", "0017_customer_balance.sql"), (18, "web", "0018_web.sql"), (20, "stripe billing", "0020_stripe_billing.sql"), (21, "ledger scan", "0021_ledger_scan.sql"), (22, "public pages", "0022_public_pages.sql"), (23, "event amendments", "0023_event_amendments.sql"), (24, "ledger entries lean", "0024_ledger_entries_lean.sql"), (25, "bill run claims", "0025_bill_run_claims.sql"));
const POSTGRES: Embedded = embed!("postgres": (1, "init", "0001_init.sql"), (2, "billing", "0002_billing.sql"), (3, "scheduled changes", "0003_scheduled_changes.sql"), (4, "json and listing", "0004_json_and_listing.sql"), (5, "subscription states", "0005_subscription_states.sql"), (6, "idempotency", "0006_idempotency.sql"), (7, "jobs", "0007_jobs.sql"), (8, "customer lifecycle", "0008_customer_lifecycle.sql"), (10, "invoicing", "0010_invoicing.sql"), (11, "trust", "0011_trust.sql"), (12, "devsurface", "0012_devsurface.sql"), (13, "growth", "0013_growth.sql"), (14, "webhooks", "0014_webhooks.sql"), (15, "email", "0015_email.sql"), (16, "payments", "0016_payments.sql"), (17, "ledger", "0017_ledger.sql"), (18, "customer balance", "0018_customer_balance.sql"), (19, "web", "0019_web.sql"), (21, "stripe billing", "0021_stripe_billing.sql"), (22, "ledger scan", "0022_ledger_scan.sql"), (23, "public pages", "0023_public_pages.sql"), (24, "event amendments", "0024_event_amendments.sql"), (25, "ledger entries lean", "0025_ledger_entries_lean.sql"), (26, "events by month", "0026_events_by_month.sql"), (27, "bill run claims", "0027_bill_run_claims.sql"));

fn migrator(embedded: Embedded) -> Migrator {
    Migrator::with_migrations(
        embedded
            .iter()
            .map(|&(version, description, _, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

pub(crate) fn sqlite() -> Migrator {
    migrator(SQLITE)
}

pub(crate) fn postgres() -> Migrator {
    migrator(POSTGRES)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database made before 0004 keeps its documents: the JSON columns 0002 and 0003 made
    /// TEXT become JSONB with the same content. Runs in a schema of its own, dropped after.
    #[tokio::test]
    #[cfg_attr(
        not(tollgate_pg),
        ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
    )]
    async fn postgres_0004_keeps_the_stored_documents() {
        let scratch = crate::scratch::Scratch::new("upgrade").await;
        let pool = &scratch.pool;
        migrator(&POSTGRES[..3]).run(pool).await.unwrap();
        for sql in [
            "INSERT INTO workspaces (workspace, name, created_at) VALUES ('w', 'W', 0)",
            "INSERT INTO customers (workspace, id, suspended, has_payment_method, metadata, \
               created_at) VALUES ('w', 'c', false, false, '{}', 0)",
            "INSERT INTO invoices (workspace, id, number, customer, dedupe_key, status, currency, \
               total_minor, credit_applied_minor, amount_due_minor, document, created_at) \
             VALUES ('w', 'i', 1, 'c', 'k', 'open', 'EUR', 1, 0, 1, \
               '{\"lines\":[{\"amount\":\"10.00\",\"n\":1.50}]}', 0)",
            "INSERT INTO pending_charges (workspace, id, customer, charge, created_at) \
             VALUES ('w', 'p', 'c', '{\"amount\":\"3.33\"}', 0)",
            "INSERT INTO scheduled_changes (workspace, id, subscription, customer, plan, addons, \
               effective_at, created_at) VALUES ('w', 's', 'sub', 'c', 'basic', '{\"seats\":2}', 0, 0)",
        ] {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        postgres().run(pool).await.unwrap();

        for (table, column, want) in [
            (
                "invoices",
                "document",
                // Numbers keep their text (serde_json's `arbitrary_precision`): `1.50` stays
                // `1.50`, as JSONB keeps it.
                serde_json::from_str(r#"{"lines": [{"amount": "10.00", "n": 1.50}]}"#).unwrap(),
            ),
            (
                "pending_charges",
                "charge",
                serde_json::json!({"amount": "3.33"}),
            ),
            (
                "scheduled_changes",
                "addons",
                serde_json::json!({"seats": 2}),
            ),
        ] {
            let sql =
                format!("SELECT pg_typeof({column})::text, CAST({column} AS TEXT) FROM {table}");
            let (kind, text): (String, String) = sqlx::query_as(AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(kind, "jsonb", "{table}.{column}");
            let got: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(got, want, "{table}.{column}");
        }
        scratch.drop_schema().await;
    }

    /// A database with events before 0026 keeps them all, each in its month's partition, with
    /// its id in `event_ids` (so a retry is still a duplicate) and its amendment still attached;
    /// the current and next months get partitions too. Runs in a schema of its own.
    #[tokio::test]
    #[cfg_attr(
        not(tollgate_pg),
        ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
    )]
    async fn postgres_0026_moves_the_events_into_months() {
        use crate::{IngestItem, IngestOutcome, Store, amendments::AmendmentStore};
        use tollgate_core::ids::WorkspaceId;

        let scratch = crate::scratch::Scratch::new("events_by_month").await;
        let pool = &scratch.pool;
        let before = POSTGRES.iter().position(|m| m.0 == 26).unwrap();
        migrator(&POSTGRES[..before]).run(pool).await.unwrap();
        sqlx::query("INSERT INTO workspaces (workspace, name, created_at) VALUES ('w', 'W', 0)")
            .execute(pool)
            .await
            .unwrap();
        // 2025-01-31T23:59:59.999999Z, 2025-02-01T00:00:00Z, and 1999-12-31 (a test clock).
        let events = [
            ("e1", 1_738_367_999_999_999_i64),
            ("e2", 1_738_368_000_000_000),
            ("e3", 946_684_800_000_000 - 1),
        ];
        for (id, received) in events {
            sqlx::query(
                "INSERT INTO events (workspace, id, customer, event_type, ts, subject, \
                   properties, received_at) VALUES ('w', $1, 'c', 'call', $2, NULL, \
                   '{\"n\": 1.50}', $2)",
            )
            .bind(id)
            .bind(received)
            .execute(pool)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO event_amendments (workspace, event_id, seq, customer, event_type, \
               old_properties, new_properties, amended_by, amended_at) \
             VALUES ('w', 'e1', 1, 'c', 'call', '{}', '{}', 'admin', 5)",
        )
        .execute(pool)
        .await
        .unwrap();

        postgres().run(pool).await.unwrap();
        let homes: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT id, tableoid::regclass::text, received_at FROM events ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(
            homes,
            vec![
                ("e1".into(), "events_2025_01".into(), events[0].1),
                ("e2".into(), "events_2025_02".into(), events[1].1),
                ("e3".into(), "events_1999_12".into(), events[2].1),
            ]
        );
        let ids: i64 = sqlx::query_scalar("SELECT count(*) FROM event_ids")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(ids, 3);
        let months: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let now = jiff::Timestamp::now();
        let current = crate::partitions::EventMonth::of(now).unwrap();
        for table in [
            current.table(),
            current.next().unwrap().table(),
            "events_default".into(),
        ] {
            assert!(months.contains(&table), "{table} in {months:?}");
        }
        // An amendment still needs its event's id.
        let orphan = sqlx::query(
            "INSERT INTO event_amendments (workspace, event_id, seq, customer, event_type, \
               old_properties, new_properties, amended_by, amended_at) \
             VALUES ('w', 'nope', 1, 'c', 'call', '{}', '{}', 'admin', 5)",
        )
        .execute(pool)
        .await;
        assert!(orphan.is_err(), "the foreign key moved to event_ids");

        // Through the store: read back as stored, and a retry of each id is a duplicate.
        let store = crate::PostgresStore::connect_with(&scratch.url(), 2)
            .await
            .unwrap();
        let ws = WorkspaceId::from("w");
        let e1 = store.get_event(&ws, "e1").await.unwrap().unwrap();
        assert_eq!(e1.received_at.as_microsecond(), events[0].1);
        let stored: serde_json::Value = serde_json::from_str(r#"{"n": 1.50}"#).unwrap();
        assert_eq!(e1.properties, stored, "JSONB kept the number's text");
        let amendable = store.amendable_event(&ws, "e1").await.unwrap().unwrap();
        assert_eq!(amendable.next_seq(), 2);
        let retries: Vec<IngestItem> = ["e1", "e2", "e3"]
            .iter()
            .map(|id| IngestItem {
                event: crate::EventRecord {
                    received_at: now,
                    id: (*id).into(),
                    ..e1.clone()
                },
                updates: Vec::new(),
            })
            .collect();
        let outcomes = store.ingest(&ws, &retries).await.unwrap();
        assert_eq!(outcomes, vec![IngestOutcome::Duplicate; 3]);
        store.close().await;
        scratch.drop_schema().await;
    }

    /// A SQLite database made before 0004 keeps its subscriptions, and then takes the states
    /// 0004 adds (and still refuses a status that is none of them).
    #[tokio::test]
    async fn sqlite_0004_keeps_the_subscriptions() {
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        use std::str::FromStr;

        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .unwrap()
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        migrator(&SQLITE[..3]).run(&pool).await.unwrap();
        for sql in [
            "INSERT INTO workspaces (workspace, name, created_at) VALUES ('w', 'W', 0)",
            "INSERT INTO customers (workspace, id, suspended, has_payment_method, metadata, \
               created_at) VALUES ('w', 'c', 0, 0, '{}', 0)",
            "INSERT INTO subscriptions (workspace, id, customer, plan, catalog_version, status, \
               addons, started_at, billing_anchor, trial_end, canceled_at, ends_at) \
             VALUES ('w', 's', 'c', 'pro', 3, 'canceled', '{\"seats\":2}', 1, 2, 3, 4, 5)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        let past_due = "UPDATE subscriptions SET status = 'past_due' WHERE id = 's'";
        assert!(
            sqlx::query(past_due).execute(&pool).await.is_err(),
            "0001's CHECK"
        );

        sqlite().run(&pool).await.unwrap();
        let row: (String, String, i64, String, String, i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT customer, plan, catalog_version, status, addons, started_at, billing_anchor, \
               trial_end, canceled_at, ends_at FROM subscriptions WHERE workspace = 'w' AND id = 's'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            row,
            (
                "c".into(),
                "pro".into(),
                3,
                "canceled".into(),
                "{\"seats\":2}".into(),
                1,
                2,
                3,
                4,
                5
            )
        );
        for status in ["past_due", "paused", "expired"] {
            sqlx::query("UPDATE subscriptions SET status = ? WHERE id = 's'")
                .bind(status)
                .execute(&pool)
                .await
                .unwrap();
        }
        let bad = "UPDATE subscriptions SET status = 'unpaid' WHERE id = 's'";
        assert!(
            sqlx::query(bad).execute(&pool).await.is_err(),
            "0004's CHECK"
        );
        // The index came back with the table.
        let index: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' \
             AND name = 'subscriptions_by_customer' AND tbl_name = 'subscriptions'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(index, 1);
    }

    /// Every `.sql` file of a backend's folder is embedded, under the version and description
    /// `sqlx::migrate!` would give it (`0002_add_thing.sql` → 2, "add thing").
    #[test]
    fn embedded_lists_match_the_folders() {
        for (dir, embedded) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|name| name.ends_with(".sql"))
                .collect();
            files.sort();
            let listed: Vec<&str> = embedded.iter().map(|m| m.2).collect();
            assert_eq!(
                files, listed,
                "migrations/{dir} and the embedded list differ"
            );
            for &(version, description, file, _) in embedded {
                let (number, rest) = file.trim_end_matches(".sql").split_once('_').unwrap();
                assert_eq!(number.parse::<i64>().unwrap(), version, "{file}");
                assert_eq!(rest.replace('_', " "), description, "{file}");
            }
        }
    }

    /// A SQLite database sealed before 0024 keeps every ledger entry, byte for byte, in the
    /// leaner table (primary-key order, no rowid, no unread by-customer index).
    #[tokio::test]
    async fn sqlite_0024_keeps_the_ledger_entries() {
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        use std::str::FromStr;

        let options = SqliteConnectOptions::from_str("sqlite::memory:").unwrap();
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let before = SQLITE.iter().position(|m| m.0 == 24).unwrap();
        migrator(&SQLITE[..before]).run(&pool).await.unwrap();
        let rows = [
            ("w", 0, "usage", "e1", Some("c"), r#"{"n":1}"#, "aa", 5),
            ("w", 1, "action", "evt_1", None, r#"{"x":"y"}"#, "bb", 6),
        ];
        for (ws, seq, kind, reference, customer, entry, leaf, at) in rows {
            sqlx::query(
                "INSERT INTO ledger_entries (workspace, seq, kind, ref, customer, entry, \
                   leaf_hash, sealed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(ws)
            .bind(seq)
            .bind(kind)
            .bind(reference)
            .bind(customer)
            .bind(entry)
            .bind(leaf)
            .bind(at)
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlite().run(&pool).await.unwrap();

        type Row = (
            String,
            i64,
            String,
            String,
            Option<String>,
            String,
            String,
            i64,
        );
        let got: Vec<Row> = sqlx::query_as(
            "SELECT workspace, seq, kind, ref, customer, entry, leaf_hash, sealed_at \
             FROM ledger_entries ORDER BY seq",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let want: Vec<Row> = rows
            .iter()
            .map(|&(ws, seq, kind, reference, customer, entry, leaf, at)| {
                (
                    ws.into(),
                    seq,
                    kind.into(),
                    reference.into(),
                    customer.map(Into::into),
                    entry.into(),
                    leaf.into(),
                    at,
                )
            })
            .collect();
        assert_eq!(got, want);
        // Still one entry per (kind, ref).
        let again = sqlx::query(
            "INSERT INTO ledger_entries (workspace, seq, kind, ref, customer, entry, leaf_hash, \
               sealed_at) VALUES ('w', 2, 'usage', 'e1', 'c', '{}', 'cc', 7)",
        )
        .execute(&pool)
        .await;
        assert!(again.is_err(), "the (workspace, kind, ref) key holds");
        let indexes: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger_entries'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(
            indexes.iter().all(|(name,)| !name.contains("by_customer")),
            "{indexes:?}"
        );
    }
}
