//! Invoices and credit notes.
//!
//! One layout serves both (a credit note is an invoice with a different title and
//! negative amounts, which arrive already formatted). From the top: the issuer and the
//! document's title, number and status; who is billed and the document's dates; the lines;
//! the totals with the amount due emphasized; notes; a footer with the page count.

use crate::PdfError;
use crate::blocks;
use crate::layout::{Layout, PageSpec, Placed, Rgb, palette};
use crate::render::{DocumentInfo, write_pdf};
use crate::table::{Column, PAD_X, Table};
use crate::text::Fonts;

/// An invoice or credit note, every field preformatted by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceDocument {
    /// Who issues the document: the operator or workspace name (a white-label brand later).
    pub issuer: String,
    /// "Invoice" or "Credit note".
    pub title: String,
    /// The document number, e.g. "INV-000012".
    pub number: String,
    /// "open", "paid", "void", ... shown as a badge; empty for none.
    pub status: String,
    /// The customer's id and name.
    pub customer: String,
    /// The issue date, formatted.
    pub issued_at: String,
    /// The billing period, e.g. "2026-11-01 to 2026-11-30".
    pub period: Option<String>,
    /// The currency code the amounts are in, e.g. "USD".
    pub currency: String,
    pub lines: Vec<DocumentLine>,
    /// Totals in order; the last is the amount due and is emphasized.
    pub totals: Vec<(String, String)>,
    /// Free text at the bottom (payment instructions, refunds), one paragraph each.
    pub notes: Vec<String>,
    /// The issuer's address and tax ids, one line each, under "FROM"; empty: only its name.
    pub issuer_details: Vec<String>,
    /// The customer's address and tax ids, one line each, under its name.
    pub customer_details: Vec<String>,
    /// The due date (and terms), formatted, shown after the issue date.
    pub due: Option<String>,
    /// How to pay, one line each, under "PAYMENT".
    pub payment: Vec<String>,
    /// The operator's text at the end of the document.
    pub footer: Option<String>,
    /// The issuer's logo, drawn above everything else (at most 160 x 48 points).
    pub logo: Option<crate::logo::Logo>,
}

/// One line of an invoice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentLine {
    /// May be long: it wraps within its column.
    pub description: String,
    pub quantity: String,
    /// Absent for lines without a unit price (flat fees, credits); if no line has one, the
    /// column is left out.
    pub unit_price: Option<String>,
    pub amount: String,
}

