"""The SQL store: studies, architectures, trials, values, checkpoints (SQLAlchemy 2.x)."""

from nasplat.store.records import StudyRecord, TrialRecord
from nasplat.store.store import DEFAULT_STORAGE, Store, resolve_storage_url

__all__ = ["DEFAULT_STORAGE", "Store", "StudyRecord", "TrialRecord", "resolve_storage_url"]
