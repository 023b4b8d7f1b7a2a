#!/usr/bin/env bash
# The metering gateway's overhead, against the upstream called directly and nginx proxy_pass to
# the same upstream, in one run:
#   - the upstream: nginx answering a fixed small JSON body (bench/upstream/nginx.conf);
#   - the peer: a second server block of the same nginx, proxy_pass over a keep-alive pool;
#   - `tollgate gateway` (SQLite) in front of the upstream: catalog examples/catalogs/control-plane.yaml,
#     customer `bench` on `starter` (no hard quota, no rate limit: nothing is refused), a customer
#     key; the route `GET /v1/*` meters `requests` (cost 1, one usage event per request).
# Every path gets the same wrk settings (GET /v1/items with `Authorization: Bearer <key>`):
# a warm-up, then a measured `wrk --latency` run; the paths are interleaved round-robin for RUNS
# rounds and each cell is the median. The gateway commits each request's usage in the background
# after answering, so after each gateway run the script waits (at most DRAIN_MAX s) until the
# customer's usage stops moving, so the backlog's commits don't load the next path's run; it
# reports how much was committed during the load and how long the rest took. At the end the usage
# must have counted the requests wrk saw answered through the gateway.
#
# Then the latency at fixed request rates below saturation (RATES, requests/s), so that "p50
# added" is what the gateway adds to one request, not queueing on 2 shared cores: `oha -q RATE
# --latency-correction` (latency counted from when each request was due), the paths again
# interleaved round-robin for RUNS rounds, medians. oha waits for every request it sent (`-w`),
# so the metering check counts its answers exactly.
#
# Usage: bench/gateway.sh
# Settings (environment): DURATION=10 WARMUP=2 THREADS=2 CONNECTIONS=64 RUNS=1 DRAIN_MAX=300
#   RATES="2000 5000" RATE_DURATION=10 RATE_CONNECTIONS=32: the fixed-rate phase (RATES=none skips it).
#   TOLLGATE_BIN=path: measure that binary (no build), e.g. the debug one for a smoke run:
#   TOLLGATE_BIN=target/debug/tollgate DURATION=1 WARMUP=1 RUNS=1 RATES=200 RATE_DURATION=1 OTHERS_WAIT=0 bench/gateway.sh
#   OTHERS_WAIT=900: wait up to that long for other benchmarks (wrk, http-check.sh, ingest.sh) to end.
#   QUIET_WAIT=0 QUIET_LOAD=0.5: wait up to QUIET_WAIT s for the load average to drop first.
#   BENCH_SKIP_BUILD=1 uses the tollgate binary already built; BENCH_KEEP=1 keeps the scratch dir.
set -euo pipefail

# lib.sh sets TOLLGATE_BIN to the release build: keep the caller's choice.
GW_BIN_OVERRIDE="${TOLLGATE_BIN:-}"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=upstream/gateway-lib.sh
source "$BENCH_DIR/upstream/gateway-lib.sh"

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
RUNS="${RUNS:-1}"
DRAIN_MAX="${DRAIN_MAX:-300}"
RATES="${RATES:-2000 5000}"
RATE_DURATION="${RATE_DURATION:-10}"
RATE_CONNECTIONS="${RATE_CONNECTIONS:-32}"
[[ "$RATES" == none ]] && RATES=""
for rate in $RATES; do
    [[ "$rate" =~ ^[1-9][0-9]*$ ]] || die "RATES must be positive integers (requests/s), not '$rate'"
