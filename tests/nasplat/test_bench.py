"""``nasplat bench``: strategies on the NAS-Bench-201 table, many seeds, documented fields."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from evaluators.tabular import BenchmarkTable
from nasplat.cli.benchmark import (
    BenchSpec,
    best_class,
    default_test_metric,
    run_bench,
    run_one,
    summarize,
)
from tests.conftest import run_main

NB201 = "nb201"  # the embedded NAS-Bench-201 table
METRIC = "cifar10_valid_acc"
FIELDS = {"strategy", "seed", "queries", "best_arch", "best_value", "trajectory", "test_value"}


def spec(queries: int = 100) -> BenchSpec:
    return BenchSpec("nb201", NB201, METRIC, queries, "cifar10_test_acc")


def test_cli_writes_one_line_per_run_with_the_documented_fields(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    code, stdout, stderr = run_main(
        "bench", "nb201", "--metric", METRIC,  # no --table: the space's embedded table
        "--strategies", "random,evolution,rl,tpe", "--queries", "25", "--seeds", "2",
        "--out", str(out), "--no-progress", "--format", "json", "--workers", "1",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["strategy"], r["seed"]) for r in rows] == [
        (s, seed) for s in ("random", "evolution", "rl", "tpe") for seed in (0, 1)
    ]
    table = BenchmarkTable.load(NB201)
    for row in rows:
        assert FIELDS <= set(row)
        assert row["queries"] == 25 == len(row["trajectory"])
        assert row["proposals"] >= 25 and row["strategy_seconds"] >= 0
        assert row["trajectory"] == sorted(row["trajectory"])  # best so far never drops
        assert row["best_value"] == row["trajectory"][-1] == table.lookup(row["best_arch"], METRIC)
        assert row["test_value"] == table.lookup(row["best_arch"], "cifar10_test_acc")
    summary = json.loads(stdout)
    assert [s["strategy"] for s in summary] == ["random", "evolution", "rl", "tpe"]
    assert all(s["runs"] == 2 and "±" in s["best_value"] for s in summary)
    assert "table's best by cifar10_valid_acc" in stderr


def test_queries_are_distinct_architectures() -> None:
    # random search on nb201 samples equivalent cells; it draws again (the loop tells it what
    # the study has), so every proposal is a new architecture and one query
    row = run_one(spec(queries=300), "random", seed=0)
    assert row["queries"] == 300 and row["proposals"] == 300


def test_evolution_beats_random_search_and_finds_the_best_cell_often() -> None:
    rows = run_bench(spec(), ["random", "evolution"], range(12))
    best_arch = BenchmarkTable.load(NB201).best(METRIC)[0]
    by = {s: [r for r in rows if r["strategy"] == s] for s in ("random", "evolution")}
    mean = {s: statistics.fmean(r["best_value"] for r in rs) for s, rs in by.items()}
    hits = {s: sum(r["best_arch"] == best_arch for r in rs) for s, rs in by.items()}
    assert mean["evolution"] > mean["random"] + 0.4, mean
    # chance: 100 of 4,930 distinct cells -> ~2% of runs hold the best one
    assert hits["evolution"] >= 4 > hits["random"], hits
    summary = {s["strategy"]: s for s in summarize(rows, best_arch)}
    assert summary["evolution"]["runs"] == 12


def test_local_search_finds_the_best_class_and_it_is_the_best_row() -> None:
    table = BenchmarkTable.load(NB201)
    best = best_class("nb201", table, METRIC)
    assert best == table.best(METRIC)[0]  # a single-cell class, its own representative
    rows = run_bench(spec(), ["local-search"], range(10))
    assert sum(r["best_arch"] == best for r in rows) >= 4


def test_parallel_workers_give_the_same_rows() -> None:
    serial = run_bench(spec(queries=20), ["evolution"], range(3))
    parallel = run_bench(spec(queries=20), ["evolution"], range(3), workers=2)
    strip = ("seconds", "strategy_seconds")
    assert [{k: v for k, v in r.items() if k not in strip} for r in serial] == [
        {k: v for k, v in r.items() if k not in strip} for r in parallel
    ]


def test_default_test_metric() -> None:
    columns = ["cifar10_valid_acc", "cifar10_test_acc", "val_acc"]
    assert default_test_metric("cifar10_valid_acc", columns) == "cifar10_test_acc"
    assert default_test_metric("val_acc", columns) is None


def test_bad_metric_is_one_clear_line(tmp_path: Path) -> None:
    code, _, stderr = run_main(
        "bench", "nb201", "--table", NB201, "--metric", "nope", "--no-progress",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 2 and "no numeric column 'nope'" in stderr and "Traceback" not in stderr
    code, _, stderr = run_main("bench", "chain", "--metric", METRIC, "--no-progress", cwd=tmp_path)
    assert code == 2 and "pass --table for space 'chain'; embedded tables: nb201" in stderr
    assert len(stderr.strip().splitlines()) == 1
