"""Results that cost a noticeable fraction of a short run to compute and never change, kept as
JSON files in ``$NASPLAT_CACHE_DIR`` (default ``~/.cache/nasplat``). Best effort: a cache that
cannot be read or written is recomputed, never an error."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    return Path(os.environ.get("NASPLAT_CACHE_DIR") or Path.home() / ".cache" / "nasplat")


def cached_json(name: str, key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()``'s JSON-serialisable result, read from the cache when an earlier call with
    the same ``name`` and ``key`` (anything with a stable ``repr``) stored it."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:24]
    path = cache_dir() / f"{name}-{digest}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    value = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(value, f, separators=(",", ":"))
        os.replace(f.name, path)  # atomic: a concurrent reader sees all of it or nothing
    except OSError:
        pass
    return value
