"""The flags of ``nasplat search``, each with its help and the default it stands for, and how
they become the search's settings (:func:`search_settings`).

Every flag's default is None, so that a flag not given leaves a config file's value alone; the
default shown in ``--help`` is what applies then: :class:`SearchConfig`'s for the config's
fields, the owning plugin's declared option for a plugin flag (a test compares the two).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import click

from nasplat.config import SearchConfig, parse_option_pairs, read_config_file

CONFIG_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SearchConfig)}


class Shown(click.Option):
    """An option whose ``--help`` shows ``show_default`` text as it is (click puts it in
    parentheses): ``[default: chain]``."""

    def get_help_extra(self, ctx: click.Context) -> Any:
        extra = super().get_help_extra(ctx)
        if isinstance(self.show_default, str):
            extra["default"] = self.show_default
        return extra


def shown(*decls: str, show_default: str, **kw: Any) -> Callable:
    """``click.option`` with no default of its own (None: a flag not given changes nothing)
    and ``show_default`` the text of what applies then."""
    return click.option(*decls, cls=Shown, default=None, show_default=show_default, **kw)


def config_flag(flag: str, help: str, shown_as: str | None = None, **kw: Any) -> Callable:
    """A flag for a :class:`SearchConfig` field: its default shown as ``shown_as``, else the
    field's."""
    field = flag.lstrip("-").replace("-", "_")
    return shown(flag, show_default=shown_as or str(CONFIG_DEFAULTS[field]), help=help, **kw)


PLUGIN_FLAGS: dict[str, tuple[str, str, str]] = {}
"""A plugin flag's parameter -> (settings group, owning plugin, its option)."""


def plugin_flag(flag: str, group: str, owner: str, help: str, default: str, **kw: Any) -> Callable:
    """A flag for an option of the plugin ``owner`` (a space, strategy, evaluator or executor
    name), passed in the settings ``group``; ``default``: that option's, as ``--help`` shows
    it."""
    name = flag.lstrip("-").split("/")[0].replace("-", "_")
    PLUGIN_FLAGS[name] = (group, owner, name)
    return shown(flag, show_default=default, help=f"{owner}: {help}", **kw)


def none_flag(flag: str, help: str, default: str = "none", **kw: Any) -> Callable:
    """A flag with no default of its own (``default`` says what applies without it)."""
    return shown(flag, show_default=default, help=help, **kw)


