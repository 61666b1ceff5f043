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
# The README's production guide is run too (tests/test_production.py): nginx in front of the
# daemon over TLS (openssl makes the certificate) and its systemd unit (systemd-analyze).
wanted=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || wanted+=(nginx-light)
command -v openssl >/dev/null || wanted+=(openssl)
command -v systemd-analyze >/dev/null || wanted+=(systemd)
if [ ${#wanted[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${wanted[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends "${wanted[@]}" >/dev/null 2>&1; } ||
    echo "could not install ${wanted[*]}: the production-guide tests will skip (or fail in CI)" >&2
fi
# PostgreSQL for the store's contract and replica tests (a private cluster per run, see
# tests/postgres.py). Installed from Debian when we can; otherwise those tests skip (fail in CI).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; then
      if [ -n "${CI:-}" ]; then echo "postgresql install failed" >&2; exit 1; fi
      echo "postgresql install failed: PostgreSQL store tests will skip" >&2
    fi
  else
    echo "PostgreSQL is not installed (apt-get install postgresql): its store tests will skip" >&2
  fi
fi
# The client page's browser tests: Debian's chromium + chromedriver, axe-core from npm.
bash scripts/browser-setup.sh || {
  if [ -n "${CI:-}" ]; then echo "browser setup failed" >&2; exit 1; fi
  echo "browser setup failed: browser tests will skip" >&2
}
.venv/bin/ruff check icalproxy tests benchmarks
.venv/bin/mypy   # strict, on the pure core and the config (see pyproject.toml)
# Two workers (the target machine's two cores); each test file stays on one worker, so a
# module's servers start once. Files are handed out in collection order, the longest first
# (tests/conftest.py). PYTEST_WORKERS=0 runs everything in this process.
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
