"""The shape of a network: what its input looks like and how many classes it predicts.

One :class:`NetShape` is recorded with every study (``config["shape"]``); a trial's network is
the study's shape at the trial's budget (:meth:`NetShape.at_budget`: width and resolution), so
``build``, ``export``, ``train``, the dashboards and ``nasplat.build(path)`` all rebuild the
network a trial actually trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from nasplat.errors import ConfigError


@dataclass(frozen=True)
class NetShape:
    """Input channels, input size (square side), classes and channel width multiplier."""

    in_channels: int = 1
    input_size: int = 8
    num_classes: int = 10
    width_mult: float = 1.0

    def __post_init__(self) -> None:
        for name in ("in_channels", "input_size", "num_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"network shape: {name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.width_mult, int | float) or not self.width_mult > 0:
            raise ConfigError(f"network shape: width_mult must be > 0, got {self.width_mult!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> NetShape:
        """From :meth:`to_dict` output; unknown keys are ignored, missing ones take defaults."""
        data = dict(data or {})
        fields = ("in_channels", "input_size", "num_classes", "width_mult")
        return cls(**{k: data[k] for k in fields if k in data})

    @classmethod
    def of_study(cls, config: Mapping[str, Any]) -> NetShape:
        """The shape stored with a study's config (``shape``; older stores: ``data``)."""
        stored = config.get("shape") or config.get("data") or {}
        return cls.from_dict({k: v for k, v in stored.items() if v is not None})

    def at_budget(self, budget: Any) -> NetShape:
        """This shape at a trial budget: the budget's ``width_mult`` multiplies the width and
        its ``resolution`` (when set) replaces the input size. Accepts a Budget or its dict."""
        get = budget.get if isinstance(budget, Mapping) else lambda k, d=None: getattr(budget, k, d)
        width = float(get("width_mult", 1.0) or 1.0)
        resolution = get("resolution", None)
        return replace(
            self,
            width_mult=self.width_mult * width,
            input_size=int(resolution) if resolution else self.input_size,
        )

    def example_input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.in_channels, self.input_size, self.input_size)
