"""Budgets (the fidelity of an evaluation) and evaluation results."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from numbers import Real
from typing import Any

from nasplat.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    """How much an evaluation may spend. ``None`` means "the evaluator's default".

    Two trials are comparable only when their budgets are equal; ``key()`` is the canonical
    string stored with every trial and used to find already-evaluated architectures.
    """

    epochs: int | None = None
    data_fraction: float = 1.0
    width_mult: float = 1.0
    resolution: int | None = None
    cells: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("epochs", "data_fraction", "width_mult", "resolution", "cells"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, Real)):
                raise ConfigError(f"budget {name} must be a number, got {value!r}")
        for name in ("epochs", "resolution", "cells"):
            value = getattr(self, name)
            if value is not None and not float(value).is_integer():
                raise ConfigError(f"budget {name} must be a whole number, got {value!r}")
            if value is not None:
                object.__setattr__(self, name, int(value))  # one key for 2 and 2.0
        if self.epochs is not None and self.epochs < 0:
            raise ConfigError(f"budget epochs must be >= 0, got {self.epochs}")
        if not 0 < self.data_fraction <= 1:  # NaN fails too
            raise ConfigError(f"budget data_fraction must be in (0, 1], got {self.data_fraction}")
        if not 0 < self.width_mult < math.inf:
            raise ConfigError(f"budget width_mult must be > 0, got {self.width_mult}")
        if self.resolution is not None and self.resolution < 1:
            raise ConfigError(f"budget resolution must be >= 1, got {self.resolution}")
        object.__setattr__(self, "extra", dict(self.extra))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Budget:
        data = dict(data or {})
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"unknown budget field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def replace(self, **changes: Any) -> Budget:
        return Budget.from_dict({**self.to_dict(), **changes})


@dataclass(frozen=True)
class EvalResult:
    """What an evaluation returns: named metrics (the objective among them) and artefacts.

    ``metrics`` holds floats such as ``val_acc``, ``val_loss``, ``test_acc``, ``params``,
    ``flops``, ``latency_ms``, ``seconds``. ``state_dict`` optionally holds the trained
    weights as bytes from ``torch.save`` (loadable with ``weights_only=True``).
    """

    metrics: Mapping[str, float]
    state_dict: bytes | None = None
    epochs_run: int | None = None

    def __post_init__(self) -> None:
        clean = {}
        for key, value in dict(self.metrics).items():
            clean[str(key)] = float(value)
        object.__setattr__(self, "metrics", clean)

    def value(self, objective: str) -> float:
        if objective not in self.metrics:
            known = ", ".join(sorted(self.metrics))
            raise ConfigError(
                f"objective {objective!r} is not a metric of this evaluator; known: {known}"
            )
        value = self.metrics[objective]
        if math.isnan(value):
            raise FloatingPointError(f"objective {objective!r} is NaN")
        return value
