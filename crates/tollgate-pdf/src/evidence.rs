//! The evidence report: what a customer's usage of a period was, event by event, and whether
//! the tamper-evident ledger that recorded it still verifies (docs/TRUST.md).
//!
//! From the top: the issuer and the title with a VERIFIED or FAILED badge; who the report is
//! about and its facts; the verification's result (and its first bad entry); usage per meter;
//! the events; the signed checkpoint and the keys to check it with; how to verify offline.

use crate::PdfError;
use crate::blocks;
use crate::layout::{Align, Layout, PageSpec, Placed, palette};
use crate::render::{DocumentInfo, write_pdf};
use crate::table::{Column, ColumnWidth, Table};
use crate::text::Fonts;

/// An evidence report, every field preformatted by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidenceDocument {
    /// Who issues the report: the workspace's seller name (the operator's brand).
    pub issuer: String,
    /// The issuer's address and tax ids, one line each.
    pub issuer_details: Vec<String>,
    /// The report's reference, e.g. "cus_1 · 2026-11-01 to 2026-12-01".
    pub reference: String,
    /// Whom the report is about: the customer's name and id.
    pub customer: String,
    /// Period, generation time, counts: key/value rows under "DETAILS".
    pub facts: Vec<(String, String)>,
    /// Whether the ledger verified; decides the badge.
    pub verified: bool,
    /// The verification's findings as key/value rows (log size, root, checkpoints, first bad
    /// entry).
    pub verification: Vec<(String, String)>,
    /// `(meter, value)` rows.
    pub counts: Vec<(String, String)>,
    /// One row per event: time, type, subject, details, ledger entry.
    pub events: Vec<EvidenceEvent>,
    /// Said under the events (e.g. that the list stops at a limit).
    pub events_note: Option<String>,
    /// The newest signed checkpoint, one line of the note each.
    pub checkpoint: Vec<String>,
    /// The public keys that verify checkpoints, one per line.
    pub keys: Vec<String>,
    /// How to re-verify offline, one paragraph each.
    pub how_to_verify: Vec<String>,
    /// The operator's text at the end.
    pub footer: Option<String>,
}

/// One event of the period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidenceEvent {
    pub time: String,
    pub event_type: String,
    pub subject: String,
    /// Its id and properties, compact.
    pub details: String,
    /// Its ledger index, or why it has none yet ("not sealed yet").
    pub ledger: String,
}

/// Renders an evidence report to PDF bytes (A4).
pub fn render_evidence(doc: &EvidenceDocument) -> Result<Vec<u8>, PdfError> {
    let fonts = Fonts::embedded()?;
    let spec = PageSpec::A4;
    let mut layout = Layout::new(fonts, spec);
    let width = layout.content_width();

    let badge = blocks::verdict(fonts, doc.verified, "VERIFIED");
    layout.place(blocks::title_block(
        fonts,
        &doc.issuer,
        "Evidence report",
        &doc.reference,
        Some(badge),
        width,
    ));
    layout.place(blocks::rule(width, 14.0, 0.8, palette::RULE));

    let half = width / 2.0 - 12.0;
    let from: Vec<String> = std::iter::once(doc.issuer.clone())
        .chain(doc.issuer_details.iter().cloned())
        .collect();
    let parties = blocks::labelled(fonts, "ISSUED BY", &from, half).stack(
        12.0,
        blocks::labelled(fonts, "CUSTOMER", std::slice::from_ref(&doc.customer), half),
    );
    let details = blocks::labelled(fonts, "DETAILS", &[], half)
        .stack(0.0, blocks::key_values(fonts, &doc.facts, half));
    layout.place(
        Placed::default()
            .beside(0.0, parties)
            .beside(width - half, details),
    );
    layout.space(20.0);

    layout.place(
        blocks::labelled(fonts, "LEDGER VERIFICATION", &[], width)
            .stack(0.0, blocks::key_values(fonts, &doc.verification, width)),
    );
    layout.space(16.0);

    layout.place(blocks::labelled(fonts, "USAGE PER METER", &[], width));
    layout.table(&Table {
        columns: vec![
            Column::text("Meter"),
            Column::numeric("Value in the period"),
        ],
        rows: doc
            .counts
            .iter()
            .map(|(m, v)| vec![m.clone(), v.clone()])
            .collect(),
    });
    layout.space(16.0);

    layout.place(blocks::labelled(fonts, "EVENTS", &[], width));
    layout.table(&events_table(&doc.events));
    if let Some(note) = &doc.events_note {
        layout.space(4.0);
        layout.place(blocks::paragraph(
            fonts,
            note,
            blocks::KEY,
            width,
            Align::Left,
        ));
    }
    if !doc.checkpoint.is_empty() {
        layout.space(16.0);
        layout.place(blocks::labelled(
            fonts,
            "SIGNED CHECKPOINT",
            &doc.checkpoint,
            width,
        ));
    }
    if !doc.keys.is_empty() {
        layout.space(10.0);
        layout.place(blocks::labelled(fonts, "PUBLIC KEYS", &doc.keys, width));
    }
    if !doc.how_to_verify.is_empty() {
        layout.space(16.0);
        layout.place(blocks::labelled(
            fonts,
            "HOW TO VERIFY",
            &doc.how_to_verify,
            width,
        ));
    }
    if let Some(footer) = doc.footer.as_deref().filter(|f| !f.trim().is_empty()) {
        layout.space(20.0);
        layout.place(blocks::rule(width, 6.0, 0.5, palette::RULE));
        layout.place(blocks::paragraph(
            fonts,
            footer,
            blocks::KEY,
            width,
            Align::Left,
        ));
    }

    let footer_left = format!("{}  ·  Evidence report {}", doc.issuer, doc.reference);
    let pages = layout.finish(|i, n| (footer_left.clone(), format!("Page {} of {n}", i + 1)));
    let info = DocumentInfo {
        title: format!("Evidence report {}", doc.reference),
        author: doc.issuer.clone(),
    };
    write_pdf(&pages, spec, fonts, &info)
}

fn events_table(events: &[EvidenceEvent]) -> Table {
    let fit = |header: &str, max_fraction| Column {
        header: header.to_owned(),
        align: Align::Left,
        width: ColumnWidth::Fit { max_fraction },
    };
    Table {
        columns: vec![
            fit("Time (UTC)", 0.18),
            fit("Type", 0.28),
            fit("Subject", 0.14),
            Column::text("Details"),
            Column::numeric("Ledger"),
        ],
        rows: events
            .iter()
            .map(|e| {
                vec![
                    e.time.clone(),
                    e.event_type.clone(),
                    e.subject.clone(),
                    e.details.clone(),
                    e.ledger.clone(),
                ]
            })
            .collect(),
    }
}
