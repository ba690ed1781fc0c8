"""Fixtures of the evaluator tests: a tiny chain space, an in-memory store, a small nb201."""

from __future__ import annotations

from typing import Any

import pytest
from evaluator_helpers import TINY

from nasplat.store import Store


@pytest.fixture
def tiny() -> Any:
    from search_spaces.chain import ChainSpace

    return ChainSpace(**TINY)


@pytest.fixture
def store() -> Any:
    s = Store("sqlite://")
    yield s
    s.close()


@pytest.fixture
def nb201() -> Any:
    import search_spaces.nb201  # noqa: F401 - registers the space until the package imports it
    from search_spaces.nb201 import NB201Space

    return NB201Space(channels=4, cells_per_stage=1)
