#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite (slow, browser, Ray and
# PostgreSQL tests included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest -q "$@"
