//! `tollgate`: one binary to run the service (`serve`, `gateway`), try it with the field catalogs
//! loaded (`demo`), work with catalog files (`catalog validate | diff | apply`), price a plan
//! offline (`quote`), close billing periods (`bill-run`) and read license files offline
//! (`license show | verify`).
//!
//! Every command reports user mistakes (a bad flag, an unreadable file, a taken port, a server
//! that says no) as one plain `error:` message with its causes, never a panic or a debug dump.
//! Exit codes: 0 success, 1 a failure (including an invalid catalog), 2 an unreadable input file
//! or a usage error (clap's own convention).

mod bill_run;
mod catalog_cmd;
mod config;
mod demo;
mod doctor;
mod email_cmd;
mod events_cmd;
mod jobs;
mod ledger_cmd;
mod ledger_recompute;
mod license;
mod log_format;
mod partitions_cmd;
mod payments;
mod quote;
mod report_cmd;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Tollgate: metering, plan limits and pricing in one binary.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written: `text`, or `json` (one object per line, for log shippers).
    #[arg(long, global = true, value_enum, default_value_t = log_format::LogFormat::Text, env = "TOLLGATE_LOG_FORMAT")]
    log_format: log_format::LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Tollgate server (HTTP API under /v1).
    Serve(config::ServeArgs),
    /// Run a local server with the five field catalogs, sample customers and keys loaded.
    Demo(demo::DemoArgs),
    /// Validate, compare and apply catalog files.
    #[command(subcommand)]
    Catalog(catalog_cmd::CatalogCommand),
    /// Price one period of a plan for hypothetical usage, offline, from a catalog file.
    Quote(quote::QuoteArgs),
    /// Close billing periods: finalize every invoice owed up to now, in-process on the store.
    BillRun(bill_run::BillRunArgs),
    /// Run the server and the metering gateway of the config file's [gateway] section.
    Gateway(config::ServeArgs),
    /// See, retry and cancel the scheduler's jobs, offline against the store.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Import usage events from CSV or NDJSON files into a server.
    #[command(subcommand)]
    Events(events_cmd::EventsCommand),
    /// Read and verify license files offline (`tollgate-verify`).
    #[command(subcommand)]
    License(license::LicenseCommand),
    /// Verify a workspace's ledger offline, against the store (docs/TRUST.md).
    #[command(subcommand)]
    Ledger(ledger_cmd::LedgerCommand),
    /// Check a deployment: configuration, database and migrations, clock, signing keys, Redis,
    /// SMTP, payment provider (docs/OPERATIONS.md). Exit 1 when a check fails.
    Doctor(doctor::DoctorArgs),
    /// Reports for auditors, offline against the store: `report evidence` (docs/TRUST.md).
    #[command(subcommand)]
    Report(report_cmd::ReportCommand),
    /// Render email templates offline against the store, sending nothing.
    #[command(subcommand)]
    Email(email_cmd::EmailCommand),
    /// Payments: compare what Tollgate recorded with the provider's records.
    #[command(subcommand)]
    Payments(payments::PaymentsCommand),
}

/// An input file that could not be read at all: exit code 2, like `catalog validate`.
#[derive(Debug)]
pub struct InputError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: cannot read: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for InputError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            if error.chain().any(|e| e.is::<InputError>()) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The cause chain on one line, "context: cause: root cause", leaving out a cause whose text
/// is already in the line: many errors both print their source and return it from `source()`,
/// which would otherwise say the same thing two or three times.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Dispatches a parsed command. Commands that only read files run without an async runtime.
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let format = cli.log_format;
    let init_logs = |filter: &str| init_tracing(filter, format);
    match cli.command {
        Command::Catalog(command) => catalog_cmd::run(command, runtime),
        Command::Serve(args) => {
            let settings = config::resolve_from_env(&args)?;
            init_logs(&settings.log);
            runtime()?.block_on(serve::run(settings.server, settings.gateway))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gateway(args) => {
            let Some(path) = &args.config else {
                anyhow::bail!("`tollgate gateway` needs --config FILE with a [gateway] section");
            };
            let settings = config::resolve_from_env(&args)?;
            if settings.gateway.is_none() {
                anyhow::bail!(
                    "{} has no [gateway] section (see examples/tollgate.toml)",
                    path.display()
                );
            }
            init_logs(&settings.log);
            runtime()?.block_on(serve::run(settings.server, settings.gateway))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::License(command) => license::run(command),
        Command::Quote(args) => {
            quote::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BillRun(args) => {
            init_logs(&std::env::var("TOLLGATE_LOG").unwrap_or_else(|_| "warn".into()));
            runtime()?.block_on(bill_run::run(args))
        }
        Command::Events(command) => runtime()?.block_on(events_cmd::run(command)),
        Command::Ledger(command) => {
            init_logs(&std::env::var("TOLLGATE_LOG").unwrap_or_else(|_| "warn".into()));
            runtime()?.block_on(ledger_cmd::run(command))
        }
        Command::Doctor(args) => {
            init_logs(&std::env::var("TOLLGATE_LOG").unwrap_or_else(|_| "warn".into()));
            runtime()?.block_on(doctor::run(args))
        }
        Command::Report(command) => {
            init_logs(&std::env::var("TOLLGATE_LOG").unwrap_or_else(|_| "warn".into()));
            runtime()?.block_on(report_cmd::run(command))
        }
        Command::Jobs(command) => {
            init_logs(&std::env::var("TOLLGATE_LOG").unwrap_or_else(|_| "warn".into()));
            runtime()?.block_on(jobs::run(command))
        }
        Command::Email(command) => {
            init_logs(&std::env::var("TOLLGATE_LOG").unwrap_or_else(|_| "warn".into()));
            runtime()?.block_on(email_cmd::run(command))
        }
        Command::Payments(command) => {
            init_logs(&std::env::var("TOLLGATE_LOG").unwrap_or_else(|_| "warn".into()));
            runtime()?.block_on(payments::run(command))
        }
        Command::Demo(args) => {
            // The demo prints a summary meant to be read; routine server logs would bury it.
            init_logs(&std::env::var("TOLLGATE_LOG").unwrap_or_else(|_| "warn".into()));
            runtime()?.block_on(demo::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A multi-threaded runtime, built only by the commands that need one.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Logs go to stderr so stdout stays the command's output (the demo summary, diff lines), with
/// colours only on a terminal so log files and journald get plain text. A filter that does not parse falls back to `info` with a warning rather than failing the
/// server start over a logging typo.
fn init_tracing(filter: &str, format: log_format::LogFormat) {
    let (filter, bad) = match tracing_subscriber::EnvFilter::try_new(filter) {
        Ok(f) => (f, None),
        Err(e) => (tracing_subscriber::EnvFilter::new("info"), Some(e)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        log_format::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        log_format::LogFormat::Json => builder
            .with_ansi(false)
            .event_format(log_format::JsonLines)
            .init(),
    }
    if let Some(e) = bad {
        tracing::warn!("ignoring the log filter: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// An error that prints its source and also returns it, as `#[error("store: {0}")]` with
    /// `#[from]` does.
    #[derive(Debug)]
    struct Wrapping(std::io::Error);

    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "store: {}", self.0)
        }
    }

    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_lines_say_each_cause_once() {
        let root = std::io::Error::other("pool timed out");
        let error = anyhow::Error::new(Wrapping(root)).context("cannot start the server");
        assert_eq!(
            one_line(&error),
            "cannot start the server: store: pool timed out"
        );
    }
}
