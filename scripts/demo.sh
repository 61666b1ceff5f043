#!/usr/bin/env bash
# Install icalproxy into .venv and run it on the bundled example.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
.venv/bin/icalproxy check --config config.example.yaml
.venv/bin/icalproxy render --config config.example.yaml --out out
.venv/bin/icalproxy preview --config config.example.yaml --feed acme
