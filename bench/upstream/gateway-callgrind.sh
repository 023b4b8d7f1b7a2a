#!/usr/bin/env bash
# Where the gateway's CPU goes per request: `tollgate gateway` under valgrind's callgrind (instruction
# counts, repeatable on a noisy machine; `perf` is not permitted here) with the setup of
# bench/gateway.sh (nginx upstream, SQLite, route GET /v1/* metered on `requests`). Collection
# starts after the setup and covers REQUESTS requests sent by oha (CONNECTIONS at a time) plus the
# background commit of their usage; then prints the top frames by inclusive and by self cost.
#
# Usage: bench/upstream/gateway-callgrind.sh [OUT_DIR]
# Settings: REQUESTS=5000 CONNECTIONS=8 TOP=40 TOLLGATE_BIN=path (default: the release build;
#   build it with CARGO_PROFILE_RELEASE_DEBUG=line-tables-only for file:line in the frames).
set -euo pipefail

GW_BIN_OVERRIDE="${TOLLGATE_BIN:-}"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=gateway-lib.sh
source "$BENCH_DIR/upstream/gateway-lib.sh"

REQUESTS="${REQUESTS:-5000}"
CONNECTIONS="${CONNECTIONS:-8}"
TOP="${TOP:-40}"
OUT_DIR="${1:-$PWD/gateway-callgrind}"
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/callgrind.out*
OUT_DIR="$(realpath "$OUT_DIR")"

bench_init
need_apt nginx nginx
need_apt valgrind valgrind
need_oha
BENCH_SKIP_BUILD=1 build_or_use_tollgate "$GW_BIN_OVERRIDE"

start_upstream off
ADMIN_KEY="tg_admin_$(random_alnum 32)"
write_gateway_config "$WORK_DIR/tollgate.toml" "$WORK_DIR/tollgate-data"
WRAPPER="$WORK_DIR/tollgate-callgrind"
cat >"$WRAPPER" <<WRAP
#!/bin/sh
exec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT_DIR/callgrind.out" "$TOLLGATE_BIN" "\$@"
WRAP
chmod +x "$WRAPPER"
REAL_BIN="$TOLLGATE_BIN"
TOLLGATE_BIN="$WRAPPER"
TG_PID=""
start_gateway TG_PID "$WORK_DIR/tollgate.toml" "$WORK_DIR/tollgate.log"
TOLLGATE_BIN="$REAL_BIN"
API_URL="http://127.0.0.1:$API_PORT"
CUSTOMER_KEY="$(setup_gateway_customer "$API_URL")"
gateway_sanity "$CUSTOMER_KEY"
sleep 1
START="$(metered "$API_URL")"

callgrind_control -i on "$TG_PID" >/dev/null
log "collecting: $REQUESTS requests, $CONNECTIONS connections"
"$OHA_BIN" -n "$REQUESTS" -c "$CONNECTIONS" --no-tui --output-format json \
    -H "Authorization: Bearer $CUSTOMER_KEY" "http://127.0.0.1:$GW_PORT/v1/items" >"$OUT_DIR/oha.json"
answered="$(oha_answers "$OUT_DIR/oha.json")"
for ((i = 0; i < 600; i++)); do
    now_metered="$(metered "$API_URL")"
    ((now_metered - START >= answered)) && break
    sleep 0.5
done
callgrind_control -i off "$TG_PID" >/dev/null
log "$answered answered, $((now_metered - START)) metered; dumping"
callgrind_control -d "$TG_PID" >/dev/null
sleep 2
# The dump of the collected part (the process writes its own file again when it ends).
DUMP="$(ls "$OUT_DIR"/callgrind.out.[0-9]* | tail -1)"
{
    echo "# $answered requests answered through the gateway, $((now_metered - START)) metered"
    echo "# inclusive"
    callgrind_annotate --inclusive=yes "$DUMP" | head -$((TOP + 25))
    echo "# self"
    callgrind_annotate "$DUMP" | head -$((TOP + 25))
} | tee "$OUT_DIR/annotate.txt"
