"""Evaluators; importing the package registers them all."""

from evaluators import train  # noqa: F401
