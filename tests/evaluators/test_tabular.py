"""The tabular evaluator and BenchmarkTable: exact numbers, fast loads, clear errors."""

from __future__ import annotations

import csv
import gzip
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from evaluator_helpers import NB201, nb201_rows

from evaluators.tabular import (
    ArchitectureNotInTable,
    BenchmarkTable,
    TabularEvaluator,
    _read_plain_csv,
    table_file,
)
from nasplat.budget import Budget
from nasplat.config import SearchConfig
from nasplat.errors import ConfigError, NasplatError
from nasplat.evaluator import Reporter
from nasplat.run import run_search


def write_table(path: Path, rows: list[dict[str, Any]]) -> str:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def gzipped(path: Path, data: bytes, cut: int = 10) -> str:
    """A truncated gzip file of ``data``."""
    path.write_bytes(gzip.compress(data)[:-cut])
    return str(path)


@pytest.mark.parametrize("text_column", [False, True])  # read without pandas, and with it
def test_gzipped_csv_tables(tmp_path: Path, text_column: bool) -> None:
    rows = [{"arch": "a", "acc": 91.25}, {"arch": "b", "acc": 93.5}]
    if text_column:
        rows = [{**row, "note": "x"} for row in rows]
    plain = write_table(tmp_path / "t.csv", rows)
    packed = tmp_path / "t.csv.gz"
    packed.write_bytes(gzip.compress(Path(plain).read_bytes()))
    table = BenchmarkTable.load(str(packed))
    assert table.columns == ["acc"] and table.lookup("b", "acc") == 93.5
    assert table.name == "t.csv.gz"


def test_embedded_table_has_one_name_however_it_is_given() -> None:
    by_name = BenchmarkTable.load(NB201)
    assert by_name.name == "nb201" and by_name.path == table_file(NB201)
    assert by_name.path.endswith(os.path.join("evaluators", "data", "nb201_12epoch.csv.gz"))
    assert BenchmarkTable.load(by_name.path) is by_name


