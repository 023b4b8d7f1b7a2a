#!/usr/bin/env bash
# Durable ingest throughput of `POST /v1/events`, in events/s, on SQLite and on PostgreSQL, and
# SQLite's own batched insert rate for the same rows (the peer), in one run.
#
# BATCHES pre-generated files of BATCH_SIZE distinct Apex events (bench/ingest/gen_events.py:
# agent.run and cloud.cost for customer `bench` on plan `mid`, so meters agent_runs, tokens and
# ai_spend and their aggregates are updated) are each sent once over CONCURRENCY keep-alive
# connections (bench/ingest/send_batches.py). Each round uses a fresh store: a new SQLite data
# dir, a new PostgreSQL database (created with createdb, dropped at the end). A 2xx means the
# events are committed (SQLite WAL with synchronous=FULL; PostgreSQL commit).
#
# Usage: bench/ingest.sh
# Settings (environment): BATCHES=200 BATCH_SIZE=1000 CONCURRENCY=4 RUNS=3 PG=auto|off
#   LEDGER=on|off: also run SQLite (and PostgreSQL, unless PG=off) with the ledger sealing every
#   second during the ingest (with a master key, so checkpoints are signed), beside the same
#   ingest with sealing off.
#   PG_URL=postgres://postgres@127.0.0.1:5432 (server; a fresh database is created on it)
#   OTHERS_WAIT=900: wait up to that long while another benchmark's wrk runs.
#   QUIET_WAIT=0 QUIET_LOAD=0.5: wait up to QUIET_WAIT s for the load average to drop first.
#   BENCH_SKIP_BUILD=1 uses the tollgate binary already built.
#   TOLLGATE_BIN=path: measure that binary (no build), e.g. CI's debug build for a smoke run.
#   BASELINE_BIN=path: also measure that (older) binary in every round, interleaved with this
#     one on the same batches, as rows `... (baseline)`: a before/after in one run.
#   BENCH_KEEP=1 keeps the scratch dir (logs, batch files, databases).
# Smoke run (seconds): BATCHES=2 BATCH_SIZE=10 RUNS=1 LEDGER=off TOLLGATE_BIN=target/debug/tollgate
set -euo pipefail

TOLLGATE_BIN_OVERRIDE="${TOLLGATE_BIN:-}"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [[ -n "$TOLLGATE_BIN_OVERRIDE" ]]; then
    TOLLGATE_BIN="$(realpath "$TOLLGATE_BIN_OVERRIDE")"
    BENCH_SKIP_BUILD=1
fi
BASELINE_BIN="${BASELINE_BIN:-}"
if [[ -n "$BASELINE_BIN" ]]; then
    [[ -x "$BASELINE_BIN" ]] || die "BASELINE_BIN=$BASELINE_BIN is not an executable"
    BASELINE_BIN="$(realpath "$BASELINE_BIN")"
fi

