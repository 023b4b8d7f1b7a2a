#!/usr/bin/env bash
# HTTP `POST /v1/check` throughput and latency, against its ceiling and its peer, in one run:
#   - tollgate serve (SQLite, Apex catalog, customer `bench` on plan `mid`, a customer key):
#     a feature gate ({"feature":"advanced_analytics"}) and a rolling 5 h per-user quota
#     ({"meter":"agent_runs","subject":"u1"});
#   - the ceiling: nginx answering a fixed JSON body behind limit_req (bench/nginx/limit_req.conf);
#   - the peer: FastAPI + Redis (bench/peers/fastapi_redis), both bodies, uvicorn with 2 workers.
# Each path gets a warm-up, then a measured wrk --latency run; paths are interleaved round-robin
# for RUNS rounds so background load hits all of them alike. Prints a markdown table of medians.
# Then the fixed-rate runs: Tollgate's two paths and nginx at each of RATES requests/s with oha
# (`-q RATE --latency-correction`, so a stalled answer counts the requests it delayed: no
# coordinated omission), interleaved the same way; p50/p99 there are latency below saturation,
# not CPU queueing of a saturating load. The peer is not loaded at a fixed rate: it saturates
# well below the lowest rate.
#
# Usage: bench/http-check.sh
# Settings (environment): DURATION=10 WARMUP=2 THREADS=2 CONNECTIONS=64 RUNS=3 PEER=auto|off
#   REDIS_HOST=127.0.0.1 REDIS_PORT=6379
#   OTHERS_WAIT=900: wait up to that long while another benchmark's wrk runs.
#   QUIET_WAIT=0 QUIET_LOAD=0.5: wait up to QUIET_WAIT s for the load average to drop first.
#   RATES="5000 20000": the fixed rates (requests/s); FIXED=off skips them; FIXED_CONNECTIONS=32.
#   BENCH_SKIP_BUILD=1 uses the tollgate binary already built.
#   TOLLGATE_BIN=path uses that binary (no build), e.g. the debug one for a CI smoke run:
#     TOLLGATE_BIN=target/debug/tollgate DURATION=1 WARMUP=1 RUNS=1 RATES=500 PEER=off bench/http-check.sh
#   BASELINE_BIN=path: also measures that tollgate binary (e.g. one built before a change), on
#     its own data dir, beside the current one in every round (rows "... (baseline)").
#   BENCH_KEEP=1 keeps the scratch dir (logs, wrk and oha outputs).
set -euo pipefail

TOLLGATE_BIN_GIVEN="${TOLLGATE_BIN:-}"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [[ -n "$TOLLGATE_BIN_GIVEN" ]]; then
    TOLLGATE_BIN="$(realpath "$TOLLGATE_BIN_GIVEN")"
    BENCH_SKIP_BUILD=1
    [[ -x "$TOLLGATE_BIN" ]] || die "TOLLGATE_BIN=$TOLLGATE_BIN_GIVEN is not an executable"
