"""Constraints such as ``params<=1e6`` that reject an architecture before it is trained.

A constraint compares one metric that is known before training (``params``, ``flops``,
``latency_ms`` of the built network, or a column of a benchmark table) with a bound. The trial
loop asks the evaluator (``Evaluator.precheck``) before it creates a trial: an architecture that
breaks a constraint gets no trial, costs no budget, and the strategy is told it is infeasible.
``evaluate`` checks again (a trial evaluated outside the loop): there a violation fails the trial
with an error naming the constraint and the measured value.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from nasplat.errors import ConfigError

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}
_PATTERN = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(<=|>=|==|<|>)\s*([^\s].*?)\s*$")


class ConstraintViolation(Exception):
    """Raised inside an evaluation when an architecture breaks a constraint (trial FAILED)."""


@dataclass(frozen=True)
class Constraint:
    """``metric OP bound``, e.g. ``Constraint("params", "<=", 1e6)``."""

    metric: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Read ``"params<=1e6"``; ConfigError for anything else."""
        match = _PATTERN.match(str(text))
        if match is None:
            raise ConfigError(
                f"bad constraint {text!r}; expected METRIC OP NUMBER with OP one of "
                f"{', '.join(_OPERATORS)}, e.g. 'params<=1e6'"
            )
        metric, op, raw = match.groups()
        try:
            bound = float(raw)
        except ValueError:
            raise ConfigError(f"bad constraint {text!r}: {raw!r} is not a number") from None
        return cls(metric, op, bound)

    def holds(self, value: float) -> bool:
        return _OPERATORS[self.op](float(value), self.bound)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


def parse_constraints(
    value: str | Iterable[str] | None, known: Iterable[str]
) -> tuple[Constraint, ...]:
    """Constraints from one string or a list of strings; each metric must be in ``known``."""
    if value is None:
        return ()
    texts = [value] if isinstance(value, str) else list(value)
    constraints = tuple(Constraint.parse(text) for text in texts)
    allowed = sorted(set(known))
    for constraint in constraints:
        if constraint.metric not in allowed:
            raise ConfigError(
                f"constraint {constraint} uses unknown metric {constraint.metric!r}; "
                f"known before training: {', '.join(allowed)}"
            )
    return constraints


def violation(constraints: Iterable[Constraint], metrics: Mapping[str, float]) -> str | None:
    """What the first constraint that ``metrics`` break says, e.g. ``constraint params<=1e+06
    violated: params=2.3e+06``; None when every constraint holds."""
    for constraint in constraints:
        value = metrics[constraint.metric]
        if not constraint.holds(value):
            return f"constraint {constraint} violated: {constraint.metric}={value:g}"
    return None


def check_constraints(constraints: Iterable[Constraint], metrics: Mapping[str, float]) -> None:
    """Raise :class:`ConstraintViolation` for the first constraint that ``metrics`` break."""
    reason = violation(constraints, metrics)
    if reason is not None:
        raise ConstraintViolation(reason)


def metrics_of(constraints: Iterable[Constraint]) -> set[str]:
    """The metrics some constraint reads."""
    return {constraint.metric for constraint in constraints}
