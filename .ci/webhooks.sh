#!/usr/bin/env bash
# Tollgate's webhooks checked by an implementation of the Standard Webhooks spec that is not
# ours: runs the webhook tests (crates/tollgate-server/tests/webhooks.rs) with the deliveries
# they accept captured to a file, then verifies every one with the `standardwebhooks` package
# from PyPI (.ci/verify_webhooks.py). The cargo tests alone need nothing but Rust; this needs
# python3 with pip, and installs the package when it is missing (failing loudly if it cannot).
#   .ci/webhooks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! "$PY" -c 'import standardwebhooks' 2>/dev/null; then
  if ! out=$("$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    'standardwebhooks>=1.1,<2' 2>&1); then
    echo "$out" >&2
    echo "FATAL: cannot install standardwebhooks from PyPI" >&2
    exit 1
  fi
fi

capture="$(mktemp)"
trap 'rm -f "$capture"' EXIT
TOLLGATE_WEBHOOK_CAPTURE="$capture" cargo test --locked -p tollgate-server --test webhooks
"$PY" .ci/verify_webhooks.py "$capture"
