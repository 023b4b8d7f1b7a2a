//! `tollgate payments reconcile`: the card payments Tollgate recorded compared with Stripe's
//! PaymentIntents of the workspace, offline against the store (with the config's master key to
//! open the Stripe key), through the same use case as `GET /v1/payments/reconciliation`.
//! `tollgate payments stripe-sync [--dry-run]`: the catalog synced to Stripe Billing, as
//! `POST /v1/payments/stripe_sync` does (a dry run calls only Stripe's read endpoints).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use tollgate_server::app::payments::{reconcile, stripe_sync};

use crate::jobs::{StoreArgs, engine};

#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// Compare Tollgate's card payments with Stripe's and print the differences (exit code 1
    /// when there are some).
    Reconcile(ReconcileArgs),
    /// Sync the catalog to Stripe Billing's Products, Prices and Meters (Stripe as the biller)
    /// and print what was done, or with `--dry-run` what would be, without writing at Stripe.
    StripeSync(StripeSyncArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StripeSyncArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only say what would be created or updated; nothing is written at Stripe.
    #[arg(long)]
    dry_run: bool,
    /// The report as JSON instead of lines.
    #[arg(long)]
    json: bool,
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
        PaymentsCommand::StripeSync(args) => {
            let engine = engine(&args.store).await?;
            let report = stripe_sync(&engine, &args.store.workspace, args.dry_run)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.describe()))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let mode = if report.dry_run { "dry run: " } else { "" };
                println!(
                    "{mode}catalog version {}: {} Stripe objects",
                    report.catalog_version,
                    report.actions.len()
                );
                for a in &report.actions {
                    println!(
                        "{:<9} {:<7} {:<32} {}{}",
                        a.action,
                        a.object,
                        a.key,
                        a.stripe_id.as_deref().unwrap_or("-"),
                        a.detail
                            .as_deref()
                            .map_or_else(String::new, |d| format!("  ({d})")),
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
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
