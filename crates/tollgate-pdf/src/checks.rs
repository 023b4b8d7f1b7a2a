//! A list of checks and their outcomes under a PASSED or FAILED badge: `tollgate doctor`'s
//! deployment check, the integrity pack an operator hands to its own customers' auditors.

use crate::PdfError;
use crate::blocks;
use crate::layout::{Align, Layout, PageSpec, palette};
use crate::render::{DocumentInfo, write_pdf};
use crate::table::{Column, ColumnWidth, Table};
use crate::text::Fonts;

/// The report, every field preformatted by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChecksDocument {
    pub issuer: String,
    pub title: String,
    pub reference: String,
    /// Decides the badge.
    pub passed: bool,
    /// Key/value rows under "DETAILS".
    pub facts: Vec<(String, String)>,
    /// `[check, result, detail, duration]` per check.
    pub rows: Vec<[String; 4]>,
}

/// Renders the report to PDF bytes (A4).
pub fn render_checks(doc: &ChecksDocument) -> Result<Vec<u8>, PdfError> {
    let fonts = Fonts::embedded()?;
    let spec = PageSpec::A4;
    let mut layout = Layout::new(fonts, spec);
    let width = layout.content_width();
    let badge = blocks::verdict(fonts, doc.passed, "PASSED");
    layout.place(blocks::title_block(
        fonts,
        &doc.issuer,
        &doc.title,
        &doc.reference,
        Some(badge),
        width,
    ));
    layout.place(blocks::rule(width, 14.0, 0.8, palette::RULE));
    layout.place(
        blocks::labelled(fonts, "DETAILS", &[], width)
            .stack(0.0, blocks::key_values(fonts, &doc.facts, width)),
    );
    layout.space(18.0);
    layout.place(blocks::labelled(fonts, "CHECKS", &[], width));
    let fit = |header: &str, max_fraction| Column {
        header: header.to_owned(),
        align: Align::Left,
        width: ColumnWidth::Fit { max_fraction },
    };
    layout.table(&Table {
        columns: vec![
            fit("Check", 0.2),
            fit("Result", 0.12),
            Column::text("Detail"),
            Column::numeric("Took"),
        ],
        rows: doc.rows.iter().map(|r| r.to_vec()).collect(),
    });
    let footer_left = format!("{}  ·  {} {}", doc.issuer, doc.title, doc.reference);
    let pages = layout.finish(|i, n| (footer_left.clone(), format!("Page {} of {n}", i + 1)));
    let info = DocumentInfo {
        title: format!("{} {}", doc.title, doc.reference),
        author: doc.issuer.clone(),
    };
    write_pdf(&pages, spec, fonts, &info)
}