BATCHES="${BATCHES:-200}"
BATCH_SIZE="${BATCH_SIZE:-1000}"
CONCURRENCY="${CONCURRENCY:-4}"
RUNS="${RUNS:-3}"
PG="${PG:-auto}"
LEDGER="${LEDGER:-on}"
# Checkpoints are signed only with a master key: a throwaway one for the ledger rounds.
BENCH_MASTER_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
for n in BATCHES BATCH_SIZE CONCURRENCY RUNS; do
    [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "$n must be a positive integer, not '${!n}'"
done
((BATCHES <= 5000 && BATCH_SIZE <= 10000 && RUNS <= 10)) || die "BATCHES <= 5000, BATCH_SIZE <= 10000, RUNS <= 10"

bench_init
RESULTS="$WORK_DIR/results.tsv"
: >"$RESULTS"
RUN_ID="$(random_alnum 8)"

build_tollgate
[[ -x "$TOLLGATE_BIN" ]] || die "no tollgate binary at $TOLLGATE_BIN"
log "generating $BATCHES batches of $BATCH_SIZE events"
python3 "$BENCH_DIR/ingest/gen_events.py" "$WORK_DIR/batches" "$BATCHES" "$BATCH_SIZE" bench "$RUN_ID"

PG_NOTE="not run (PG=off)"
PG_HOST_ARGS=()
if [[ "$PG" != off ]]; then
    # createdb/dropdb take the server from the URL: postgres://USER@HOST:PORT
    pg_rest="${PG_URL#postgres://}"
    PG_USER="${pg_rest%%@*}"
    pg_hostport="${pg_rest#*@}"
    pg_hostport="${pg_hostport%%/*}"
    PG_HOST_ARGS=(-h "${pg_hostport%%:*}" -p "${pg_hostport##*:}" -U "$PG_USER")
    if pg_isready -q "${PG_HOST_ARGS[@]}" 2>/dev/null; then
        PG_NOTE="PostgreSQL $(psql "${PG_HOST_ARGS[@]}" -d postgres -tAc 'SHOW server_version' 2>/dev/null) at ${pg_hostport}"
    else
        PG_NOTE="not run: no PostgreSQL answers at $pg_hostport"
        PG=off
    fi
fi

# usage_line URL ADMIN: the customer's usage per meter (from the aggregates), one line, with
# the agent_runs count the batches imply: a third of the events (supervisor runs), warm-up included.
usage_line() {
    local per_batch=$(((BATCH_SIZE + 2) / 3))
    api GET "$1/v1/customers/bench/usage" "$2" | python3 -c '
import json, sys
report, expected = json.load(sys.stdin), int(sys.argv[1])
used = {m.get("meter"): m.get("used") for m in report.get("meters", [])}
check = "matches" if str(used.get("agent_runs")) == str(expected) else "DOES NOT match"
print(", ".join(f"{k} = {v}" for k, v in used.items()) + f" (agent_runs {check} the {expected} sent)")
sys.exit(0 if check == "matches" else 1)' \
        "$((per_batch * (BATCHES + 1)))"
}

# check_ms URL KEY: latency of one quota check (rolling 5 h window) after the ingest, in ms.
check_ms() {
    curl -sS -o /dev/null --max-time 10 -w '%{time_total}' -X POST -H "Authorization: Bearer $2" \
        -H 'Content-Type: application/json' --data-binary '{"meter":"agent_runs","subject":"u1"}' "$1/v1/check" |
        awk '{ printf "%.2f", $1 * 1000 }'
}

# ingest_round LABEL ROUND SERVE_FLAGS...: a fresh server, setup, the batches, then stop.
ingest_round() {
    local label=$1 round=$2 admin pid="" url="" key rss
    shift 2
    admin="tg_admin_$(random_alnum 32)"
    start_tollgate pid url "$WORK_DIR/$label-$round.log" "$admin" "$@"
    key="$(setup_customer "$url" "$admin")"
    log "round $round: $label: sending $BATCHES x $BATCH_SIZE events over $CONCURRENCY connections"
    python3 "$BENCH_DIR/ingest/send_batches.py" "$url" "$admin" "$WORK_DIR/batches" "$CONCURRENCY" "$label" \
        >>"$RESULTS" || die "$label: ingest failed (see above and $WORK_DIR/$label-$round.log)"
    rss="$(rss_kb "$pid")"
    if [[ "$label" == *ledger* ]]; then
        # What the background passes left, sealed now; the log must hold every event sent.
        local t0 t1 sealed
        t0="$(date +%s.%N)"
        sealed="$(api POST "$url/v1/ledger/seal" "$admin" '{}')"
        t1="$(date +%s.%N)"
        printf '%s round %s: after the ingest, POST /v1/ledger/seal took %.2f s for the rest; the log holds %s entries (%s appended by that call)\n' \
            "$label" "$round" "$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1")" \
            "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["size"])' "$sealed")" \
            "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["appended"])' "$sealed")" >>"$WORK_DIR/ledger-notes.txt"
    fi
    log "$label round $round: $(tail -1 "$RESULTS" | cut -f2) events/s; RSS $rss kB;" \
        "check after ingest: $(check_ms "$url" "$key") ms, $(check_ms "$url" "$key") ms, $(check_ms "$url" "$key") ms"
    # Every round: the aggregates must hold exactly what was sent.
    local usage
    usage="$(usage_line "$url" "$admin")" || die "$label round $round: totals wrong: $usage"
    if ((round == 1)); then
        printf '%s\n' "$usage" >"$WORK_DIR/usage-$label.txt"
        printf '%s\n' "$rss" >"$WORK_DIR/rss-$label.txt"
    fi
    stop_child "$pid"
}

