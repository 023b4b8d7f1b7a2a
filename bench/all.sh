#!/usr/bin/env bash
# Every row of issue 11's table, re-measured in one run on one binary (docs/PERFORMANCE.md, "All
# rows in one run"): the in-process check, the HTTP check against nginx and the FastAPI + Redis
# peer, the gateway against nginx proxy_pass, durable ingest on SQLite (against SQLite alone) and
# PostgreSQL with the ledger sealing on and off, the bill run over 100,000 subscriptions, and 1 to 3
# nodes on one PostgreSQL and one Redis. Each part is the project's own script or bench target,
# run one after the other (never two loads at once); their reports go to OUT_DIR, one file each,
# and are printed in order at the end under one header.
#
# Usage: bench/all.sh
# Settings (environment):
#   OUT_DIR=bench-results/<UTC date-time>: where the reports go (created).
#   PARTS="check http gateway ingest billing multinode": which parts, in that order.
#   QUIET_WAIT=300 QUIET_LOAD=1.0: before each part, wait up to QUIET_WAIT s for the load average
#     to drop under QUIET_LOAD (a build on the same machine skews every figure).
#   BILL_CUSTOMERS=100000 BILL_EVENTS=10000: the billing bench's sizes.
#   Each script's own settings (RUNS, DURATION, BATCHES, ...) pass through; see their headers.
#   BENCH_SKIP_BUILD=1: use target/release/tollgate as built (the bench targets are still built
#   by cargo bench, which is incremental).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
PARTS="${PARTS:-check http gateway ingest billing multinode}"
OUT_DIR="${OUT_DIR:-$REPO_DIR/bench-results/$(date -u '+%Y%m%dT%H%M%SZ')}"
export QUIET_WAIT="${QUIET_WAIT:-300}" QUIET_LOAD="${QUIET_LOAD:-1.0}"
BILL_CUSTOMERS="${BILL_CUSTOMERS:-100000}"
BILL_EVENTS="${BILL_EVENTS:-10000}"
for part in $PARTS; do
    case "$part" in
    check | http | gateway | ingest | billing | multinode) ;;
    *) echo "bench/all.sh: unknown part '$part' (PARTS)" >&2 && exit 2 ;;
    esac
done
mkdir -p "$OUT_DIR"
log() { printf '[all %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# The release binary once, before any part measures (each script would otherwise build it).
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    log "cargo build --release -p tollgate-cli"
    (cd "$REPO_DIR" && cargo build --release -q -p tollgate-cli)
fi
export BENCH_SKIP_BUILD=1

# wait_quiet as bench/lib.sh does it, before the cargo bench parts too.
quiet() {
    local i load
    for ((i = 0; i < QUIET_WAIT; i += 5)); do
        load="$(cut -d' ' -f1 /proc/loadavg)"
        awk -v l="$load" -v m="$QUIET_LOAD" 'BEGIN { exit !(l < m) }' && return 0
        sleep 5
    done
    log "load average still $(cut -d' ' -f1 /proc/loadavg) after ${QUIET_WAIT} s: measuring anyway"
}

# run PART CMD...: one part, its report (stdout) to OUT_DIR/PART.md, its log to PART.log.
run() {
    local part=$1
    shift
    quiet
    log "$part: $* (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    {
        echo "<!-- load average before: $(cut -d' ' -f1-3 /proc/loadavg); started $(date -u '+%H:%M:%SZ') -->"
        "$@"
        echo "<!-- load average after: $(cut -d' ' -f1-3 /proc/loadavg); ended $(date -u '+%H:%M:%SZ') -->"
    } >"$OUT_DIR/$part.md" 2>"$OUT_DIR/$part.log" || {
        log "$part failed: see $OUT_DIR/$part.log"
        tail -20 "$OUT_DIR/$part.log" >&2
        return 1
    }
}

START="$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
for part in $PARTS; do
    case "$part" in
    check) run check bash -c "cd '$REPO_DIR' && cargo bench -q -p tollgate-server --bench check" ;;
    http) run http bash "$BENCH_DIR/http-check.sh" ;;
    gateway) run gateway env RUNS="${RUNS:-3}" bash "$BENCH_DIR/gateway.sh" ;;
    ingest) run ingest env LEDGER="${LEDGER:-on}" bash "$BENCH_DIR/ingest.sh" ;;
    billing) run billing bash -c "cd '$REPO_DIR' && TOLLGATE_BENCH_BASELINE=0 \
        TOLLGATE_BENCH_CUSTOMERS=$BILL_CUSTOMERS TOLLGATE_BENCH_EVENTS=$BILL_EVENTS \
        cargo bench -q -p tollgate-server --bench billing" ;;
    multinode) run multinode bash "$BENCH_DIR/multinode.sh" ;;
    esac
done

{
    echo "# All rows in one run, $START to $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    echo
    echo "Checkout $(git -C "$REPO_DIR" rev-parse --short HEAD)$(git -C "$REPO_DIR" diff --quiet HEAD || echo ' with uncommitted changes');" \
        "$(nproc) cores; parts: $PARTS; each part waited for a load average under $QUIET_LOAD (up to $QUIET_WAIT s)."
    for part in $PARTS; do
        echo
        echo "## $part"
        echo
        cat "$OUT_DIR/$part.md"
    done
} | tee "$OUT_DIR/all.md"
log "reports in $OUT_DIR (all.md has them all)"
