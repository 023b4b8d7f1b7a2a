//! `tollgate ledger recompute-invoice`: a customer checks its invoice without trusting the
//! server. It fetches `GET /v1/invoices/{id}/evidence`, verifies the checkpoint's signature and
//! every event's inclusion proof offline (`tollgate_verify`), rebuilds the events from the
//! ledger entries the proofs cover, rates them with `tollgate_core::pricing::usage_lines` on the
//! plan and catalog version the invoice was rated with, and compares line by line.

use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use jiff::Timestamp;
use serde::Deserialize;
use tollgate_client::Client;
use tollgate_client::Method;
use tollgate_core::catalog::Catalog;
use tollgate_core::event::Event;
use tollgate_core::money::Currency;
use tollgate_core::pricing::{BillingPeriod, UsageLineText, usage_lines};
use tollgate_verify::merkle::{self, Hash};
use tollgate_verify::{Checkpoint, NoteKey, PublicKey};

#[derive(Debug, Clone, Args)]
pub struct RecomputeArgs {
    /// The invoice to recompute.
    #[arg(long, value_name = "ID")]
    invoice: String,
    /// Base URL of the Tollgate server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "TOLLGATE_URL", value_name = "URL")]
    server: String,
    /// The customer's API key (or an admin key).
    #[arg(
        long,
        env = "TOLLGATE_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    api_key: String,
    /// Trust only these checkpoint keys (base64 Ed25519, as `GET /v1/license_keys` published
    /// them when you pinned them); repeat for several. Without it, the keys in the answer are
    /// used, which proves consistency with that answer only.
    #[arg(long = "trust-key", value_name = "BASE64")]
    trust_keys: Vec<String>,
}

