//! A PostgreSQL schema of a test's own on the shared test database (`TOLLGATE_TEST_DATABASE_URL`),
//! for tests that migrate from scratch or look at plans on fresh tables; dropped by [`Scratch::drop_schema`].

use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;

pub(crate) struct Scratch {
    admin: PgPool,
    url: String,
    schema: String,
    /// One connection whose `search_path` is the schema.
    pub(crate) pool: PgPool,
}

impl Scratch {
    /// A new, empty schema named after `prefix`, the process and the time.
    pub(crate) async fn new(prefix: &str) -> Scratch {
        let url = std::env::var("TOLLGATE_TEST_DATABASE_URL")
            .expect("TOLLGATE_TEST_DATABASE_URL is set for the PostgreSQL tests");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let schema = format!("{prefix}_{}_{nanos}", std::process::id());
        let admin = PgPool::connect(&url).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        let options = PgConnectOptions::from_str(&url)
            .unwrap()
            .options([("search_path", schema.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        Scratch {
            admin,
            url,
            schema,
            pool,
        }
    }

    /// The database's URL with the schema as the search path, for a store of its own there.
    pub(crate) fn url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options[search_path]={}", self.url, self.schema)
    }

    pub(crate) async fn drop_schema(self) {
        self.pool.close().await;
        sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.schema
        )))
        .execute(&self.admin)
        .await
        .unwrap();
    }
}