/// Renders an invoice or credit note to PDF bytes (A4).
pub fn render_invoice(doc: &InvoiceDocument) -> Result<Vec<u8>, PdfError> {
    let fonts = Fonts::embedded()?;
    let spec = PageSpec::A4;
    let mut layout = Layout::new(fonts, spec);
    let width = layout.content_width();

    if let Some(logo) = &doc.logo {
        let (w, h) = logo.fit(160.0, 48.0);
        let image = crate::layout::Op::Image {
            x: 0.0,
            y: 0.0,
            w,
            h,
            logo: logo.clone(),
        };
        layout.place(Placed {
            ops: vec![image],
            height: h + 12.0,
            breaks: Vec::new(),
        });
    }
    let badge = (!doc.status.trim().is_empty()).then(|| {
        let (fg, bg) = status_colors(&doc.status);
        blocks::badge(fonts, &doc.status, fg, bg)
    });
    layout.place(blocks::title_block(
        fonts,
        &doc.issuer,
        &doc.title,
        &doc.number,
        badge,
        width,
    ));
    layout.place(blocks::rule(width, 14.0, 0.8, palette::RULE));

    let half = width / 2.0 - 12.0;
    let from: Vec<String> = std::iter::once(doc.issuer.clone())
        .chain(doc.issuer_details.iter().cloned())
        .collect();
    let customer: Vec<String> = std::iter::once(doc.customer.clone())
        .chain(doc.customer_details.iter().cloned())
        .collect();
    let parties = blocks::labelled(fonts, "FROM", &from, half)
        .stack(12.0, blocks::labelled(fonts, "BILLED TO", &customer, half));
    let mut facts = vec![("Issued".to_owned(), doc.issued_at.clone())];
    if let Some(due) = &doc.due {
        facts.push(("Due".to_owned(), due.clone()));
    }
    if let Some(period) = &doc.period {
        facts.push(("Period".to_owned(), period.clone()));
    }
    facts.push(("Currency".to_owned(), doc.currency.clone()));
    let details = blocks::labelled(fonts, "DETAILS", &[], half)
        .stack(0.0, blocks::key_values(fonts, &facts, half));
    layout.place(
        Placed::default()
            .beside(0.0, parties)
            .beside(width - half, details),
    );
    layout.space(24.0);

    layout.table(&lines_table(doc));
    layout.space(10.0);

    if !doc.totals.is_empty() {
        layout.place(blocks::totals(fonts, &doc.totals, width, PAD_X, true));
    }
    if !doc.payment.is_empty() {
        layout.space(28.0);
        layout.place(blocks::labelled(fonts, "PAYMENT", &doc.payment, width));
    }
    if !doc.notes.is_empty() {
        layout.space(if doc.payment.is_empty() { 28.0 } else { 14.0 });
        layout.place(blocks::labelled(fonts, "NOTES", &doc.notes, width));
    }
    if let Some(footer) = doc.footer.as_deref().filter(|f| !f.trim().is_empty()) {
        layout.space(20.0);
        layout.place(blocks::rule(width, 6.0, 0.5, palette::RULE));
        layout.place(blocks::paragraph(
            fonts,
            footer,
            blocks::KEY,
            width,
            crate::layout::Align::Left,
        ));
    }

    let reference = format!("{} {}", doc.title, doc.number);
    let footer_left = [doc.issuer.as_str(), reference.trim()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("  ·  ");
    let pages = layout.finish(|i, n| (footer_left.clone(), format!("Page {} of {n}", i + 1)));
    let info = DocumentInfo {
        title: reference.trim().to_owned(),
        author: doc.issuer.clone(),
    };
    write_pdf(&pages, spec, fonts, &info)
}

/// The lines as a table: description, quantity, unit price (when any line has one) and
/// amount, the amount header naming the currency.
fn lines_table(doc: &InvoiceDocument) -> Table {
    let with_unit_price = doc.lines.iter().any(|l| l.unit_price.is_some());
    let amount_header = if doc.currency.trim().is_empty() {
        "Amount".to_owned()
    } else {
        format!("Amount ({})", doc.currency)
    };
    let mut columns = vec![Column::text("Description"), Column::numeric("Quantity")];
    if with_unit_price {
        columns.push(Column::numeric("Unit price"));
    }
    columns.push(Column::numeric(amount_header));
    let rows = doc
        .lines
        .iter()
        .map(|l| {
            let mut row = vec![l.description.clone(), l.quantity.clone()];
            if with_unit_price {
                row.push(l.unit_price.clone().unwrap_or_default());
            }
            row.push(l.amount.clone());
            row
        })
        .collect();
    Table { columns, rows }
}

/// Badge colours (text, background) by status: green when settled, blue while payable,
/// red when it went wrong, grey otherwise (void, draft, unknown).
fn status_colors(status: &str) -> (Rgb, Rgb) {
    match status.trim().to_ascii_lowercase().as_str() {
        "paid" | "refunded" | "applied" => (Rgb(0x16, 0x65, 0x34), Rgb(0xdc, 0xfc, 0xe7)),
        "open" | "issued" | "due" => (Rgb(0x1e, 0x40, 0xaf), Rgb(0xdb, 0xea, 0xfe)),
        "uncollectible" | "overdue" | "failed" => (Rgb(0x99, 0x1b, 0x1b), Rgb(0xfe, 0xe2, 0xe2)),
        _ => (palette::MUTED, palette::BAND),
    }
}
