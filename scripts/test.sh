#!/usr/bin/env bash
# Install icalproxy with its test dependencies into .venv and run the whole suite.
# Also installs the real calendar parsers of ../shared/tools/feedcheck when ../shared exists.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ] && ! "$PYTHON" -m venv .venv; then
  rm -rf .venv
  echo "Could not create a virtual environment: on Debian, run 'apt-get install python3-venv' first." >&2
  exit 1
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
if [ -x ../shared/tools/feedcheck/setup.sh ] || [ -f ../shared/tools/feedcheck/setup.sh ]; then
  if ! bash ../shared/tools/feedcheck/setup.sh; then
    # In CI every real-client check must run; on a developer's machine they skip instead.
    if [ -n "${CI:-}" ]; then echo "feedcheck setup failed" >&2; exit 1; fi
    echo "feedcheck setup failed: real-client tests will skip" >&2
  fi
fi
# The client page's browser tests: Debian's chromium + chromedriver, axe-core from npm.
bash scripts/browser-setup.sh || {
  if [ -n "${CI:-}" ]; then echo "browser setup failed" >&2; exit 1; fi
  echo "browser setup failed: browser tests will skip" >&2
}
.venv/bin/ruff check icalproxy tests benchmarks
.venv/bin/mypy   # strict, on the pure core and the config (see pyproject.toml)
.venv/bin/python -m pytest "$@"
