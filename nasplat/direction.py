"""Which way an objective is optimised."""

from __future__ import annotations

from enum import StrEnum

from nasplat.errors import ConfigError

_MINIMIZED_WORDS = ("loss", "params", "flops", "latency", "seconds", "error")


class Direction(StrEnum):
    """``maximize`` or ``minimize``; a ``str`` subclass, so it stores and prints as its value.

    Every comparison of objective values goes through :meth:`better` or :meth:`oriented`, never
    through string tests at the call site.
    """

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"

    @classmethod
    def parse(cls, value: object) -> Direction:
        """A Direction from its name (ConfigError naming the two choices otherwise)."""
        if isinstance(value, Direction):
            return value
        try:
            return cls(str(value).strip().lower()) if isinstance(value, str) else cls(value)
        except ValueError:
            raise ConfigError(f"direction must be maximize or minimize, got {value!r}") from None

    @classmethod
    def default_for(cls, metric: str) -> Direction:
        """Loss, size, cost and error metrics are minimised by default; the rest maximised."""
        minimized = any(word in metric for word in _MINIMIZED_WORDS)
        return cls.MINIMIZE if minimized else cls.MAXIMIZE

    @property
    def sign(self) -> float:
        """+1 when larger is better, -1 when smaller is better."""
        return 1.0 if self is Direction.MAXIMIZE else -1.0

    def oriented(self, value: float) -> float:
        """The value turned so that larger is better."""
        return self.sign * value

    def better(self, a: float, b: float | None) -> bool:
        """Whether ``a`` is strictly better than ``b`` (anything beats ``None``)."""
        return b is None or self.sign * a > self.sign * b

    def best(self, values: list[float]) -> float:
        """The best of some values."""
        return max(values) if self is Direction.MAXIMIZE else min(values)