EVALUATOR, STRATEGY, EXECUTOR = "evaluator_options", "strategy_options", "executor_options"
SEARCH_FLAGS = (
    config_flag("--space", "Search space (nasplat list spaces)."),
    config_flag("--strategy", "Search strategy (nasplat list strategies)."),
    config_flag("--evaluator", "Performance estimator (nasplat list evaluators)."),
    config_flag("--executor", "Where trials run (nasplat list executors)."),
    config_flag("--dataset", "Dataset (nasplat list datasets)."),
    config_flag("--data-dir", "Folder with the dataset's files.", "the dataset's own"),
    config_flag(
        "--budget", "Trials; with --resume the new total.",
        f"{CONFIG_DEFAULTS['budget']}, with --resume the study's own", type=int,
    ),
    config_flag(
        "--epochs", "Training epochs per trial.", "the evaluator's: train 10, low-fidelity 3",
        type=int,
    ),
    config_flag("--data-fraction", "Fraction of the training split (low fidelity).", type=float),
    config_flag("--width-mult", "Channel multiplier (low fidelity).", type=float),
    config_flag("--resolution", "Input resolution (low fidelity).", "native", type=int),
    plugin_flag("--proxy", EVALUATOR, "proxy", "zero-cost proxy (also of ladder rungs).", "synflow"),
    plugin_flag(
        "--table", EVALUATOR, "tabular", "benchmark table: a CSV/Parquet path, or nb201 "
        "(embedded).", "none: required",
    ),
    plugin_flag(
        "--metric", EVALUATOR, "tabular", "column of the benchmark table to read.",
        "val_acc, if the table has it",
    ),
    plugin_flag("--pruner", EVALUATOR, "early-stop", "median, percentile, asha, hyperband, "
                "patience or none.", "median"),
    none_flag(
        "--constraint", 'Reject architectures before training, e.g. "params<=1e6" (repeatable).',
        multiple=True,
    ),
    plugin_flag(
        "--population-size", STRATEGY, "evolution", "population size.",
        "20, at most budget / 4", type=int,
    ),
    plugin_flag(
        "--tournament-size", STRATEGY, "evolution", "tournament sample size.",
        "10, at most the population", type=int,
    ),
    plugin_flag(
        "--aging/--no-aging", STRATEGY, "evolution", "remove the oldest (aging) or the worst.",
        "aging",
    ),
    plugin_flag(
        "--order", STRATEGY, "darts", "first or second order.", "1", type=click.IntRange(1, 2)
    ),
    plugin_flag(
        "--retrain-epochs", STRATEGY, "darts", "epochs to retrain the result (also enas).",
        "--epochs", type=int,
    ),
    plugin_flag("--workers", EXECUTOR, "ray", "trials in flight.", "2", type=int),
    plugin_flag("--ray-address", EXECUTOR, "ray", "cluster: auto, local or HOST:PORT.", "local"),
    plugin_flag(
        "--cpus-per-trial", EXECUTOR, "ray", "CPUs per trial (fractions allowed).", "1.0",
        type=float,
    ),
    plugin_flag(
        "--gpus-per-trial", EXECUTOR, "ray", "GPUs per trial (fractions allowed).", "0.0",
        type=float,
    ),
    plugin_flag(
        "--max-retries", EXECUTOR, "ray", "retries of a trial whose worker died.", "2", type=int
    ),
    config_flag("--seed", "Random seed.", type=int),
    config_flag(
        "--objective", "Metric(s) to optimise, e.g. val_acc,flops.",
        "the evaluator's: val_acc, the proxy, the table's --metric",
    ),
    config_flag(
        "--direction", "maximize or minimize, one per objective (comma list).",
        "per metric: loss, params, flops, latency, seconds, error minimised",
    ),
    config_flag(
        "--reference-point", "Hypervolume reference point, one value per objective (comma list).",
        "the first completed trial, each objective made twice as bad",
    ),
    config_flag(
        "--time-limit",
        "Stop asking after this many seconds (one-shot: cut the retraining's epochs to fit).",
        "none",
        type=float,
    ),
    config_flag("--study", "Study name.", "SPACE-STRATEGY[-EVALUATOR][-N], no evaluator if train"),
    click.option(
        "--resume", cls=Shown, is_flag=True, show_default="off",
        help="Continue an existing study (without --study: the newest of this config).",
    ),
    shown(
        "--config", "config_file", show_default="none",
        help="YAML, JSON or TOML file of search settings (flags override it).",
    ),
    none_flag("--ops", "Comma-separated operators for the space.", "the space's"),
    none_flag("--space-opt", "Space option KEY=VALUE (repeatable; nasplat list options SPACE).",
              multiple=True),
    none_flag("--strategy-opt", "Strategy option KEY=VALUE (repeatable).", multiple=True),
    none_flag("--evaluator-opt", "Evaluator option KEY=VALUE (repeatable).", multiple=True),
    none_flag("--executor-opt", "Executor option KEY=VALUE (repeatable).", multiple=True),
    config_flag(
        "--keep-weights", "Trials whose weights are stored.", type=click.Choice(["best", "all", "none"])
    ),
    config_flag("--device", "auto, cpu, cuda or cuda:N."),
    click.option(
        "--no-progress", cls=Shown, is_flag=True, show_default="a bar on stderr",
        help="No progress bar.",
    ),
)  # fmt: skip


def search_flags(command: Callable) -> Callable:
    """Decorate ``command`` with :data:`SEARCH_FLAGS` (listed in ``--help`` in their order)."""
    for flag in reversed(SEARCH_FLAGS):
        command = flag(command)
    return command


CONFIG_KEYS = (
    "space", "strategy", "evaluator", "executor", "dataset", "data_dir", "budget", "epochs",
    "seed", "objective", "direction", "reference_point", "time_limit", "study", "keep_weights",
    "device", "data_fraction", "width_mult", "resolution",
)  # fmt: skip
OPTION_FLAGS = {
    "space_opt": "space_options",
    "strategy_opt": "strategy_options",
    "evaluator_opt": "evaluator_options",
    "executor_opt": "executor_options",
}


def search_settings(kw: dict[str, Any]) -> dict[str, Any]:
    """The settings ``search`` was given: the config file's, overridden by the flags."""
    data: dict[str, Any] = read_config_file(kw["config_file"]) if kw["config_file"] else {}
    data = {k.replace("-", "_"): v for k, v in data.items()}
    data.update({key: kw[key] for key in CONFIG_KEYS if kw.get(key) is not None})
    given: dict[str, dict[str, Any]] = {}
    for name, (group, _, option) in PLUGIN_FLAGS.items():
        if kw.get(name) is not None:
            given.setdefault(group, {})[option] = kw[name]
    if kw.get("constraint"):
        given.setdefault(EVALUATOR, {})["constraints"] = list(kw["constraint"])
    for flag, group in OPTION_FLAGS.items():
        if kw.get(flag):
            pairs = parse_option_pairs(kw[flag], "--" + flag.replace("_", "-"))
            given.setdefault(group, {}).update(pairs)
    if kw.get("ops"):
        given.setdefault("space_options", {})["ops"] = kw["ops"]
    for group, options in given.items():
        data[group] = {**data.get(group, {}), **options}
    return data
