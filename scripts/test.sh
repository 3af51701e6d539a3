#!/usr/bin/env bash
# Set everything up and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,train,editor,ray
# the editor's browser tests drive Debian's chromium (never a downloaded browser): install it
# when it is missing and we may (root, apt-get present)
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the editor's browser tests (apt-get install chromium)" >&2
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
    export LONGTAIL_REQUIRE_BROWSER=1  # installed on purpose: a missing browser now fails the test
  else
    echo "chromium is not installed and this is not root: the editor's browser tests will be skipped" >&2
  fi
fi
# static checks first: lint, types, the design's import rules (each fails the run)
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python scripts/check_imports.py --quiet
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"
