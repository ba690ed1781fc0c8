"""A search process's heartbeat: while it runs trials it says so in the store, so processes on
other machines sharing the study can tell its RUNNING trials from orphans (see
:mod:`nasplat.store.owners`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from nasplat.store import TrialStore
from nasplat.store.owners import HEARTBEAT_SECONDS

log = logging.getLogger("nasplat")


@contextmanager
def heartbeat(store: TrialStore, owner: str) -> Iterator[None]:
    """Renew ``owner``'s heartbeat every :data:`HEARTBEAT_SECONDS` in a background thread
    while the block runs; remove it after."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            _beat(store, owner)

    _beat(store, owner)
    thread = threading.Thread(target=renew, name="nasplat-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        try:
            store.end_beat(owner)
        except Exception as exc:  # noqa: BLE001 - a stale heartbeat expires by itself
            log.debug("heartbeat not removed: %s", exc)


def _beat(store: TrialStore, owner: str) -> None:
    try:
        store.beat(owner)
    except Exception as exc:  # noqa: BLE001 - a missed beat is retried; the search goes on
        log.debug("heartbeat not written: %s", exc)
