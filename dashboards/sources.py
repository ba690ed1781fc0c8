"""The panels of the live dashboard, drawn once per (study, store version) and shared by every
request, with the study's summary and the studies table; a study's new version reads only the
trials that changed since the last one, and keeps the best-architecture drawing while the best
trial stays."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import pandas as pd

from dashboards import data
from dashboards.db import Reader
from dashboards.panels import Panel, StudySource, panel
from dashboards.summary import Summary


def store_version(reader: Reader) -> Any:
    """The store's version token as JSON data (as the page holds it)."""
    return json.loads(json.dumps(reader.version(), default=str))


class Sources:
    """One :class:`StudySource` per (study, compare, version): the newest few, thread safe.
    A study's new source reads only the trials that changed since its previous one."""

    def __init__(self, reader: Reader, top_k: int, max_points: int | None, keep: int = 4) -> None:
        self.reader, self.top_k, self.max_points, self.keep = reader, top_k, max_points, keep
        self._lock = threading.Lock()
        self._sources: OrderedDict[str, tuple[StudySource, threading.Lock]] = OrderedDict()
        self._latest: dict[str, StudySource] = {}
        self._studies: tuple[str, pd.DataFrame] | None = None  # (version, studies frame)

    def _source(self, study: str, compare: list[str], version: Any) -> tuple[StudySource, Any]:
        name = json.dumps([study, sorted(compare), version], default=str)
        with self._lock:
            if name not in self._sources:
                src = StudySource(
                    self.reader,
                    study,
                    compare,
                    self.top_k,
                    self.max_points,
                    previous=self._latest.get(study),
                )
                self._latest[study] = src
                self._sources[name] = (src, threading.Lock())
                while len(self._sources) > self.keep:
                    self._sources.popitem(last=False)
            return self._sources[name]

    def draw(self, study: str, compare: list[str], version: Any, key: str) -> Panel | None:
        """The panel ``key`` of that source (None: the panel does not apply)."""
        src, lock = self._source(study, compare, version)
        with lock:  # concurrent requests for one source wait for one read of its trials
            return panel(src, key)

    def summary(self, study: str, version: Any) -> Summary:
        """The study's summary header at that version."""
        src, lock = self._source(study, [], version)
        with lock:
            return src.summary

    def studies(self, version: Any) -> pd.DataFrame:
        """:func:`dashboards.data.studies_frame` at that version (read once per version)."""
        name = json.dumps(version, default=str)
        with self._lock:
            if self._studies is not None and self._studies[0] == name:
                return self._studies[1]
        frame = data.studies_frame(self.reader)
        with self._lock:
            self._studies = (name, frame)
        return frame

    def prefetch(self, keys: Sequence[str]) -> None:
        """Draw ``keys`` of the store's newest study in the background: the page will ask for
        them once the browser has loaded its scripts."""

        def run() -> None:
            try:
                names = self.reader.study_names()
                if names:
                    for key in keys:
                        self.draw(names[-1], [], store_version(self.reader), key)
            except Exception:  # noqa: BLE001 - the page's own request reports it
                return

        threading.Thread(target=run, name="nasplat-prefetch", daemon=True).start()
