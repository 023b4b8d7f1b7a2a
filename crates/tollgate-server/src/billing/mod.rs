//! Billing: usage of a period read from aggregates, invoices built by the pure pricing engine,
//! the pieces the bill run (`app::bill_run`) assembles invoices from.

// Money paths: no `as` casts (they truncate or wrap silently); use checked conversions.
#![deny(clippy::as_conversions)]

pub mod documents;
pub mod invoices;
pub mod profiles;
pub mod usage;

pub use invoices::{InvoiceOut, build_due_invoice, upcoming_invoice};
