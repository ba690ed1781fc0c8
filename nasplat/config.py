"""Search configuration: defaults, a config file (YAML, JSON or TOML) and CLI overrides."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from nasplat.direction import Direction
from nasplat.errors import ConfigError

MAX_SEED = 2**32 - 1
"""Seeds are what every library takes: NumPy's, PyTorch's and Python's generators."""


@dataclass
class SearchConfig:
    """Everything that defines a search; stored (resolved) with the study."""

    study: str | None = None
    space: str = "chain"
    space_options: dict[str, Any] = field(default_factory=dict)
    strategy: str = "evolution"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    evaluator: str = "train"
    evaluator_options: dict[str, Any] = field(default_factory=dict)
    executor: str = "local"
    executor_options: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits"
    data_dir: str | None = None
    budget: int = 20
    epochs: int | None = None
    data_fraction: float = 1.0
    width_mult: float = 1.0
    resolution: int | None = None
    seed: int = 0
    objective: str | None = None  # None: the evaluator's own (Evaluator.default_objective)
    direction: str | None = None
    time_limit: float | None = None
    keep_weights: str = "best"
    device: str = "auto"
    reference_point: list[float] | None = None

    def __post_init__(self) -> None:
        if self.budget < 0:
            raise ConfigError(f"budget must be >= 0, got {self.budget}")
        if self.epochs is not None and self.epochs < 0:
            raise ConfigError(f"epochs must be >= 0, got {self.epochs}")
        if self.objective is not None:  # else checked once the evaluator has chosen it
            self._check_objectives()
        elif self.reference_point is not None:  # an evaluator's own objective is one metric
            parse_reference_point(self.reference_point, [])
        if self.keep_weights not in ("best", "all", "none"):
            raise ConfigError(f"keep_weights must be best, all or none, got {self.keep_weights!r}")
        if self.time_limit is not None and not (
            isinstance(self.time_limit, int | float) and 0 < self.time_limit < math.inf
        ):
            raise ConfigError(f"time_limit must be > 0 seconds, got {self.time_limit}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be in [0, {MAX_SEED}], got {self.seed}")

    def _check_objectives(self) -> None:
        """Validate objective and direction (comma lists allowed) and the reference point."""
        objectives = self.objective_list()
        if self.reference_point is not None:
            self.reference_point = parse_reference_point(
                self.reference_point, [m for m, _ in objectives]
            )

    def set_objective(self, metric: str, direction: Direction) -> None:
        """The objective of a config that names none (its evaluator's), and its direction unless
        one was given; then the checks that depend on it."""
        self.objective = metric
        self.direction = self.direction or direction.value
        self._check_objectives()

    def objective_list(self) -> list[tuple[str, Direction]]:
        """``[(metric, direction), ...]`` from ``objective`` and ``direction``, which may be comma
        lists (``"val_acc,flops"``, ``"maximize,minimize"``); a direction not given takes the
        metric's default (:meth:`Direction.default_for`). The first objective is the primary.
        ``objective`` must be set (a study sets it from its evaluator when none was given)."""
        if self.objective is None:
            raise ConfigError("no objective: give one, or let the study's evaluator choose it")
        metrics = [m.strip() for m in str(self.objective).split(",")]
        if not all(metrics) or len(set(metrics)) != len(metrics):
            raise ConfigError(f"objective must be distinct metric names, got {self.objective!r}")
        if self.direction is not None and not isinstance(self.direction, str):
            raise ConfigError(f"direction must be maximize or minimize, got {self.direction!r}")
        given = [Direction.parse(d) for d in self.direction.split(",")] if self.direction else []
        if len(given) > len(metrics):
            raise ConfigError(f"{len(given)} directions for {len(metrics)} objective(s)")
        defaults = [Direction.default_for(m) for m in metrics]
        return list(zip(metrics, given + defaults[len(given) :], strict=True))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def trial_budget(self) -> Any:
        """The Budget every trial of this search is evaluated at."""
        from nasplat.budget import Budget

        return Budget(
            epochs=self.epochs,
            data_fraction=self.data_fraction,
            width_mult=self.width_mult,
            resolution=self.resolution,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        names = {f.name for f in fields(cls)}
        clean = {str(k).replace("-", "_"): v for k, v in data.items()}
        unknown = sorted(set(clean) - names)
        if unknown:
            raise ConfigError(
                f"unknown config key(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        for key in ("space_options", "strategy_options", "evaluator_options", "executor_options"):
            if key in clean and not isinstance(clean[key], dict):
                raise ConfigError(f"config key {key!r} must be a mapping")
        try:
            return cls(**clean)
        except TypeError as exc:
            raise ConfigError(f"bad config: {exc}") from None


def parse_reference_point(value: Any, objectives: list[str]) -> list[float]:
    """A hypervolume reference point: finite numbers, one per objective (a list or a comma
    list); ConfigError otherwise, or for a study with a single objective."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        values = [float(str(v).strip()) for v in parts]
    except (TypeError, ValueError):
        values = []
    if len(objectives) < 2:
        raise ConfigError("a reference point is for multi-objective studies (--objective a,b)")
    if len(values) != len(objectives) or not all(map(math.isfinite, values)):
        raise ConfigError(
            f"reference point must be {len(objectives)} finite numbers, one per objective "
            f"({', '.join(objectives)}), got {value!r}"
        )
    return values


def read_config_file(path: str) -> dict[str, Any]:
    """Read a YAML, JSON or TOML config file into a dict (clear error when missing/malformed)."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        if path.endswith(".json"):
            data = json.loads(raw)
        elif path.endswith(".toml"):
            import tomllib

            data = tomllib.loads(raw.decode())
        else:
            import yaml

            data = yaml.safe_load(raw)
    except Exception as exc:  # noqa: BLE001 - any parser error is a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"malformed config file {path}: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def parse_option_pairs(pairs: tuple[str, ...] | list[str], flag: str) -> dict[str, Any]:
    """``key=value`` pairs from the CLI; values are read as JSON when they parse, else strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"{flag} expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key:
            raise ConfigError(f"{flag} expects key=value, got {pair!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out
