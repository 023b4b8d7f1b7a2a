//! What is wrong with a catalog, each mistake with the path where it is.

/// One mistake in a catalog file: where it is (`plans.early.quotas[0].window`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CatalogError {
    pub path: String,
    pub message: String,
}

impl CatalogError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        CatalogError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Every mistake found in a catalog file, in the order of the file's sections. Never empty when
/// returned by the parser: an operator fixes a catalog in one pass, not one error per run.
/// Displayed one line per mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", one_per_line(.0))]
pub struct CatalogErrors(pub Vec<CatalogError>);

fn one_per_line(errors: &[CatalogError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

impl CatalogErrors {
    pub fn iter(&self) -> impl Iterator<Item = &CatalogError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
