#!/usr/bin/env bash
# The dashboard, the customer portal and the public pages in a real browser: Debian's Chromium (headless) driven by
# playwright-core, with axe-core's accessibility checks, against the already built `tollgate
# serve` on SQLite. Installs what is missing (chromium with apt, the npm packages of
# tests/browser/package-lock.json); fails loudly, never skips. Screenshots go to docs/images/.
# Usage: .ci/browser.sh PATH/TO/tollgate
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "$1")"
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "FATAL: /usr/bin/chromium is missing and could not be installed" >&2
  exit 1
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)
dir="$(mktemp -d)"
port=$((19000 + RANDOM % 1000))
# The SMTP sink of run.mjs (the portal's sign-in emails) listens here; the server sends to it in
# clear, as to a relay on this host.
smtp_port=$((20000 + RANDOM % 1000))
admin="tg_admin_browser_$(date +%s)_0123456789"
TOLLGATE_ADMIN_KEY="$admin" "$bin" serve --listen "127.0.0.1:$port" --data-dir "$dir" \
  --smtp-url "smtp://127.0.0.1:$smtp_port" --smtp-tls none >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
if ! curl -fs "http://127.0.0.1:$port/healthz" >/dev/null; then
  echo "FATAL: the server did not start; its log:" >&2
  cat "$dir/server.log" >&2
  exit 1
fi
status=0
BASE="http://127.0.0.1:$port" ADMIN_KEY="$admin" SMTP_PORT="$smtp_port" node tests/browser/run.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "FATAL: the browser checks failed; server log:" >&2
  tail -50 "$dir/server.log" >&2
  exit 1
fi
