//! `tollgate bill-run`: closes billing periods from the command line, against the store itself.
//!
//! It runs the same bill run as `POST /v1/bill_runs`, in-process, so an operator (or a cron job)
//! can bill without an admin key or a running server, and watch the progress of a long run.
//! Every invoice is written in its own transaction under a key per subscription and period, so
//! a re-run, a run beside a running server, or a run resumed after a crash bills nothing twice.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use tollgate_server::app::bill_run::BillRunReport;
use tollgate_server::clock::SystemClock;
use tollgate_server::engine::Engine;
use tollgate_server::{ServerConfig, counters::RedisCounters};

use crate::config::{self, ServeArgs};

/// Flags of `tollgate bill-run`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Safe to re-run: each invoice is stored once per subscription and \
period (the store refuses a duplicate), so running it again, after a crash, or while \
`tollgate serve` runs on the same store creates only what is still missing, with no gap in \
invoice numbers.\n\nWithout --redis-url, a running server learns of trials this run ended when \
it next reloads those customers; with it, at once."
)]
pub struct BillRunArgs {
    /// Directory of the embedded SQLite database [default: ./tollgate-data].
    #[arg(long, env = "TOLLGATE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Bill the PostgreSQL store at this URL instead of SQLite.
    #[arg(
        long,
        env = "TOLLGATE_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Tell running nodes about ended trials through this Redis (as `serve --redis-url`).
    #[arg(
        long,
        env = "TOLLGATE_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    redis_url: Option<String>,
    /// Read data_dir, database_url and redis_url from `serve`'s config file.
    #[arg(long, env = "TOLLGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Workers of the run on PostgreSQL, 1 to 8 (as `serve --bill-run-workers`; SQLite: 1)
    /// [default: 1].
    #[arg(long, env = "TOLLGATE_BILL_RUN_WORKERS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=8))]
    workers: Option<u16>,
    /// Bill only this workspace [default: every workspace].
    #[arg(long, value_name = "WS")]
    workspace: Option<String>,
    /// Print the reports as one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
}

/// One workspace's report, for `--json`.
#[derive(Debug, Serialize)]
struct WorkspaceReport {
    workspace: String,
    #[serde(flatten)]
    report: BillRunReport,
}

/// Runs billing for the chosen workspaces; exit 1 if any subscription failed.
pub async fn run(args: BillRunArgs) -> anyhow::Result<ExitCode> {
    let config = store_config(&args)?;
    let store = tollgate_server::open_store(&config)
        .await
        .context("cannot open the store")?;
    let options = config.bill_run;
    let mut engine = Engine::new(store.clone(), Arc::new(SystemClock));
    if let Some(url) = &config.redis_url {
        let counters = RedisCounters::new(url, config.redis_failure_mode)
            .map_err(|e| anyhow::anyhow!("invalid Redis URL: {e}"))?;
        engine = engine.with_shared_counters(counters);
    }
    let engine = Arc::new(engine);
    let all = store
        .list_workspaces()
        .await
        .context("cannot list workspaces")?;
    let workspaces: Vec<String> = match &args.workspace {
        None => all.into_iter().map(|w| w.id).collect(),
        Some(ws) if all.iter().any(|w| &w.id == ws) => vec![ws.clone()],
        Some(ws) => {
            let names: Vec<&str> = all.iter().map(|w| w.id.as_str()).collect();
            bail!(
                "no workspace {ws:?} in this store; it has: {}",
                names.join(", ")
            );
        }
    };

    let mut reports = Vec::with_capacity(workspaces.len());
    for ws in workspaces {
        let progress = Progress::new(&ws);
        let started = Instant::now();
        let report = tollgate_server::app::bill_run::bill_run(
            &engine,
            &ws,
            options,
            &|done, total, so_far| progress.update(done, total, so_far.invoices_created),
        )
        .await
        .map_err(|e| anyhow::anyhow!("bill run of {ws} failed: {}", e.describe()))?;
        progress.finish();
        if !args.json {
            print!("{}", summary(&ws, &report, started.elapsed()));
        }
        reports.push(WorkspaceReport {
            workspace: ws,
            report,
        });
    }
    if args.json {
        let value = serde_json::json!({ "workspaces": reports });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).context("the reports do not serialize")?
        );
    }
    let failed = reports.iter().any(|r| !r.report.errors.is_empty());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The store to bill, by `serve`'s rules (flags, env, config file, defaults). A SQLite file that
