//! `tollgate payments reconcile`: the card payments Tollgate recorded compared with Stripe's
//! PaymentIntents of the workspace, offline against the store (with the config's master key to
//! open the Stripe key), through the same use case as `GET /v1/payments/reconciliation`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use tollgate_server::app::payments::reconcile;

use crate::jobs::{StoreArgs, engine};

#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// Compare Tollgate's card payments with Stripe's and print the differences (exit code 1
    /// when there are some).
    Reconcile(ReconcileArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The report as JSON instead of lines.
    #[arg(long)]
    json: bool,
}

pub async fn run(command: PaymentsCommand) -> anyhow::Result<ExitCode> {
    match command {
        PaymentsCommand::Reconcile(args) => {
            let engine = engine(&args.store).await?;
            let report = reconcile(&engine, &args.store.workspace)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.describe()))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "compared {} Tollgate payments with {} Stripe PaymentIntents: {} differences",
                    report.tollgate_payments,
                    report.provider_payments,
                    report.differences.len()
                );
                for d in &report.differences {
                    println!(
                        "{:<20} {}  invoice {}  tollgate {}  stripe {} ({})",
                        d.kind,
                        d.payment_intent,
                        d.invoice.as_deref().unwrap_or("-"),
                        d.tollgate_amount_minor
                            .map_or_else(|| "-".to_owned(), |a| a.to_string()),
                        d.provider_amount_minor
                            .map_or_else(|| "-".to_owned(), |a| a.to_string()),
                        d.provider_status.as_deref().unwrap_or("-"),
                    );
                }
            }
            Ok(if report.differences.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