wait_no_other_wrk
wait_quiet
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
# pg_round LABEL ROUND: one PostgreSQL round on a fresh database, dropped afterwards.
pg_round() {
    local label=$1 round=$2 db hook
    shift 2
    db="tollgate_bench_$(random_alnum 8 | tr '[:upper:]' '[:lower:]')"
    createdb "${PG_HOST_ARGS[@]}" "$db" || die "createdb $db failed"
    hook=${#CLEANUP_HOOKS[@]}
    CLEANUP_HOOKS+=("dropdb ${PG_HOST_ARGS[*]} --if-exists --force $db")
    ingest_round "$label" "$round" --database-url "$PG_URL/$db" --ledger-interval-seconds 0
    if dropdb "${PG_HOST_ARGS[@]}" --force "$db"; then
        CLEANUP_HOOKS[hook]=":"
    else
        log "dropdb $db failed (retried at exit)"
    fi
}

for ((round = 1; round <= RUNS; round++)); do
    if [[ -n "$BASELINE_BIN" ]]; then
        # The baseline first in odd rounds and second in even ones, so neither always gets the
        # warmer (or quieter) moment.
        for which in $( ((round % 2)) && echo "base new" || echo "new base"); do
            if [[ "$which" == base ]]; then
                saved_bin="$TOLLGATE_BIN"
                TOLLGATE_BIN="$BASELINE_BIN"
                ingest_round tollgate-sqlite-baseline "$round" --data-dir "$WORK_DIR/sqlite-base-$round" --ledger-interval-seconds 0
                [[ "$PG" != off ]] && pg_round tollgate-postgres-baseline "$round"
                TOLLGATE_BIN="$saved_bin"
            else
                ingest_round tollgate-sqlite "$round" --data-dir "$WORK_DIR/sqlite-$round" --ledger-interval-seconds 0
                [[ "$PG" != off ]] && pg_round tollgate-postgres "$round"
            fi
        done
    else
        ingest_round tollgate-sqlite "$round" --data-dir "$WORK_DIR/sqlite-$round" --ledger-interval-seconds 0
    fi
    if [[ "$LEDGER" != off ]]; then
        TOLLGATE_MASTER_KEY="$BENCH_MASTER_KEY" ingest_round tollgate-sqlite-ledger "$round" \
            --data-dir "$WORK_DIR/sqlite-ledger-$round" --ledger-interval-seconds 1
    fi
    if [[ "$PG" != off ]]; then
        [[ -z "$BASELINE_BIN" ]] && pg_round tollgate-postgres "$round"
        if [[ "$LEDGER" != off ]]; then
            db="tollgate_bench_$(random_alnum 8 | tr '[:upper:]' '[:lower:]')"
            createdb "${PG_HOST_ARGS[@]}" "$db" || die "createdb $db failed"
            hook=${#CLEANUP_HOOKS[@]}
            CLEANUP_HOOKS+=("dropdb ${PG_HOST_ARGS[*]} --if-exists --force $db")
            TOLLGATE_MASTER_KEY="$BENCH_MASTER_KEY" ingest_round tollgate-postgres-ledger "$round" \
                --database-url "$PG_URL/$db" --ledger-interval-seconds 1
            if dropdb "${PG_HOST_ARGS[@]}" --force "$db"; then
                CLEANUP_HOOKS[hook]=":"
            else
                log "dropdb $db failed (retried at exit)"
            fi
        fi
    fi
    log "round $round: SQLite peer"
    python3 "$BENCH_DIR/ingest/sqlite_peer.py" "$WORK_DIR/batches" "$WORK_DIR/peer-$round.db" sqlite-peer >>"$RESULTS"
    rm -f "$WORK_DIR/peer-$round.db"*
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "## Durable ingest (bench/ingest.sh)"
echo
machine_summary
echo "- data: $BATCHES batches x $BATCH_SIZE Apex events (+1 untimed warm-up batch) per round, $CONCURRENCY connections," \
    "$RUNS rounds on fresh stores; each cell is the median over the rounds"
echo "- scratch filesystem: $(df -T "$WORK_DIR" | awk 'NR == 2 { print $2 " on " $1 }')"
echo "- PostgreSQL: $PG_NOTE"
[[ -n "$BASELINE_BIN" ]] && echo "- baseline: $BASELINE_BIN, built $(date -u -r "$BASELINE_BIN" '+%Y-%m-%dT%H:%M:%SZ')"
echo "- load average (1/5/15 min) before: $LOAD_START; after: $LOAD_END; other benchmarks: $OTHER_LOAD_NOTE"
echo
python3 - "$RESULTS" <<'EOF'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    rows[f[0]].append(f)
names = {
    "tollgate-sqlite": "tollgate `POST /v1/events`, SQLite (WAL, synchronous=FULL), ledger sealing off",
    "tollgate-sqlite-ledger": "the same, with the ledger sealing (and signing a checkpoint) every second during the ingest",
    "tollgate-postgres": "tollgate `POST /v1/events`, PostgreSQL, ledger sealing off",
    "tollgate-postgres-ledger": "the same on PostgreSQL, with the ledger sealing (and signing a checkpoint) every second",
    "tollgate-sqlite-baseline": "baseline binary (BASELINE_BIN), `POST /v1/events`, SQLite, ledger sealing off",
    "tollgate-postgres-baseline": "baseline binary (BASELINE_BIN), `POST /v1/events`, PostgreSQL, ledger sealing off",
    "sqlite-peer": "peer: SQLite alone, python sqlite3, 1,000 rows per transaction (WAL, synchronous=FULL)",
}
peer = statistics.median(float(f[1]) for f in rows["sqlite-peer"]) if rows["sqlite-peer"] else None
print("| path | events/s | runs (events/s) | seconds per run | batch p50 | batch p99 | vs SQLite peer |")
print("|---|---:|---|---|---:|---:|---:|")
for label in ("tollgate-sqlite-baseline", "tollgate-sqlite", "tollgate-sqlite-ledger", "tollgate-postgres-baseline",
              "tollgate-postgres", "tollgate-postgres-ledger", "sqlite-peer"):
    runs = rows.get(label)
    if not runs:
        continue
    eps = statistics.median(float(f[1]) for f in runs)
    secs = " / ".join(f[4] if len(f) > 4 else f[3] for f in runs)
    p50 = f"{statistics.median(float(f[5]) for f in runs):.1f} ms" if len(runs[0]) > 5 else "-"
    p99 = f"{statistics.median(float(f[6]) for f in runs):.1f} ms" if len(runs[0]) > 6 else "-"
    ratio = "1.00x (peer)" if label == "sqlite-peer" else (f"{eps / peer:.2f}x" if peer else "n/a")
    print(f"| {names[label]} | {eps:,.0f} | {' / '.join(format(float(f[1]), ',.0f') for f in runs)} | {secs} | {p50} | {p99} | {ratio} |")
EOF
echo
echo "Aim (DESIGN.md): over 200,000 events/s on SQLite; peer: SQLite's own batched insert rate."
echo
if [[ -f "$WORK_DIR/ledger-notes.txt" ]]; then
    echo "Ledger (events sent: $(((BATCHES + 1) * BATCH_SIZE)) per round, plus the setup's domain events):"
    sed 's/^/- /' "$WORK_DIR/ledger-notes.txt"
    echo
fi
for label in tollgate-sqlite-baseline tollgate-sqlite tollgate-sqlite-ledger tollgate-postgres-baseline tollgate-postgres tollgate-postgres-ledger; do
    [[ -f "$WORK_DIR/usage-$label.txt" ]] || continue
    echo "Usage after round 1 on $label (aggregates; RSS $(cat "$WORK_DIR/rss-$label.txt") kB): $(cat "$WORK_DIR/usage-$label.txt")"
    echo
done
