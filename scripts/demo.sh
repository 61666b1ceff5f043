#!/usr/bin/env bash
# Install icalproxy into .venv and run the daemon on the bundled example.
# It prints a subscribe URL for the client "acme"; in a second terminal: curl <that URL>
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ] && ! "$PYTHON" -m venv .venv; then
  rm -rf .venv
  echo "Could not create a virtual environment: on Debian, run 'apt-get install python3-venv' first." >&2
  exit 1
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
.venv/bin/icalproxy check --config config.example.yaml
echo
echo "Subscribe URLs for client 'acme' and its client page (open one in a calendar app or a browser, or curl it from a second terminal):"
# --replace revokes the token an earlier run printed: running this again leaves one active token.
.venv/bin/icalproxy token new --config config.example.yaml acme --label "quick start" --replace 2>/dev/null | sed -n '2,4p'
echo
echo "In another shell, 'source .venv/bin/activate' puts icalproxy on PATH (or call .venv/bin/icalproxy)."
echo "Serving on http://127.0.0.1:8080 (Ctrl-C to stop); ops: http://127.0.0.1:9090/readyz and /metrics"
exec .venv/bin/icalproxy serve --config config.example.yaml --log-format console
