"""The pages load nasplat's partial plotly.js bundle when it matches plotly.py's version."""

from __future__ import annotations

import pytest
from dash_studies import Built

pytest.importorskip("dash")


def test_the_partial_bundle_only_for_the_same_plotly_js(monkeypatch: pytest.MonkeyPatch) -> None:
    import plotly.offline

    from dashboards import plotlyjs

    built_for = (plotlyjs.STATIC / "plotly-nasplat.version").read_text().strip()
    assert plotlyjs.PARTIAL.read_text()[:200].startswith(f"/* plotly.js v{built_for} ")
    for version, partial in ((built_for, True), ("0.0.1", False)):
        monkeypatch.setattr(plotly.offline, "get_plotlyjs_version", lambda v=version: v)
        plotlyjs.plotly_js_path.cache_clear()
        path = plotlyjs.plotly_js_path()
        assert (path == plotlyjs.PARTIAL) is partial and path.is_file()
        if not partial:  # plotly.py's full bundle, three times the size
            assert path.stat().st_size > 2.5 * plotlyjs.PARTIAL.stat().st_size
    plotlyjs.plotly_js_path.cache_clear()


def test_the_live_page_loads_the_served_bundle(built: Built) -> None:
    from dashboards.app import create_app
    from dashboards.plotlyjs import ROUTE, plotly_js_path

    client = create_app(built.url, refresh_s=1).server.test_client()
    page = client.get("/").get_data(as_text=True)
    assert f'<script defer src="/{ROUTE}"></script>' in page
    served = client.get("/" + ROUTE)
    assert served.status_code == 200 and served.mimetype == "text/javascript"
    assert served.get_data() == plotly_js_path().read_bytes()
