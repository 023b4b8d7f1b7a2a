#!/usr/bin/env bash
# The gateway's metering loss window on a crash. Each repetition:
#   1. starts `tollgate gateway` on a fresh SQLite data dir in front of the upstream nginx of
#      bench/upstream/nginx.conf, whose access log counts every request it answered; applies
#      examples/catalogs/control-plane.yaml, customer `bench` on `starter`, a customer key, route
#      `GET /v1/*` -> meter `requests`;
#   2. loads the gateway with wrk at full speed (LOAD s) and `kill -9`s the tollgate process
#      KILL_AFTER s into the load;
#   3. restarts `tollgate serve` on the same data dir and reads the committed usage
#      (GET /v1/customers/bench/usage, meter `requests`).
# served = access-log lines the load added; metered = committed `requests` the load added;
# lost = served - metered, also as milliseconds of traffic at the rate the upstream served
# (access-log lines per second between 1 s into the load and the kill).
# Requests the upstream answered whose answer the gateway never received (in flight at the
# kill, at most CONNECTIONS) are not billed by design and count as lost here.
#
# Usage: bench/gateway-crash.sh
# Settings (environment): REPEATS=3 LOAD=5 KILL_AFTER=3 THREADS=2 CONNECTIONS=64
#   OTHERS_WAIT=900: wait up to that long for other benchmarks (wrk, http-check.sh, ingest.sh) to end.
#   BENCH_SKIP_BUILD=1 uses the tollgate binary already built; BENCH_KEEP=1 keeps the scratch dir.
#   TOLLGATE_BIN=path: that binary, not built; a smoke run on the debug build:
#   TOLLGATE_BIN=target/debug/tollgate REPEATS=1 LOAD=2 KILL_AFTER=1.5 OTHERS_WAIT=0 bench/gateway-crash.sh
set -euo pipefail

# lib.sh sets TOLLGATE_BIN to the release build: keep the caller's choice.
GW_BIN_OVERRIDE="${TOLLGATE_BIN:-}"

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=upstream/gateway-lib.sh
source "$BENCH_DIR/upstream/gateway-lib.sh"

