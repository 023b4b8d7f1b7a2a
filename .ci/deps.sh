#!/usr/bin/env bash
# Dependency policy (docs/ARCHITECTURE.md, "Dependency policy"):
#   1. no unused dependency: `cargo machete` for [dependencies], and the same search for
#      [dev-dependencies], which cargo-machete does not look at;
#   2. `cargo deny check licenses bans sources` against deny.toml (licences, duplicate majors as
#      warnings, crates.io only). Advisories are not checked here: the RustSec database lives on
#      GitHub, which this machine cannot reach.
# Offline once the tools are installed; a few seconds. Tools missing are installed quietly
# (from the local registry cache if it has them, else from crates.io).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

MACHETE_VERSION=0.9.2
DENY_VERSION=0.20.2

# ensure_tool <binary> <crate> <version>
ensure_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 $3 (once)"
  cargo install --locked --quiet --offline "$2@$3" 2>/dev/null \
    || cargo install --locked --quiet "$2@$3"
}

fail=0

echo "== cargo machete: unused [dependencies]"
ensure_tool cargo-machete cargo-machete "$MACHETE_VERSION"
# Exit status 1 = unused dependencies found, 2 = error: both fail the check.
cargo machete || fail=1

echo "== unused [dev-dependencies]"
# cargo-machete (0.9) searches only [dependencies]; the same rule for dev-dependencies: the
# crate's name must appear as `name::`, `name!`, `use name` or `extern crate name` in one of the
# package's .rs files. `[package.metadata.cargo-machete] ignored` is honoured here too.
python3 - <<'EOF' || fail=1
import glob, os, re, sys, tomllib

unused = []
for manifest in sorted(glob.glob("crates/*/Cargo.toml")):
    root = os.path.dirname(manifest)
    with open(manifest, "rb") as f:
        toml = tomllib.load(f)
    package = toml.get("package", {})
    ignored = set(package.get("metadata", {}).get("cargo-machete", {}).get("ignored", []))
    sources = []
    for dirpath, _, files in os.walk(root):
        if os.sep + "target" in dirpath[len(root):]:
            continue
        for name in files:
            if name.endswith(".rs"):
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    sources.append(f.read())
    text = "\n".join(sources)
    for key in toml.get("dev-dependencies", {}):
        if key in ignored:
            continue
        ident = re.escape(key.replace("-", "_"))
        pattern = rf"(?<![\w:]){ident}\s*(::|!)|\buse\s+(::)?{ident}\b|\bextern\s+crate\s+{ident}\b"
        if not re.search(pattern, text):
            unused.append(f"{package.get('name', root)} -- {manifest}: {key}")

if unused:
    print("unused dev-dependencies:")
    for line in unused:
        print("\t" + line)
    sys.exit(1)
print("none")
EOF

echo "== cargo deny check licenses bans sources"
ensure_tool cargo-deny cargo-deny "$DENY_VERSION"
# cargo-deny reads every platform's crates (Windows consoles, ...), which a build here never
# downloads: fetch them once (a no-op when the registry cache has them), then check offline.
cargo fetch --locked --quiet
cargo deny --locked --offline check --hide-inclusion-graph licenses bans sources || fail=1

if [ "$fail" -ne 0 ]; then
  echo "FATAL: the dependency policy does not hold (see above)" >&2
  exit 1
fi
echo "dependency policy: ok"
