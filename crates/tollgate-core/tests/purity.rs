//! The core stays pure: no async runtime, no database, no HTTP in its dependency tree.

#[test]
fn core_depends_on_no_io_crates() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("manifest");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table");
    let deps = deps.split("\n[").next().unwrap_or(deps);
    for forbidden in [
        "tokio",
        "sqlx",
        "axum",
        "reqwest",
        "hyper",
        "redis",
        "async-trait",
    ] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(forbidden)),
            "tollgate-core must not depend on {forbidden}"
        );
    }
}
