"""How much a page draws before thinning (no imports: the CLI reads it for ``--help``)."""

MAX_POINTS = 1_000
"""Trials drawn per scatter figure, and timeline bars, before thinning (None: every trial)."""
TOP_TRIALS = 100
"""Best trials a thinned scatter always draws."""
TIME_BINS = 150
"""Time bins of a thinned timeline."""
TIMELINE_BARS = 5_000
"""Trials drawn as one bar each on the timeline; more are counted in time bins."""