fi

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
RUNS="${RUNS:-3}"
PEER="${PEER:-auto}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"
RATES="${RATES:-5000 20000}"
FIXED="${FIXED:-on}"
FIXED_CONNECTIONS="${FIXED_CONNECTIONS:-32}"
for n in DURATION WARMUP THREADS CONNECTIONS RUNS FIXED_CONNECTIONS; do
    [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "$n must be a positive integer, not '${!n}'"
done
for rate in $RATES; do
    [[ "$rate" =~ ^[1-9][0-9]*$ ]] || die "RATES must be positive integers, not '$rate'"
done
((RUNS <= 20 && DURATION <= 120)) || die "RUNS <= 20 and DURATION <= 120 keep the run bounded"

FEATURE_BODY='{"feature":"advanced_analytics"}'
METER_BODY='{"meter":"agent_runs","subject":"u1"}'

bench_init
RESULTS="$WORK_DIR/wrk"
PATHS_TSV="$WORK_DIR/paths.tsv"
mkdir -p "$RESULTS"
: >"$PATHS_TSV"
# Targets: label -> "URL|BODY|KEY"; ORDER keeps the table order.
declare -A TARGET=()
ORDER=()
add_target() { # label description url body key
    TARGET[$1]="$3|$4|$5"
    ORDER+=("$1")
    printf '%s\t%s\n' "$1" "$2" >>"$PATHS_TSV"
}

# sanity LABEL: one request with curl; the answer must be 200 with "allowed":true.
sanity() {
    local url body key out auth=()
    IFS='|' read -r url body key <<<"${TARGET[$1]}"
    [[ -z "$key" ]] || auth=(-H "Authorization: Bearer $key")
    out="$(curl -sS --max-time 5 -w ' HTTP %{http_code}' -X POST -H 'Content-Type: application/json' \
        "${auth[@]}" --data-binary "$body" "$url")" || die "$1: curl failed"
    log "$1: $out"
    [[ "$out" == *'"allowed":true'*' HTTP 200' ]] || die "$1: expected 200 with \"allowed\":true"
}

# load LABEL SECONDS OUTFILE: one wrk run against the target.
load() {
    local url body key
    IFS='|' read -r url body key <<<"${TARGET[$1]}"
    BENCH_BODY="$body" BENCH_KEY="$key" timeout $(($2 + 30)) \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2s" --timeout 5s --latency -s "$BENCH_DIR/lua/post.lua" "$url" \
        >"$3" 2>&1 || die "$1: wrk failed: $(cat "$3")"
    if grep -q 'post.lua' "$3" || ! grep -q '^Requests/sec' "$3"; then
        die "$1: wrk did not run the script: $(cat "$3")"
    fi
}

# fixed LABEL RATE SECONDS OUTFILE: one oha run at RATE requests/s, latency corrected, JSON out.
fixed() {
    local url body key auth=()
    IFS='|' read -r url body key <<<"${TARGET[$1]}"
    [[ -z "$key" ]] || auth=(-H "Authorization: Bearer $key")
    timeout $(($3 + 30)) "$OHA" -z "$3s" -q "$2" --latency-correction -c "$FIXED_CONNECTIONS" \
        --no-tui --output-format json -m POST -T application/json "${auth[@]}" -d "$body" "$url" \
        >"$4" 2>"$4.err" || die "$1: oha failed: $(cat "$4.err")"
}

need_apt wrk wrk
[[ "$FIXED" == off ]] || need_oha
need_apt nginx nginx
NGINX_BIN="$(command -v nginx || echo /usr/sbin/nginx)"
build_tollgate

# --- Tollgate -------------------------------------------------------------------------------
ADMIN_KEY="tg_admin_$(random_alnum 32)"
TG_PID="" TG_URL=""
start_tollgate TG_PID TG_URL "$WORK_DIR/tollgate.log" "$ADMIN_KEY" --data-dir "$WORK_DIR/tollgate-data"
RSS_START="$(rss_kb "$TG_PID")"
sleep 2
RSS_IDLE="$(rss_kb "$TG_PID")"
log "tollgate on $TG_URL (pid $TG_PID), RSS right after /healthz answered: $RSS_START kB, 2 s later: $RSS_IDLE kB"
CUSTOMER_KEY="$(setup_customer "$TG_URL" "$ADMIN_KEY")"
RSS_SETUP="$(rss_kb "$TG_PID")"
add_target tollgate-feature "tollgate \`/v1/check\` feature gate" "$TG_URL/v1/check" "$FEATURE_BODY" "$CUSTOMER_KEY"
add_target tollgate-meter "tollgate \`/v1/check\` rolling 5 h quota per user" "$TG_URL/v1/check" "$METER_BODY" "$CUSTOMER_KEY"

FIXED_LABELS=(tollgate-feature tollgate-meter)
if [[ -n "${BASELINE_BIN:-}" ]]; then
    [[ -x "$BASELINE_BIN" ]] || die "BASELINE_BIN=$BASELINE_BIN is not an executable"
    BASE_PID="" BASE_URL=""
    CURRENT_BIN="$TOLLGATE_BIN"
    TOLLGATE_BIN="$(realpath "$BASELINE_BIN")"
    start_tollgate BASE_PID BASE_URL "$WORK_DIR/baseline.log" "$ADMIN_KEY" --data-dir "$WORK_DIR/baseline-data"
    TOLLGATE_BIN="$CURRENT_BIN"
    BASE_KEY="$(setup_customer "$BASE_URL" "$ADMIN_KEY")"
    log "baseline tollgate ($BASELINE_BIN) on $BASE_URL (pid $BASE_PID)"
    add_target base-feature "tollgate \`/v1/check\` feature gate (baseline)" "$BASE_URL/v1/check" "$FEATURE_BODY" "$BASE_KEY"
    add_target base-meter "tollgate \`/v1/check\` rolling 5 h quota per user (baseline)" "$BASE_URL/v1/check" "$METER_BODY" "$BASE_KEY"
    FIXED_LABELS+=(base-feature base-meter)
fi
FIXED_LABELS+=(nginx)

# --- nginx, the ceiling -------------------------------------------------------------------
# The scratch dir must be traversable by nginx's unprivileged workers (see the config).
chmod 711 "$WORK_DIR"
NGINX_PREFIX="$WORK_DIR/nginx"
mkdir -p "$NGINX_PREFIX/tmp" "$NGINX_PREFIX/html"
chmod -R 755 "$NGINX_PREFIX"
NGINX_PORT="$(free_port)"
sed "s/@PORT@/$NGINX_PORT/" "$BENCH_DIR/nginx/limit_req.conf" >"$NGINX_PREFIX/nginx.conf"
NGINX_PID=""
spawn NGINX_PID "$WORK_DIR/nginx.out" "$NGINX_BIN" -p "$NGINX_PREFIX" -c "$NGINX_PREFIX/nginx.conf" -g 'daemon off;'
for _ in $(seq 50); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$NGINX_PORT/" && break
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited: $(cat "$WORK_DIR/nginx.out" "$NGINX_PREFIX/error.log" 2>/dev/null)"
    sleep 0.1
done
add_target nginx "nginx fixed JSON body behind \`limit_req\` (ceiling)" "http://127.0.0.1:$NGINX_PORT/v1/check" "$FEATURE_BODY" ""

# --- FastAPI + Redis, the peer ----------------------------------------------------------------
PEER_NOTE="not run (PEER=off)"
start_peer() {
    local req="$BENCH_DIR/peers/fastapi_redis/requirements.txt"
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG ||
        { PEER_NOTE="not run: no Redis answers on $REDIS_HOST:$REDIS_PORT"; return 1; }
    if [[ ! -x "$BENCH_VENV/bin/uvicorn" ]] || ! cmp -s "$req" "$BENCH_VENV/requirements.txt"; then
        log "installing the peer's Python dependencies into $BENCH_VENV"
        if ! { [[ -x "$BENCH_VENV/bin/python" ]] || python3 -m venv "$BENCH_VENV"; } ||
            ! timeout 600 "$BENCH_VENV/bin/pip" install -q -r "$req" >"$WORK_DIR/pip.log" 2>&1; then
            PEER_NOTE="not run: the venv or pip install failed (see pip.log)"
            return 1
        fi
        cp "$req" "$BENCH_VENV/requirements.txt"
    fi
    local prefix port digest
    prefix="tgbench:$(random_alnum 12)"
    CLEANUP_HOOKS+=("redis-cli -h '$REDIS_HOST' -p '$REDIS_PORT' --scan --pattern '$prefix:*' | xargs -r redis-cli -h '$REDIS_HOST' -p '$REDIS_PORT' DEL >/dev/null")
    digest="$(printf '%s' "$CUSTOMER_KEY" | sha256sum | cut -d' ' -f1)"
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" SET "$prefix:key:$digest" '{"id":"bench","plan":"mid"}' >/dev/null
    port="$(free_port)"
    PEER_PID=""
    spawn PEER_PID "$WORK_DIR/uvicorn.log" env PEER_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT/0" PEER_PREFIX="$prefix" \
        "$BENCH_VENV/bin/uvicorn" app:app --app-dir "$BENCH_DIR/peers/fastapi_redis" --host 127.0.0.1 --port "$port" \
        --workers 2 --no-access-log --log-level warning
    wait_http "http://127.0.0.1:$port/healthz" "$PEER_PID" 60 ||
        { PEER_NOTE="not run: uvicorn did not start (see uvicorn.log)"; tail -20 "$WORK_DIR/uvicorn.log" >&2; return 1; }
    PEER_NOTE="uvicorn with 2 workers (uvloop, httptools), redis-py asyncio, Redis on $REDIS_HOST:$REDIS_PORT"
    add_target peer-feature "FastAPI + Redis peer, feature (2 uvicorn workers)" "http://127.0.0.1:$port/v1/check" "$FEATURE_BODY" "$CUSTOMER_KEY"
    add_target peer-meter "FastAPI + Redis peer, per-user quota (2 uvicorn workers)" "http://127.0.0.1:$port/v1/check" "$METER_BODY" "$CUSTOMER_KEY"
}
if [[ "$PEER" != off ]]; then
    start_peer || log "peer $PEER_NOTE"
fi

for label in "${ORDER[@]}"; do
    sanity "$label"
    mkdir -p "$RESULTS/$label"
done

wait_no_other_wrk
wait_quiet
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
log "measuring ${#ORDER[@]} paths x $RUNS rounds x (${WARMUP} s warm-up + ${DURATION} s)"
for ((run = 1; run <= RUNS; run++)); do
    for label in "${ORDER[@]}"; do
        log "round $run/$RUNS: $label"
        load "$label" "$WARMUP" "$RESULTS/$label/warmup-$run.out"
        load "$label" "$DURATION" "$RESULTS/$label/run-$run.txt"
    done
done
if [[ "$FIXED" != off ]]; then
    LOAD_FIXED_START="$(cut -d' ' -f1-3 /proc/loadavg)"
    log "fixed rates: ${#FIXED_LABELS[@]} paths x rates ($RATES) x $RUNS rounds x ${DURATION} s (oha, latency corrected)"
    for ((run = 1; run <= RUNS; run++)); do
        for rate in $RATES; do
            for label in "${FIXED_LABELS[@]}"; do
                log "round $run/$RUNS: $label at $rate/s"
                mkdir -p "$WORK_DIR/fixed/$rate/$label"
                fixed "$label" "$rate" "$DURATION" "$WORK_DIR/fixed/$rate/$label/run-$run.json"
            done
        done
    done
fi
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
RSS_AFTER="$(rss_kb "$TG_PID")"
SERVER_ERRORS="$(grep -ciE 'error|panic' "$WORK_DIR/tollgate.log" || true)"

echo
echo "## HTTP check (bench/http-check.sh)"
echo
machine_summary
echo "- load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency (keep-alive, loopback), after a ${WARMUP} s warm-up;" \
    "$RUNS interleaved rounds; each cell is the median over the rounds"
echo "- load average (1/5/15 min) before: $LOAD_START; after: $LOAD_END; other benchmarks: $OTHER_LOAD_NOTE"
echo "- peer: $PEER_NOTE"
echo
python3 "$BENCH_DIR/wrk_report.py" "$RESULTS" "$PATHS_TSV" nginx
echo
echo "Aim (DESIGN.md): over 50,000 checks/s, p99 under 1 ms; ceiling: nginx with limit_req."
if [[ "$FIXED" != off ]]; then
    echo
    echo "### At fixed rates (oha -q RATE --latency-correction -c $FIXED_CONNECTIONS -z ${DURATION}s, $RUNS interleaved rounds)"
    echo
    echo "- load average (1/5/15 min) before the fixed-rate runs: $LOAD_FIXED_START; after: $LOAD_END"
    echo
    python3 - "$WORK_DIR/fixed" "$PATHS_TSV" "$RATES" "${FIXED_LABELS[@]}" <<'PY'
# Each cell: the median over the rounds; `p99 runs` shows every round's p99. `answered/s` is
# what oha completed (below RATE means the server or the load generator fell behind); errors
# are non-2xx answers and failed requests (requests cut by the end of the run do not count).
import json, statistics, sys
from pathlib import Path
root, paths, rates, labels = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
names = dict(l.split("\t", 1) for l in paths.read_text().splitlines())
def ms(s):
    return f"{s * 1000:.3f} ms" if s >= 0.001 else f"{s * 1e6:.0f} µs"
print("| rate | path | answered/s | p50 | p99 | p99.9 | p99 runs | errors |")
print("|---:|---|---:|---:|---:|---:|---|---:|")
for rate in rates:
    for label in labels:
        runs = [json.loads(p.read_text()) for p in sorted((root / rate / label).glob("run-*.json"))]
        if not runs:
            continue
        pct = lambda k: statistics.median(r["latencyPercentiles"][k] or 0 for r in runs)
        errors = 0
        for r in runs:
            errors += sum(n for code, n in r["statusCodeDistribution"].items() if not code.startswith("2"))
            errors += sum(n for e, n in r["errorDistribution"].items() if "deadline" not in e)
        rps = statistics.median(r["summary"]["requestsPerSec"] for r in runs)
        p99s = " / ".join(ms(r["latencyPercentiles"]["p99"] or 0) for r in runs)
        print(f"| {int(rate):,}/s | {names[label]} | {rps:,.0f} | {ms(pct('p50'))} | {ms(pct('p99'))} "
              f"| {ms(pct('p99.9'))} | {p99s} | {errors} |")
PY
    echo
    echo "Aim (issue 11): p99 under 1 ms at 20,000 checks/s."
fi
echo
echo "tollgate serve RSS (VmRSS): ${RSS_START} kB when /healthz first answered, ${RSS_IDLE} kB 2 s later (idle, aim < 30 MB)," \
    "${RSS_SETUP} kB after setup, ${RSS_AFTER} kB after the load."
echo "Lines with 'error' or 'panic' in the server log (TOLLGATE_LOG=${TOLLGATE_LOG:-warn}): $SERVER_ERRORS"
