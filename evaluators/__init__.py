"""Evaluators; importing the package registers them all."""

from evaluators import early_stop, ladder, low_fidelity, proxy, tabular, train, zero_cost  # noqa: F401
