#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: unit tests, then integration
# tests against the real Docker engine and real diffoscope.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
exec .venv/bin/python -m pytest "$@"
