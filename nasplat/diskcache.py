"""Results that cost a noticeable fraction of a short run to compute and never change, kept as
files in ``$NASPLAT_CACHE_DIR`` (default ``~/.cache/nasplat``). Best effort: a cache that
cannot be read or written is recomputed, never an error."""

from __future__ import annotations

import hashlib
import marshal
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    return Path(os.environ.get("NASPLAT_CACHE_DIR") or Path.home() / ".cache" / "nasplat")


def cached_marshal(name: str, key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()``'s result (plain data: lists, dicts, str, bytes, numbers, None), read from
    the cache when an earlier call with the same ``name`` and ``key`` (anything with a stable
    ``repr``) stored it. Stored with :mod:`marshal`, which reads megabytes in about a
    millisecond."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:24]
    path = cache_dir() / f"{name}-{digest}.marshal"
    try:  # a file is its body's SHA-256, then the body: a damaged file is recomputed
        stored = path.read_bytes()
        if hashlib.sha256(stored[32:]).digest() == stored[:32]:
            return marshal.loads(stored[32:])
    except (OSError, ValueError, EOFError, TypeError):
        pass
    value = compute()
    try:
        body = marshal.dumps(value)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as f:
            f.write(hashlib.sha256(body).digest() + body)
        os.replace(f.name, path)  # atomic: a concurrent reader sees all of it or nothing
    except (OSError, ValueError):
        pass
    return value
