//! What a customer needs to recompute the usage of one of its invoices without trusting the
//! server (docs/TRUST.md, "Recomputing an invoice"): the invoice's usage lines, the plan and
//! catalog version it was rated with, every event of its closed period with the ledger entry
//! that holds it and that entry's inclusion proof under the newest signed checkpoint, and the
//! keys that sign checkpoints. `tollgate ledger recompute-invoice` checks each proof offline,
//! rebuilds the events from their entries and rates them with `tollgate_core`'s own
//! `pricing::usage_lines`: a line the events do not support is named.
//!
//! The lines point at their ledger range: `first_seq`..=`last_seq` of the meter's events.
//!
//! An event replaced by a later copy (`on_duplicate: latest_replaces`, docs/INVOICES.md) is in
//! the ledger as first written; its amendments are `event.amended` action entries, listed and
//! proven under `amendments`, so the command rates the value the invoice was rated with.

use jiff::Timestamp;
use serde::Serialize;
use std::collections::HashMap;
use tollgate_core::ids::WorkspaceId;
use tollgate_core::pricing::{BillingPeriod, UsageLineText};

use tollgate_store::ledger::{EntryKind, LedgerEntryRecord};
use tollgate_verify::merkle::Tree;

use super::evidence::{EvidenceRequest, MAX_COUNTED, period_events};
use super::{hex_hash, parse_hash};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The plan and catalog version an invoice was rated with.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RatedWith {
    pub plan: String,
    pub catalog_version: i64,
    /// `false` for an invoice written before invoices noted it: the subscription's current plan
    /// and version are shown instead, and may differ from what the invoice used.
    pub recorded: bool,
}

/// One usage line as invoiced, and the ledger range of its meter's events.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvoicedUsageLine {
    pub meter: String,
    pub description: String,
    /// Exact decimal.
    pub quantity: String,
    /// The rounded amount, exact decimal in the invoice's currency.
    pub amount: String,
    /// The events of the meter in the period that are in the ledger: how many, and the lowest
    /// and highest entry index among them (other customers' entries lie between).
    pub events: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<i64>,
}

/// An event of the period as the ledger holds it, with its inclusion proof.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProvenEvent {
    pub id: String,
    pub seq: i64,
    /// The entry's exact text; its leaf hash is `SHA-256(0x00 || entry)`.
    pub entry: String,
    /// Hex hashes, leaf side first (RFC 6962 section 2.1.1), up to `checkpoint.size`.
    pub proof: Vec<String>,
}

/// The signed checkpoint every proof leads to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProofCheckpoint {
    pub size: i64,
    pub root_hash: String,
    pub note: String,
}

/// Everything to recompute one invoice's usage lines offline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvoiceEvidence {
    pub invoice: String,
    pub customer: String,
    pub currency: String,
    /// The period the invoice closes (its usage); absent on an invoice without usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_start: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_end: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rated_with: Option<RatedWith>,
    /// The catalog version it was rated with, as `tollgate_core::catalog::Catalog` JSON.
    #[schema(value_type = Object)]
    pub catalog: serde_json::Value,
    pub lines: Vec<InvoicedUsageLine>,
    /// Negative usage lines: what earlier progressive invoices of the period already billed,
    /// subtracted (docs/INVOICES.md); shown, not recomputed from events.
    pub adjustments: Vec<InvoicedUsageLine>,
    /// The customer's events of the period under the checkpoint, oldest first.
    pub events: Vec<ProvenEvent>,
    /// The `event.amended` entries of the period's events (`id`: the domain event's), in log
    /// order: each replaces its event's properties with `new_properties`.
    pub amendments: Vec<ProvenEvent>,
    /// Events of the period not under a signed checkpoint yet (sealed within the ledger
    /// interval): they cannot be proven until then.
    pub unproven: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<ProofCheckpoint>,
    /// Base64 Ed25519 keys that sign checkpoints (`GET /v1/license_keys`). Pin them: a
    /// customer that takes them from this answer trusts the server that sent it.
    pub public_keys: Vec<String>,
}