def test_small_table_lookups_best_and_cache(tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "t.csv",
        [{"arch": "a", "acc": 91.25, "params": 10}, {"arch": "b", "acc": 93.5, "params": 30}],
    )
    table = BenchmarkTable.load(path)
    assert table.columns == ["acc", "params"] and len(table) == 2
    assert table.lookup("a", "acc") == 91.25 and table.lookup_many(["b", "a"], "params") == [30, 10]
    assert table.best("acc") == ("b", 93.5) and table.best("params", maximize=False) == ("a", 10.0)
    assert BenchmarkTable.load(path) is table  # cached by path and mtime


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: str(p / "missing.csv"), "not found"),
        (lambda p: write_table(p / "x.csv", [{"name": "a", "acc": 1}]), "no 'arch' column"),
        (
            lambda p: write_table(p / "x.txt", [{"arch": "a", "acc": 1}]),
            ".csv, .csv.gz or .parquet",
        ),
        (lambda p: str(p / "nb201.csv"), "not found: .*nb201.csv .*embedded table: nb201"),
        (lambda p: gzipped(p / "x.csv.gz", b"arch,acc\na,1\nb,2"), "cannot read"),
    ],
)
def test_bad_tables_are_config_errors(tmp_path: Path, setup: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BenchmarkTable.load(setup(tmp_path))


def test_unknown_column_and_architecture_are_nasplat_errors(tmp_path: Path) -> None:
    table = BenchmarkTable.load(write_table(tmp_path / "t.csv", [{"arch": "a", "acc": 1.0}]))
    with pytest.raises(ConfigError, match="no numeric column 'loss'; columns: acc"):
        table.lookup("a", "loss")
    with pytest.raises(ArchitectureNotInTable, match="'zzz' is not in benchmark table t.csv"):
        table.lookup("zzz", "acc")
    assert issubclass(ArchitectureNotInTable, NasplatError)


def test_parquet_table(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "t.parquet"
    pd.DataFrame({"arch": ["a", "b"], "acc": [1.5, 2.5]}).to_parquet(path)
    assert BenchmarkTable.load(str(path)).lookup("b", "acc") == 2.5


@pytest.mark.serial  # asserts on wall time
def test_nb201_table_loads_fast_and_returns_the_files_numbers_exactly() -> None:
    rows = nb201_rows()
    BenchmarkTable._cache.clear()
    start = time.perf_counter()
    table = BenchmarkTable.load(NB201)
    assert time.perf_counter() - start < 1.0
    assert len(table) == 15625
    for row in random.Random(0).sample(rows, 200):
        assert table.lookup(row["arch"], "cifar10_valid_acc") == float(row["cifar10_valid_acc"])
    start = time.perf_counter()
    for _ in range(1000):
        table.lookup(rows[7]["arch"], "cifar100_test_acc")
    assert (time.perf_counter() - start) / 1000 < 50e-6


def test_tabular_evaluator_on_nb201(nb201: Any) -> None:
    evaluator = TabularEvaluator(nb201, table=NB201, metric="cifar10_valid_acc")
    table = BenchmarkTable.load(NB201)
    arch = table.archs[123]
    genotype = nb201.from_notation(arch)
    result = evaluator.evaluate(genotype, Budget(), Reporter())
    assert result.metrics["cifar10_valid_acc"] == table.lookup(arch, "cifar10_valid_acc")
    # the column as in the table (percent), val_acc a fraction as a trained network's
    assert result.metrics["val_acc"] == result.metrics["cifar10_valid_acc"] / 100
    assert evaluator.default_objective() == ("cifar10_valid_acc", "maximize")
    budget = evaluator.resolve_budget(Budget())
    assert budget.extra == {"table": "nb201", "metric": "cifar10_valid_acc"}
    with pytest.raises(ConfigError, match="no numeric column 'nope'"):
        TabularEvaluator(nb201, table=NB201, metric="nope")
    with pytest.raises(ConfigError, match="needs --table"):
        TabularEvaluator(nb201, metric="cifar10_valid_acc")


def test_canonical_fallback_and_missing_architecture(tmp_path: Path, nb201: Any) -> None:
    table = BenchmarkTable.load(NB201)
    raw = next(
        a for a in table.archs if nb201.to_notation(nb201.canonicalize(nb201.from_notation(a))) != a
    )
    canonical = nb201.to_notation(nb201.canonicalize(nb201.from_notation(raw)))
    only_canonical = write_table(tmp_path / "c.csv", [{"arch": canonical, "acc": 42.0}])
    evaluator = TabularEvaluator(nb201, table=only_canonical, metric="acc")
    assert evaluator.resolve_budget(None).extra == {"table": "c.csv", "metric": "acc"}
    assert evaluator.evaluate(nb201.from_notation(raw), Budget(), Reporter()).metrics["acc"] == 42.0
    other = next(a for a in table.archs if a not in (raw, canonical) and "none" not in a)
    with pytest.raises(ArchitectureNotInTable, match="is not in benchmark table c.csv"):
        evaluator.evaluate(nb201.from_notation(other), Budget(), Reporter())


def test_tabular_constraints_reject_before_lookup(nb201: Any) -> None:
    evaluator = TabularEvaluator(
        nb201, table=NB201, metric="cifar10_valid_acc", constraints=["cifar10_test_acc<=0"]
    )
    from evaluators.constraints import ConstraintViolation

    first = nb201.from_notation(BenchmarkTable.load(NB201).archs[0])
    assert "cifar10_test_acc<=0 violated" in evaluator.precheck(first, Budget())
    with pytest.raises(ConstraintViolation, match="cifar10_test_acc<=0 violated"):
        evaluator.evaluate(first, Budget(), Reporter())
    # params is not a column: it is measured on the built network (a built cost)
    with pytest.raises(ConfigError, match="unknown metric 'latency_ms'.*params"):
        TabularEvaluator(
            nb201, table=NB201, metric="cifar10_valid_acc", constraints="latency_ms<=1"
        )


def test_evolution_search_on_the_nb201_table(nb201: Any) -> None:
    from nasplat.store import Store

    store = Store("sqlite://")
    config = SearchConfig.from_dict(
        {
            "study": "tab",
            "space": "nb201",
            "strategy": "evolution",
            "evaluator": "tabular",
            "evaluator_options": {"table": NB201, "metric": "cifar10_valid_acc"},
            "budget": 100,
        }
    )
    result = run_search(config, store, progress=False)
    table = BenchmarkTable.load(NB201)
    trials = store.trials("tab")
    assert len(trials) == 100 and all(t.state == "COMPLETE" for t in trials)
    for trial in trials:
        assert trial.budget["extra"] == {
            "table": "nb201",
            "metric": "cifar10_valid_acc",
        }
        assert trial.value == table.lookup(nb201.to_notation(trial.genotype), "cifar10_valid_acc")
    assert result.best.value == max(t.value for t in trials) > 80


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("arch,acc,loss\n|a~0|,1.5,\n|b~0|,2.25,0.1\n\n", True),  # read without pandas
        ("arch,acc,note\n|a~0|,1.5,x\n|b~0|,2.25,y\n", False),  # a text column
        ("arch,acc,ok\n|a~0|,1.5,True\n|b~0|,NA,False\n", False),  # booleans, NA words
        ("arch,acc\n01,1.5\n2,2.5\n", False),  # numeric arch names: pandas's reading wins
    ],
)
def test_a_csv_table_reads_as_pandas_reads_it(tmp_path: Path, text: str, plain: bool) -> None:
    import numpy as np
    import pandas as pd

    path = tmp_path / "t.csv"
    path.write_text(text)
    assert (_read_plain_csv(str(path)) is not None) == plain
    table = BenchmarkTable._read(str(path))
    frame = pd.read_csv(path)
    assert table.archs == frame["arch"].astype(str).tolist()
    expected = [c for c in frame.columns if c != "arch" and pd.api.types.is_numeric_dtype(frame[c])]
    assert table.columns == expected
    for column in expected:
        assert np.array_equal(
            table.column(column), frame[column].to_numpy(dtype=np.float64), equal_nan=True
        )


