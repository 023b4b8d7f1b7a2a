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

const SQLITE: Embedded = embed!("sqlite": (1, "init", "0001_init.sql"), (2, "billing", "0002_billing.sql"), (3, "scheduled changes", "0003_scheduled_changes.sql"));
const POSTGRES: Embedded = embed!("postgres": (1, "init", "0001_init.sql"), (2, "billing", "0002_billing.sql"), (3, "scheduled changes", "0003_scheduled_changes.sql"), (4, "json and listing", "0004_json_and_listing.sql"));

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
}
