"""Results that cost a noticeable fraction of a short run to compute and never change, kept as
files in ``$NASPLAT_CACHE_DIR`` (default ``~/.cache/nasplat``). Best effort: a cache that
cannot be read or written is recomputed, never an error."""

from __future__ import annotations

import hashlib
import json
import marshal
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
    return _cached(name, key, compute, "json", _json_dumps, json.loads)


def cached_marshal(name: str, key: Any, compute: Callable[[], Any]) -> Any:
    """As :func:`cached_json` for plain data that is large (lists, dicts, str, bytes, numbers):
    stored with :mod:`marshal`, which reads megabytes in about a millisecond."""
    return _cached(name, key, compute, "marshal", marshal.dumps, marshal.loads)


def _json_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _cached(
    name: str,
    key: Any,
    compute: Callable[[], Any],
    suffix: str,
    dumps: Callable[[Any], bytes],
    loads: Callable[[bytes], Any],
) -> Any:
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:24]
    path = cache_dir() / f"{name}-{digest}.{suffix}"
    try:  # a file is its body's SHA-256, then the body: a damaged file is recomputed
        stored = path.read_bytes()
        if hashlib.sha256(stored[32:]).digest() == stored[:32]:
            return loads(stored[32:])
    except (OSError, ValueError, EOFError, TypeError):
        pass
    value = compute()
    try:
        body = dumps(value)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as f:
            f.write(hashlib.sha256(body).digest() + body)
        os.replace(f.name, path)  # atomic: a concurrent reader sees all of it or nothing
    except (OSError, ValueError):
        pass
    return value