REPEATS="${REPEATS:-3}"
LOAD="${LOAD:-5}"
KILL_AFTER="${KILL_AFTER:-3}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
for n in REPEATS LOAD THREADS CONNECTIONS; do
    [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "$n must be a positive integer, not '${!n}'"
done
[[ "$KILL_AFTER" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "KILL_AFTER must be a number of seconds"
awk -v k="$KILL_AFTER" -v l="$LOAD" 'BEGIN { exit !(k >= 1.5 && k < l) }' || die "need 1.5 <= KILL_AFTER < LOAD"
((REPEATS <= 10 && LOAD <= 60)) || die "REPEATS <= 10 and LOAD <= 60 keep the run bounded"

bench_init
need_apt wrk wrk
need_apt nginx nginx
build_or_use_tollgate "$GW_BIN_OVERRIDE"

start_upstream access.log
ACCESS_LOG="$NGINX_PREFIX/access.log"
ADMIN_KEY="tg_admin_$(random_alnum 32)"
served_lines() { wc -l <"$ACCESS_LOG"; }
now() { date +%s.%N; }

OTHERS_NOTE="not checked"
wait_other_benchmarks
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

ROWS=()
for ((rep = 1; rep <= REPEATS; rep++)); do
    data_dir="$WORK_DIR/data-$rep"
    write_gateway_config "$WORK_DIR/tollgate-$rep.toml" "$data_dir"
    TG_PID=""
    start_gateway TG_PID "$WORK_DIR/tollgate-$rep.toml" "$WORK_DIR/tollgate-$rep.log"
    API_URL="http://127.0.0.1:$API_PORT"
    CUSTOMER_KEY="$(setup_gateway_customer "$API_URL")"
    gateway_sanity "$CUSTOMER_KEY"
    for ((i = 0; i < 50; i++)); do
        metered_before="$(metered "$API_URL")"
        ((metered_before >= 1)) && break
        sleep 0.1
    done
    served_before="$(served_lines)"

    log "repetition $rep/$REPEATS: ${LOAD} s of load, kill -9 after ${KILL_AFTER} s"
    WRK_PID=""
    t0="$(now)"
    spawn WRK_PID "$WORK_DIR/wrk-$rep.out" timeout $((LOAD + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${LOAD}s" \
        --timeout 5s --latency -H "Authorization: Bearer $CUSTOMER_KEY" "http://127.0.0.1:$GW_PORT/v1/items"
    sleep 1
    ta="$(now)"
    served_a="$(served_lines)"
    sleep "$(awk -v k="$KILL_AFTER" -v a="$ta" -v t="$t0" -v n="$(now)" 'BEGIN { s = k - (n - t) - 0.3; print (s > 0 ? s : 0) }')"
    # What the live gateway had committed a moment before the kill (its counters move only
    # once a usage write committed), and what the upstream had served by then.
    live_metered="$(metered "$API_URL")"
    live_served="$(served_lines)"
    tb="$(now)"
    served_b="$(served_lines)"
    kill -KILL "$TG_PID"
    t_kill="$(now)"
    wait "$TG_PID" 2>/dev/null || true
    wait "$WRK_PID" 2>/dev/null || true
    sleep 0.5
    served=$(($(served_lines) - served_before))

    SERVE_PID="" SERVE_URL=""
    start_tollgate SERVE_PID SERVE_URL "$WORK_DIR/serve-$rep.log" "$ADMIN_KEY" --data-dir "$data_dir"
    metered_after="$(metered "$SERVE_URL")"
    stop_child "$SERVE_PID"
    metered=$((metered_after - metered_before))
    lost=$((served - metered))
    rate="$(awk -v n=$((served_b - served_a)) -v a="$ta" -v b="$tb" 'BEGIN { printf "%.0f", n / (b - a) }')"
    loss_ms="$(awk -v l="$lost" -v r="$rate" 'BEGIN { printf "%.0f", (r > 0 ? l / r * 1000 : 0) }')"
    backlog=$((live_served - served_before - (live_metered - metered_before)))
    at_kill="$(awk -v t="$t0" -v k="$t_kill" 'BEGIN { printf "%.2f", k - t }')"
    wrk_errors="$(grep -E 'Socket errors' "$WORK_DIR/wrk-$rep.out" | sed 's/^ *//' || echo 'Socket errors: none')"
    log "rep $rep: served $served, metered $metered, lost $lost (~$loss_ms ms at $rate/s); backlog just before the kill: $backlog"
    ROWS+=("| $rep | $at_kill s | $rate | $served | $metered | $lost | $loss_ms ms | $backlog | $wrk_errors |")
done

echo
echo "## Gateway crash: metering loss window (bench/gateway-crash.sh)"
echo
machine_summary
echo "- load: wrk -t$THREADS -c$CONNECTIONS -d${LOAD}s --timeout 5s, GET /v1/items through \`tollgate gateway\`" \
    "(SQLite, synchronous = FULL), \`kill -9\` of the tollgate process ${KILL_AFTER} s into the load; $REPEATS repetitions," \
    "each on a fresh data dir; upstream: nginx with an access log (bench/upstream/nginx.conf)"
echo "- load average (1/5/15 min) at the start: $LOAD_START; $OTHERS_NOTE"
echo
echo "| rep | kill at | upstream rate (req/s) | served | metered (committed) | lost | lost, as traffic | not yet committed ~0.3 s before the kill | wrk |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "served: upstream access-log lines added by the load; metered: the customer's committed \`requests\`" \
    "read from \`tollgate serve\` restarted on the same data dir; lost = served - metered (includes up to" \
    "$CONNECTIONS requests the upstream answered but whose answer the gateway never got, which are not billed by design)."
