//! The catalog: its model, and reading, validating and comparing catalog files.
//!
//! A catalog file (YAML, or JSON) is read into a loose value tree, every entry is checked on its
//! own with its path, `extends` is resolved, and only a catalog without a single mistake becomes a
//! [`Catalog`]. The file format is documented in `docs/CATALOG.md`.

mod costs;
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
mod taxes;
mod wire;

pub use costs::MeterCost;
pub use diff::{CatalogChange, ChangeKind, diff};
pub use error::{CatalogError, CatalogErrors};
pub use model::*;
pub use surface::{to_json, to_yaml};
pub use taxes::{TaxRate, Taxes};

use node::Node;

/// Parses and validates a catalog written in YAML (JSON is YAML too).
///
/// Every mistake is reported, each with its path; a YAML syntax error, which stops reading,
/// comes alone with its line and column.
pub fn parse_yaml(text: &str) -> Result<Catalog, CatalogErrors> {
    within_bounds(text)?;
    let mut value: serde_norway::Value = serde_norway::from_str(text).map_err(syntax_error)?;
    value.apply_merge().map_err(syntax_error)?;
    parse::catalog(&Node::from_yaml(value))
}

/// Validates a catalog given as a JSON value (e.g. the body of an API request).
pub fn from_json_value(value: serde_json::Value) -> Result<Catalog, CatalogErrors> {
    parse::catalog(&Node::from_json(value))
}

/// The largest catalog file read, in bytes: the five field catalogs are under 20 KiB.
pub const MAX_CATALOG_BYTES: usize = 1 << 20;
/// The deepest nesting read (block indentation, `- ` items and `[`/`{` together); a real
/// catalog nests about 8 deep.
pub const MAX_CATALOG_DEPTH: usize = 64;

/// Refuses, before any parsing, a document too large or too deeply nested to be a catalog, so
/// that a hostile file costs a scan of its bytes rather than seconds of one core.
fn within_bounds(text: &str) -> Result<(), CatalogErrors> {
    let refuse = |message: String| Err(CatalogErrors(vec![CatalogError::new("yaml", message)]));
    if text.len() > MAX_CATALOG_BYTES {
        return refuse(format!(
            "the catalog is {} bytes; at most {MAX_CATALOG_BYTES} are read",
            text.len()
        ));
    }
    let depth = nesting_depth(text);
    if depth > MAX_CATALOG_DEPTH {
        return refuse(format!(
            "the catalog nests {depth} levels deep; at most {MAX_CATALOG_DEPTH} are read"
        ));
    }
    Ok(())
}

/// An upper estimate of a YAML document's nesting: open indentation levels, plus `- ` items
/// started on one line, plus open flow brackets (outside quotes and comments).
fn nesting_depth(text: &str) -> usize {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut deepest = 0usize;
    for line in text.lines() {
        let body = line.trim_start_matches(' ');
        if flow == 0 && !body.is_empty() && !body.starts_with('#') {
            let indent = line.len() - body.len();
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
        }
        let mut items = 0;
        let mut rest = body;
        while let Some(after) = rest.strip_prefix("- ") {
            items += 1;
            rest = after.trim_start_matches(' ');
        }
        let mut quote: Option<char> = None;
        for c in rest.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => flow += 1,
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            deepest = deepest.max(indents.len() + items + flow);
        }
        deepest = deepest.max(indents.len() + items + flow);
    }
    deepest
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

#[cfg(test)]
mod bounds_tests {
    use super::*;

    #[test]
    fn hostile_documents_are_refused_before_parsing() {
        let deep = "[".repeat(100_000);
        let err = parse_yaml(&deep).unwrap_err();
        assert!(err.0[0].message.contains("nests"), "{err:?}");
        let items = "- ".repeat(200) + "x";
        assert!(
            parse_yaml(&items).unwrap_err().0[0]
                .message
                .contains("nests")
        );
        let big = format!("currency: USD\n#{}\n", "x".repeat(MAX_CATALOG_BYTES));
        assert!(parse_yaml(&big).unwrap_err().0[0].message.contains("bytes"));
    }

    #[test]
    fn real_catalogs_are_shallow() {
        let text = "currency: USD\nplans:\n  free:\n    features: [a, {b: [1, 2]}]\n    quotas:\n      - meter: runs\n        limit: 3\n";
        assert!(nesting_depth(text) < 10, "{}", nesting_depth(text));
        assert!(nesting_depth("a: '[[[['\n") <= 1);
    }
}
