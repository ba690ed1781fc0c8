"""Automatic study names say which evaluator ran (issue #17), and ``--resume`` finds them."""

from __future__ import annotations

from pathlib import Path

from nasplat.config import SearchConfig
from nasplat.run.study import base_name, resume_name
from nasplat.store import MemoryStore, Store
from tests.conftest import run_main

TABLE_SEARCH = [
    "search", "--space", "nb201", "--strategy", "random", "--evaluator", "tabular",
    "--table", "nb201", "--metric", "cifar10_valid_acc", "--no-progress",
]  # fmt: skip


def test_the_name_carries_the_evaluator_unless_it_is_train() -> None:
    assert base_name(SearchConfig(space="chain", strategy="random")) == "chain-random"
    assert base_name(SearchConfig(space="nb201", evaluator="tabular")) == "nb201-evolution-tabular"
    named = SearchConfig(space="pkg.mod:Net", strategy="tpe", evaluator="pkg.ev:Mine")
    assert base_name(named) == "Net-tpe-Mine"


def test_table_searches_get_named_and_resume_finds_the_newest(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    for budget in ("2", "2", "4"):
        more = ["--resume"] if budget == "4" else []
        code, _, err = run_main(
            *TABLE_SEARCH, "--budget", budget, *more, "--storage", url, cwd=tmp_path
        )
        assert code == 0, err
    store = Store(url)
    try:
        assert sorted(store.study_names()) == ["nb201-random-tabular", "nb201-random-tabular-2"]
        assert len(store.trials("nb201-random-tabular-2")) == 4  # the resumed one: the newest
        assert len(store.trials("nb201-random-tabular")) == 2
    finally:
        store.close()


def test_resume_finds_a_study_named_before_names_carried_the_evaluator() -> None:
    store = MemoryStore()
    config = SearchConfig(space="nb201", strategy="random", evaluator="tabular")
    for name, evaluator in (("nb201-random", "tabular"), ("nb201-random-2", "train")):
        store.create_study(name, space="nb201", strategy="random", evaluator=evaluator,
                           objectives=[("val_acc", "maximize")], config={})  # fmt: skip
    assert resume_name(store, config) == "nb201-random-tabular"  # the newest ran train: not it
    store.delete_study("nb201-random-2")
    assert resume_name(store, config) == "nb201-random"
