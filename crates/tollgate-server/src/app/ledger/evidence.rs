//! The evidence report (docs/TRUST.md, "Evidence reports"): one customer's events of a period,
//! each with its place in the ledger, the usage they add up to per meter, and a verification of
//! the whole log run as the report is made, with the newest signed checkpoint and the keys that
//! check it. An auditor reads it as a PDF; the same report is JSON for a program.
//!
//! The counts are recomputed from the stored events (`usage_from_events`, the function quotes
//! use), not read from the aggregates the bill run reads: the report shows what the events say.
//! If someone changed a stored event, the counts show the changed value and the verification
//! names the entry, so the report never hides a tampering behind a good-looking number.

use jiff::Timestamp;
use serde::Serialize;
use tollgate_core::code::Code;
use tollgate_core::event::Event;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::pricing::{BillingPeriod, usage_from_events};
use tollgate_store::ledger::EntryKind;
use tollgate_store::{After, EventFilter, EventRecord};

use super::verify::{VerifyOptions, VerifyReport, verify};
use crate::billing::profiles::seller_profile;
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// Events listed when the caller does not say.
pub const DEFAULT_LIMIT: usize = 1_000;
/// The most events one report lists.
pub const MAX_LIMIT: usize = 20_000;
/// The most events one report counts: a longer period is refused (`period_too_large`), to be
/// split into shorter reports, rather than read into memory whole.
pub const MAX_COUNTED: usize = 200_000;
/// Events read per round trip.
const PAGE: i64 = 5_000;

/// What to report on.
#[derive(Debug, Clone)]
pub struct EvidenceRequest {
    pub workspace: String,
    pub customer: String,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Events to list (the counts cover every event of the period regardless).
    pub limit: usize,
}

/// One event of the period and where the ledger holds it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvidenceEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[schema(value_type = Object)]
    pub properties: serde_json::Value,
    /// The event's index in the ledger; absent while it is not sealed yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_index: Option<i64>,
}

/// A meter's value over the period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MeterCount {
    pub meter: String,
    /// The catalog's display name, when it gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Exact decimal, in the meter's unit.
    pub value: String,
}

/// The newest signed checkpoint, what an auditor checks the root against.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvidenceCheckpoint {
    pub size: i64,
    pub root_hash: String,
    /// The signed note, as `GET /v1/ledger/checkpoints` serves it.
    pub note: String,
    pub created_at: Timestamp,
}

/// The report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvidenceReport {
    pub workspace: String,
    pub customer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    pub from: Timestamp,
    pub to: Timestamp,
    pub generated_at: Timestamp,
    /// Events in the period (all of them, not only those listed).
    pub events_in_period: u64,
    /// Of those, how many the ledger holds (the rest are waiting for the next sealing pass).
    pub events_sealed: u64,
    /// The first `limit` events, oldest first.
    pub events: Vec<EvidenceEvent>,
    /// Usage per meter of the current catalog, from every event of the period.
    pub counts: Vec<MeterCount>,
    /// The whole log verified as the report was made.
    pub verification: VerifyReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<EvidenceCheckpoint>,
    /// Base64 Ed25519 public keys that verify the checkpoints (`GET /v1/license_keys`).
    pub public_keys: Vec<String>,
}

