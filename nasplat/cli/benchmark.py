"""``nasplat bench``'s runner: strategies against a tabular benchmark, many seeds, strategy overhead.

Each run is the one trial loop (:class:`nasplat.run.TrialLoop`: ask, validate, canonicalise,
skip architectures already evaluated and tell the strategy their stored result, evaluate, tell)
with the real ``local`` executor and ``tabular`` evaluator, for ``queries`` distinct
architectures, on an in-memory store (:class:`nasplat.store.MemoryStore`) and without per-trial
strategy checkpoints, so the time measured is the strategy's and the loop's, not a database's.
``strategy_seconds`` is the time spent inside the strategy's ``ask``/``tell`` alone.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from nasplat.budget import Budget
from nasplat.direction import Direction
from nasplat.errors import NasplatError, StorageError
from nasplat.genotype import Genotype
from nasplat.registry import EVALUATORS, SPACES, STRATEGIES, load_builtins
from nasplat.run.local import run_in_process
from nasplat.store import MemoryStore
from nasplat.strategy import Observation, Strategy

__all__ = [
    "BenchSpec",
    "best_class",
    "default_test_metric",
    "run_bench",
    "run_one",
    "summarize",
]


@dataclass(frozen=True)
class BenchSpec:
    """What every run of one benchmark shares."""

    space: str
    table: str
    metric: str
    queries: int
    test_metric: str | None = None
    strategy_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def direction(self) -> Direction:
        return Direction.default_for(self.metric)


def default_test_metric(metric: str, columns: Sequence[str]) -> str | None:
    """``metric`` with ``valid`` replaced by ``test`` when the table has such a column."""
    candidate = metric.replace("valid", "test")
    return candidate if candidate != metric and candidate in columns else None


def best_class(space_name: str, table: Any, metric: str, maximize: bool = True) -> str:
    """The canonical notation of the best architecture a search can find: the table's rows
    are grouped by canonical form and each class is worth its canonical row (what the tabular
    evaluator returns); a run "found the best" when its chosen architecture is this class."""
    load_builtins()
    space = SPACES.create(space_name)
    best: tuple[float, str] | None = None
    for arch in table.archs:
        try:
            canonical = space.to_notation(space.canonicalize(space.from_notation(arch)))
        except NasplatError:  # a table in another notation: its best row
            return table.best(metric, maximize=maximize)[0]
        if canonical != arch:
            continue  # not a representative: the evaluator never returns this row
        value = table.lookup(arch, metric)
        value = value if maximize else -value
        if best is None or value > best[0]:
            best = (value, arch)
    if best is None:  # the table lists no representative: fall back to its best row
        return table.best(metric, maximize=maximize)[0]
    return best[1]


class TimedStrategy:
    """Forwards ``ask``/``tell`` to a strategy, timing them and counting asks."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.seconds = 0.0
        self.asks = 0

    def ask(self) -> Genotype:
        start = time.perf_counter()
        try:
            return self.strategy.ask()
        finally:
            self.seconds += time.perf_counter() - start
            self.asks += 1

    def tell(self, observation: Observation) -> None:
        start = time.perf_counter()
        try:
            self.strategy.tell(observation)
        finally:
            self.seconds += time.perf_counter() - start

    def avoid(self, seen: Callable[[Genotype], bool]) -> None:
        self.strategy.avoid(seen)


@contextmanager
def _quiet(name: str = "nasplat") -> Iterator[None]:
    """The loop logs every trial at INFO; a benchmark of thousands of runs does not."""
    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(saved)


def run_one(spec: BenchSpec, strategy_name: str, seed: int) -> dict[str, Any]:
    """One search of ``spec.queries`` distinct architectures; one JSON-ready result row."""
    from evaluators.tabular import BenchmarkTable

    load_builtins()
    started = time.perf_counter()
    space = SPACES.create(spec.space)
    options = dict(spec.strategy_options.get(strategy_name, {}))
    if STRATEGIES.get(strategy_name).takes_budget:  # budget-scaled defaults, as in a study
        options.setdefault("budget", spec.queries)
    strategy = STRATEGIES.create(
        strategy_name, space, seed=seed, direction=spec.direction, **options
    )
    timed = TimedStrategy(strategy)
    store = MemoryStore()
    study = store.create_study(
        f"bench-{strategy_name}-{seed}",
        space=spec.space,
        strategy=strategy_name,
        evaluator="tabular",
        objectives=[(spec.metric, spec.direction)],
        config={},
    )
    tabular = EVALUATORS.create("tabular", space, table=spec.table, metric=spec.metric)
    budget = tabular.resolve_budget(Budget())
    with _quiet():
        run_in_process(store, study, space, timed, tabular, budget, spec.queries, checkpoints=False)
    return _result_row(
        spec, strategy_name, seed, store, study.id, timed, space, started, BenchmarkTable
    )


