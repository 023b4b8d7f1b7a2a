#!/usr/bin/env bash
# Clients generated from the committed contract (docs/openapi.json) by two generators that are
# not ours, smoke-tested against a live server: openapi-python-client and openapi-generator's
# `python` generator (the openapi-generator-cli wheel from PyPI, which carries its jar; it needs
# a Java runtime, installed from Debian when missing). Fails loudly when a tool cannot be had.
#   .ci/clients.sh target/debug/tollgate
set -euo pipefail
BIN=$(realpath "${1:?usage: .ci/clients.sh PATH_TO_TOLLGATE_BINARY}")
[ -x "$BIN" ] || { echo "clients.sh: no executable server binary at $BIN" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
pip_install() {
  if ! out=$("$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@" 2>&1); then
    echo "$out" >&2
    echo "FATAL: pip install $* failed" >&2
    exit 1
  fi
}

if ! command -v java >/dev/null; then
  echo "no Java runtime: installing default-jre-headless for openapi-generator"
  (apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null) ||
    { echo "FATAL: cannot install a Java runtime" >&2; exit 1; }
fi
pip_install 'openapi-python-client>=0.29,<0.30' 'openapi-generator-cli==7.26.0'

work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$PY" -m openapi_python_client generate --path "$ROOT/docs/openapi.json" \
  --output-path "$work/opc" >"$work/opc.log" 2>&1 ||
  { cat "$work/opc.log" >&2; echo "FATAL: openapi-python-client refused the contract" >&2; exit 1; }
openapi-generator-cli generate -i "$ROOT/docs/openapi.json" -g python -o "$work/ogen" \
  --package-name tollgate_ogen >"$work/ogen.log" 2>&1 ||
  { cat "$work/ogen.log" >&2; echo "FATAL: openapi-generator refused the contract" >&2; exit 1; }
pip_install "$work/opc" "$work/ogen"

port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin=tg_admin_generated_clients_smoke_0123456789
TOLLGATE_ADMIN_KEY=$admin "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$work/data" \
  >"$work/server.log" 2>&1 &
server_pid=$!
"$PY" - "$port" <<'PY' || { tail -50 "$work/server.log" >&2; exit 1; }
import sys, time, urllib.request
for _ in range(200):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("FATAL: the server never answered /healthz")
PY
"$PY" "$ROOT/clients/generated/smoke.py" "http://127.0.0.1:$port" "$admin" ||
  { echo "--- server log" >&2; tail -50 "$work/server.log" >&2; exit 1; }
