#!/usr/bin/env bash
# Create .venv (if missing) and install longtail into it with the given extras, e.g. `test`.
# Usage: scripts/setup.sh [EXTRA[,EXTRA...]]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
spec="."
if [ -n "${1:-}" ]; then spec=".[$1]"; fi
.venv/bin/python -m pip install --quiet -e "$spec"
