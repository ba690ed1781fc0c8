"""Fixtures of the dashboard tests: a small study in a temporary store, and a reader on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dash_studies import Built, build

from dashboards.db import Reader


@pytest.fixture
def built(tmp_path: Path) -> Iterator[Built]:
    result = build(tmp_path)
    yield result
    result.store.close()


@pytest.fixture
def reader(built: Built) -> Iterator[Reader]:
    r = Reader(built.store)
    yield r
    r.close()