/// `GET /v1/invoices/{id}/evidence`, as read here.
#[derive(Debug, Deserialize)]
struct Evidence {
    invoice: String,
    customer: String,
    currency: String,
    period_start: Option<Timestamp>,
    period_end: Option<Timestamp>,
    rated_with: Option<RatedWith>,
    catalog: serde_json::Value,
    lines: Vec<Line>,
    #[serde(default)]
    adjustments: Vec<Line>,
    events: Vec<ProvenEvent>,
    /// `event.amended` entries: an event's value replaced by a later copy (docs/INVOICES.md).
    #[serde(default)]
    amendments: Vec<ProvenEvent>,
    unproven: Vec<String>,
    checkpoint: Option<ProofCheckpoint>,
    public_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RatedWith {
    plan: String,
    catalog_version: i64,
    recorded: bool,
}

#[derive(Debug, Deserialize)]
struct Line {
    meter: String,
    description: String,
    quantity: String,
    amount: String,
    events: u64,
    first_seq: Option<i64>,
    last_seq: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct ProvenEvent {
    id: String,
    seq: i64,
    entry: String,
    proof: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ProofCheckpoint {
    size: i64,
    note: String,
}

/// A ledger entry of a usage event, as `app::ledger::entry_text` writes it.
#[derive(Debug, Deserialize)]
struct UsageEntry {
    kind: String,
    id: String,
    customer: Option<String>,
    #[serde(rename = "type")]
    event_type: String,
    at: Timestamp,
    subject: Option<String>,
    body: serde_json::Value,
}

pub async fn run(args: RecomputeArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server, &args.api_key)?;
    let path = format!("/v1/invoices/{}/evidence", args.invoice);
    let evidence: Evidence = client
        .call::<(), _>(Method::GET, &path, None)
        .await
        .with_context(|| format!("reading the evidence of invoice {}", args.invoice))?;
    let report = recompute(&evidence, &args.trust_keys)?;
    for line in &report.lines {
        println!("{line}");
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    if report.failures.is_empty() {
        println!(
            "invoice {}: {} usage lines recomputed from {} proven events: match",
            evidence.invoice,
            evidence.lines.len(),
            evidence.events.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for failure in &report.failures {
            println!("FAILED: {failure}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// What the recomputation found: a line per usage line, and failures (any failure: exit 1).
#[derive(Debug, Default)]
struct Report {
    lines: Vec<String>,
    warnings: Vec<String>,
    failures: Vec<String>,
}

fn recompute(evidence: &Evidence, trust_keys: &[String]) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let (Some(start), Some(end)) = (evidence.period_start, evidence.period_end) else {
        report.lines.push(format!(
            "invoice {} closes no period: no usage to recompute",
            evidence.invoice
        ));
        return Ok(report);
    };
    let period =
        BillingPeriod::new(start, end).map_err(|e| anyhow!("the invoice's period: {e}"))?;
    let rated = evidence
        .rated_with
        .as_ref()
        .ok_or_else(|| anyhow!("the invoice names no plan to rate with"))?;
    if !rated.recorded {
        report.warnings.push(format!(
            "the invoice predates noting its plan and catalog: rated with the subscription's \
             current plan {} (catalog version {})",
            rated.plan, rated.catalog_version
        ));
    }
    if trust_keys.is_empty() {
        report
            .warnings
            .push("trusting the checkpoint keys the server sent; pin them with --trust-key".into());
    }

    let mut events: Vec<(Timestamp, String, Event)> = Vec::new();
    if !evidence.events.is_empty() {
        let checkpoint = evidence
            .checkpoint
            .as_ref()
            .ok_or_else(|| anyhow!("events are listed without a checkpoint"))?;
        let root = verified_root(checkpoint, trust_keys, &evidence.public_keys)?;
        let size = u64::try_from(checkpoint.size)?;
        for proven in &evidence.events {
            match proven_event(proven, size, &root, &evidence.customer, &period) {
                Ok(event) => events.push(event),
                Err(problem) => report
                    .failures
                    .push(format!("event {}: {problem}", proven.id)),
            }
        }
    }
    // Amendments replace their event's properties, in log order (the newest wins).
    if !evidence.amendments.is_empty() {
        let checkpoint = evidence
            .checkpoint
            .as_ref()
            .ok_or_else(|| anyhow!("amendments are listed without a checkpoint"))?;
        let root = verified_root(checkpoint, trust_keys, &evidence.public_keys)?;
        let size = u64::try_from(checkpoint.size)?;
        let mut amendments: Vec<&ProvenEvent> = evidence.amendments.iter().collect();
        amendments.sort_by_key(|a| a.seq);
        for proven in amendments {
            match proven_amendment(proven, size, &root, &evidence.customer) {
                Ok((event_id, properties)) => {
                    for (_, id, event) in events.iter_mut() {
                        if *id == event_id {
                            event.properties = properties.clone();
                        }
                    }
                }
                Err(problem) => report
                    .failures
                    .push(format!("amendment {}: {problem}", proven.id)),
            }
        }
    }
    if !evidence.unproven.is_empty() {
        report.failures.push(format!(
            "{} events of the period are not under a signed checkpoint yet ({}); try again \
             after the next sealing pass",
            evidence.unproven.len(),
            evidence.unproven.join(", ")
        ));
    }
    // The bill run's order: time, then event id.
    events.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let events: Vec<Event> = events.into_iter().map(|(_, _, e)| e).collect();

    let catalog: Catalog = serde_json::from_value(evidence.catalog.clone()).with_context(|| {
        format!(
            "reading catalog version {} from the evidence",
            rated.catalog_version
        )
    })?;
    // A customer billed in another of the plan's currencies was rated with those prices.
    let currency: Currency = evidence
        .currency
        .parse()
        .map_err(|e| anyhow!("the invoice's currency {}: {e}", evidence.currency))?;
    let catalog = catalog.in_currency(currency);
    let recomputed = usage_lines(&catalog, &rated.plan, &events, &period)
        .map_err(|e| anyhow!("rating the events: {e}"))?;
    let mut recomputed: Vec<UsageLineText> = recomputed
        .iter()
        .map(|line| {
            let json = serde_json::to_value(line)?;
            UsageLineText::from_json(&json).ok_or_else(|| anyhow!("a recomputed line is not usage"))
        })
        .collect::<anyhow::Result<_>>()?;

    for line in &evidence.lines {
        let range = match (line.first_seq, line.last_seq) {
            (Some(first), Some(last)) => format!("ledger {first}..={last}, {} events", line.events),
            _ => "no events".to_owned(),
        };
        let found = recomputed
            .iter()
            .position(|r| r.meter == line.meter && r.description == line.description);
        match found.map(|i| recomputed.remove(i)) {
            Some(r) if r.quantity == line.quantity && r.amount == line.amount => {
                report.lines.push(format!(
                    "ok       {}: {} -> {} {} ({range})",
                    line.description, line.quantity, line.amount, evidence.currency
                ))
            }
            Some(r) => {
                report.lines.push(format!(
                    "DIFFERS  {}: invoiced {} -> {}, the events give {} -> {} ({range})",
                    line.description, line.quantity, line.amount, r.quantity, r.amount
                ));
                report.failures.push(format!(
                    "line {:?} is not what its events give",
                    line.description
                ));
            }
            None => {
                report.lines.push(format!(
                    "DIFFERS  {}: invoiced {} -> {}, the events give no such line ({range})",
                    line.description, line.quantity, line.amount
                ));
                report.failures.push(format!(
                    "line {:?} is not supported by the events",
                    line.description
                ));
            }
        }
    }
    for adjustment in &evidence.adjustments {
        report.lines.push(format!(
            "adjusts  {}: {} {} (billed by an earlier progressive invoice; not rated from events)",
            adjustment.description, adjustment.amount, evidence.currency
        ));
    }
    for extra in recomputed {
        report.lines.push(format!(
            "MISSING  {}: the events give {} -> {}, not on the invoice",
            extra.description, extra.quantity, extra.amount
        ));
        report.failures.push(format!(
            "the events give a line the invoice lacks: {:?}",
            extra.description
        ));
    }
    Ok(report)
}

/// The checkpoint's root, once its note is signed by a trusted key and says the same size.
fn verified_root(
    checkpoint: &ProofCheckpoint,
    trust_keys: &[String],
    sent_keys: &[String],
) -> anyhow::Result<Hash> {
    let origin = checkpoint
        .note
        .lines()
        .next()
        .ok_or_else(|| anyhow!("the checkpoint note is empty"))?;
    let keys = if trust_keys.is_empty() {
        sent_keys
    } else {
        trust_keys
    };
    let keys: Vec<NoteKey> = keys
        .iter()
        .map(|k| {
            Ok(NoteKey {
                name: origin.to_owned(),
                key: PublicKey::from_base64(k).map_err(|e| anyhow!("key {k}: {e}"))?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let verified = Checkpoint::verify(&checkpoint.note, &keys)
        .map_err(|e| anyhow!("the checkpoint's signature does not verify: {e}"))?;
    if i64::try_from(verified.size)? != checkpoint.size {
        bail!(
            "the checkpoint note says size {}, the answer {}",
            verified.size,
            checkpoint.size
        );
    }
    Ok(verified.root)
}

/// The hashes of a proof, read from hex.
fn proof_hashes(proven: &ProvenEvent) -> Result<Vec<Hash>, String> {
    proven
        .proof
        .iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|b| Hash::try_from(b).ok())
                .ok_or_else(|| format!("a proof hash is not 32 hex bytes: {h}"))
        })
        .collect()
}

/// An `event.amended` entry, once its proof leads to the root and it is the customer's: the
/// event it amends and the properties it rates with from then on.
fn proven_amendment(
    proven: &ProvenEvent,
    size: u64,
    root: &Hash,
    customer: &str,
) -> Result<(String, serde_json::Map<String, serde_json::Value>), String> {
    let proof = proof_hashes(proven)?;
    let index = u64::try_from(proven.seq).map_err(|_| "a negative entry index".to_owned())?;
    let leaf = merkle::leaf_hash(proven.entry.as_bytes());
    merkle::verify_inclusion(index, size, &leaf, &proof, root)
        .map_err(|e| format!("entry {} is not in the signed log: {e}", proven.seq))?;
    let entry: serde_json::Value = serde_json::from_str(&proven.entry)
        .map_err(|e| format!("entry {} does not read as JSON: {e}", proven.seq))?;
    if entry["kind"] != "action" || entry["type"] != "event.amended" || entry["id"] != proven.id {
        return Err(format!(
            "entry {} is not amendment {}",
            proven.seq, proven.id
        ));
    }
    if entry["customer"].as_str() != Some(customer) {
        return Err(format!("entry {} is another customer's", proven.seq));
    }
    let event = entry["body"]["event"]
        .as_str()
        .ok_or_else(|| format!("entry {} names no event", proven.seq))?;
    let properties = entry["body"]["new_properties"]
        .as_object()
        .cloned()
        .ok_or_else(|| format!("entry {} has no new properties", proven.seq))?;
    Ok((event.to_owned(), properties))
}

/// The event an entry holds, once its proof leads to the root and it is the customer's, in
/// the period: `(time, id, event)`.
fn proven_event(
    proven: &ProvenEvent,
    size: u64,
    root: &Hash,
    customer: &str,
    period: &BillingPeriod,
) -> Result<(Timestamp, String, Event), String> {
    let proof = proven
        .proof
        .iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|b| Hash::try_from(b).ok())
                .ok_or_else(|| format!("a proof hash is not 32 hex bytes: {h}"))
        })
        .collect::<Result<Vec<Hash>, String>>()?;
    let index = u64::try_from(proven.seq).map_err(|_| "a negative entry index".to_owned())?;
    let leaf = merkle::leaf_hash(proven.entry.as_bytes());
    merkle::verify_inclusion(index, size, &leaf, &proof, root)
        .map_err(|e| format!("entry {} is not in the signed log: {e}", proven.seq))?;
    let entry: UsageEntry = serde_json::from_str(&proven.entry)
        .map_err(|e| format!("entry {} does not read as a usage event: {e}", proven.seq))?;
    if entry.kind != "usage" || entry.id != proven.id {
        return Err(format!(
            "entry {} is not usage event {}",
            proven.seq, proven.id
        ));
    }
    if entry.customer.as_deref() != Some(customer) {
        return Err(format!("entry {} is another customer's", proven.seq));
    }
    if entry.at < period.start || entry.at >= period.end {
        return Err(format!(
            "entry {} is outside the invoice's period",
            proven.seq
        ));
    }
    let properties = entry.body.as_object().cloned().unwrap_or_default();
    Ok((
        entry.at,
        entry.id,
        Event {
            event_type: entry.event_type,
            timestamp: entry.at,
            subject: entry.subject,
            properties,
        },
    ))
}
