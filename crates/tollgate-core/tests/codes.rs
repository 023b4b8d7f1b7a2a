//! Every stable error code is documented: docs/API.md (or, for the gateway's own refusals,
//! docs/GATEWAY.md) names each `Code` in backticks. A new code without its documentation fails
//! here, so callers never meet a code they cannot look up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use tollgate_core::code::Code;

#[test]
fn every_code_is_documented() {
    let docs = ["API.md", "GATEWAY.md"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(format!("{}/../../docs/{f}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !docs.contains(&format!("`{c}`")))
        .collect();
    assert!(missing.is_empty(), "codes not in docs/API.md: {missing:?}");
}

#[test]
fn codes_are_unique_snake_case() {
    let mut seen = std::collections::BTreeSet::new();
    for c in Code::ALL {
        let text = c.as_str();
        assert!(
            text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{text}"
        );
        assert!(seen.insert(text), "{text} twice");
    }
}
