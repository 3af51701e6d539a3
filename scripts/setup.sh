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
# strict editable mode: the install is a tree of links (build/__editable__.*) that type checkers
# and IDEs can read (the default mode hides the package behind an import hook). Add new modules,
# then run this again. setuptools announces every editable install with an informational
# "Editable installation." notice sent as a warning; the filter drops that notice only (the wheel
# test, tests/test_install.py, checks that a build prints no warnings at all).
PYTHONWARNINGS="ignore:Editable installation:Warning" \
  .venv/bin/python -m pip install --quiet -e "$spec" --config-settings editable_mode=strict
