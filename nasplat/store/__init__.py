"""Trial stores: the SQL store (SQLite, PostgreSQL) and an in-memory one, one protocol."""

from nasplat.store.memory import MEMORY_URL, MemoryStore
from nasplat.store.protocol import TrialStore
from nasplat.store.records import (
    ANY_TAG,
    EVALUATED,
    FINISHED,
    FULL,
    INTERRUPTED,
    NEW,
    RUNNING_ELSEWHERE,
    STATES,
    Claim,
    StudyRecord,
    TrialRecord,
)
from nasplat.store.store import DEFAULT_STORAGE, Store, resolve_storage_url

__all__ = [
    "ANY_TAG",
    "EVALUATED",
    "FULL",
    "NEW",
    "RUNNING_ELSEWHERE",
    "Claim",
    "DEFAULT_STORAGE",
    "FINISHED",
    "INTERRUPTED",
    "MEMORY_URL",
    "MemoryStore",
    "STATES",
    "Store",
    "StudyRecord",
    "TrialRecord",
    "TrialStore",
    "open_store",
    "resolve_storage_url",
]


def open_store(url: str | None = None, *, create: bool = True) -> TrialStore:
    """The store at ``url``: ``memory://`` is a fresh in-memory store, anything else a SQL store
    (``None``: ``$NASPLAT_STORAGE`` or ``sqlite:///nasplat.db``). ``create=False``: only read an
    existing store (a StorageError when there is none; nothing is created or changed)."""
    if url is not None and url.startswith(MEMORY_URL):
        return MemoryStore(url)
    return Store(url, create=create)
