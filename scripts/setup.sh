#!/usr/bin/env bash
# Create .venv (Python 3.11) with the CPU PyTorch wheel first, then nasplat and its extras.
#
#   scripts/setup.sh          what the search itself needs (the demo)
#   scripts/setup.sh --test   plus every extra and the system packages the test suite uses
#                             (Fashion-MNIST, Chromium, PostgreSQL from Debian)
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
log() { echo "setup: $*" >&2; }

python_bin="${PYTHON:-}"
if [[ -z "$python_bin" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            python_bin="$candidate"; break
        fi
    done
fi
[[ -n "$python_bin" ]] || { log "Python 3.11 or newer is required"; exit 1; }

if [[ ! -x .venv/bin/python ]]; then
    log "creating .venv with $python_bin"
    "$python_bin" -m venv .venv
fi
pip() { .venv/bin/python -m pip "$@" --disable-pip-version-check -q 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

# torch first, pinned: a bare requirement would pull a multi-GB CUDA build
if ! .venv/bin/python -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null; then
    log "installing torch==2.13.0"
    pip install "torch==2.13.0"
fi

if [[ "$mode" == "--test" ]]; then
    extras="dev,dashboard,parquet,ray,postgres,nni,onnx"
else
    extras="dashboard"
fi
log "installing nasplat[$extras]"
pip install -e ".[$extras]"

if [[ "$mode" == "--test" ]]; then
    missing=()
    [[ -d /usr/share/datasets/fashion-mnist ]] || missing+=(dataset-fashion-mnist)
    command -v chromium >/dev/null || missing+=(chromium)
    ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || missing+=(postgresql)
    if (( ${#missing[@]} )); then
        if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
            log "installing Debian packages: ${missing[*]}"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
        else
            log "not root: tests needing ${missing[*]} will be skipped with a reason"
        fi
    fi
fi
log "ready: .venv/bin/nasplat"
