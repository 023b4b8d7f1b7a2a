//! `tollgate catalog validate | diff | apply`: the catalog as code, checked before it ships.
//!
//! Validation runs the same parser the server runs, offline, so a CI job can reject a broken
//! catalog without a server. Every mistake is printed as `FILE: path: message`, one per line, so
//! an operator fixes them all in one pass and an editor can jump to each.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tollgate_core::catalog::{self, Catalog};

use tollgate_client::{Client, ClientError};

/// Exit code when a catalog is invalid.
const EXIT_INVALID: u8 = 1;
/// Exit code when an input file cannot be read at all.
const EXIT_UNREADABLE: u8 = 2;

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Check catalog files and report every mistake with its path in the file.
    Validate {
        /// Catalog files (YAML).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Show what changes between two catalog files, or between a file and a server's catalog.
    Diff {
        /// `OLD NEW`, or one `FILE` compared with the catalog on `--server`.
        #[arg(required = true, num_args = 1..=2, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show the changes and apply the catalog file to a server (a new catalog version).
    Apply {
        /// The catalog file (YAML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
        /// Show the changes only; apply nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which server to talk to, and as whom.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Base URL of the Tollgate server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "TOLLGATE_URL", value_name = "URL")]
    server: Option<String>,
    /// An admin key of the workspace whose catalog this is.
    #[arg(
        long,
        env = "TOLLGATE_ADMIN_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    admin_key: Option<String>,
}

impl ServerArgs {
    pub fn client(&self) -> anyhow::Result<Client> {
        let Some(server) = &self.server else {
            bail!("no server given: pass --server URL or set TOLLGATE_URL");
        };
        let Some(key) = &self.admin_key else {
            bail!("no admin key given: pass --admin-key KEY or set TOLLGATE_ADMIN_KEY");
        };
        Ok(Client::new(server, key)?)
    }
}

/// A catalog file after reading and parsing; failures are already printed.
enum Loaded {
    Valid {
        catalog: Box<Catalog>,
        text: String,
    },
    /// Parsed with errors (printed).
    Invalid,
    /// Could not be read (printed).
    Unreadable,
}

impl Loaded {
    fn exit_code(&self) -> u8 {
        match self {
            Loaded::Valid { .. } => 0,
            Loaded::Invalid => EXIT_INVALID,
            Loaded::Unreadable => EXIT_UNREADABLE,
        }
    }
}

/// Reads and parses one file, printing its errors as `FILE: path: message`.
fn load(path: &Path) -> Loaded {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", path.display());
            return Loaded::Unreadable;
        }
    };
    match catalog::parse_yaml(&text) {
        Ok(catalog) => Loaded::Valid {
            catalog: Box::new(catalog),
            text,
        },
        Err(errors) => {
            for e in &errors.0 {
                println!("{}: {}", path.display(), located(&e.path, &e.message));
            }
            Loaded::Invalid
        }
    }
}

/// `path: message`, or just the message for an error about the whole file (empty path).
fn located(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_string()
    } else {
        format!("{path}: {message}")
    }
}

