#!/usr/bin/env bash
# Where the server's CPU goes during durable ingest: `tollgate serve` under valgrind's callgrind
# (instruction counts, repeatable on a noisy machine; `perf` is not allowed here) while
# bench/ingest/send_batches.py sends BATCHES batches of BATCH_SIZE Apex events, then the top
# functions by inclusive and by self cost (callgrind_annotate).
# With PHASE=seal the ingest runs uninstrumented and only one `POST /v1/ledger/seal` of
# everything it wrote is counted (callgrind_control turns instrumentation on around it): the
# ledger's cost per entry, printed as instructions per entry appended.
#
# Usage: bench/ingest/profile.sh
# Settings (environment): BATCHES=20 BATCH_SIZE=1000 CONCURRENCY=4 BACKEND=sqlite|postgres
#   TOLLGATE_BIN=path (default: the release binary; build it with debug line tables:
#   CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release -p tollgate-cli)
#   PG_URL=postgres://postgres@127.0.0.1:5432 (BACKEND=postgres: a fresh database is created)
#   TOP=25 functions listed; CALLGRIND_KEEP=path copies callgrind.out there.
#   PHASE=ingest|seal: what is counted (above).
set -euo pipefail

TOLLGATE_BIN_OVERRIDE="${TOLLGATE_BIN:-}"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[[ -n "$TOLLGATE_BIN_OVERRIDE" ]] && TOLLGATE_BIN="$(realpath "$TOLLGATE_BIN_OVERRIDE")"
[[ -x "$TOLLGATE_BIN" ]] || die "no tollgate binary at $TOLLGATE_BIN (set TOLLGATE_BIN)"

BATCHES="${BATCHES:-20}"
BATCH_SIZE="${BATCH_SIZE:-1000}"
CONCURRENCY="${CONCURRENCY:-4}"
BACKEND="${BACKEND:-sqlite}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
TOP="${TOP:-25}"
PHASE="${PHASE:-ingest}"
[[ "$PHASE" == ingest || "$PHASE" == seal ]] || die "PHASE must be ingest or seal"
instr_args=()
[[ "$PHASE" == seal ]] && instr_args=(--instr-atstart=no)
for n in BATCHES BATCH_SIZE CONCURRENCY TOP; do
    [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "$n must be a positive integer, not '${!n}'"
done
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"

bench_init
python3 "$BENCH_DIR/ingest/gen_events.py" "$WORK_DIR/batches" "$BATCHES" "$BATCH_SIZE" bench "$(random_alnum 8)"

case "$BACKEND" in
sqlite) store_args=(--data-dir "$WORK_DIR/data") ;;
postgres)
    db="tollgate_profile_$(random_alnum 8 | tr '[:upper:]' '[:lower:]')"
    rest="${PG_URL#postgres://}"
    hostport="${rest#*@}"
    pg_args=(-h "${hostport%%:*}" -p "${hostport##*:}" -U "${rest%%@*}")
    createdb "${pg_args[@]}" "$db" || die "createdb $db failed"
    CLEANUP_HOOKS+=("dropdb ${pg_args[*]} --if-exists --force $db")
    store_args=(--database-url "$PG_URL/$db")
    ;;
*) die "BACKEND must be sqlite or postgres" ;;
esac

admin="tg_admin_$(random_alnum 32)"
port="$(free_port)"
url="http://127.0.0.1:$port"
out="$WORK_DIR/callgrind.out"
spawn pid "$WORK_DIR/server.log" env TOLLGATE_ADMIN_KEY="$admin" TOLLGATE_LOG=warn \
    valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no "${instr_args[@]}" \
    "$TOLLGATE_BIN" serve --listen "127.0.0.1:$port" --ledger-interval-seconds 0 "${store_args[@]}"
wait_http "$url/healthz" "$pid" 600 || {
    tail -20 "$WORK_DIR/server.log" >&2
    die "tollgate did not become ready under valgrind"
}
setup_customer "$url" "$admin" >/dev/null
log "sending $BATCHES x $BATCH_SIZE events over $CONCURRENCY connections (under callgrind: slow)"
python3 "$BENCH_DIR/ingest/send_batches.py" "$url" "$admin" "$WORK_DIR/batches" "$CONCURRENCY" "callgrind-$BACKEND" >&2 ||
    die "ingest under callgrind failed"
SEAL_NOTE=""
if [[ "$PHASE" == seal ]]; then
    log "sealing everything written, instrumented"
    callgrind_control -i on "$pid" >/dev/null
    report="$(api POST "$url/v1/ledger/seal" "$admin" '{}')"
    callgrind_control -i off "$pid" >/dev/null
    appended="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["appended"])' "$report")"
    SEAL_NOTE="; counted: one POST /v1/ledger/seal appending $appended entries"
fi
# SIGTERM: a graceful stop, so callgrind writes its output.
kill -TERM "$pid"
for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
done
[[ -s "$out" ]] || die "callgrind wrote no profile (see $WORK_DIR/server.log)"

echo "## callgrind: tollgate serve ($BACKEND), $BATCHES x $BATCH_SIZE events (+ setup and warm-up batch), $CONCURRENCY connections"
echo "- binary: $TOLLGATE_BIN, built $(date -u -r "$TOLLGATE_BIN" '+%Y-%m-%dT%H:%M:%SZ'); checkout $(git -C "$REPO_DIR" rev-parse --short HEAD)$SEAL_NOTE"
[[ -n "${CALLGRIND_KEEP:-}" ]] && cp "$out" "$CALLGRIND_KEEP"
callgrind_annotate --inclusive=yes "$out" >"$WORK_DIR/inclusive.txt" 2>/dev/null || true
callgrind_annotate "$out" >"$WORK_DIR/self.txt" 2>/dev/null || true
total="$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }' "$WORK_DIR/self.txt")"
if [[ "$PHASE" == seal && -n "$total" && "$appended" -gt 0 ]]; then
    echo "- $total instructions in all, $((total / appended)) per entry appended"
fi
echo
# Inclusive cost of Tollgate's own functions and the libraries' entry points (the async
# plumbing above them, counted once per poll level, says little), then self cost.
echo "### inclusive, Tollgate's functions, serde_json, sqlx and SQLite (top $TOP)"
grep -E '^ *[0-9,]+ \(' "$WORK_DIR/inclusive.txt" |
    grep -E 'tollgate_(server|store|core)::|serde_json::(de|ser)::|sqlite3_step|sqlx_(sqlite|postgres)::.*(execute|bind|encode)' |
    head -n "$TOP" || true
echo
echo "### self (top $TOP)"
grep -E '^ *[0-9,]+ \(' "$WORK_DIR/self.txt" | head -n "$TOP" || true
