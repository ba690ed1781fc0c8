"""The live dashboard and the static report in real headless Chromium (Debian's /usr/bin/chromium).

Pages are laid out at 1400 px (screenshots in the test's ``tmp_path``) and checked at 1280 and
1920 px too: no horizontal scroll bar, no visible figure without data, no JavaScript error.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dash_studies import Built, add_trials

from dashboards.browser import CHROMIUM, Browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (apt-get install chromium)"
    ),
]
NASPLAT = [sys.executable, "-c", "from nasplat.cli import main; main()"]
WIDTHS = (1280, 1400, 1920)
NUMBER_CELLS = "#trials .ag-cell[col-id=number]"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dashboard exited: {process.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def points(browser: Browser, graph: str, trace: str) -> int:
    """Points of the shown traces named ``trace`` in a rendered plotly graph (from the DOM's
    data; a hidden trace keeps none there)."""
    return browser.evaluate(
        f"((document.querySelector('#{graph} .js-plotly-plot') || {{}})._fullData || [])"
        f".filter(t => t.name === '{trace}' && t.visible === true)"
        ".reduce((n, t) => n + t.x.length, 0)"
    )


def texts(browser: Browser, selector: str) -> list[str]:
    return browser.evaluate(
        f"Array.from(document.querySelectorAll({selector!r})).map(e => e.textContent.trim())"
    )


def check_layout(browser: Browser, shot: Path) -> None:
    """No horizontal scroll at any width, no empty figure; a screenshot at 1400 px."""
    for width in WIDTHS:
        browser.set_viewport(width)
        time.sleep(0.3)  # plotly relayouts on resize
        assert browser.horizontal_overflow() == 0, f"horizontal scroll at {width} px"
    browser.set_viewport(1400)
    time.sleep(0.3)
    assert browser.empty_figures() == []
    browser.screenshot(shot)
    assert shot.stat().st_size > 10_000


def test_live_dashboard_and_offline_report(built: Built, tmp_path: Path) -> None:
    store = built.store
    store.interrupt_running(store.get_study(built.study).id)  # an INTERRUPTED trial
    port = free_port()
    server = subprocess.Popen(
        [*NASPLAT, "dashboard", "--serve", "--port", str(port), "--storage", built.url]
        + ["--refresh", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url, server)
        with Browser() as browser:
            browser.set_viewport(1400)
            browser.navigate(url)
            # the newest study is shown first: pick the other one in the studies grid
            browser.wait_for("!!document.querySelector('#studies .ag-row')")
            assert texts(browser, "#studies .ag-row [col-id=name]") == [built.study, built.other]
            browser.evaluate("document.querySelector('#studies .ag-row [col-id=name]').click()")
            browser.wait_for(
                f"document.querySelector('#summary-title').textContent === 'Study {built.study}'"
            )
            total = len(store.trials(built.study))
            browser.wait_for(
                f"document.querySelector('#table-status').textContent === '{total} trial(s) match'"
                " && !!document.querySelector('#fig-timeline .gtitle')",
                timeout=30,
            )
            best = store.best_trial(built.study)
            overview = [
                f"Best architecture: trial {best.number}, val_acc {best.value:.4f} (chain)",
                "Best val_acc so far",
                "All trials: val_acc against cost",
                "Trial timeline per worker",
            ]
            titles = "Array.from(document.querySelectorAll('#panel-overview .gtitle')).map(e => e.textContent)"
            expected = json.dumps(json.dumps(overview, separators=(",", ":")))
            browser.wait_for(f"JSON.stringify({titles}) === {expected}")
            labels, values = texts(browser, "#summary dt"), texts(browser, "#summary dd")
            summary = dict(zip(labels, values, strict=True))
            assert summary["best"] == f"{best.value:.4f} (trial {best.number})"
            assert "1 interrupted" in summary["trials"]
            assert "layer0.op=" in browser.evaluate(
                "document.querySelector('#best-notation').textContent"
            )
            browser.wait_for(f"document.querySelectorAll('{NUMBER_CELLS}').length === 25")
            assert browser.evaluate("document.querySelectorAll('#trials .ag-row').length") == 25

            # the table pages in SQL: sort by state descending puts the INTERRUPTED trial first
            browser.evaluate(
                "document.querySelector('#trials .ag-header-cell[col-id=state] .ag-header-cell-label').click()"
            )
            browser.evaluate(
                "document.querySelector('#trials .ag-header-cell[col-id=state] .ag-header-cell-label').click()"
            )
            browser.wait_for(
                "(document.querySelector('#trials .ag-row[row-index=\"0\"] [col-id=state]') || {})"
                ".textContent === 'RUNNING' || (document.querySelector("
                "'#trials .ag-row[row-index=\"0\"] [col-id=state]') || {}).textContent === 'PRUNED'",
                timeout=30,
            )
            # the grid may draw the page's rows over several frames: wait for both cells
            browser.wait_for(
                "['INTERRUPTED', 'PRUNED'].every(s => Array.from(document.querySelectorAll("
                "'#trials [col-id=state]')).some(c => c.textContent === s))",
                timeout=30,
            )
            style = browser.evaluate(
                "(() => { const cells = Array.from(document.querySelectorAll('#trials [col-id=state]'));"
                " const find = s => cells.find(c => c.textContent === s);"
                " const bg = c => c ? getComputedStyle(c).backgroundImage : null;"
                " return [bg(find('INTERRUPTED')), bg(find('PRUNED'))]; })()"
            )
            assert "repeating-linear-gradient" in style[0] and style[1] == "none"
            complete_points = points(browser, "fig-trials", "COMPLETE")
            assert complete_points > 0
            # the trials scatter draws one cost metric at a time; its buttons switch metric
            graph = "document.querySelector('#fig-trials .js-plotly-plot')"
            browser.evaluate(
                "document.querySelectorAll('#fig-trials .updatemenu-button')[1]"
                ".dispatchEvent(new MouseEvent('click', {bubbles: true}))"
            )
            browser.wait_for(f"{graph}.layout.xaxis.title.text === 'flops'", timeout=10)
            assert points(browser, "fig-trials", "COMPLETE") == complete_points
            assert browser.evaluate(
                f"{graph}._fullData.filter(t => t.visible === true).every(t => t.xaxis === 'x')"
                f" && {graph}.data.filter(t => t.visible === true).length * 3 === {graph}.data.length"
            )

            # a search writes more trials: the page shows them after the next refresh
            add_trials(store, built.study, 6, seed=5, start=200)
            browser.wait_for(
                f"document.querySelector('#table-status').textContent === '{total + 6} trial(s) match'",
                timeout=30,
            )
            deadline = time.monotonic() + 30
            while points(browser, "fig-trials", "COMPLETE") <= complete_points:
                assert time.monotonic() < deadline, "the trials figure did not refresh"
                time.sleep(0.2)

            # clicking a trial shows its genotype, drawing and curve
            browser.evaluate(f"document.querySelector('{NUMBER_CELLS}').click()")
            browser.wait_for(
                "document.querySelector('#detail-title').textContent.startsWith('Trial ')",
                timeout=30,
            )
            assert '"layer0.op"' in browser.evaluate(
                "document.querySelector('#detail-genotype').textContent"
            )
            browser.wait_for(
                "document.querySelectorAll('#detail-cell .annotation-text').length >= 3", timeout=30
            )
            check_layout(browser, tmp_path / "dashboard-overview.png")

            # the other tabs render their figures; inapplicable panels are not there
            for tab, expected in (
                ("Architectures", "Operator frequency"),
                ("Curves", "Architecture weights"),
            ):
                browser.evaluate(
                    f"Array.from(document.querySelectorAll('.tab')).find(e => e.textContent === '{tab}').click()"
                )
                browser.wait_for(
                    f"Array.from(document.querySelectorAll('#panel-{tab.lower()} .gtitle')).some(e => e.textContent.startsWith('{expected}'))",
                    timeout=30,
                )
                check_layout(browser, tmp_path / f"dashboard-{tab.lower()}.png")
            assert browser.js_errors() == []

            # the static report of every study, opened with the network cut
            report = tmp_path / "report.html"
            done = subprocess.run(
                [*NASPLAT, "dashboard", "--out", str(report), "--storage", built.url],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, done.stderr
            browser.events.clear()
            browser.set_offline(True)
            browser.navigate(report.as_uri())
            plots = browser.evaluate("document.querySelectorAll('.js-plotly-plot').length")
            assert plots >= 15  # 9 panels of the study with everything, most of the other's
            browser.wait_for(
                f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {plots}"
            )
            assert browser.evaluate("typeof Plotly") == "object"
            body = browser.evaluate("document.body.innerText")
            assert "Best architecture" in body and "BUDGET USED" in body.upper()
            fetched = [
                u for u in browser.requested_urls() if not u.startswith(("file:", "data:", "blob:"))
            ]
            assert fetched == []
            check_layout(browser, tmp_path / "report.png")
            assert browser.js_errors() == []
    finally:
        server.terminate()
        server.wait(timeout=10)