/// is not there is an error: opening would create an empty store, and a mistyped --data-dir
/// would then "bill" nothing and report success.
fn store_config(args: &BillRunArgs) -> anyhow::Result<ServerConfig> {
    let serve = ServeArgs {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        redis_url: args.redis_url.clone(),
        config: args.config.clone(),
        bill_run_workers: args.workers,
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
    Ok(config)
}

/// `3 subscriptions, 1 trial ended, ...`: one line per workspace, then one per error.
fn summary(ws: &str, r: &BillRunReport, took: Duration) -> String {
    let n = |count: usize, one: &str, many: &str| {
        format!("{} {}", group(count), if count == 1 { one } else { many })
    };
    let mut out = format!(
        "{ws}: {}, {}, {} created, {} already existing, {} ({:.1} s)\n",
        n(r.subscriptions, "subscription", "subscriptions"),
        n(r.trials_ended, "trial ended", "trials ended"),
        n(r.invoices_created, "invoice", "invoices"),
        group(r.invoices_existing),
        n(r.errors.len(), "error", "errors"),
        took.as_secs_f64()
    );
    for e in &r.errors {
        out.push_str(&format!(
            "  error: customer {} (subscription {}): {} [{}]\n",
            e.customer, e.subscription, e.message, e.code
        ));
    }
    out
}

/// `42000` as `42,000`.
fn group(n: usize) -> String {
    crate::quote::thousands(&n.to_string())
}

/// Progress on stderr: a line redrawn in place on a terminal, a line per 1,000 subscriptions
/// otherwise (a log file or CI output should not fill with carriage returns).
struct Progress {
    workspace: String,
    terminal: bool,
    started: Instant,
    last: Mutex<Option<Instant>>,
    /// Subscriptions done at the last line printed (not on a terminal).
    printed: Mutex<usize>,
}

/// How often a terminal line is redrawn at most.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Subscriptions between two progress lines when stderr is not a terminal.
const LINE_EVERY: usize = 1_000;

impl Progress {
    fn new(workspace: &str) -> Self {
        Progress {
            workspace: workspace.to_owned(),
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: Mutex::new(None),
            printed: Mutex::new(0),
        }
    }

    fn line(&self, done: usize, total: usize, invoices: usize) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        format!(
            "[{}] {}/{} subscriptions ({}%, {:.0}/s), {} invoices",
            self.workspace,
            group(done),
            group(total),
            (done * 100).checked_div(total).unwrap_or(100),
            rate,
            group(invoices)
        )
    }

    fn update(&self, done: usize, total: usize, invoices: usize) {
        if self.terminal {
            let mut last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < REDRAW_EVERY) && done < total {
                return;
            }
            *last = Some(Instant::now());
            eprint!("\r{}\x1b[K", self.line(done, total, invoices));
            let _ = std::io::stderr().flush();
        } else {
            // Progress comes a chunk at a time: a line each time it passes a multiple.
            let mut printed = self
                .printed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if done / LINE_EVERY > *printed / LINE_EVERY {
                *printed = done;
                eprintln!("{}", self.line(done, total, invoices));
            }
        }
    }

    /// Ends the redrawn line so the summary starts on a fresh one.
    fn finish(&self) {
        if self.terminal
            && self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some()
        {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_server::app::bill_run::BillRunError;

    #[test]
    fn the_summary_names_each_count_and_each_error() {
        let report = BillRunReport {
            subscriptions: 1200,
            trials_ended: 1,
            invoices_created: 3,
            invoices_existing: 0,
            errors: vec![BillRunError {
                subscription: "sub_1".into(),
                customer: "acme".into(),
                code: "internal".into(),
                message: "boom".into(),
            }],
            ..BillRunReport::default()
        };
        let text = summary("ws_x", &report, Duration::from_millis(1500));
        assert_eq!(
            text,
            "ws_x: 1,200 subscriptions, 1 trial ended, 3 invoices created, 0 already existing, \
             1 error (1.5 s)\n  error: customer acme (subscription sub_1): boom [internal]\n"
        );
    }

    #[test]
    fn progress_lines_read_like_the_docs() {
        let p = Progress::new("ws_apex");
        let line = p.line(42_000, 100_000, 1_234);
        assert!(
            line.starts_with("[ws_apex] 42,000/100,000 subscriptions (42%,")
                && line.ends_with(", 1,234 invoices"),
            "{line}"
        );
    }
}
