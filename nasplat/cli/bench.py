"""``nasplat bench``: run strategies against a tabular benchmark over many seeds."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from nasplat.cli import cli, emit, format_option
from nasplat.config import parse_option_pairs
from nasplat.direction import Direction
from nasplat.errors import ConfigError


def strategy_options(pairs: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``STRATEGY.key=value`` pairs -> ``{strategy: {key: value}}``."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        name, dot, rest = pair.partition(".")
        if not dot or "=" not in rest:
            raise ConfigError(f"--strategy-opt expects STRATEGY.key=value, got {pair!r}")
        out.setdefault(name, {}).update(parse_option_pairs([rest], "--strategy-opt"))
    return out


@cli.command("bench")
@click.argument("space")
@click.option(
    "--table",
    default=None,
    help="Benchmark table: a CSV/Parquet path with an arch column, or an embedded table's name "
    "[the space's embedded table, e.g. nb201].",
)
@click.option(
    "--metric",
    default=None,
    help="Column to search on, e.g. cifar10_valid_acc [an embedded table's: cifar10_valid_acc "
    "for nb201].",
)
@click.option(
    "--test-metric",
    default=None,
    help="Column reported for the chosen architecture [METRIC with valid -> test, if present].",
)
@click.option(
    "--strategies", default="random,evolution,rl,tpe", show_default=True, help="Comma list."
)
@click.option(
    "--queries", type=int, default=100, show_default=True, help="Distinct architectures per run."
)
@click.option("--seeds", type=int, default=10, show_default=True, help="Runs per strategy.")
@click.option("--seed-start", type=int, default=0, show_default=True, help="First seed.")
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Processes [min(2, CPUs)]."
)
@click.option("--out", default=None, help="Write one JSON line per run here ('-': stdout).")
@click.option(
    "--strategy-opt", multiple=True, help="STRATEGY.key=value, e.g. evolution.population_size=10."
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@format_option
def bench(**kw: Any) -> None:
    """Run each strategy for --queries distinct architectures on a benchmark table, once per
    seed; write one JSON line per run and print a summary (mean ± std per strategy)."""
    from evaluators.tabular import EMBEDDED_TABLES, BenchmarkTable, default_metric
    from nasplat.cli.benchmark import (
        BenchSpec,
        best_class,
        default_test_metric,
        default_workers,
        run_bench,
        summarize,
    )
    from nasplat.registry import SPACES, load_builtins
    from nasplat.run.progress import progress_bar

    load_builtins()
    SPACES.get(kw["space"])
    if kw["queries"] < 1 or kw["seeds"] < 1:
        raise ConfigError("--queries and --seeds must be >= 1")
    if kw["table"] is None and kw["space"] not in EMBEDDED_TABLES:
        raise ConfigError(
            f"pass --table for space {kw['space']!r}; embedded tables: {', '.join(EMBEDDED_TABLES)}"
        )
    table_arg = kw["table"] or kw["space"]
    table = BenchmarkTable.load(table_arg)
    kw["metric"] = kw["metric"] or default_metric(table)
    if kw["metric"] is None:
        raise ConfigError(f"pass --metric COLUMN; columns: {', '.join(table.columns)}")
    table.column(kw["metric"])
    test_metric = kw["test_metric"] or default_test_metric(kw["metric"], table.columns)
    if test_metric is not None:
        table.column(test_metric)
    names = [s.strip() for s in kw["strategies"].split(",") if s.strip()]
    spec = BenchSpec(
        space=kw["space"],
        table=table_arg,
        metric=kw["metric"],
        queries=kw["queries"],
        test_metric=test_metric,
        strategy_options=strategy_options(kw["strategy_opt"]),
    )
    seeds = range(kw["seed_start"], kw["seed_start"] + kw["seeds"])
    sink = _open_sink(kw["out"])
    started = time.perf_counter()
    try:
        with progress_bar(
            not kw["no_progress"], total=len(names) * len(seeds), label="bench"
        ) as bar:

            def on_result(row: dict[str, Any]) -> None:
                if sink is not None:
                    sink.write(json.dumps(row) + "\n")
                bar.advance(f"{row['strategy']} seed {row['seed']}")

            rows = run_bench(
                spec, names, seeds, workers=kw["workers"] or default_workers(), on_result=on_result
            )
    finally:
        if sink is not None and kw["out"] != "-":
            sink.close()
    best_arch = best_class(
        kw["space"], table, kw["metric"], maximize=spec.direction is Direction.MAXIMIZE
    )
    if kw["out"] != "-":
        emit(summarize(rows, best_arch), kw["fmt"])
    click.echo(
        f"{len(rows)} runs in {time.perf_counter() - started:.1f} s; table's best by "
        f"{kw['metric']}: {best_arch}",
        err=True,
    )


def _open_sink(out: str | None) -> Any:
    if out is None:
        return None
    if out == "-":
        return click.get_text_stream("stdout")
    try:
        return open(out, "w", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}") from None
