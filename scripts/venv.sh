#!/usr/bin/env bash
# Creates or updates the Python virtualenv for sluice's tests at .cache/venv from tests/requirements.txt, and prints
# its path. Idempotent: pip runs only when the requirements (or the interpreter) changed since the last good install,
# which a stamp file in the venv records as a hash. PYTHON picks the interpreter (default: python3.11, else python3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.cache/venv"
REQ="$ROOT/tests/requirements.txt"
STAMP="$VENV/.requirements.sha256"

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if command -v python3.11 >/dev/null 2>&1 && python3.11 -c 'import sys' >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi

want=$( { sha256sum "$REQ" | cut -d' ' -f1; "$PY" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "$VENV"
  exit 0
fi

# A venv made by another interpreter version is rebuilt rather than patched.
if [ -x "$VENV/bin/python" ] && ! cmp -s <("$VENV/bin/python" -c 'import sys; print(sys.version)') \
                                         <("$PY" -c 'import sys; print(sys.version)'); then
  rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" >&2

start=$(date +%s)
timeout 1200 "$VENV/bin/python" -m pip install -q --upgrade pip >&2 || true
timeout 1800 "$VENV/bin/python" -m pip install -q -r "$REQ" >&2
echo "$want" > "$STAMP"
echo "venv: installed $REQ in $(( $(date +%s) - start )) s" >&2
echo "$VENV"