/// Builds the evidence of `invoice` (the caller has checked it may see it).
pub async fn invoice_evidence(
    engine: &Engine,
    workspace: &str,
    invoice_id: &str,
) -> AppResult<InvoiceEvidence> {
    let ws = WorkspaceId::from(workspace);
    let store = engine.store();
    let invoice = store
        .get_invoice(&ws, invoice_id)
        .await?
        .ok_or_else(|| Error::not_found("invoice", invoice_id))?;
    let doc = &invoice.document;
    let closing: Option<BillingPeriod> = doc
        .get("closing")
        .filter(|c| !c.is_null())
        .map(|c| serde_json::from_value(c.clone()))
        .transpose()
        .map_err(|e| Error::internal(format!("invoice {invoice_id}'s period: {e}")))?;
    let rated_with = rated_with(engine, &ws, &invoice).await?;
    let catalog = match &rated_with {
        Some(r) => store
            .catalog_version(&ws, r.catalog_version)
            .await?
            .map(|c| c.catalog)
            .unwrap_or_default(),
        None => serde_json::Value::Null,
    };

    let (adjustments, mut lines): (Vec<InvoicedUsageLine>, Vec<InvoicedUsageLine>) = doc
        .get("lines")
        .and_then(|l| l.as_array())
        .into_iter()
        .flatten()
        .filter_map(UsageLineText::from_json)
        .map(|line| InvoicedUsageLine {
            meter: line.meter,
            description: line.description,
            quantity: line.quantity,
            amount: line.amount,
            events: 0,
            first_seq: None,
            last_seq: None,
        })
        // A usage price never rates to less than zero: a negative usage line subtracts what
        // earlier progressive invoices of the period billed, and is not rated from events.
        .partition(|line| line.amount.starts_with('-'));

    let mut events = Vec::new();
    let mut amendments = Vec::new();
    let mut unproven = Vec::new();
    let checkpoint = store.latest_checkpoint(&ws).await?;
    if let Some(period) = closing {
        let request = EvidenceRequest {
            workspace: workspace.to_owned(),
            customer: invoice.customer.clone(),
            from: period.start,
            to: period.end,
            limit: MAX_COUNTED,
        };
        let records = period_events(engine, &request).await?;
        let size = checkpoint.as_ref().map_or(0, |c| c.size);
        // One read of the checkpoint's entries gives both the leaves of the tree and where
        // each of the customer's events sits (no query per event).
        let all = if records.is_empty() || size == 0 {
            Vec::new()
        } else {
            store.ledger_entries(&ws, 0, size).await?
        };
        let leaves = all
            .iter()
            .map(|e| parse_hash(&e.leaf_hash))
            .collect::<AppResult<Vec<_>>>()?;
        let mut by_event: HashMap<&str, &LedgerEntryRecord> = all
            .iter()
            .filter(|e| {
                e.kind == EntryKind::Usage
                    && e.customer.as_deref() == Some(invoice.customer.as_str())
            })
            .map(|e| (e.reference.as_str(), e))
            .collect();
        // The amendments of these events, as sealed: the customer's `event.amended` actions.
        let ids: std::collections::HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let mut amended: Vec<(&LedgerEntryRecord, (String, i64))> = all
            .iter()
            .filter(|e| {
                e.kind == EntryKind::Action
                    && e.customer.as_deref() == Some(invoice.customer.as_str())
                    && e.entry.contains("\"type\":\"event.amended\"")
            })
            .filter_map(|e| {
                let text: serde_json::Value = serde_json::from_str(&e.entry).ok()?;
                let event = text.pointer("/body/event")?.as_str()?;
                let seq = text.pointer("/body/seq")?.as_i64()?;
                ids.contains(event).then(|| (e, (event.to_owned(), seq)))
            })
            .collect();
        amended.sort_by_key(|(e, _)| e.seq);
        let sealed: std::collections::HashSet<(String, i64)> =
            amended.iter().map(|(_, key)| key.clone()).collect();
        for a in store
            .customer_amendments(
                &ws,
                &tollgate_core::ids::CustomerId::from(invoice.customer.as_str()),
                period.start,
                period.end,
            )
            .await?
        {
            if ids.contains(a.event_id.as_str()) && !sealed.contains(&(a.event_id.clone(), a.seq)) {
                unproven.push(format!("{} (amendment {})", a.event_id, a.seq));
            }
        }
        let mut entries = Vec::new();
        for record in &records {
            match by_event.remove(record.id.as_str()) {
                Some(entry) => entries.push((record, entry)),
                None => unproven.push(record.id.clone()),
            }
        }
        if !entries.is_empty() {
            let tree = Tree::new(leaves);
            let meters = meters_by_event(&catalog);
            for (record, entry) in entries {
                let index = usize::try_from(entry.seq).map_err(Error::internal)?;
                let proof = tree
                    .inclusion_proof(index)
                    .ok_or_else(|| Error::internal("an entry is outside its checkpoint"))?;
                for line in lines.iter_mut().filter(|l| {
                    meters
                        .iter()
                        .any(|(event_type, m)| *event_type == record.event_type && *m == l.meter)
                }) {
                    line.events += 1;
                    line.first_seq = Some(line.first_seq.map_or(entry.seq, |s| s.min(entry.seq)));
                    line.last_seq = Some(line.last_seq.map_or(entry.seq, |s| s.max(entry.seq)));
                }
                events.push(ProvenEvent {
                    id: record.id.clone(),
                    seq: entry.seq,
                    entry: entry.entry.clone(),
                    proof: proof.iter().map(hex_hash).collect(),
                });
            }
            for (entry, _) in amended {
                let index = usize::try_from(entry.seq).map_err(Error::internal)?;
                let proof = tree
                    .inclusion_proof(index)
                    .ok_or_else(|| Error::internal("an entry is outside its checkpoint"))?;
                amendments.push(ProvenEvent {
                    id: entry.reference.clone(),
                    seq: entry.seq,
                    entry: entry.entry.clone(),
                    proof: proof.iter().map(hex_hash).collect(),
                });
            }
        }
    }
    let public_keys = super::checkpoint_keys(engine, &ws).await?;
    Ok(InvoiceEvidence {
        invoice: invoice.id,
        customer: invoice.customer,
        currency: invoice.currency,
        period_start: closing.map(|p| p.start),
        period_end: closing.map(|p| p.end),
        rated_with,
        catalog,
        lines,
        adjustments,
        events,
        amendments,
        unproven,
        checkpoint: checkpoint.map(|c| ProofCheckpoint {
            size: c.size,
            root_hash: c.root_hash,
            note: c.note,
        }),
        public_keys,
    })
}