@pytest.mark.parametrize(
    ("column", "values", "val_acc"),
    [
        ("acc", [91.25, 93.5], 0.935),  # percent: divided by 100
        ("test_acc", [0.5, 0.75], 0.75),  # fractions already
        ("score", [3.0, 7.0], None),  # no accuracy: no val_acc
        ("acc_loss", [0.5, 0.25], None),  # a loss, minimised
    ],
)
def test_val_acc_is_a_fraction_of_accuracy_columns_only(
    tmp_path: Path, nb201: Any, column: str, values: list, val_acc: float | None
) -> None:
    archs = BenchmarkTable.load(NB201).archs[:2]
    rows = [{"arch": a, column: v} for a, v in zip(archs, values, strict=True)]
    evaluator = TabularEvaluator(nb201, table=write_table(tmp_path / "t.csv", rows), metric=column)
    metrics = evaluator.evaluate(nb201.from_notation(archs[1]), Budget(), Reporter()).metrics
    assert metrics[column] == values[1]  # the table's number, under its name
    assert metrics.get("val_acc") == val_acc
    assert ("val_acc" in evaluator.metric_names()) is (val_acc is not None)


def test_a_table_search_ranks_by_its_column_and_names_the_study(tmp_path: Path) -> None:
    from nasplat.store import MemoryStore

    store = MemoryStore()
    config = SearchConfig(
        space="nb201", strategy="random", evaluator="tabular", budget=5,
        evaluator_options={"table": NB201, "metric": "cifar10_valid_acc"},
    )  # fmt: skip
    result = run_search(config, store, progress=False)
    assert result.study.name == "nb201-random-tabular"
    assert result.study.objective == "cifar10_valid_acc" and result.best.value > 1  # percent
    assert result.best.metrics["val_acc"] == result.best.value / 100


def test_a_parsed_table_comes_back_from_the_disk_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NASPLAT_CACHE_DIR", str(tmp_path / "cache"))
    path = write_table(tmp_path / "t.csv", [{"arch": "a", "acc": 91.25}, {"arch": "b", "acc": 0.1}])
    first = BenchmarkTable._read(path)
    assert len(list((tmp_path / "cache").glob("table-*.marshal"))) == 1
    again = BenchmarkTable._read(path)  # from the file in the cache
    assert again.archs == first.archs and list(again.column("acc")) == [91.25, 0.1]
    write_table(Path(path), [{"arch": "a", "acc": 50.0}, {"arch": "c", "acc": 7.0}])
    os.utime(path, ns=(1, 1))  # a changed table is parsed again, whatever its mtime
    changed = BenchmarkTable._read(path)
    assert changed.archs == ["a", "c"] and list(changed.column("acc")) == [50.0, 7.0]
    for stored in (tmp_path / "cache").glob("table-*.marshal"):
        stored.write_bytes(stored.read_bytes()[:-1])  # damaged: parsed again
    assert list(BenchmarkTable._read(path).column("acc")) == [50.0, 7.0]
