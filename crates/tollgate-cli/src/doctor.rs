//! `tollgate doctor`: checks the configuration `tollgate serve` would run with (the same flags,
//! environment and config file) against what it points at, and prints the result as text, JSON
//! or a PDF. Exit 0 when no check failed (warnings allowed), 1 otherwise. Changes nothing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use tollgate_server::app::doctor::{self, Check, DoctorReport, Status};

use crate::config::{self, ServeArgs};

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Everything `tollgate serve` takes: the deployment to check.
    #[command(flatten)]
    serve: ServeArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the report as a PDF to this file.
    #[arg(long, value_name = "FILE")]
    pdf: Option<PathBuf>,
}

pub async fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let resolved = config::resolve_from_env(&args.serve);
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let report = match resolved {
        Ok(settings) => {
            let source = match &args.serve.config {
                Some(path) => format!("{} with flags and environment over it", path.display()),
                None => "flags, environment and defaults (no --config)".to_owned(),
            };
            let prior = vec![Check {
                name: "configuration",
                status: Status::Ok,
                detail: format!("read from {source}; serves on {}", settings.server.listen),
                millis,
            }];
            doctor::doctor(&settings.server, prior).await
        }
        Err(e) => DoctorReport {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            checked_at: jiff::Timestamp::now(),
            store: "unknown".to_owned(),
            checks: vec![Check {
                name: "configuration",
                status: Status::Fail,
                detail: format!("{e:#}"),
                millis,
            }],
            ok: false,
        },
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("tollgate {} doctor: {}", report.version, report.store);
        for c in &report.checks {
            println!("{:<14} {:<8} {}", c.name, c.status.as_str(), c.detail);
        }
        println!(
            "{}",
            if report.ok {
                "no check failed"
            } else {
                "FAILED: at least one check failed"
            }
        );
    }
    if let Some(path) = &args.pdf {
        let bytes = doctor::render(&doctor::document(&report))
            .map_err(|e| anyhow::anyhow!("{}", e.describe()))?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
