//! `tollgate jobs list|retry|cancel`: the scheduler's jobs, offline against the store, through
//! the same use cases as `GET /v1/jobs` and `POST /v1/jobs/{id}/retry|cancel`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tollgate_server::app::jobs::JobRecord;
use tollgate_server::app::jobs::{ListJobs, cancel, list, retry};
use tollgate_server::clock::SystemClock;
use tollgate_server::engine::Engine;

use crate::config::{self, ServeArgs};

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs in creation order (one line each, or --json).
    List(ListArgs),
    /// Schedule a failed or canceled job again, at once.
    Retry(OneJob),
    /// Cancel a scheduled job.
    Cancel(OneJob),
}

/// Where the store is (as `tollgate serve`).
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Directory of the embedded SQLite database [default: ./tollgate-data].
    #[arg(long, env = "TOLLGATE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The PostgreSQL store at this URL instead of SQLite.
    #[arg(
        long,
        env = "TOLLGATE_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Read data_dir and database_url from `serve`'s config file.
    #[arg(long, env = "TOLLGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Where the store is, and which workspace.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The workspace [default: ws_default].
    #[arg(long, value_name = "WS", default_value = tollgate_server::DEFAULT_WORKSPACE)]
    pub(crate) workspace: String,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only jobs in this status: scheduled, running, succeeded, failed, canceled.
    #[arg(long)]
    status: Option<String>,
    /// Only jobs of this kind (subscription.period_end, ...).
    #[arg(long)]
    kind: Option<String>,
    /// Only jobs of this customer.
    #[arg(long)]
    customer: Option<String>,
    /// Jobs after this job id (the next page).
    #[arg(long, value_name = "JOB")]
    starting_after: Option<String>,
    /// At most this many (1 to 100).
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// JSON lines instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct OneJob {
    #[command(flatten)]
    store: StoreArgs,
    /// The job's id (`job_...`).
    id: String,
}

/// The engine over the configured store, with the master key and payment settings of the
/// config (as `tollgate serve` has them).
pub(crate) async fn engine(args: &StoreArgs) -> anyhow::Result<Engine> {
    database_engine(&args.database).await
}

/// [`engine`] for the commands that concern the whole store, not one workspace.
pub(crate) async fn database_engine(args: &DatabaseArgs) -> anyhow::Result<Engine> {
    let serve = ServeArgs {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        config: args.config.clone(),
        ..ServeArgs::default()
    };
    let config = config::resolve_from_env(&serve)?.server;
    let db = config.data_dir.join("tollgate.db");
    if config.database_url.is_none() && !db.exists() {
        bail!(
            "no Tollgate database in {} ({} does not exist); pass --data-dir or --database-url",
            config.data_dir.display(),
            db.display()
        );
    }
    let store = tollgate_server::open_store(&config)
        .await
        .context("cannot open the store")?;
    let mut engine =
        Engine::new(store, Arc::new(SystemClock)).with_payments(config.payments.clone());
    if let Some(key) = config.master_key {
        engine = engine.with_master_key(key);
    }
    Ok(engine)
}

fn line(j: &JobRecord) -> String {
    format!(
        "{}  {:<28} {:<9} due {}  attempts {}/{}{}",
        j.id,
        j.kind,
        j.status.as_str(),
        j.due_at,
        j.attempts,
        j.max_attempts,
        j.last_error
            .as_deref()
            .map(|e| format!("  error: {e}"))
            .unwrap_or_default()
    )
}

fn json_line(j: &JobRecord) -> anyhow::Result<String> {
    Ok(serde_json::to_string(j)?)
}

pub async fn run(command: JobsCommand) -> anyhow::Result<ExitCode> {
    match command {
        JobsCommand::List(args) => {
            let engine = engine(&args.store).await?;
            let (jobs, has_more) = list(
                &engine,
                ListJobs {
                    workspace: args.store.workspace.clone(),
                    status: args.status,
                    kind: args.kind,
                    customer: args.customer,
                    starting_after: args.starting_after,
                    limit: Some(args.limit),
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.describe()))?;
            for job in &jobs {
                println!(
                    "{}",
                    if args.json {
                        json_line(job)?
                    } else {
                        line(job)
                    }
                );
            }
            if has_more
                && !args.json
                && let Some(last) = jobs.last()
            {
                println!("(more: --starting-after {})", last.id);
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Retry(args) => {
            let engine = engine(&args.store).await?;
            let job = retry(&engine, &args.store.workspace, &args.id)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.describe()))?;
            println!("{}", line(&job));
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Cancel(args) => {
            let engine = engine(&args.store).await?;
            let job = cancel(&engine, &args.store.workspace, &args.id)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.describe()))?;
            println!("{}", line(&job));
            Ok(ExitCode::SUCCESS)
        }
    }
}
