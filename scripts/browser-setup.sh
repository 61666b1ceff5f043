#!/usr/bin/env bash
# Real parts of the client page's browser tests (tests/test_page_browser.py):
# Debian's chromium and chromium-driver (apt-get, when root and missing) and axe-core from npm
# into .cache/npm (git-ignored). Never downloads a browser build of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null
  else
    echo "chromium/chromedriver missing (apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
fi
if [ ! -f .cache/npm/node_modules/axe-core/axe.min.js ]; then
  command -v npm >/dev/null || { echo "npm missing: cannot install axe-core" >&2; exit 1; }
  mkdir -p .cache/npm
  npm install --silent --no-audit --no-fund --prefix .cache/npm 'axe-core@>=4.8 <5' >/dev/null
fi