/// Builds the report: reads the period's events page by page, finds each listed event's ledger
/// entry, counts per meter, verifies the log.
pub async fn evidence(engine: &Engine, request: &EvidenceRequest) -> AppResult<EvidenceReport> {
    if request.from >= request.to {
        return Err(Error::invalid(
            Code::InvalidRange,
            "`from` must be before `to`",
        ));
    }
    if request.limit == 0 || request.limit > MAX_LIMIT {
        return Err(Error::invalid(
            Code::InvalidRequest,
            format!("`limit` must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let ws = WorkspaceId::from(request.workspace.as_str());
    let store = engine.store();
    let customer = store
        .get_customer(&ws, &CustomerId::from(request.customer.as_str()))
        .await?
        .ok_or_else(|| Error::not_found("customer", &request.customer))?;

    let records = period_events(engine, request).await?;
    let events: Vec<Event> = records.iter().map(as_event).collect();
    let mut listed = Vec::with_capacity(request.limit.min(records.len()));
    let mut sealed = 0u64;
    for (i, r) in records.iter().enumerate() {
        let entry = store.ledger_entry_of(&ws, EntryKind::Usage, &r.id).await?;
        if entry.is_some() {
            sealed += 1;
        }
        if i < request.limit {
            listed.push(EvidenceEvent {
                id: r.id.clone(),
                event_type: r.event_type.clone(),
                timestamp: r.timestamp,
                subject: r.subject.clone(),
                properties: r.properties.clone(),
                ledger_index: entry.map(|e| e.seq),
            });
        }
    }

    let catalog = engine.latest_catalog(&request.workspace).await?;
    let mut counts = Vec::new();
    if let Some(compiled) = &catalog {
        let period = BillingPeriod::new(request.from, request.to)
            .map_err(|e| Error::invalid(Code::InvalidRange, e.to_string()))?;
        let usage = usage_from_events(&compiled.catalog, &events, &period)
            .map_err(|e| Error::internal(format!("recomputing usage: {e}")))?;
        for (key, meter) in &compiled.catalog.meters {
            let value = usage.usage.get(key).map(|u| u.total).unwrap_or_default();
            counts.push(MeterCount {
                meter: key.clone(),
                name: meter.name.clone(),
                value: value.normalize().to_string(),
            });
        }
    }

    let verification = verify(engine, &request.workspace, &VerifyOptions::default()).await?;
    let checkpoint = store
        .latest_checkpoint(&ws)
        .await?
        .map(|c| EvidenceCheckpoint {
            size: c.size,
            root_hash: c.root_hash,
            note: c.note,
            created_at: c.created_at,
        });
    let public_keys = super::checkpoint_keys(engine, &ws).await?;
    Ok(EvidenceReport {
        workspace: request.workspace.clone(),
        customer: request.customer.clone(),
        customer_name: customer.name,
        from: request.from,
        to: request.to,
        generated_at: engine.now(),
        events_in_period: u64::try_from(records.len()).unwrap_or(u64::MAX),
        events_sealed: sealed,
        events: listed,
        counts,
        verification,
        checkpoint,
        public_keys,
    })
}

/// Every event of the customer in the period, oldest first, or `period_too_large`.
pub(super) async fn period_events(
    engine: &Engine,
    request: &EvidenceRequest,
) -> AppResult<Vec<EventRecord>> {
    let ws = WorkspaceId::from(request.workspace.as_str());
    let filter = EventFilter {
        customer: Some(request.customer.clone()),
        from: Some(request.from),
        to: Some(request.to),
        ..Default::default()
    };
    let mut all: Vec<EventRecord> = Vec::new();
    loop {
        let after = all.last().map(|r| After {
            at: r.timestamp,
            id: r.id.as_str(),
        });
        let page = engine
            .store()
            .query_events(&ws, &filter, after, PAGE)
            .await?;
        let done = i64::try_from(page.len()).unwrap_or(i64::MAX) < PAGE;
        all.extend(page);
        if all.len() > MAX_COUNTED {
            return Err(Error::invalid(
                Code::PeriodTooLarge,
                format!(
                    "the period holds more than {MAX_COUNTED} events of this customer; \
                     ask for shorter periods"
                ),
            ));
        }
        if done {
            return Ok(all);
        }
    }
}

fn as_event(r: &EventRecord) -> Event {
    Event {
        event_type: r.event_type.clone(),
        timestamp: r.timestamp,
        subject: r.subject.clone(),
        properties: r.properties.as_object().cloned().unwrap_or_default(),
    }
}

/// The report as a printable document, under the workspace's seller profile (its legal name,
/// address, tax ids and footer), else the workspace's name.
pub async fn document(
    engine: &Engine,
    report: &EvidenceReport,
) -> AppResult<tollgate_pdf::EvidenceDocument> {
    let store = engine.store();
    let seller = seller_profile(store.as_ref(), &report.workspace).await?;
    let (issuer, issuer_details, footer) = match seller {
        Some(s) => (
            s.legal_name,
            s.address
                .into_iter()
                .chain(s.tax_ids.into_iter().map(|id| format!("Tax id: {id}")))
                .collect(),
            s.footer,
        ),
        None => (
            store
                .get_workspace(&report.workspace)
                .await?
                .map_or_else(|| report.workspace.clone(), |w| w.name),
            Vec::new(),
            None,
        ),
    };
    Ok(render_document(report, issuer, issuer_details, footer))
}

/// The document as PDF bytes (CPU work: an async caller runs it on a blocking thread).
pub fn render(doc: &tollgate_pdf::EvidenceDocument) -> AppResult<Vec<u8>> {
    tollgate_pdf::render_evidence(doc).map_err(|e| Error::internal(format!("evidence PDF: {e}")))
}

fn day(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// The pure part of [`document`]: every field formatted.
fn render_document(
    report: &EvidenceReport,
    issuer: String,
    issuer_details: Vec<String>,
    footer: Option<String>,
) -> tollgate_pdf::EvidenceDocument {
    let v = &report.verification;
    let customer = match &report.customer_name {
        Some(name) => format!("{name} ({})", report.customer),
        None => report.customer.clone(),
    };
    let period = format!("{} to {} (UTC)", day(report.from), day(report.to));
    let facts = vec![
        ("Period".to_owned(), period),
        ("Generated".to_owned(), day(report.generated_at)),
        (
            "Events".to_owned(),
            format!(
                "{} in the period, {} sealed in the ledger",
                report.events_in_period, report.events_sealed
            ),
        ),
    ];
    let mut verification = vec![
        (
            "Result".to_owned(),
            if v.ok {
                "The ledger verifies: every entry hashes to its leaf, every record is as it \
                 was logged, every checkpoint's root and signature hold."
                    .to_owned()
            } else {
                "FAILED: the ledger does not verify (first bad entry below).".to_owned()
            },
        ),
        if v.ok {
            ("Log size".to_owned(), format!("{} entries", v.size))
        } else {
            (
                "Read".to_owned(),
                format!("{} entries before the failure", v.size),
            )
        },
        (
            if v.ok {
                "Root (SHA-256)"
            } else {
                "Root so far"
            }
            .to_owned(),
            v.root_hash.clone(),
        ),
        (
            "Checked".to_owned(),
            format!(
                "{} records compared with the store, {} checkpoints verified",
                v.records_checked, v.checkpoints_verified
            ),
        ),
    ];
    if let Some(bad) = &v.first_bad {
        let mut at = Vec::new();
        if let Some(seq) = bad.seq {
            at.push(format!("entry {seq}"));
        }
        if let Some(reference) = &bad.reference {
            at.push(format!("record {reference}"));
        }
        if let Some(size) = bad.checkpoint {
            at.push(format!("checkpoint at size {size}"));
        }
        verification.push(("First bad".to_owned(), at.join(", ")));
        verification.push(("Problem".to_owned(), bad.problem.to_owned()));
        verification.push(("Detail".to_owned(), bad.detail.clone()));
    }
    let counts = report
        .counts
        .iter()
        .map(|c| {
            let label = match &c.name {
                Some(name) => format!("{name} ({})", c.meter),
                None => c.meter.clone(),
            };
            (label, c.value.clone())
        })
        .collect();
    let bad_reference = v.first_bad.as_ref().and_then(|f| f.reference.as_deref());
    let events = report
        .events
        .iter()
        .map(|e| tollgate_pdf::EvidenceEvent {
            time: day(e.timestamp),
            event_type: e.event_type.clone(),
            subject: e.subject.clone().unwrap_or_default(),
            details: details(&e.id, &e.properties),
            ledger: match (e.ledger_index, bad_reference) {
                (None, _) => "not sealed yet".to_owned(),
                (Some(i), Some(bad)) if bad == e.id => format!("{i} (FAILED)"),
                (Some(i), _) => i.to_string(),
            },
        })
        .collect();
    let listed = report.events.len();
    let events_note =
        (u64::try_from(listed).unwrap_or(u64::MAX) < report.events_in_period).then(|| {
            format!(
                "The first {listed} of {} events are listed; the counts and the verification \
                 cover all of them. GET /v1/events/export lists every one.",
                report.events_in_period
            )
        });
    let checkpoint = report.checkpoint.as_ref().map_or_else(
        || vec!["No checkpoint is signed yet.".to_owned()],
        |c| {
            let mut lines = vec![format!("Signed {} at size {}:", day(c.created_at), c.size)];
            lines.extend(c.note.lines().filter(|l| !l.is_empty()).map(str::to_owned));
            lines
        },
    );
    let how_to_verify = vec![
        "Every event above is a leaf of the workspace's RFC 6962 Merkle log: its leaf hash is \
         SHA-256(0x00 || entry), where the entry is the event's canonical JSON."
            .to_owned(),
        "GET /v1/ledger/proof?event=<id> gives an event's inclusion proof under the newest \
         checkpoint; tollgate-verify (crate, no network) checks it and the checkpoint's \
         signature against the public keys above, which GET /v1/license_keys publishes."
            .to_owned(),
        "The operator re-runs the whole verification with `tollgate ledger verify`, which \
         recomputes every leaf and root and names the first bad entry."
            .to_owned(),
    ];
    tollgate_pdf::EvidenceDocument {
        issuer,
        issuer_details,
        reference: format!(
            "{} · {} to {}",
            report.customer,
            report.from.strftime("%Y-%m-%d"),
            report.to.strftime("%Y-%m-%d")
        ),
        customer,
        facts,
        verified: v.ok,
        verification,
        counts,
        events,
        events_note,
        checkpoint,
        keys: report.public_keys.clone(),
        how_to_verify,
        footer,
    }
}

/// An event's id and its properties as `key=value` pairs (strings unquoted).
fn details(id: &str, properties: &serde_json::Value) -> String {
    let mut parts = vec![format!("id={id}")];
    if let Some(map) = properties.as_object() {
        for (k, v) in map {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parts.push(format!("{k}={value}"));
        }
    }
    parts.join(" ")
}
