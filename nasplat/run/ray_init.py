"""Starting Ray from a nasplat process without losing its signal handling."""

from __future__ import annotations

from typing import Any


def init_keeping_signals(ray: Any, **kwargs: Any) -> None:
    """``ray.init(**kwargs)``, keeping this process's SIGTERM handler: Ray's own (``sys.exit``)
    would skip the CLI's graceful stop (trials marked interrupted, actors shut down)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        ray.init(**kwargs)
        return
    handler = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(**kwargs)
    finally:
        signal.signal(signal.SIGTERM, handler)
