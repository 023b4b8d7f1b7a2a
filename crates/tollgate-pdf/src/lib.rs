//! Renders Tollgate's documents to PDF: invoices, credit notes, evidence reports and the
//! deployment check.
//!
//! Everything happens offline and in process: the font is embedded ([`text`]), the PDF is
//! written by krilla (pure Rust, no system libraries), nothing is fetched.
//!
//! The caller owns every word and number: amounts, dates and quantities arrive as
//! preformatted text (money formatting belongs to `tollgate-core`), and the renderer's one
//! promise is to show all of it unaltered. Long text wraps, long tables continue on further
//! pages under a repeated header, and nothing is ever truncated.
//!
//! Layers, each usable by the next document type:
//! - [`text`]: embedded fonts, measuring and line breaking;
//! - [`layout`]: pages, blocks ([`layout::Placed`]) and page breaks;
//! - [`blocks`] and [`table`]: the title block, key/value block, totals, notes and the
//!   paginating table with right-aligned numeric columns;
//! - [`render`]: laid-out pages to PDF bytes;
//! - [`invoice`]: the invoice and credit note document built from those;
//! - [`evidence`]: the evidence report (a customer's events and the ledger's verification);
//! - [`checks`]: a list of checks under a PASSED or FAILED badge (`tollgate doctor`).

pub mod blocks;
pub mod checks;
pub mod evidence;
pub mod invoice;
pub mod layout;
pub mod logo;
pub mod render;
pub mod table;
pub mod text;

pub use checks::{ChecksDocument, render_checks};
pub use evidence::{EvidenceDocument, EvidenceEvent, render_evidence};
pub use invoice::{DocumentLine, InvoiceDocument, render_invoice};
pub use logo::{Logo, LogoError, MAX_LOGO_BYTES};

/// Why a document could not be rendered. None of these depend on the document's content
/// (any text renders); they mean a broken build or a bug.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The embedded font could not be parsed.
    #[error("the embedded font could not be loaded")]
    Font,
    /// A shape had an invalid size (NaN or negative), which layout should never produce.
    #[error("invalid geometry for a {0}")]
    Geometry(&'static str),
    /// krilla refused to write the document.
    #[error("PDF writing failed: {0}")]
    Pdf(String),
}
