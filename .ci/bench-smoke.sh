#!/usr/bin/env bash
# A smoke run of every benchmark with a tiny duration, on the debug build: the scripts and the
# bench targets still start, load, check their totals and print their tables. The figures mean
# nothing here (debug build, CI machine); docs/PERFORMANCE.md has the measured ones.
#
# Usage: .ci/bench-smoke.sh TOLLGATE_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "$1")"
export TOLLGATE_BIN="$bin" OTHERS_WAIT=0 QUIET_WAIT=0

run() {
    printf -- '-- %s\n' "$*"
    env "$@"
}

run BATCHES=2 BATCH_SIZE=100 RUNS=1 LEDGER=on bash bench/ingest.sh
run DURATION=1 WARMUP=1 RUNS=1 RATES=500 PEER=off bash bench/http-check.sh
run DURATION=1 WARMUP=1 RUNS=1 RATES=200 RATE_DURATION=1 DRAIN_MAX=60 bash bench/gateway.sh
run REPEATS=1 LOAD=2 KILL_AFTER=1.5 bash bench/gateway-crash.sh
run NODES="1 2" DURATION=1 WARMUP=1 RUNS=1 bash bench/multinode.sh
run BATCH=10 CLIENTS=1 SECONDS_EACH=1 ROUNDS=1 PG_URL="${TOLLGATE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}" \
    bash bench/partition/insert.sh
# The bench targets, built as tests (debug) and run with tiny sizes.
run TOLLGATE_BENCH_EVENTS=1000 TOLLGATE_BENCH_CUSTOMERS=50 \
    cargo test -q -p tollgate-server --locked --benches
