//! Tollgate's domain, pure: money, the catalog, how events become meter values, limit
//! algorithms, billing periods, pricing, and the invoice and subscription lifecycles.
//!
//! Nothing here performs I/O, spawns tasks or reads the clock: time always comes in as an
//! argument, so the same rules run in the server, in the CLI's offline quote and in tests that
//! move time at will.

pub mod alerts;
pub mod analytics;
pub mod catalog;
pub mod check;
pub mod code;
pub mod duration;
pub mod event;
pub mod ids;
pub mod lifecycle;
pub mod limits;
pub mod margins;
pub mod meter;
pub mod money;
pub mod period;
pub mod pricing;
pub mod quantity;
pub mod revenue;
pub mod schedule;
