//! The use cases: what an operator, a customer or a job can do, as plain Rust.
//!
//! One file per use case (`subscriptions/change_plan.rs`, `invoices/credit_note.rs`): each
//! takes typed input, runs its writes in one store transaction where it writes more than one
//! row, and answers domain records or a domain [`crate::error::Error`] with a stable code. The
//! HTTP handlers in `api/` parse, call a use case and present its answer; the CLI and jobs call
//! the same functions. Nothing here knows HTTP (`tests/architecture.rs` checks it).

// Money paths: no `as` casts (they truncate or wrap silently); use checked conversions.
#![deny(clippy::as_conversions)]

pub mod analytics;
pub mod bill_run;
pub mod billing;
pub mod customers;
pub mod doctor;
pub mod downloads;
pub mod email;
pub mod event_history;
pub mod invoices;
pub mod jobs;
pub mod ledger;
pub mod licenses;
pub mod outbox;
pub mod partitions;
pub mod payments;
pub mod public;
pub mod referrals;
pub mod subscriptions;
pub mod users;
pub mod webhooks;
