"""``nasplat bench``: strategies against a tabular benchmark, many seeds, strategy overhead.

Each run is the real search loop (:class:`nasplat.search._Run`: ask, validate, canonicalise,
skip architectures already evaluated and tell the strategy their stored result, evaluate, tell)
with the real ``local`` executor and ``tabular`` evaluator, for ``queries`` distinct
architectures. Only the trial book differs: :class:`MemoryTrials` keeps the trials in a dict
instead of SQL, and no per-trial strategy checkpoint is taken, so the time measured is the
strategy's and the loop's, not the database's. ``strategy_seconds`` is the time spent inside
the strategy's ``ask``/``tell`` alone.
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
from datetime import UTC, datetime
from typing import Any

from nasplat.budget import Budget
from nasplat.config import default_minimized
from nasplat.errors import ConfigError, StorageError
from nasplat.executor import ExecutionContext, LocalExecutor
from nasplat.genotype import Genotype
from nasplat.registry import SPACES, STRATEGIES, load_builtins
from nasplat.search import _Run
from nasplat.store import StudyRecord, TrialRecord
from nasplat.strategy import Observation, Strategy

__all__ = ["BenchSpec", "MemoryTrials", "default_test_metric", "run_bench", "run_one", "summarize"]


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
    def direction(self) -> str:
        return "minimize" if default_minimized(self.metric) else "maximize"


def default_test_metric(metric: str, columns: Sequence[str]) -> str | None:
    """``metric`` with ``valid`` replaced by ``test`` when the table has such a column."""
    candidate = metric.replace("valid", "test")
    return candidate if candidate != metric and candidate in columns else None


class MemoryTrials:
    """The part of :class:`nasplat.store.Store` the search loop uses, held in memory."""

    def __init__(self) -> None:
        self.trials: dict[int, TrialRecord] = {}
        self.values: list[float | None] = []  # objective per finished trial, in finish order
        self._evaluated: dict[tuple[str, str], TrialRecord] = {}
        self._best: TrialRecord | None = None
        self.maximize = True

    def count_trials(self, study_id: int, *args: Any, **kwargs: Any) -> int:
        return len(self.values)

    def create_trial(
        self, study_id: int, genotype: Genotype, budget: Budget, **kwargs: Any
    ) -> TrialRecord:
        number = len(self.trials)
        record = TrialRecord(
            id=number + 1,
            study_id=study_id,
            number=number,
            state="RUNNING",
            genotype=genotype,
            arch_hash=genotype.sha,
            budget=budget.to_dict(),
            value=None,
            metrics={},
            started_at=datetime.now(UTC),
            finished_at=None,
            worker=None,
            error=None,
        )
        self.trials[record.id] = record
        return record

    def finish_trial(
        self,
        trial_id: int,
        *,
        state: str,
        value: float | None = None,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        old = self.trials[trial_id]
        record = TrialRecord(
            **{**old.__dict__, "state": state, "value": value, "metrics": dict(metrics or {})}
        )
        self.trials[trial_id] = record
        self.values.append(value if state == "COMPLETE" else None)
        if state in ("COMPLETE", "PRUNED"):
            self._evaluated.setdefault((record.arch_hash, _budget_key(record)), record)
        if state == "COMPLETE" and value is not None and self._better(record, self._best):
            self._best = record

    def _better(self, record: TrialRecord, best: TrialRecord | None) -> bool:
        if best is None:
            return True
        assert record.value is not None and best.value is not None
        return record.value > best.value if self.maximize else record.value < best.value

    def find_evaluated(
        self, study_id: int, genotype: Genotype, budget: Budget
    ) -> TrialRecord | None:
        return self._evaluated.get((genotype.sha, budget.key()))

    def best_trial(self, study: Any, tag: str | None = "any") -> TrialRecord:
        if self._best is None:
            raise StorageError("no completed trial yet")
        return self._best

    def report_intermediate(self, *args: Any, **kwargs: Any) -> None:
        """Tabular lookups report nothing; accepted for other evaluators."""

    def prune_checkpoints(self, *args: Any, **kwargs: Any) -> None:
        """No checkpoints are kept."""


def _budget_key(record: TrialRecord) -> str:
    return Budget.from_dict(record.budget).key()


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


@dataclass
class _LoopConfig:
    budget: int
    time_limit: float | None = None
    keep_weights: str = "none"


@dataclass
class _BenchSearch:
    """The attributes of :class:`nasplat.search.Search` that the loop reads."""

    store: MemoryTrials
    study: StudyRecord
    strategy: Any
    space: Any
    budget: Budget
    config: _LoopConfig
    pending: list[Genotype] = field(default_factory=list)


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
    space = SPACES.get(spec.space)()
    options = dict(spec.strategy_options.get(strategy_name, {}))
    try:
        strategy = STRATEGIES.get(strategy_name)(
            space, seed=seed, direction=spec.direction, **options
        )
    except TypeError as exc:
        raise ConfigError(f"strategy {strategy_name!r}: {exc}") from None
    timed = TimedStrategy(strategy)
    book = MemoryTrials()
    book.maximize = spec.direction == "maximize"
    context = ExecutionContext(
        storage_url="memory",
        study_id=1,
        space=spec.space,
        space_options={},
        evaluator="tabular",
        evaluator_options={"table": spec.table, "metric": spec.metric},
        objective=spec.metric,
    )
    executor = LocalExecutor()
    executor.open(context, book)
    budget = context.build_evaluator().resolve_budget(Budget())
    study = StudyRecord(
        id=1,
        name=f"bench-{strategy_name}-{seed}",
        space=spec.space,
        strategy=strategy_name,
        evaluator="tabular",
        objectives=((spec.metric, spec.direction),),
        config={},
        created_at=datetime.now(UTC),
    )
    search = _BenchSearch(book, study, timed, space, budget, _LoopConfig(spec.queries))
    with _quiet():
        _BenchRun(search, executor).loop(progress=False)
    return _result_row(spec, strategy_name, seed, book, timed, space, started, BenchmarkTable)


class _BenchRun(_Run):
    """The search loop without per-trial strategy checkpoints."""

    def _checkpoint(self) -> dict[str, Any] | None:  # type: ignore[override]
        return None


def _result_row(
    spec: BenchSpec,
    strategy_name: str,
    seed: int,
    book: MemoryTrials,
    timed: TimedStrategy,
    space: Any,
    started: float,
    table_cls: Any,
) -> dict[str, Any]:
    trajectory: list[float | None] = []
    best: float | None = None
    sign = 1.0 if spec.direction == "maximize" else -1.0
    for value in book.values:
        if value is not None and (best is None or sign * value > sign * best):
            best = value
        trajectory.append(best)
    best_trial = book._best
    best_arch = space.to_notation(best_trial.genotype) if best_trial is not None else None
    row: dict[str, Any] = {
        "strategy": strategy_name,
        "seed": seed,
        "queries": len(book.values),
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
