"""How much a page draws before thinning (no imports: the CLI reads it for ``--help``)."""

MAX_POINTS = 2_000
"""Trials drawn per scatter figure, and timeline bars, before thinning (None: every trial)."""
TOP_TRIALS = 200
"""Best trials a thinned scatter always draws."""
TIME_BINS = 150
"""Time bins of a thinned timeline."""
