# shellcheck shell=bash
# Helpers of bench/gateway.sh and bench/gateway-crash.sh, sourced after bench/lib.sh (whose
# spawn/cleanup they use). Loopback only.

UPSTREAM_DIR="$BENCH_DIR/upstream"
GW_CUSTOMER=bench
GW_METER=requests

# start_upstream ACCESS_LOG: the nginx of bench/upstream/nginx.conf (upstream + proxy_pass peer)
# in $WORK_DIR/nginx, as a non-daemon child. ACCESS_LOG: `off` or a file name inside its prefix.
# Sets UPSTREAM_PORT, PROXY_PORT, NGINX_PREFIX, NGINX_PID.
start_upstream() {
    local access_log=$1 nginx_bin
    nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
    # nginx's workers run as an unprivileged user: they must be able to traverse the dir.
    chmod 711 "$WORK_DIR"
    NGINX_PREFIX="$WORK_DIR/nginx"
    mkdir -p "$NGINX_PREFIX/tmp"
    chmod -R 755 "$NGINX_PREFIX"
    UPSTREAM_PORT="$(free_port)"
    PROXY_PORT="$(free_port)"
    sed -e "s/@UPSTREAM_PORT@/$UPSTREAM_PORT/g" -e "s/@PROXY_PORT@/$PROXY_PORT/g" \
        -e "s|@ACCESS_LOG@|$access_log|g" "$UPSTREAM_DIR/nginx.conf" >"$NGINX_PREFIX/nginx.conf"
    NGINX_PID=""
    spawn NGINX_PID "$WORK_DIR/nginx.out" "$nginx_bin" -p "$NGINX_PREFIX" -c "$NGINX_PREFIX/nginx.conf" -g 'daemon off;'
    if ! wait_http "http://127.0.0.1:$UPSTREAM_PORT/v1/items" "$NGINX_PID" 10 ||
        ! wait_http "http://127.0.0.1:$PROXY_PORT/v1/items" "$NGINX_PID" 10; then
        die "nginx did not start: $(cat "$WORK_DIR/nginx.out" "$NGINX_PREFIX/error.log" 2>/dev/null)"
    fi
}

# write_gateway_config FILE DATA_DIR: API and gateway on free loopback ports, the upstream above,
# one route: GET /v1/* metered on `requests`, cost 1. Sets API_PORT, GW_PORT.
write_gateway_config() {
    local file=$1 data_dir=$2
    API_PORT="$(free_port)"
    GW_PORT="$(free_port)"
    cat >"$file" <<EOF
listen = "127.0.0.1:$API_PORT"
data_dir = "$data_dir"

[gateway]
listen = "127.0.0.1:$GW_PORT"
upstream = "http://127.0.0.1:$UPSTREAM_PORT"
unmatched = "refuse"
upstream_timeout = "5s"

[[gateway.routes]]
method = "GET"
path = "/v1/*"
meter = "$GW_METER"
cost = 1
EOF
}

# start_gateway VAR_PID CONFIG LOGFILE: `tollgate gateway --config CONFIG`; waits for the API's
# /healthz and for the gateway to answer (401 without a key).
start_gateway() {
    local -n sg_pid_ref=$1
    local config=$2 logfile=$3 i code
    spawn sg_pid_ref "$logfile" env TOLLGATE_ADMIN_KEY="$ADMIN_KEY" TOLLGATE_LOG="${TOLLGATE_LOG:-warn}" \
        "$TOLLGATE_BIN" gateway --config "$config"
    wait_http "http://127.0.0.1:$API_PORT/healthz" "$sg_pid_ref" 60 || {
        tail -20 "$logfile" >&2
        die "tollgate gateway did not become ready (API port $API_PORT)"
    }
    for ((i = 0; i < 100; i++)); do
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$GW_PORT/v1/items" || true)"
        [[ "$code" == 401 ]] && return 0
        sleep 0.1
    done
    tail -20 "$logfile" >&2
    die "the gateway on port $GW_PORT did not answer 401 without a key (last: $code)"
}

