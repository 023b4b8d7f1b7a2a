# shellcheck shell=bash
# Helpers shared by the benchmark scripts in bench/. Sourced, never run on its own.
#
# Every process a script starts goes through `spawn`, which runs it in its own session so that
# `cleanup` (installed as an EXIT trap by `bench_init`) can stop it and its children by process
# group id, and nothing else. Everything listens on 127.0.0.1 only.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tollgate-target}"
# TOLLGATE_BIN=path runs that binary as is, unbuilt (CI's smoke runs use the debug build).
LIB_TOLLGATE_BIN_FROM_ENV="${TOLLGATE_BIN:+1}"
TOLLGATE_BIN="${TOLLGATE_BIN:-$CARGO_TARGET_DIR/release/tollgate}"
BENCH_VENV="${BENCH_VENV:-$HOME/.cache/tollgate-bench-venv}"

# Pids (= process group ids, see spawn) of the children, and extra cleanup commands, in order.
CHILD_PIDS=()
CLEANUP_HOOKS=()
WORK_DIR=""

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Creates the scratch directory and installs the cleanup trap.
bench_init() {
    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tollgate-bench.XXXXXX")"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

cleanup() {
    local status=$? pid i
    trap - EXIT INT TERM
    # Children first (newest first), then the hooks (a database can only be dropped once the
    # server that holds connections to it is gone).
    for ((i = ${#CHILD_PIDS[@]} - 1; i >= 0; i--)); do
        stop_child "${CHILD_PIDS[i]}"
    done
    for ((i = 0; i < ${#CLEANUP_HOOKS[@]}; i++)); do
        eval "${CLEANUP_HOOKS[i]}" || log "cleanup step failed: ${CLEANUP_HOOKS[i]}"
    done
    if [[ -n "$WORK_DIR" && -d "$WORK_DIR" ]]; then
        if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
            log "kept $WORK_DIR (BENCH_KEEP=1)"
        else
            rm -rf -- "$WORK_DIR"
        fi
    fi
    exit "$status"
}

# stop_child PID: SIGTERM to the child's process group, SIGKILL after 5 s.
stop_child() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop on SIGTERM; sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# spawn VAR LOGFILE CMD...: starts CMD in the background in its own session (so its process
# group id is its pid) with output to LOGFILE, and stores the pid in VAR.
spawn() {
    local -n spawn_pid_ref=$1
    local logfile=$2
    shift 2
    setsid "$@" >"$logfile" 2>&1 </dev/null &
    spawn_pid_ref=$!
    CHILD_PIDS+=("$spawn_pid_ref")
}

# need_apt CMD PACKAGE: installs PACKAGE with apt-get when CMD is not on PATH (apt-get update
# only if the first attempt fails).
need_apt() {
    local cmd=$1 pkg=$2 sudo=()
    command -v "$cmd" >/dev/null 2>&1 && return 0
    [[ $EUID -eq 0 ]] || sudo=(sudo)
    log "installing $pkg (for $cmd)"
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >"$WORK_DIR/apt.log" 2>&1; then
        "${sudo[@]}" apt-get update -q >>"$WORK_DIR/apt.log" 2>&1 || true
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >>"$WORK_DIR/apt.log" 2>&1 ||
            die "cannot install $pkg (see $WORK_DIR/apt.log)"
    fi
    command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]] || die "$pkg installed but $cmd not found"
}

# need_oha: oha (crates.io), the constant-rate load generator of the fixed-rate runs (`-q RATE
# --latency-correction`: wrk2's way of not hiding queueing), from PATH or the bench tools dir,
# installed there with cargo (pinned version) when missing. Sets OHA and OHA_BIN (the same path).
OHA_VERSION="${OHA_VERSION:-1.16.0}"
OHA_ROOT="${OHA_ROOT:-$HOME/.cache/tollgate-bench-tools}"
need_oha() {
    OHA="$(command -v oha || echo "$OHA_ROOT/bin/oha")"
    if [[ ! -x "$OHA" ]]; then
        log "installing oha $OHA_VERSION into $OHA_ROOT (cargo install oha --locked)"
        cargo install oha --locked --version "$OHA_VERSION" --root "$OHA_ROOT" >"$WORK_DIR/oha-install.log" 2>&1 ||
            die "cannot install oha (see $WORK_DIR/oha-install.log)"
        OHA="$OHA_ROOT/bin/oha"
    fi
    [[ -x "$OHA" ]] || die "no oha at $OHA"
    # shellcheck disable=SC2034 # read by the scripts that source this file
    OHA_BIN="$OHA"
}

# build_tollgate: cargo build --release -p tollgate-cli (BENCH_SKIP_BUILD=1 or TOLLGATE_BIN=path:
# use the binary as is).
build_tollgate() {
    if [[ -n "$LIB_TOLLGATE_BIN_FROM_ENV" ]]; then
        [[ -x "$TOLLGATE_BIN" ]] || die "TOLLGATE_BIN=$TOLLGATE_BIN is not an executable"
        log "using $TOLLGATE_BIN as is (TOLLGATE_BIN)"
        return 0
    fi
    if [[ "${BENCH_SKIP_BUILD:-0}" == 1 && -x "$TOLLGATE_BIN" ]]; then
        log "using $TOLLGATE_BIN as is (BENCH_SKIP_BUILD=1)"
        return 0
    fi
    log "building tollgate (cargo build --release -p tollgate-cli; CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$REPO_DIR" && cargo build --release -q -p tollgate-cli) || die "the tollgate build failed"
    [[ -x "$TOLLGATE_BIN" ]] || die "no binary at $TOLLGATE_BIN"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

random_alnum() {
    python3 -c 'import secrets, string, sys; a = string.ascii_letters + string.digits; print("".join(secrets.choice(a) for _ in range(int(sys.argv[1]))))' "$1"
}

# wait_http URL PID SECONDS: waits until URL answers 2xx; fails early if PID exits.
wait_http() {
    local url=$1 pid=$2 seconds=$3 i
    for ((i = 0; i < seconds * 10; i++)); do
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# rss_kb PID: resident set size of PID in kB, from /proc/PID/status.
rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

machine_summary() {
    local cpu
    cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    printf -- '- machine: %s cores (nproc), %s, %s MB RAM, kernel %s\n' "$(nproc)" "$cpu" \
        "$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)" "$(uname -r)"
    printf -- '- date: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    printf -- '- tollgate: %s, binary built %s; checkout at git %s%s\n' \
        "$("$TOLLGATE_BIN" --version 2>/dev/null || echo '?')" \
        "$(date -u -r "$TOLLGATE_BIN" '+%Y-%m-%dT%H:%M:%SZ')" \
        "$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "$(git -C "$REPO_DIR" diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes')"
}

# wait_no_other_wrk: waits (polling every 5 s, at most OTHERS_WAIT s, default 900) while a wrk
# that this script did not start is running: another benchmark (e.g. bench/gateway.sh) is
# measuring, and two loads on 2 cores skew each other. It waits for wrk only, never for another
# script merely existing: two scripts waiting for each other's existence would both time out.
# Sets OTHER_LOAD_NOTE for the report.
OTHER_LOAD_NOTE="not checked"
# shellcheck disable=SC2034 # read by the scripts that source this file
wait_no_other_wrk() {
    local wait_s="${OTHERS_WAIT:-900}" waited=0
    [[ "$wait_s" =~ ^[0-9]+$ ]] || die "OTHERS_WAIT must be a number of seconds"
    while pgrep -x wrk >/dev/null; do
        if ((waited >= wait_s)); then
            log "another benchmark's wrk still runs after ${wait_s} s: measuring anyway"
            OTHER_LOAD_NOTE="another benchmark's wrk was running (waited ${wait_s} s)"
            return 0
        fi
        ((waited % 60 == 0)) && log "another benchmark's wrk is running: waiting (up to ${wait_s} s, OTHERS_WAIT)"
        sleep 5
        waited=$((waited + 5))
    done
    OTHER_LOAD_NOTE="no other wrk running at the start (waited ${waited} s)"
}

# wait_quiet: with QUIET_WAIT=SECONDS (default 0: don't wait), waits up to that long for the
# 1-minute load average to drop below QUIET_LOAD (default 0.5), so other work on the machine
# (a cargo build) disturbs the measurement less. Measures anyway when the time is up.
wait_quiet() {
    local wait_s="${QUIET_WAIT:-0}" limit="${QUIET_LOAD:-0.5}" i load
    [[ "$wait_s" =~ ^[0-9]+$ ]] || die "QUIET_WAIT must be a number of seconds"
    for ((i = 0; i < wait_s; i += 5)); do
        load="$(cut -d' ' -f1 /proc/loadavg)"
        awk -v l="$load" -v m="$limit" 'BEGIN { exit !(l < m) }' && return 0
        ((i % 60 == 0)) && log "load average $load >= $limit: waiting (up to ${wait_s} s, QUIET_WAIT)"
        sleep 5
    done
    ((wait_s == 0)) || log "load average still $(cut -d' ' -f1 /proc/loadavg) after ${wait_s} s: measuring anyway"
}

# api METHOD URL KEY [BODY]: one JSON call; prints the body; fails on a non-2xx status.
api() {
    local method=$1 url=$2 key=$3 body=${4:-}
    local args=(-sS --max-time 30 -X "$method" -H "Authorization: Bearer $key" -H 'Content-Type: application/json'
        -w '\n%{http_code}')
    [[ -n "$body" ]] && args+=(--data-binary "$body")
    local out code
    out="$(curl "${args[@]}" "$url")" || die "$method $url: curl failed"
    code="${out##*$'\n'}"
    out="${out%$'\n'*}"
    [[ "$code" == 2?? ]] || die "$method $url -> HTTP $code: $out"
    printf '%s\n' "$out"
}

# start_tollgate VAR_PID VAR_URL LOGFILE ADMIN_KEY [SERVE FLAGS...]: starts `tollgate serve` on
# a free loopback port and waits for /healthz.
start_tollgate() {
    local -n st_pid_ref=$1
    local -n st_url_ref=$2
    local logfile=$3 admin_key=$4 port
    shift 4
    port="$(free_port)"
    st_url_ref="http://127.0.0.1:$port"
    spawn st_pid_ref "$logfile" env TOLLGATE_ADMIN_KEY="$admin_key" TOLLGATE_LOG="${TOLLGATE_LOG:-warn}" \
        "$TOLLGATE_BIN" serve --listen "127.0.0.1:$port" "$@"
    wait_http "$st_url_ref/healthz" "$st_pid_ref" 60 || {
        tail -20 "$logfile" >&2
        die "tollgate did not become ready on $st_url_ref"
    }
}

# setup_customer URL ADMIN_KEY: applies the Apex catalog to the default workspace, creates
# customer `bench` on plan `mid` (no trial) and prints a new customer key.
setup_customer() {
    local url=$1 admin=$2 body
    body="$(python3 -c 'import json, sys; print(json.dumps({"yaml": open(sys.argv[1]).read()}))' \
        "$REPO_DIR/examples/catalogs/apex.yaml")"
    api PUT "$url/v1/catalog" "$admin" "$body" >/dev/null
    api POST "$url/v1/customers" "$admin" '{"id":"bench"}' >/dev/null
    api POST "$url/v1/customers/bench/subscriptions" "$admin" '{"plan":"mid","trial":false}' >/dev/null
    api POST "$url/v1/customers/bench/keys" "$admin" '{}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])'
}
