//! The catalog: its model, and reading and validating catalog files.

pub mod model;

pub use model::*;
