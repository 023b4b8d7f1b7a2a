#!/usr/bin/env bash
# The Python SDK's tests and the FastAPI example's, against a real server binary.
#   .ci/python.sh target/release/tollgate
set -euo pipefail
BIN=$(realpath "${1:?usage: .ci/python.sh PATH_TO_TOLLGATE_BINARY}")
[ -x "$BIN" ] || { echo "python.sh: no executable server binary at $BIN" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}

if ! out=$("$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  -e "$ROOT/clients/python[test]" 2>&1); then
  echo "$out" >&2
  exit 1
fi

export TOLLGATE_BIN="$BIN"
cd "$ROOT/clients/python"
"$PY" -m mypy                      # the package, --strict (pyproject)
"$PY" -m mypy --strict tests
"$PY" -m mypy --strict "$ROOT/examples/fastapi/apex_app.py"
"$PY" -m pytest -q -p no:cacheprovider tests
cd "$ROOT/examples/fastapi"
"$PY" -m pytest -q -p no:cacheprovider .
