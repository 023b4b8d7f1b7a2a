//! Billing: usage of a period read from aggregates, invoices built by the pure pricing engine,
//! and the bill run that finalizes them exactly once.

// Money paths: no `as` casts (they truncate or wrap silently); use checked conversions.
#![deny(clippy::as_conversions)]

pub mod documents;
pub mod invoices;
pub mod run;
pub mod usage;

pub use invoices::{InvoiceOut, build_due_invoice, upcoming_invoice};
pub use run::{BillRunReport, bill_run};