done
for n in DURATION WARMUP THREADS CONNECTIONS RUNS DRAIN_MAX RATE_DURATION RATE_CONNECTIONS; do
    [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "$n must be a positive integer, not '${!n}'"
done
((RUNS <= 20 && DURATION <= 120)) || die "RUNS <= 20 and DURATION <= 120 keep the run bounded"

bench_init
RESULTS="$WORK_DIR/wrk"
mkdir -p "$RESULTS"/{direct,nginx,gateway}
RATE_RESULTS="$WORK_DIR/oha"
mkdir -p "$RATE_RESULTS"/{direct,nginx,gateway}

need_apt wrk wrk
need_apt nginx nginx
[[ -z "$RATES" ]] || need_oha
build_or_use_tollgate "$GW_BIN_OVERRIDE"

start_upstream off
ADMIN_KEY="tg_admin_$(random_alnum 32)"
write_gateway_config "$WORK_DIR/tollgate.toml" "$WORK_DIR/tollgate-data"
TG_PID=""
start_gateway TG_PID "$WORK_DIR/tollgate.toml" "$WORK_DIR/tollgate.log"
API_URL="http://127.0.0.1:$API_PORT"
CUSTOMER_KEY="$(setup_gateway_customer "$API_URL")"
log "upstream :$UPSTREAM_PORT, nginx proxy_pass :$PROXY_PORT, gateway :$GW_PORT (API :$API_PORT, pid $TG_PID)"

declare -A URL=(
    [direct]="http://127.0.0.1:$UPSTREAM_PORT/v1/items"
    [nginx]="http://127.0.0.1:$PROXY_PORT/v1/items"
    [gateway]="http://127.0.0.1:$GW_PORT/v1/items"
)
ORDER=(direct nginx gateway)
for label in direct nginx; do
    out="$(curl -sS --max-time 5 -w ' HTTP %{http_code}' "${URL[$label]}")" || die "$label: curl failed"
    log "$label: $out"
    [[ "$out" == *'"item_1"'*' HTTP 200' ]] || die "$label: expected 200 with the upstream's body"
done
gateway_sanity "$CUSTOMER_KEY"
SANITY_REQUESTS=1

# load LABEL SECONDS OUTFILE: one wrk run.
load() {
    timeout $(($2 + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2s" --timeout 5s --latency \
        -H "Authorization: Bearer $CUSTOMER_KEY" "${URL[$1]}" >"$3" 2>&1 ||
        die "$1: wrk failed: $(cat "$3")"
    grep -q '^Requests/sec' "$3" || die "$1: no wrk result: $(cat "$3")"
}

OTHERS_NOTE="not checked"
wait_other_benchmarks
wait_quiet
# The sanity request's usage is written in the background: wait for it.
for ((i = 0; i < 50; i++)); do
    METERED_START="$(metered "$API_URL")"
    ((METERED_START >= SANITY_REQUESTS)) && break
    sleep 0.1
done
RSS_START="$(rss_kb "$TG_PID")"
RSS_PEAK=$RSS_START
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
# drain_usage: polls the usage every 0.5 s until it stops moving (at most DRAIN_MAX s); sets
# DRAINED (the final count) and DRAIN_S (seconds it took).
drain_usage() {
    local start prev=-1 cur i
    start="$(date +%s.%N)"
    for ((i = 0; i < DRAIN_MAX * 2; i++)); do
        cur="$(metered "$API_URL")"
        ((cur == prev)) && break
        prev=$cur
        sleep 0.5
    done
    ((cur == prev)) || log "usage still moving after DRAIN_MAX=${DRAIN_MAX} s"
    DRAINED=$cur
    DRAIN_S="$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
}
DRAIN_NOTES=()
log "measuring ${#ORDER[@]} paths x $RUNS rounds x (${WARMUP} s warm-up + ${DURATION} s)"
for ((run = 1; run <= RUNS; run++)); do
    for label in "${ORDER[@]}"; do
        log "round $run/$RUNS: $label"
        [[ "$label" != gateway ]] || before="$(metered "$API_URL")"
        load "$label" "$WARMUP" "$RESULTS/$label/warmup-$run.out"
        load "$label" "$DURATION" "$RESULTS/$label/run-$run.txt"
        [[ "$label" == gateway ]] || continue
        at_end="$(metered "$API_URL")"
        rss="$(rss_kb "$TG_PID")"
        ((rss > RSS_PEAK)) && RSS_PEAK=$rss
        answered="$(cat "$RESULTS/gateway/warmup-$run.out" "$RESULTS/gateway/run-$run.txt" | awk '/ requests in / { s += $1 } END { print s + 0 }')"
        drain_usage
        log "gateway round $run: $answered answered, $((at_end - before)) committed during the load, backlog drained in $DRAIN_S s"
        DRAIN_NOTES+=("| $run | $answered | $((at_end - before)) | $((answered - (at_end - before))) | $DRAIN_S s | $(awk -v n=$((DRAINED - at_end)) -v s="$DRAIN_S" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }') | $rss kB |")
    done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# The fixed-rate phase: oha at each rate on each path, interleaved, RUNS rounds.
RATE_LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
OHA_GATEWAY=0
for rate in $RATES; do
    for ((run = 1; run <= RUNS; run++)); do
        for label in "${ORDER[@]}"; do
            log "fixed rate $rate/s, round $run/$RUNS: $label"
            out="$RATE_RESULTS/$label/rate-$rate-run-$run.json"
            timeout $((RATE_DURATION + 60)) "$OHA_BIN" -z "${RATE_DURATION}s" -q "$rate" --latency-correction -w \
                -c "$RATE_CONNECTIONS" -t 5s --no-tui --output-format json \
                -H "Authorization: Bearer $CUSTOMER_KEY" "${URL[$label]}" >"$out" 2>"$out.err" ||
                die "$label: oha failed: $(cat "$out.err")"
            if [[ "$label" == gateway ]]; then
                n="$(oha_answers "$out")"
                OHA_GATEWAY=$((OHA_GATEWAY + n))
                drain_usage
            fi
        done
    done
done
RATE_LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# Requests wrk saw answered through the gateway (warm-ups included), and what the usage counted.
# wrk counts completed answers only: up to CONNECTIONS requests per wrk run may have been sent
# (and metered) when wrk stopped without being counted.
WRK_GATEWAY="$(cat "$RESULTS"/gateway/* | awk '/ requests in / { s += $1 } END { print s + 0 }')"
WRK_GATEWAY_NON2XX="$(cat "$RESULTS"/gateway/* | awk '/Non-2xx or 3xx responses:/ { s += $NF } END { print s + 0 }')"
drain_usage
METERED_END="$(metered "$API_URL")"
METERED_RUN=$((METERED_END - METERED_START - OHA_GATEWAY))
RSS_DRAINED="$(rss_kb "$TG_PID")"
GATEWAY_METRICS="$(curl -sS --max-time 5 "$API_URL/metrics" | grep -E '^tollgate_gateway_' || true)"
SERVER_ERRORS="$(grep -ciE 'error|panic' "$WORK_DIR/tollgate.log" || true)"

echo
echo "## Gateway overhead (bench/gateway.sh)"
echo
machine_summary
echo "- load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency --timeout 5s, GET /v1/items with" \
    "\`Authorization: Bearer <customer key>\` (keep-alive, loopback), after a ${WARMUP} s warm-up;" \
    "$RUNS interleaved rounds; each cell is the median over the rounds"
echo "- upstream and peer: one nginx $(nginx -v 2>&1 | sed 's|.*/||') (2 workers), bench/upstream/nginx.conf;" \
    "tollgate gateway on SQLite, route GET /v1/* -> meter \`requests\`"
echo "- load average (1/5/15 min) before: $LOAD_START; after: $LOAD_END; $OTHERS_NOTE"
echo
python3 "$UPSTREAM_DIR/gateway_report.py" "$RESULTS"
echo
echo "Aim (DESIGN.md): gateway p50 added under 100 µs; throughput at least 0.7x nginx proxy_pass."
if [[ -n "$RATES" ]]; then
    echo
    echo "### Latency at fixed request rates (below saturation)"
    echo
    echo "- load: oha -z ${RATE_DURATION}s -q RATE --latency-correction -w -c $RATE_CONNECTIONS, same request;" \
        "$RUNS interleaved rounds per rate; each cell is the median over the rounds; latency counted from when" \
        "each request was due (no coordinated omission)"
    echo "- load average (1/5/15 min) before: $RATE_LOAD_START; after: $RATE_LOAD_END"
    echo
    python3 "$UPSTREAM_DIR/gateway_rate_report.py" "$RATE_RESULTS" $RATES
fi
echo
echo "Metering check (the usage also counted oha's $OHA_GATEWAY answers through the gateway, subtracted here): wrk counted $WRK_GATEWAY answers through the gateway (warm-ups included;" \
    "non-2xx: $WRK_GATEWAY_NON2XX); the usage endpoint counted $METERED_RUN \`requests\` for them" \
    "(difference $((METERED_RUN - WRK_GATEWAY)); wrk does not count up to $CONNECTIONS in-flight" \
    "answers per run, $((2 * RUNS)) runs)."
echo
echo "Background usage writes per gateway round (warm-up + measured run): answered (wrk), committed by the"
echo "end of the load, backlog not yet committed, time until the usage stopped moving, commit rate while"
echo "draining, tollgate RSS right after the load:"
echo
echo "| round | answered | committed during the load | backlog at the end | drain time | commits/s while draining | RSS after the load |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${DRAIN_NOTES[@]}"
echo
echo "tollgate RSS (VmRSS): ${RSS_START} kB before the load, ${RSS_PEAK} kB at most right after a gateway run, ${RSS_DRAINED} kB at the end."
echo "Lines with 'error' or 'panic' in the tollgate log (TOLLGATE_LOG=${TOLLGATE_LOG:-warn}): $SERVER_ERRORS"
if [[ -n "$GATEWAY_METRICS" ]]; then
    echo
    echo '```'
    echo "$GATEWAY_METRICS"
    echo '```'
fi
if ((SERVER_ERRORS > 0)); then
    echo
    echo "First error lines of the tollgate log:"
    echo '```'
    grep -iE 'error|panic' "$WORK_DIR/tollgate.log" | head -5 | cut -c1-400
    echo '```'
fi
