#!/usr/bin/env bash
# Creates or updates the Airflow virtualenv at .cache/airflow-venv from airflow/requirements.txt and prints its path.
# Kept apart from .cache/venv because apache-airflow pins hundreds of packages. Idempotent: pip runs only when the
# requirements (or the interpreter) changed since the last good install, which a stamp file records as a hash.
# AIRFLOW_CONSTRAINTS may name an Airflow constraints file (path or URL) to install against, as Airflow recommends;
# without it pip resolves within the bounds apache-airflow itself declares. The install time goes to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.cache/airflow-venv"
REQ="$ROOT/airflow/requirements.txt"
STAMP="$VENV/.requirements.sha256"

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if command -v python3.11 >/dev/null 2>&1 && python3.11 -c 'import sys' >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi

want=$( { sha256sum "$REQ" | cut -d' ' -f1; "$PY" -c 'import sys; print(sys.version)'; echo "${AIRFLOW_CONSTRAINTS:-}"; } \
        | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/airflow" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "$VENV"
  exit 0
fi
if [ -x "$VENV/bin/python" ] && ! cmp -s <("$VENV/bin/python" -c 'import sys; print(sys.version)') \
                                         <("$PY" -c 'import sys; print(sys.version)'); then
  rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" >&2

start=$(date +%s)
timeout 1200 "$VENV/bin/python" -m pip install -q --upgrade pip >&2 || true
args=(-r "$REQ")
[ -n "${AIRFLOW_CONSTRAINTS:-}" ] && args+=(--constraint "$AIRFLOW_CONSTRAINTS")
timeout 2400 "$VENV/bin/python" -m pip install -q "${args[@]}" >&2
echo "$want" > "$STAMP"
echo "airflow-venv: installed $REQ in $(( $(date +%s) - start )) s" >&2
echo "$VENV"