/// What a valid catalog holds, for the `ok` line.
fn summary(c: &Catalog) -> String {
    let mut parts = vec![
        count(c.meters.len(), "meter"),
        count(c.features.len(), "feature"),
        count(c.plans.len(), "plan"),
    ];
    for (n, what) in [
        (c.addons.len(), "add-on"),
        (c.products.len(), "product"),
        (c.coupons.len(), "coupon"),
    ] {
        if n > 0 {
            parts.push(count(n, what));
        }
    }
    parts.join(", ")
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Runs a catalog command. `runtime` is only built by the commands that talk to a server.
pub fn run(
    command: CatalogCommand,
    runtime: fn() -> anyhow::Result<tokio::runtime::Runtime>,
) -> anyhow::Result<ExitCode> {
    match command {
        CatalogCommand::Validate { files } => Ok(validate(&files)),
        CatalogCommand::Diff { files, server } => match files.as_slice() {
            [old, new] => Ok(diff_files(old, new)),
            [file] => runtime()?.block_on(diff_server(file, &server)),
            _ => unreachable!("clap allows one or two files"),
        },
        CatalogCommand::Apply {
            file,
            server,
            dry_run,
        } => runtime()?.block_on(apply(&file, &server, dry_run)),
    }
}

/// Validates every file (not stopping at the first bad one); the exit code is the worst seen.
fn validate(files: &[PathBuf]) -> ExitCode {
    let mut worst = 0;
    for path in files {
        let loaded = load(path);
        if let Loaded::Valid { catalog, .. } = &loaded {
            println!("{}: ok ({})", path.display(), summary(catalog));
        }
        worst = worst.max(loaded.exit_code());
    }
    ExitCode::from(worst)
}

/// Prints the changes from `old` to `new`, one per line.
fn print_changes(old: &Catalog, new: &Catalog, from: &str, to: &str) -> usize {
    let changes = catalog::diff(old, new);
    if changes.is_empty() {
        println!("no changes from {from} to {to}");
    } else {
        let s = if changes.len() == 1 { "" } else { "s" };
        println!("{} change{s} from {from} to {to}:", changes.len());
        for change in &changes {
            println!("  {change}");
        }
    }
    changes.len()
}

fn diff_files(old: &Path, new: &Path) -> ExitCode {
    let (a, b) = (load(old), load(new));
    match (&a, &b) {
        (Loaded::Valid { catalog: old_c, .. }, Loaded::Valid { catalog: new_c, .. }) => {
            print_changes(
                old_c,
                new_c,
                &old.display().to_string(),
                &new.display().to_string(),
            );
            ExitCode::SUCCESS
        }
        _ => ExitCode::from(a.exit_code().max(b.exit_code())),
    }
}

/// The server's current catalog, or an empty one when none was applied yet (so the diff shows
/// everything the file would add).
async fn server_catalog(client: &Client) -> anyhow::Result<(Catalog, Option<u64>)> {
    match client.get_catalog().await? {
        None => Ok((Catalog::default(), None)),
        Some(current) => {
            let catalog: Catalog = catalog::from_json_value(current.catalog)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .context("the server's catalog is not in a form this version of tollgate reads")?;
            Ok((catalog, Some(current.version)))
        }
    }
}

fn version_label(version: Option<u64>) -> String {
    match version {
        Some(v) => format!("server (version {v})"),
        None => "server (no catalog yet)".to_string(),
    }
}

async fn diff_server(file: &Path, server: &ServerArgs) -> anyhow::Result<ExitCode> {
    let client = server.client()?;
    let loaded = load(file);
    let Loaded::Valid { catalog, .. } = &loaded else {
        return Ok(ExitCode::from(loaded.exit_code()));
    };
    let (current, version) = server_catalog(&client).await?;
    print_changes(
        &current,
        catalog,
        &version_label(version),
        &file.display().to_string(),
    );
    Ok(ExitCode::SUCCESS)
}

async fn apply(file: &Path, server: &ServerArgs, dry_run: bool) -> anyhow::Result<ExitCode> {
    let client = server.client()?;
    // Validate locally first: the same parser runs on the server, and a local failure needs no
    // round trip and leaves the server untouched.
    let loaded = load(file);
    let Loaded::Valid { catalog, text } = &loaded else {
        return Ok(ExitCode::from(loaded.exit_code()));
    };
    let (current, version) = server_catalog(&client).await?;
    let changes = print_changes(
        &current,
        catalog,
        &version_label(version),
        &file.display().to_string(),
    );
    if dry_run {
        println!("dry run: nothing applied");
        return Ok(ExitCode::SUCCESS);
    }
    if changes == 0 && version.is_some() {
        // A new version identical to the current one would only add noise to the history.
        println!("nothing to apply: the server already has this catalog");
        return Ok(ExitCode::SUCCESS);
    }
    match client.put_catalog_yaml(text).await {
        Ok(applied) => {
            println!(
                "applied {}: catalog version {}",
                file.display(),
                applied.version
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Api(e)) if !e.problem.errors.is_empty() => {
            // The server's parser disagreed with ours (a newer server, or a rule that needs
            // server state): show its mistakes the same way as local ones.
            println!("{}: rejected by the server ({})", file.display(), e.status);
            for fe in &e.problem.errors {
                println!("{}: {}", file.display(), located(&fe.path, &fe.message));
            }
            Ok(ExitCode::from(EXIT_INVALID))
        }
        Err(e) => Err(e).context(format!("cannot apply {}", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_naturally() {
        assert_eq!(count(1, "plan"), "1 plan");
        assert_eq!(count(0, "meter"), "0 meters");
        assert_eq!(count(3, "add-on"), "3 add-ons");
    }

    #[test]
    fn empty_paths_print_the_message_alone() {
        assert_eq!(located("", "not YAML"), "not YAML");
        assert_eq!(located("plans.free", "unknown"), "plans.free: unknown");
    }
}
