#!/usr/bin/env bash
# Where `tollgate serve` spends its instructions answering `POST /v1/check`: callgrind (perf is
# not permitted on the benchmark machine; instruction counts are also repeatable under load).
#
# Starts `tollgate serve` under valgrind --tool=callgrind with collection off, sets up the same
# customer as bench/http-check.sh, switches collection on, sends REQUESTS checks of one body
# with oha (closed loop, CONNECTIONS connections), switches it off and prints the top of
# `callgrind_annotate` (self cost, then inclusive). Instructions per request = total / REQUESTS.
#
# Usage: bench/profile-http-check.sh
# Settings: REQUESTS=20000 CONNECTIONS=8 BODY=feature|meter TOP=30
#   TOLLGATE_BIN=path (default: the release build; its `debug = 1` has the line tables);
#   BENCH_KEEP=1 keeps the scratch dir with callgrind.out.
set -euo pipefail

TOLLGATE_BIN_GIVEN="${TOLLGATE_BIN:-}"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [[ -n "$TOLLGATE_BIN_GIVEN" ]]; then
    TOLLGATE_BIN="$(realpath "$TOLLGATE_BIN_GIVEN")"
    BENCH_SKIP_BUILD=1
fi

REQUESTS="${REQUESTS:-20000}"
CONNECTIONS="${CONNECTIONS:-8}"
BODY="${BODY:-feature}"
TOP="${TOP:-30}"
case "$BODY" in
feature) BODY_JSON='{"feature":"advanced_analytics"}' ;;
meter) BODY_JSON='{"meter":"agent_runs","subject":"u1"}' ;;
*) die "BODY must be feature or meter" ;;
esac

bench_init
command -v valgrind >/dev/null || die "valgrind is not installed"
OHA="$(command -v oha || echo "$HOME/.cache/tollgate-bench-tools/bin/oha")"
[[ -x "$OHA" ]] || die "no oha (cargo install oha --locked --root ~/.cache/tollgate-bench-tools)"
build_tollgate # [profile.release] debug = 1 keeps line tables for the annotation

ADMIN_KEY="tg_admin_$(random_alnum 32)"
PORT="$(free_port)"
URL="http://127.0.0.1:$PORT"
OUT="$WORK_DIR/callgrind.out"
VG_PID=""
spawn VG_PID "$WORK_DIR/tollgate.log" env TOLLGATE_ADMIN_KEY="$ADMIN_KEY" TOLLGATE_LOG="${TOLLGATE_LOG:-warn}" \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT" \
    "$TOLLGATE_BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK_DIR/data"
wait_http "$URL/healthz" "$VG_PID" 300 || {
    tail -20 "$WORK_DIR/tollgate.log" >&2
    die "tollgate did not start under valgrind"
}
KEY="$(setup_customer "$URL" "$ADMIN_KEY")"
out="$(curl -sS -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' --data-binary "$BODY_JSON" "$URL/v1/check")"
[[ "$out" == *'"allowed":true'* ]] || die "sanity check failed: $out"
# Warm (connections, lazily built state) before collecting.
"$OHA" -n 500 -c "$CONNECTIONS" --no-tui --output-format quiet -m POST -T application/json \
    -H "Authorization: Bearer $KEY" -d "$BODY_JSON" "$URL/v1/check"
callgrind_control --instr=on "$VG_PID" >/dev/null
"$OHA" -n "$REQUESTS" -c "$CONNECTIONS" --no-tui --output-format json -m POST -T application/json \
    -H "Authorization: Bearer $KEY" -d "$BODY_JSON" "$URL/v1/check" >"$WORK_DIR/oha.json"
callgrind_control --instr=off "$VG_PID" >/dev/null
python3 - "$WORK_DIR/oha.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d["statusCodeDistribution"]
print(f"- oha under callgrind: {sum(codes.values())} answers, status codes {codes}, errors {d['errorDistribution']}")
PY
stop_child "$VG_PID"
[[ -s "$OUT" ]] || die "no callgrind output"

echo
echo "## callgrind of tollgate serve, POST /v1/check ($BODY), $REQUESTS requests, $CONNECTIONS connections"
echo
machine_summary
echo
total="$(callgrind_annotate "$OUT" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n { gsub(",", "", $1); print $1; n = 1 }')"
[[ "$total" =~ ^[0-9]+$ ]] || die "no instructions collected (callgrind_control could not switch collection on?)"
echo "- instructions collected: $total; per request: $((total / REQUESTS))"
echo
echo '### self cost'
echo '```'
callgrind_annotate --threshold=99 "$OUT" 2>/dev/null | sed -n '/^Ir/,$p' | grep -v '^--' | head -"$TOP" || true # head closes the pipe early
echo '```'
echo
echo '### inclusive'
echo '```'
callgrind_annotate --inclusive=yes --threshold=99 "$OUT" 2>/dev/null | sed -n '/^Ir/,$p' | grep -v '^--' | head -"$TOP" || true # head closes the pipe early
echo '```'