# setup_gateway_customer API_URL: applies examples/catalogs/control-plane.yaml, creates customer
# `bench` on `starter` (no hard quota, no rate limit: nothing is refused) and prints a new
# customer key.
setup_gateway_customer() {
    local url=$1 body
    body="$(python3 -c 'import json, sys; print(json.dumps({"yaml": open(sys.argv[1]).read()}))' \
        "$REPO_DIR/examples/catalogs/control-plane.yaml")"
    api PUT "$url/v1/catalog" "$ADMIN_KEY" "$body" >/dev/null
    api POST "$url/v1/customers" "$ADMIN_KEY" "{\"id\":\"$GW_CUSTOMER\"}" >/dev/null
    api POST "$url/v1/customers/$GW_CUSTOMER/subscriptions" "$ADMIN_KEY" '{"plan":"starter","trial":false}' >/dev/null
    api POST "$url/v1/customers/$GW_CUSTOMER/keys" "$ADMIN_KEY" '{}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])'
}

# metered API_URL: the customer's `requests` used in the current period (an integer).
metered() {
    api GET "$1/v1/customers/$GW_CUSTOMER/usage" "$ADMIN_KEY" | python3 -c '
import json, sys
from decimal import Decimal
report = json.load(sys.stdin)
used = [m["used"] for m in report["meters"] if m["meter"] == sys.argv[1]]
print(int(Decimal(used[0])) if used else 0)' "$GW_METER"
}

# gateway_sanity KEY: one request through the gateway must reach the upstream (200, its body).
gateway_sanity() {
    local out
    out="$(curl -sS --max-time 5 -w ' HTTP %{http_code}' -H "Authorization: Bearer $1" \
        "http://127.0.0.1:$GW_PORT/v1/items")" || die "gateway: curl failed"
    log "gateway: $out"
    [[ "$out" == *'"item_1"'*' HTTP 200' ]] || die "gateway: expected 200 with the upstream's body"
}

# wait_other_benchmarks: waits (polling every 15 s, at most OTHERS_WAIT s, default 900) until no
# wrk, bench/http-check.sh or bench/ingest.sh runs, so two benchmarks don't skew each other.
# Measures anyway when the time is up, and says so. OTHERS_WAIT=0 skips the wait. Sets
# OTHERS_NOTE for the report.
# shellcheck disable=SC2034
wait_other_benchmarks() {
    local wait_s="${OTHERS_WAIT:-900}" waited=0
    [[ "$wait_s" =~ ^[0-9]+$ ]] || die "OTHERS_WAIT must be a number of seconds"
    while pgrep -x wrk >/dev/null || pgrep -f 'http-check\.sh' >/dev/null || pgrep -f 'ingest\.sh' >/dev/null; do
        if ((waited >= wait_s)); then
            log "other benchmarks still running after ${wait_s} s: measuring anyway"
            OTHERS_NOTE="other benchmarks were still running (waited ${wait_s} s)"
            return 0
        fi
        ((waited % 60 == 0)) && log "another benchmark (wrk, http-check.sh or ingest.sh) is running: waiting"
        sleep 15
        waited=$((waited + 15))
    done
    OTHERS_NOTE="no other benchmark running at the start (waited ${waited} s)"
}

# build_or_use_tollgate OVERRIDE: with OVERRIDE (the caller's TOLLGATE_BIN, saved before lib.sh
# set its own), measures that binary as is (e.g. the debug build for a CI smoke run); else
# build_tollgate.
build_or_use_tollgate() {
    if [[ -n "$1" ]]; then
        [[ -x "$1" ]] || die "TOLLGATE_BIN=$1 is not an executable"
        TOLLGATE_BIN="$(realpath "$1")"
        log "using TOLLGATE_BIN=$TOLLGATE_BIN as is"
        return 0
    fi
    build_tollgate
}

# oha_answers FILE: the 2xx answers in one `oha --output-format json` result.
oha_answers() {
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(sum(n for code, n in d["statusCodeDistribution"].items() if code.startswith("2")))' "$1"
}
