//! `tollgate report evidence`: a customer's evidence report (docs/TRUST.md, "Evidence
//! reports"), made offline against the store like `tollgate ledger verify`, written as a PDF
//! (or printed as JSON). Exits 1 when the ledger does not verify, so a scheduled export fails
//! loudly.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use tollgate_server::app::ledger::{self, EvidenceRequest};

use crate::jobs::StoreArgs;

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// A customer's events of a period with their ledger entries, usage per meter and a
    /// verification of the whole ledger, as a PDF for an auditor.
    Evidence(EvidenceArgs),
}

#[derive(Debug, Clone, Args)]
pub struct EvidenceArgs {
    /// The store and the workspace (as `tollgate jobs` takes them).
    #[command(flatten)]
    store: StoreArgs,
    /// The customer's id.
    #[arg(long, value_name = "ID")]
    customer: String,
    /// Start of the period, included: a date (`2026-11-01`, midnight UTC) or an RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    from: String,
    /// End of the period, excluded, in the same forms.
    #[arg(long, value_name = "TIME")]
    to: String,
    /// Events to list, 1 to 20,000 (the counts and the verification cover them all).
    #[arg(long, default_value_t = ledger::evidence::DEFAULT_LIMIT)]
    limit: usize,
    /// Where to write the PDF [default: evidence-<customer>-<from>.pdf].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the report as JSON instead of writing a PDF.
    #[arg(long)]
    json: bool,
}

/// A date is midnight UTC; anything else must be an RFC 3339 time.
fn time(flag: &str, text: &str) -> anyhow::Result<Timestamp> {
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return Ok(date.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp());
    }
    text.parse::<Timestamp>()
        .with_context(|| format!("--{flag} {text:?} is neither a date nor an RFC 3339 time"))
}

pub async fn run(command: ReportCommand) -> anyhow::Result<ExitCode> {
    let ReportCommand::Evidence(args) = command;
    let from = time("from", &args.from)?;
    let to = time("to", &args.to)?;
    if from >= to {
        bail!("--from {} is not before --to {}", args.from, args.to);
    }
    let engine = crate::jobs::engine(&args.store).await?;
    let request = EvidenceRequest {
        workspace: args.store.workspace.clone(),
        customer: args.customer.clone(),
        from,
        to,
        limit: args.limit,
    };
    let report = ledger::evidence(&engine, &request)
        .await
        .map_err(|e| anyhow::anyhow!("the evidence report failed: {}", e.describe()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let doc = ledger::evidence::document(&engine, &report)
            .await
            .map_err(|e| anyhow::anyhow!("the evidence report failed: {}", e.describe()))?;
        let bytes = ledger::evidence::render(&doc)
            .map_err(|e| anyhow::anyhow!("the evidence report failed: {}", e.describe()))?;
        let out = args.out.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "evidence-{}-{}.pdf",
                args.customer,
                from.strftime("%Y-%m-%d")
            ))
        });
        std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
        let v = &report.verification;
        println!(
            "{}: {} events ({} sealed), ledger {} entries, {}",
            out.display(),
            report.events_in_period,
            report.events_sealed,
            v.size,
            match &v.first_bad {
                None => "verified".to_owned(),
                Some(f) => format!("FAILED ({}): {}", f.problem, f.detail),
            }
        );
    }
    Ok(if report.verification.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
