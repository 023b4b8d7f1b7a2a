#!/usr/bin/env bash
# Scale-out: HTTP `POST /v1/check` throughput of 1, 2 and 3 Tollgate nodes sharing one
# PostgreSQL and one Redis, in one run (docs/SCALING.md, "Throughput with more nodes").
#
# Every node is `tollgate serve --database-url (one fresh database) --redis-url (one Redis)`, so
# a quota check is decided on Redis (the shared counters) and any node answers any request. For
# each node count N the load is N wrk processes, one per node, sharing the same total of threads
# and connections (a load balancer in front would be one more process on the same cores); the
# row is their summed requests/s. Two paths, the same bodies as bench/http-check.sh:
#   - a feature gate ({"feature":"advanced_analytics"}): decided from the node's cached plan;
#   - a rolling 5 h quota per user ({"meter":"agent_runs","subject":"u1"}): a Redis round trip.
# Node counts are interleaved round-robin for RUNS rounds (1, 2, 3, 1, 2, 3, ...) so background
# load hits all of them alike; each cell is the median. All nodes run for the whole benchmark
# (idle ones take no CPU), so a row measures what the nodes add, not their start-up.
#
# On one machine every node, Redis, PostgreSQL and wrk share the same cores: the figures show
# what a node costs and where the shared parts saturate, not how a fleet of machines scales.
#
# Usage: bench/multinode.sh
# Settings (environment): NODES="1 2 3" DURATION=10 WARMUP=2 THREADS=2 CONNECTIONS=64 RUNS=3
#   PG_URL=postgres://postgres@127.0.0.1:5432 (server; a fresh database is created, dropped at the end)
#   REDIS_URL=redis://127.0.0.1:6379/14 (its counters use a fresh customer id each run)
#   OTHERS_WAIT=900, QUIET_WAIT=0, QUIET_LOAD=0.5: as in bench/http-check.sh.
#   BENCH_SKIP_BUILD=1 uses the tollgate binary already built; TOLLGATE_BIN=path uses that binary
#   (no build). Smoke run (seconds):
#     TOLLGATE_BIN=target/debug/tollgate NODES="1 2" DURATION=1 WARMUP=1 RUNS=1 bench/multinode.sh
#   BENCH_KEEP=1 keeps the scratch dir (logs, wrk outputs).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODES="${NODES:-1 2 3}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
RUNS="${RUNS:-3}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/14}"
for n in DURATION WARMUP THREADS CONNECTIONS RUNS; do
    [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "$n must be a positive integer, not '${!n}'"
done
MAX_NODES=0
for n in $NODES; do
    [[ "$n" =~ ^[1-9]$ ]] || die "NODES must be node counts from 1 to 9, not '$n'"
    ((n > MAX_NODES)) && MAX_NODES=$n
done
((MAX_NODES > 0)) || die "NODES is empty"
((RUNS <= 20 && DURATION <= 120)) || die "RUNS <= 20 and DURATION <= 120 keep the run bounded"
((CONNECTIONS >= MAX_NODES && THREADS >= 1)) || die "CONNECTIONS must be at least the largest node count"

FEATURE_BODY='{"feature":"advanced_analytics"}'
METER_BODY='{"meter":"agent_runs","subject":"u1"}'

bench_init
RESULTS="$WORK_DIR/wrk"
mkdir -p "$RESULTS"
need_apt wrk wrk
command -v redis-cli >/dev/null || need_apt redis-cli redis-tools
build_tollgate

# --- PostgreSQL and Redis ---------------------------------------------------------------------
pg_rest="${PG_URL#postgres://}"
pg_hostport="${pg_rest#*@}"
pg_hostport="${pg_hostport%%/*}"
PG_HOST_ARGS=(-h "${pg_hostport%%:*}" -p "${pg_hostport##*:}" -U "${pg_rest%%@*}")
pg_isready -q "${PG_HOST_ARGS[@]}" || die "no PostgreSQL answers at $pg_hostport (PG_URL)"
PG_VERSION="$(psql "${PG_HOST_ARGS[@]}" -d postgres -tAc 'SHOW server_version')"
DB="tollgate_multinode_$(random_alnum 8 | tr '[:upper:]' '[:lower:]')"
createdb "${PG_HOST_ARGS[@]}" "$DB" || die "createdb $DB failed"
CLEANUP_HOOKS+=("dropdb ${PG_HOST_ARGS[*]} --if-exists --force $DB")
redis_rest="${REDIS_URL#redis://}"
redis_hostport="${redis_rest%%/*}"
redis-cli -h "${redis_hostport%%:*}" -p "${redis_hostport##*:}" ping 2>/dev/null | grep -q PONG ||
    die "no Redis answers at $redis_hostport (REDIS_URL)"
REDIS_VERSION="$(redis-cli -h "${redis_hostport%%:*}" -p "${redis_hostport##*:}" info server |
    awk -F: '/^redis_version/ { gsub(/\r/, "", $2); print $2 }')"

# --- the nodes ----------------------------------------------------------------------------------
ADMIN_KEY="tg_admin_$(random_alnum 32)"
declare -a NODE_URL=()
for ((i = 1; i <= MAX_NODES; i++)); do
    pid="" url=""
    start_tollgate pid url "$WORK_DIR/node$i.log" "$ADMIN_KEY" \
        --database-url "$PG_URL/$DB" --redis-url "$REDIS_URL" --ledger-interval-seconds 0
    NODE_URL[i]="$url"
    log "node $i on $url (pid $pid)"
done
# A customer id of its own, so counters left in Redis by an earlier run are not this run's.
CUSTOMER="bench_$(random_alnum 10)"
body="$(python3 -c 'import json, sys; print(json.dumps({"yaml": open(sys.argv[1]).read()}))' \
    "$REPO_DIR/examples/catalogs/apex.yaml")"
api PUT "${NODE_URL[1]}/v1/catalog" "$ADMIN_KEY" "$body" >/dev/null
api POST "${NODE_URL[1]}/v1/customers" "$ADMIN_KEY" "{\"id\":\"$CUSTOMER\"}" >/dev/null
api POST "${NODE_URL[1]}/v1/customers/$CUSTOMER/subscriptions" "$ADMIN_KEY" '{"plan":"mid","trial":false}' >/dev/null
KEY="$(api POST "${NODE_URL[1]}/v1/customers/$CUSTOMER/keys" "$ADMIN_KEY" '{}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])')"

# Every node answers with the shared state: each must allow both paths (it reads the catalog and
# the key from PostgreSQL, the quota from Redis).
for ((i = 1; i <= MAX_NODES; i++)); do
    for body in "$FEATURE_BODY" "$METER_BODY"; do
        out="$(api POST "${NODE_URL[i]}/v1/check" "$KEY" "$body")"
        [[ "$out" == *'"allowed":true'* ]] || die "node $i: $body -> $out"
    done
done

# load NODES BODY SECONDS PREFIX: N wrk processes at once, one per node, the threads and
# connections split between them; prints the summed requests/s.
load() {
    local n=$1 body=$2 seconds=$3 prefix=$4 i threads conns pids=() total=0 rps
    threads=$(((THREADS + n - 1) / n))
    conns=$((CONNECTIONS / n))
    for ((i = 1; i <= n; i++)); do
        BENCH_BODY="$body" BENCH_KEY="$KEY" timeout $((seconds + 30)) \
            wrk -t"$threads" -c"$conns" -d"${seconds}s" --timeout 5s -s "$BENCH_DIR/lua/post.lua" \
            "${NODE_URL[i]}/v1/check" >"$prefix.$i" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || die "wrk failed: $(cat "$prefix".*)"
    done
    for ((i = 1; i <= n; i++)); do
        grep -q 'Non-2xx' "$prefix.$i" && die "node $i answered errors under load: $(cat "$prefix.$i")"
        rps="$(awk '/^Requests\/sec/ { print $2 }' "$prefix.$i")"
        [[ -n "$rps" ]] || die "wrk did not report: $(cat "$prefix.$i")"
        total="$(awk -v a="$total" -v b="$rps" 'BEGIN { printf "%.0f", a + b }')"
    done
    echo "$total"
}

wait_no_other_wrk
wait_quiet
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
declare -A CELLS=()
for ((round = 1; round <= RUNS; round++)); do
    for n in $NODES; do
        for path in feature meter; do
            body="$FEATURE_BODY"
            [[ "$path" == meter ]] && body="$METER_BODY"
            load "$n" "$body" "$WARMUP" "$RESULTS/warm-$path-$n-$round" >/dev/null
            rps="$(load "$n" "$body" "$DURATION" "$RESULTS/$path-$n-$round")"
            log "round $round: $n node(s), $path: $rps requests/s"
            CELLS[$path-$n]+="$rps "
        done
    done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

echo
echo "## Multi-node check throughput ($(date -u '+%Y-%m-%d'))"
echo
machine_summary
echo "- PostgreSQL $PG_VERSION at $pg_hostport (one fresh database), Redis $REDIS_VERSION at $redis_hostport"
echo "- load: per node count N, N wrk processes (one per node) sharing -t$THREADS -c$CONNECTIONS for ${DURATION} s after a ${WARMUP} s warm-up;" \
    "node counts interleaved for $RUNS round(s); medians; load average $LOAD_START at the start, $LOAD_END at the end; $OTHER_LOAD_NOTE"
echo
echo "| nodes | feature gate, checks/s | vs 1 node | rolling 5 h quota (Redis), checks/s | vs 1 node |"
echo "|---|---|---|---|---|"
first_feature="" first_meter=""
for n in $NODES; do
    f="$(median <<<"${CELLS[feature-$n]}")"
    m="$(median <<<"${CELLS[meter-$n]}")"
    [[ -n "$first_feature" ]] || first_feature=$f
    [[ -n "$first_meter" ]] || first_meter=$m
    printf '| %s | %s | %sx | %s | %sx |\n' "$n" "$f" \
        "$(awk -v a="$f" -v b="$first_feature" 'BEGIN { printf "%.2f", a / b }')" "$m" \
        "$(awk -v a="$m" -v b="$first_meter" 'BEGIN { printf "%.2f", a / b }')"
done
echo
echo "Every round's cells: $(for k in "${!CELLS[@]}"; do printf '%s=[%s] ' "$k" "${CELLS[$k]% }"; done)"
