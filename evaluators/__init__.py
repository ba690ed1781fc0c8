"""Evaluators; importing the package registers them all."""

from evaluators import (  # noqa: F401
    early_stop,
    ladder,
    low_fidelity,
    objective,
    proxy,
    tabular,
    train,
    zero_cost,
)
