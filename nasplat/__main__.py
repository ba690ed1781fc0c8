"""``python -m nasplat`` runs the command line."""

from nasplat.cli import run

run()
