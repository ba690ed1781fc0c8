"""The live dashboard and the static report in real headless Chromium (Debian's /usr/bin/chromium)."""

from __future__ import annotations

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
    """Points of the traces named ``trace`` in a rendered plotly graph (from the DOM's data)."""
    return browser.evaluate(
        f"((document.querySelector('#{graph} .js-plotly-plot') || {{}})._fullData || [])"
        f".filter(t => t.name === '{trace}').reduce((n, t) => n + t.x.length, 0)"
    )


def test_live_dashboard_and_offline_report(built: Built, tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            *NASPLAT,
            "dashboard",
            "--serve",
            "--port",
            str(port),
            "--storage",
            built.url,
            "--refresh",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url, server)
        with Browser() as browser:
            browser.navigate(url)
            browser.wait_for(
                "document.querySelectorAll('#fig-trials .main-svg').length > 0"
                " && document.querySelectorAll('#trials tbody td').length > 0"
                " && document.querySelector('#fig-timeline .gtitle')"
            )
            titles = browser.evaluate(
                "Array.from(document.querySelectorAll('#panel-overview .gtitle')).map(e => e.textContent)"
            )
            assert titles == [
                "Best val_acc so far",
                "All trials: val_acc against cost",
                "Trial timeline per worker",
            ]
            assert (
                browser.evaluate("document.querySelectorAll('#studies tbody tr').length") == 3
            )  # header + 2
            assert (
                browser.evaluate("document.querySelectorAll('#fig-trials canvas').length") > 0
            )  # WebGL
            total = len(built.store.trials(built.study))
            assert (
                browser.evaluate("document.querySelector('#table-status').textContent")
                == f"{total} trial(s) match"
            )
            first = browser.evaluate(
                "document.querySelectorAll('#trials td[data-dash-column=number]').length"
            )
            assert first == 25  # one page, not all trials
            deadline = time.monotonic() + 30
            while (complete_points := points(browser, "fig-trials", "COMPLETE")) == 0:
                assert time.monotonic() < deadline, "the trials figure never drew its points"
                time.sleep(0.2)

            # a search writes more trials: the page shows them after the next refresh
            add_trials(built.store, built.study, 6, seed=5, start=200)
            browser.wait_for(
                f"document.querySelector('#table-status').textContent === '{total + 6} trial(s) match'",
                timeout=30,
            )
            deadline = time.monotonic() + 30
            while points(browser, "fig-trials", "COMPLETE") <= complete_points:
                assert time.monotonic() < deadline, "the trials figure did not refresh"
                time.sleep(0.2)

            # clicking a trial shows its genotype, cell drawing and curve
            browser.evaluate(
                "document.querySelector('#trials td[data-dash-column=\"number\"]').click()"
            )
            browser.wait_for(
                "document.querySelector('#detail-title').textContent.startsWith('Trial 0')",
                timeout=30,
            )
            assert '"layer0.op"' in browser.evaluate(
                "document.querySelector('#detail-genotype').textContent"
            )
            browser.wait_for(
                "document.querySelectorAll('#detail-cell .annotation-text').length >= 3", timeout=30
            )
            browser.wait_for("document.querySelector('#detail-curve .gtitle')", timeout=30)

            # the other tabs render their figures
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
            browser.screenshot(tmp_path / "dashboard.png")
            assert (tmp_path / "dashboard.png").stat().st_size > 10_000
            assert browser.js_errors() == []

            # the static report, opened with the network cut
            report = tmp_path / "report.html"
            done = subprocess.run(
                [
                    *NASPLAT,
                    "dashboard",
                    "--study",
                    built.study,
                    "--out",
                    str(report),
                    "--storage",
                    built.url,
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, done.stderr
            browser.events.clear()
            browser.set_offline(True)
            browser.navigate(report.as_uri())
            browser.wait_for("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 9")
            assert browser.evaluate("document.querySelectorAll('.js-plotly-plot').length") == 9
            assert browser.evaluate("typeof Plotly") == "object"
            assert "Best architecture" in browser.evaluate("document.body.innerText")
            fetched = [
                u for u in browser.requested_urls() if not u.startswith(("file:", "data:", "blob:"))
            ]
            assert fetched == []
            assert browser.js_errors() == []
            browser.screenshot(tmp_path / "report.png")
    finally:
        server.terminate()
        server.wait(timeout=10)
