//! `tollgate ledger verify`: recomputes a workspace's ledger from the store itself (offline,
//! like `bill-run`) and names the first entry, record or checkpoint that does not hold.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tollgate_server::app::ledger::{self, verify::VerifyOptions};
use tollgate_server::clock::SystemClock;
use tollgate_server::engine::Engine;
use tollgate_verify::PublicKey;

use crate::config::{self, ServeArgs};

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute the log: every leaf from its entry, every entry against its record as stored
    /// now, every checkpoint's root and signature. Exit 1 at the first problem, named.
    Verify(VerifyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The workspace whose log to verify.
    #[arg(long, value_name = "WS")]
    workspace: String,
    /// Compare records from this entry index on (every leaf is hashed regardless).
    #[arg(long, value_name = "N")]
    from: Option<i64>,
    /// ...up to this entry index (excluded).
    #[arg(long, value_name = "N")]
    to: Option<i64>,
    /// Trust these checkpoint keys (base64 Ed25519, as `GET /v1/license_keys` publishes them)
    /// instead of the keys in the store; repeat for several.
    #[arg(long = "key", value_name = "BASE64")]
    keys: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
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

pub async fn run(command: LedgerCommand) -> anyhow::Result<ExitCode> {
    let LedgerCommand::Verify(args) = command;
    if matches!((args.from, args.to), (Some(f), Some(t)) if f > t) {
        bail!(
            "--from {} is after --to {}",
            args.from.unwrap_or(0),
            args.to.unwrap_or(0)
        );
    }
    let serve = ServeArgs {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        config: args.config.clone(),
        ..ServeArgs::default()
    };
    let server = config::resolve_from_env(&serve)?.server;
    let db = server.data_dir.join("tollgate.db");
    if server.database_url.is_none() && !db.exists() {
        bail!(
            "no Tollgate database in {} ({} does not exist); pass --data-dir or --database-url",
            server.data_dir.display(),
            db.display()
        );
    }
    let store = tollgate_server::open_store(&server)
        .await
        .context("cannot open the store")?;
    let engine = Engine::new(store, Arc::new(SystemClock));
    let keys = match args.keys.as_slice() {
        [] => None,
        given => Some(
            given
                .iter()
                .map(|k| PublicKey::from_base64(k).map_err(|e| anyhow::anyhow!("--key {k}: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
    };
    let options = VerifyOptions {
        from: args.from,
        to: args.to,
        keys,
    };
    let report = ledger::verify(&engine, &args.workspace, &options)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "verifying the ledger of {} failed: {}",
                args.workspace,
                e.describe()
            )
        })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "ledger of {}: {} entries, root {}, {} records compared, {} checkpoints verified",
            report.workspace,
            report.size,
            report.root_hash,
            report.records_checked,
            report.checkpoints_verified
        );
        match &report.first_bad {
            None => println!("ok"),
            Some(f) => println!("FAILED ({}): {}", f.problem, f.detail),
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
