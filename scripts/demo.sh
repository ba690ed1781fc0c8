#!/usr/bin/env bash
# The main job: set up, then a regularized-evolution search over the chain space on the
# embedded digits dataset, stored in ./nasplat.db (SQLite in the working folder); prints the
# best architecture at the end. Extra arguments go to `nasplat search`.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bash "$repo/scripts/setup.sh"
exec "$repo/.venv/bin/nasplat" search --space chain --strategy evolution --budget 20 --epochs 5 "$@"
