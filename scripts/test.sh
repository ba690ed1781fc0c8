#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite (slow, browser, Ray and
# PostgreSQL tests included), in two phases with one exit status: every test not marked ray,
# postgres, browser or serial on two cores (pytest-xdist), then those one at a time, alone on the
# machine (see tests/conftest.py). Extra arguments go to both phases, after ours: `-n 0` (or
# `-p no:xdist`) runs the first one serially too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache

parallel=(-n 2 --dist worksteal)
[[ " $* " == *no:xdist* ]] && parallel=()
first=0
.venv/bin/python -m pytest -q "${parallel[@]}" --exclusive skip "$@" || first=$?
case "$first" in 2 | 3 | 4) exit "$first" ;; esac  # interrupted, internal or usage error
echo "test.sh: the tests marked ray, postgres, browser or serial, one at a time" >&2
second=0
.venv/bin/python -m pytest -q --exclusive only "$@" || second=$?
# 5 is "no test selected": fine for one phase (a single file, -k), not for both
for status in "$first" "$second"; do
    [[ "$status" == 0 || "$status" == 5 ]] || exit "$status"
done
[[ "$first" == 0 || "$second" == 0 ]] || exit 5
