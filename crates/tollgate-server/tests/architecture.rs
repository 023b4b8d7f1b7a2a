//! The dependency rules of docs/ARCHITECTURE.md, checked mechanically.
//!
//! - Crates: the core does no I/O (no async runtime, database, HTTP or Redis anywhere in its
//!   dependency tree); the store and the PDF writer know nothing of HTTP; only the server and
//!   the CLI reach the network.
//! - Modules of the server: below the HTTP edge (`engine`, `billing`, `counters`, `app`, `auth`,
//!   `clock`, `error`) nothing names axum, hyper or an HTTP status; `api/` and `gateway/` are the
//!   edges, and only `api/error.rs` maps domain errors to statuses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// Every package's name with the names of all packages it depends on, transitively (normal
/// dependencies only: dev- and build-dependencies do not ship).
fn dependency_closure() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Only this machine's platform: the others' crates (Windows consoles, ...) are not
    // downloaded by a build here, and `--offline` cannot fetch them.
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc names its host");
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut direct: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| d["pkg"].as_str().unwrap())
            .collect();
        direct.insert(node["id"].as_str().unwrap(), deps);
    }
    let mut closure = BTreeMap::new();
    for (id, name) in &names {
        let mut seen = BTreeSet::new();
        let mut stack = vec![*id];
        while let Some(next) = stack.pop() {
            for dep in direct.get(next).into_iter().flatten() {
                if seen.insert(names[dep].to_owned()) {
                    stack.push(dep);
                }
            }
        }
        closure.insert((*name).to_owned(), seen);
    }
    closure
}

#[test]
fn crates_keep_to_their_boundaries() {
    let closure = dependency_closure();
    // The closure is real: the server does reach HTTP and the database.
    assert!(
        closure["tollgate-server"].contains("axum") && closure["tollgate-server"].contains("sqlx")
    );
    let rules: &[(&str, &[&str])] = &[
        (
            "tollgate-core",
            &[
                "tokio",
                "sqlx",
                "axum",
                "hyper",
                "reqwest",
                "redis",
                "mio",
                "tollgate-store",
            ],
        ),
        (
            "tollgate-store",
            &["axum", "hyper", "reqwest", "redis", "tollgate-server"],
        ),
        (
            "tollgate-pdf",
            &[
                "tokio",
                "sqlx",
                "axum",
                "hyper",
                "reqwest",
                "redis",
                "tollgate-core",
            ],
        ),
    ];
    // The verification crate operators embed (the trust issue creates it): no Tollgate crate,
    // no runtime, no network, no database.
    if closure.contains_key("tollgate-verify") {
        let deps = &closure["tollgate-verify"];
        for f in ["tokio", "sqlx", "axum", "hyper", "reqwest", "redis", "mio"] {
            assert!(!deps.contains(f), "tollgate-verify must not depend on {f}");
        }
        assert!(
            !deps.iter().any(|d| d.starts_with("tollgate-")),
            "tollgate-verify must not depend on another Tollgate crate: {deps:?}"
        );
    }
    // The client applications embed: HTTP only, no server, store or database.
    if closure.contains_key("tollgate-client") {
        let deps = &closure["tollgate-client"];
        for f in ["sqlx", "axum", "redis", "tollgate-server", "tollgate-store"] {
            assert!(!deps.contains(f), "tollgate-client must not depend on {f}");
        }
    }
    // The axum layer: the client and axum, nothing of the server side.
    if closure.contains_key("tollgate-axum") {
        let deps = &closure["tollgate-axum"];
        for f in ["sqlx", "redis", "tollgate-server", "tollgate-store"] {
            assert!(!deps.contains(f), "tollgate-axum must not depend on {f}");
        }
    }
    for (krate, forbidden) in rules {
        let deps = &closure[*krate];
        for f in *forbidden {
            assert!(
                !deps.contains(*f),
                "{krate} must not depend on {f}, even indirectly"
            );
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn nothing_below_the_http_edge_speaks_http() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let edge = |rel: &str| {
        rel.starts_with("api/")
            || rel.starts_with("gateway/")
            || rel == "lib.rs"
            || rel == "state.rs"
    };
    let mut offenders = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if edge(&rel) {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for word in ["axum", "hyper", "StatusCode", "http::", "IntoResponse"] {
                if code.contains(word) {
                    offenders.push(format!("{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "HTTP below the edge:\n{}",
        offenders.join("\n")
    );
    // One-way flow between the layers: nothing below the edges reaches up into them, and the
    // engine and billing (which the use cases call) never call a use case.
    let mut upward = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if edge(&rel) {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let lower = ["engine/", "billing/", "counters/"]
            .iter()
            .any(|m| rel.starts_with(m))
            || ["auth.rs", "clock.rs", "error.rs", "ids.rs"].contains(&rel.as_str());
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let reaches_edge = code.contains("crate::api")
                || code.contains("crate::gateway")
                || code.contains("crate::state");
            let reaches_app = lower && code.contains("crate::app");
            if reaches_edge || reaches_app {
                upward.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "a lower layer reaches up:\n{}",
        upward.join("\n")
    );
    // And the edge's status codes are chosen in one place for domain errors.
    let api_error = std::fs::read_to_string(src.join("api/error.rs")).unwrap();
    assert!(api_error.contains("pub fn status_of(kind: Kind) -> StatusCode"));
}