def _result_row(
    spec: BenchSpec,
    strategy_name: str,
    seed: int,
    store: MemoryStore,
    study_id: int,
    timed: TimedStrategy,
    space: Any,
    started: float,
    table_cls: Any,
) -> dict[str, Any]:
    trajectory: list[float | None] = []
    best: float | None = None
    trials = store.trials(study_id)
    for trial in trials:
        if trial.state == "COMPLETE" and trial.value is not None:
            if spec.direction.better(trial.value, best):
                best = trial.value
        trajectory.append(best)
    try:
        best_arch = space.to_notation(store.best_trial(study_id).genotype)
    except StorageError:
        best_arch = None
    row: dict[str, Any] = {
        "strategy": strategy_name,
        "seed": seed,
        "queries": len(trials),
        "best_arch": best_arch,
        "best_value": best,
        "trajectory": trajectory,
        "proposals": timed.asks,
        "strategy_seconds": timed.seconds,
        "seconds": time.perf_counter() - started,
    }
    if spec.test_metric is not None:
        table = table_cls.load(spec.table)
        row["test_metric"] = spec.test_metric
        row["test_value"] = table.lookup(best_arch, spec.test_metric) if best_arch else None
    return row


def _worker_init() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _run_task(task: tuple[BenchSpec, str, int]) -> dict[str, Any]:
    return run_one(*task)


def run_bench(
    spec: BenchSpec,
    strategies: Sequence[str],
    seeds: Iterable[int],
    *,
    workers: int = 1,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Every strategy once per seed; rows in (strategy, seed) order. ``workers > 1`` runs seeds
    in that many processes."""
    load_builtins()
    for name in strategies:
        STRATEGIES.get(name)
    tasks = [(spec, name, seed) for name in strategies for seed in seeds]
    rows: list[dict[str, Any]] = []
    if workers <= 1:
        results: Iterable[dict[str, Any]] = map(_run_task, tasks)
        for row in results:
            rows.append(row)
            if on_result is not None:
                on_result(row)
        return rows
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
        for row in pool.map(_run_task, tasks, chunksize=max(1, len(tasks) // (8 * workers))):
            rows.append(row)
            if on_result is not None:
                on_result(row)
    return rows


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(
    rows: Sequence[Mapping[str, Any]], best_arch: str | None = None
) -> list[dict[str, Any]]:
    """Per strategy: runs, mean and std of the best value and test value, the share of runs that
    found ``best_arch`` (the table's best by the metric), proposals per run, strategy
    milliseconds per query and seconds per run."""
    out = []
    for name in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == name]
        best = _mean_std([r["best_value"] for r in mine if r["best_value"] is not None])
        test = _mean_std([r["test_value"] for r in mine if r.get("test_value") is not None])
        queries = sum(r["queries"] for r in mine)
        summary = {
            "strategy": name,
            "runs": len(mine),
            "best_value": f"{best[0]:.3f} ± {best[1]:.3f}",
            "test_value": f"{test[0]:.3f} ± {test[1]:.3f}" if not math.isnan(test[0]) else "",
            "found_best": (
                f"{sum(r['best_arch'] == best_arch for r in mine) / len(mine):.0%}"
                if best_arch
                else ""
            ),
            "proposals": statistics.fmean(r["proposals"] for r in mine),
            "strategy_ms_per_query": 1000
            * sum(r["strategy_seconds"] for r in mine)
            / max(queries, 1),
            "seconds_per_run": statistics.fmean(r["seconds"] for r in mine),
        }
        out.append(summary)
    return out
