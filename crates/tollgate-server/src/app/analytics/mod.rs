//! Analytics for the dashboard and the API (docs/DASHBOARD.md, "Analytics"): figures read from
//! subscriptions, the catalog versions they were sold on, invoices and credit notes, never
//! sampled. The arithmetic is core's (`tollgate_core::analytics`); this room reads the rows.

pub mod margins;
pub mod mrr;
pub mod revenue;
pub mod simulation;