/// The plan and version the invoice notes, else its subscription's current ones.
async fn rated_with(
    engine: &Engine,
    ws: &WorkspaceId,
    invoice: &tollgate_store::billing::InvoiceRecord,
) -> AppResult<Option<RatedWith>> {
    if let Some(noted) = invoice.document.get("rated_with") {
        let plan = noted.get("plan").and_then(|p| p.as_str());
        let version = noted.get("catalog_version").and_then(|v| v.as_i64());
        if let (Some(plan), Some(version)) = (plan, version) {
            return Ok(Some(RatedWith {
                plan: plan.to_owned(),
                catalog_version: version,
                recorded: true,
            }));
        }
    }
    let Some(sub) = &invoice.subscription else {
        return Ok(None);
    };
    Ok(engine
        .store()
        .get_subscription(ws, sub)
        .await?
        .map(|s| RatedWith {
            plan: s.plan,
            catalog_version: s.catalog_version,
            recorded: false,
        }))
}

/// `(event type, meter)` for each meter of a catalog's JSON.
fn meters_by_event(catalog: &serde_json::Value) -> Vec<(String, String)> {
    catalog
        .get("meters")
        .and_then(|m| m.as_object())
        .into_iter()
        .flatten()
        .filter_map(|(key, meter)| Some((meter.get("event")?.as_str()?.to_owned(), key.clone())))
        .collect()
}
