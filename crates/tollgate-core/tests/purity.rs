//! The core stays pure: no async runtime, no database, no HTTP in its dependency tree.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

const FORBIDDEN: [&str; 7] = [
    "tokio",
    "sqlx",
    "axum",
    "reqwest",
    "hyper",
    "redis",
    "async-trait",
];

/// The lines of a manifest's `[dependencies]` table.
fn dependencies(manifest: &str) -> Vec<&str> {
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table");
    let deps = deps.split("\n[").next().unwrap_or(deps);
    deps.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn core_depends_on_no_io_crates() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("manifest");
    let deps = dependencies(&manifest);
    for forbidden in FORBIDDEN {
        assert!(
            !deps.iter().any(|l| l.starts_with(forbidden)),
            "tollgate-core must not depend on {forbidden}"
        );
    }
}

/// A pure crate can still pull I/O in through a feature (`iso_currency`'s `with-sqlx-*`): the
/// workspace entries of core's dependencies, and core's own lines, name no I/O crate at all.
#[test]
fn core_dependencies_enable_no_io_features() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("manifest");
    let root = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
        .expect("workspace manifest");
    let workspace = root
        .split("[workspace.dependencies]")
        .nth(1)
        .expect("a [workspace.dependencies] table");
    let workspace = workspace.split("\n[").next().unwrap_or(workspace);
    for line in dependencies(&manifest) {
        let name = line.split(['.', ' ', '=']).next().unwrap_or(line);
        let entry = workspace
            .lines()
            .find(|l| l.split(['.', ' ', '=']).next() == Some(name))
            .unwrap_or("");
        for forbidden in FORBIDDEN {
            assert!(
                !line.contains(forbidden) && !entry.contains(forbidden),
                "tollgate-core's {name} must not bring in {forbidden}: {line} / {entry}"
            );
        }
    }
}
