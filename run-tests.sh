#!/usr/bin/env bash
# Set up (idempotent), lint and type-check, then run the whole test suite: unit tests, then integration
# tests against the real Docker engine and real diffoscope.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
.venv/bin/ruff check -q rebuild compare tests benchmarks
.venv/bin/mypy
# Two processes (pytest-xdist), each test file on one of them: most integration tests wait on Docker or a
# registry, so this halves the run on two cores. REBUILD_TEST_JOBS=0 runs everything in this process.
exec .venv/bin/python -m pytest -n "${REBUILD_TEST_JOBS:-2}" --dist loadfile "$@"
