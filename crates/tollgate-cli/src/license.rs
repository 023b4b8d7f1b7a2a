//! `tollgate license show | verify`: a license file read offline with `tollgate-verify`, the
//! crate an operator embeds in its self-hosted product (`docs/TRUST.md`). `issue` and `revoke`
//! ask a server (`POST /v1/licenses`, `POST /v1/licenses/{id}/revoke`): the signing keys never
//! leave it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use tollgate_verify::{Keyring, LicenseFile, Options, PublicKey, Status, verify};

use crate::InputError;

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Print a license file's headers and payload as issued (nothing is checked).
    Show {
        /// The armored license file.
        file: PathBuf,
    },
    /// Verify a license file offline against trusted public keys: signature, validity at a
    /// time, machine binding, features. Exit 1 with the reason's code when refused.
    Verify(VerifyArgs),
    /// Issue a license from the customer's subscription (its plan's `license` block) through a
    /// server, and write the armored file.
    Issue(IssueArgs),
    /// Revoke a license through a server: online validation answers `revoked` from then on.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The customer to license.
    #[arg(long, value_name = "ID")]
    customer: String,
    /// The subscription to issue from (default: the customer's live one).
    #[arg(long, value_name = "ID")]
    subscription: Option<String>,
    /// Bind the license to this machine fingerprint.
    #[arg(long, value_name = "FINGERPRINT")]
    machine: Option<String>,
    /// A limit for this customer on top of the plan's, `NAME=N`; repeat for several.
    #[arg(long = "limit", value_name = "NAME=N")]
    limits: Vec<String>,
    /// Write the armored license here (default: standard output).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    server: crate::catalog_cmd::ServerArgs,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The license id (`lic_...`).
    license: String,
    /// Why, as the license's `revoke_reason`.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    #[command(flatten)]
    server: crate::catalog_cmd::ServerArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The armored license file.
    file: PathBuf,
    /// A trusted public key, standard base64 of 32 bytes (as `GET /v1/license_keys` lists
    /// them); repeat for several.
    #[arg(long = "key", value_name = "BASE64")]
    keys: Vec<String>,
    /// A file of trusted keys: the JSON answer of `GET /v1/license_keys`, a JSON list of base64
    /// keys, `{"license_keys": [...]}`, or one base64 key per line.
    #[arg(long, value_name = "FILE")]
    keys_file: Option<PathBuf>,
    /// Verify at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    at: Option<Timestamp>,
    /// This machine's fingerprint, for a license bound to one.
    #[arg(long, value_name = "FINGERPRINT")]
    machine: Option<String>,
    /// Refuse unless the license grants this feature; repeat for several.
    #[arg(long = "feature", value_name = "NAME")]
    features: Vec<String>,
}

pub fn run(command: LicenseCommand) -> anyhow::Result<ExitCode> {
    match command {
        LicenseCommand::Show { file } => {
            let text = read(&file)?;
            let parsed = LicenseFile::parse(&text)
                .with_context(|| format!("{} is not a license file", file.display()))?;
            println!("Format: {}", parsed.format);
            println!("Key: {}", parsed.key_id);
            println!();
            println!("{}", String::from_utf8_lossy(&parsed.payload).trim_end());
            Ok(ExitCode::SUCCESS)
        }
        LicenseCommand::Verify(args) => verify_file(&args),
        LicenseCommand::Issue(args) => crate::runtime()?.block_on(issue(args)),
        LicenseCommand::Revoke(args) => crate::runtime()?.block_on(revoke(args)),
    }
}

