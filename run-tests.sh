#!/usr/bin/env bash
# Set up (idempotent), lint and type-check, then run the whole test suite: unit tests, then integration
# tests against the real Docker engine and real diffoscope.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
.venv/bin/ruff check -q rebuild compare tests benchmarks
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
