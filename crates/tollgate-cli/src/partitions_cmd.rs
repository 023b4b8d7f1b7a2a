//! `tollgate events partitions` and `tollgate events detach-partition --month YYYY-MM`: the
//! monthly partitions of `events` on PostgreSQL (docs/OPERATIONS.md, "Old events"), offline
//! against the store like `tollgate jobs`, over `app::partitions`.

use std::process::ExitCode;

use clap::Args;
use tollgate_server::app::partitions::{self, EventMonth, EventPartition};

use crate::jobs::{DatabaseArgs, database_engine};

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// JSON lines instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DetachArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The month whose events to detach, as YYYY-MM (UTC, by when the events were received);
    /// it must have ended.
    #[arg(long, value_name = "YYYY-MM")]
    month: EventMonth,
}

fn range(p: &EventPartition) -> String {
    match p.month {
        Some(m) => format!("[{}, {})", m.start(), m.end()),
        None => "everything outside the months".into(),
    }
}

pub async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let engine = database_engine(&args.database).await?;
    let all = partitions::list(&engine)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.describe()))?;
    for p in &all {
        let state = if p.attached { "attached" } else { "detached" };
        if args.json {
            let line = serde_json::json!({
                "table": p.table,
                "month": p.month.map(|m| m.to_string()),
                "from": p.month.map(|m| m.start().to_string()),
                "to": p.month.map(|m| m.end().to_string()),
                "state": state,
                "rows_estimate": p.rows_estimate,
            });
            println!("{line}");
        } else {
            println!(
                "{:<16} {:<9} ~{:<12} {}",
                p.table,
                state,
                p.rows_estimate,
                range(p)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn detach(args: DetachArgs) -> anyhow::Result<ExitCode> {
    let engine = database_engine(&args.database).await?;
    let month = partitions::detach(&engine, args.month)
        .await
        .map_err(|e| anyhow::anyhow!("cannot detach {}: {}", args.month, e.describe()))?;
    println!(
        "{} detached: its events are out of every read, their ids still refuse duplicates; \
         archive it with `pg_dump --table={}`, then `DROP TABLE {}` (docs/OPERATIONS.md)",
        month.table(),
        month.table(),
        month.table()
    );
    Ok(ExitCode::SUCCESS)
}
