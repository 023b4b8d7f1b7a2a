#!/usr/bin/env bash
# Schemathesis against /openapi.json of a real `tollgate serve`, on SQLite and on PostgreSQL:
# generated requests for every operation must never answer a 5xx, and every answer must conform
# to the schema the document gives for it (response_schema_conformance).
# Usage: .ci/schemathesis.sh PATH/TO/tollgate [max examples per operation, default 25]
set -euo pipefail
bin="$1"
examples="${2:-25}"
if ! command -v st >/dev/null; then
  python3 -m pip install -q 'schemathesis>=4,<5' >/dev/null 2>&1 || pip install -q 'schemathesis>=4,<5'
fi
admin="tg_admin_schemathesis_$(date +%s)_0123456789"
run_on() {
  local name="$1"; shift
  local dir; dir="$(mktemp -d)"
  local port=$((18000 + RANDOM % 1000))
  # A master key, so the license and download-link operations are exercised too (without one
  # they answer 503 master_key_missing by design).
  TOLLGATE_MASTER_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')" \
  TOLLGATE_ADMIN_KEY="$admin" "$bin" serve --listen "127.0.0.1:$port" --data-dir "$dir" "$@" >"$dir/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  echo "schemathesis on $name (port $port, $examples examples per operation)"
  local status=0
  (cd "$dir" && st run "http://127.0.0.1:$port/openapi.json" \
      -H "Authorization: Bearer $admin" \
      --checks not_a_server_error,response_schema_conformance \
      --max-examples "$examples" --seed 1 --no-color) || status=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ "$status" -ne 0 ]; then
    echo "FATAL: schemathesis found server errors on $name; server log:" >&2
    tail -50 "$dir/server.log" >&2
    exit 1
  fi
}
run_on SQLite
if [ -n "${TOLLGATE_TEST_DATABASE_URL:-}" ]; then
  # A database of its own, as SQLite gets a fresh directory: the shared test database holds
  # workspaces whose keys were sealed under other runs' master keys (and other runs' admin keys),
  # so requests there would test those leftovers instead of the API.
  server="${TOLLGATE_TEST_DATABASE_URL%/*}"
  db="tollgate_schemathesis_$(date +%s)_$$"
  psql "$server/postgres" -qc "CREATE DATABASE $db"
  trap 'psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
  run_on PostgreSQL --database-url "$server/$db"
fi
