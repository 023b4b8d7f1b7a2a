//! The catalog: its model, and reading, validating and comparing catalog files.
//!
//! A catalog file (YAML, or JSON) is read into a loose value tree, every entry is checked on its
//! own with its path, `extends` is resolved, and only a catalog without a single mistake becomes a
//! [`Catalog`]. The file format is documented in `docs/CATALOG.md`.

mod diff;
mod error;
pub mod model;
mod node;
mod offers;
mod parse;
mod plans;
mod prices;
mod read;
mod surface;
mod wire;

pub use diff::{CatalogChange, ChangeKind, diff};
pub use error::{CatalogError, CatalogErrors};
pub use model::*;
pub use surface::to_yaml;

use node::Node;

/// Parses and validates a catalog written in YAML (JSON is YAML too).
///
/// Every mistake is reported, each with its path; a YAML syntax error, which stops reading,
/// comes alone with its line and column.
pub fn parse_yaml(text: &str) -> Result<Catalog, CatalogErrors> {
    let mut value: serde_norway::Value = serde_norway::from_str(text).map_err(syntax_error)?;
    value.apply_merge().map_err(syntax_error)?;
    parse::catalog(&Node::from_yaml(value))
}

/// Validates a catalog given as a JSON value (e.g. the body of an API request).
pub fn from_json_value(value: serde_json::Value) -> Result<Catalog, CatalogErrors> {
    parse::catalog(&Node::from_json(value))
}

fn syntax_error(error: serde_norway::Error) -> CatalogErrors {
    let path = match error.location() {
        Some(at) => format!("line {} column {}", at.line(), at.column()),
        None => "yaml".to_owned(),
    };
    CatalogErrors(vec![CatalogError::new(
        path,
        format!("invalid YAML: {error}"),
    )])
}
