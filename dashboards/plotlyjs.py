"""Which plotly.js the pages load: nasplat's partial bundle (only the trace types the dashboards
draw: scatter, scattergl, heatmap, parcats, table; 1.6 MB against 4.8 MB, built by
``scripts/build_plotly.sh``) when it is the same plotly.js version as the installed plotly.py
ships, else plotly.py's full bundle, so a figure is never drawn by a plotly.js older or newer
than the one that made it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

STATIC = Path(__file__).with_name("static")
PARTIAL = STATIC / "plotly-nasplat.min.js"
ROUTE = "_nasplat/plotly.min.js"
"""Where the live dashboard serves :func:`plotly_js_path` (under its path prefix)."""


@lru_cache(maxsize=1)
def plotly_js_path() -> Path:
    from plotly.offline import get_plotlyjs_version

    try:
        built = (STATIC / "plotly-nasplat.version").read_text(encoding="utf-8").strip()
    except OSError:
        built = None
    if built == get_plotlyjs_version() and PARTIAL.is_file():
        return PARTIAL
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def plotly_js_text() -> str:
    """The script itself (inlined by the static report)."""
    return plotly_js_path().read_text(encoding="utf-8")