async fn issue(args: IssueArgs) -> anyhow::Result<ExitCode> {
    let mut limits = serde_json::Map::new();
    for given in &args.limits {
        let (name, value) = given
            .split_once('=')
            .with_context(|| format!("--limit {given}: expected NAME=N"))?;
        let value: u64 = value
            .parse()
            .with_context(|| format!("--limit {given}: {value} is not a whole number"))?;
        limits.insert(name.to_owned(), value.into());
    }
    let mut body = serde_json::json!({ "customer": args.customer });
    if let Some(subscription) = &args.subscription {
        body["subscription"] = subscription.clone().into();
    }
    if let Some(machine) = &args.machine {
        body["machine"] = machine.clone().into();
    }
    if !limits.is_empty() {
        body["limits"] = limits.into();
    }
    let client = args.server.client()?;
    let issued: serde_json::Value = client
        .call(tollgate_client::Method::POST, "/v1/licenses", Some(&body))
        .await
        .with_context(|| format!("issuing a license for {}", args.customer))?;
    let file = issued["file"]
        .as_str()
        .context("the server's answer has no license file")?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, file).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "license {} for {} written to {}",
                issued["id"].as_str().unwrap_or("?"),
                args.customer,
                path.display()
            );
        }
        None => print!("{file}"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let client = args.server.client()?;
    let body = match &args.reason {
        Some(reason) => serde_json::json!({ "reason": reason }),
        None => serde_json::json!({}),
    };
    let path = format!("/v1/licenses/{}/revoke", args.license);
    let revoked: serde_json::Value = client
        .call(tollgate_client::Method::POST, &path, Some(&body))
        .await
        .with_context(|| format!("revoking {}", args.license))?;
    println!(
        "license {} revoked ({})",
        args.license,
        revoked["revoke_reason"]
            .as_str()
            .unwrap_or("no reason given")
    );
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|source| {
        InputError {
            path: path.to_owned(),
            source,
        }
        .into()
    })
}

/// The keys of `--key` and `--keys-file`.
fn keyring(args: &VerifyArgs) -> anyhow::Result<Keyring> {
    let mut texts = args.keys.clone();
    if let Some(path) = &args.keys_file {
        let text = read(path)?;
        texts.extend(match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(json) => {
                let list = json.get("license_keys").unwrap_or(&json);
                let Some(items) = list.as_array() else {
                    bail!("{}: expected a list of keys", path.display());
                };
                items
                    .iter()
                    .filter_map(|k| k.get("public_key").unwrap_or(k).as_str())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            }
            Err(_) => text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect(),
        });
    }
    if texts.is_empty() {
        bail!("no trusted key: give --key BASE64 or --keys-file FILE (from GET /v1/license_keys)");
    }
    let mut ring = Keyring::new();
    for text in &texts {
        ring.add(
            PublicKey::from_base64(text)
                .with_context(|| format!("{text:?} is not an Ed25519 public key in base64"))?,
        );
    }
    Ok(ring)
}

fn verify_file(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let text = read(&args.file)?;
    let ring = keyring(args)?;
    let options = Options {
        now: args.at.unwrap_or_else(Timestamp::now),
        machine: args.machine.as_deref(),
    };
    let verified = verify(&text, &ring, options)
        .map_err(|reason| anyhow::anyhow!("license refused: {}: {reason}", reason.code()))?;
    let missing: Vec<&str> = args
        .features
        .iter()
        .filter(|f| !verified.has_feature(f))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        bail!(
            "license refused: feature_missing: it does not grant {}",
            missing.join(", ")
        );
    }
    let l = &verified.license;
    match verified.status {
        Status::Active => println!("valid: active until {}", l.expires),
        Status::Grace { ends } => {
            println!(
                "valid: in grace (expired {}), renew before {ends}",
                l.expires
            )
        }
    }
    println!("license: {} (key {})", l.id, verified.key_id);
    println!("customer: {}  plan: {}", l.customer, l.plan);
    println!("features: {}", l.features.join(", "));
    let limits: Vec<String> = l.limits.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("limits: {}", limits.join(", "));
    if let Some(machine) = &l.machine {
        println!("machine: {machine}");
    }
    Ok(ExitCode::SUCCESS)
}
