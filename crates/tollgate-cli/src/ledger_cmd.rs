//! `tollgate ledger verify`: recomputes a workspace's ledger from the store itself (offline,
//! like `bill-run`) and names the first entry, record or checkpoint that does not hold.

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use tollgate_server::app::ledger::{self, verify::VerifyOptions};
use tollgate_verify::PublicKey;

use crate::jobs::StoreArgs;

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute the log: every leaf from its entry, every entry against its record as stored
    /// now, every checkpoint's root and signature. Exit 1 at the first problem, named.
    Verify(VerifyArgs),
    /// Recompute an invoice's usage lines from the events the ledger proves (what a customer
    /// runs, against the API): every proof checked offline, the events rated again, each line
    /// compared. Exit 1 if a proof fails or a line differs.
    RecomputeInvoice(crate::ledger_recompute::RecomputeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The store and the workspace whose log to verify (as `tollgate jobs` takes them).
    #[command(flatten)]
    store: StoreArgs,
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
}

pub async fn run(command: LedgerCommand) -> anyhow::Result<ExitCode> {
    let args = match command {
        LedgerCommand::Verify(args) => args,
        LedgerCommand::RecomputeInvoice(args) => return crate::ledger_recompute::run(args).await,
    };
    if matches!((args.from, args.to), (Some(f), Some(t)) if f > t) {
        bail!(
            "--from {} is after --to {}",
            args.from.unwrap_or(0),
            args.to.unwrap_or(0)
        );
    }
    let engine = crate::jobs::engine(&args.store).await?;
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
    let report = ledger::verify(&engine, &args.store.workspace, &options)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "verifying the ledger of {} failed: {}",
                args.store.workspace,
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
