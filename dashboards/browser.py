"""A tiny headless-Chromium driver over the DevTools protocol on a pipe (standard library only).

Chromium started with ``--remote-debugging-pipe`` reads JSON commands from file descriptor 3 and
writes replies and events to descriptor 4, each message ended by a NUL byte. That is all the
browser test and the page-load benchmark need: navigate, evaluate JavaScript, wait for the DOM,
collect console errors and uncaught exceptions, cut the network, take a screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--enable-unsafe-swiftshader",  # software WebGL for Scattergl in headless mode
    "--use-angle=swiftshader",
    "--window-size=1400,1000",
    "--remote-debugging-pipe",
)


class BrowserError(RuntimeError):
    """The browser died, timed out or answered a command with an error."""


class Browser:
    """One headless Chromium with one page. Use as a context manager."""

    def __init__(self, executable: str = CHROMIUM, extra_flags: tuple[str, ...] = ()) -> None:
        self.profile = tempfile.mkdtemp(prefix="nasplat-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # runs in the child: commands on fd 3, replies on fd 4
            read_end = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [executable, *FLAGS, *extra_flags, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire,
            pass_fds=(3, 4),  # kept open by the child after wire() placed the pipes there
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._lock = threading.Lock()
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.session = self._attach()

    # --- protocol ------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                for waiting in list(self._replies.values()):
                    waiting.put({"error": {"message": "browser closed"}})
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message and message["id"] in self._replies:
                    self._replies[message["id"]].put(message)
                else:
                    self.events.append(message)

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = "page",
        timeout: float = 60,
    ) -> dict[str, Any]:
        """Send one command (to the page session unless ``session`` is None) and wait for its reply."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            waiting: queue.Queue[dict[str, Any]] = queue.Queue()
            self._replies[ident] = waiting
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session == "page":
            message["sessionId"] = self.session
        elif session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        try:
            reply = waiting.get(timeout=timeout)
        except queue.Empty:
            raise BrowserError(f"no reply to {method} within {timeout}s") from None
        finally:
            self._replies.pop(ident, None)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def _attach(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            targets = self.send("Target.getTargets", session=None)["targetInfos"]
            pages = [t for t in targets if t["type"] == "page"]
            if pages:
                attached = self.send(
                    "Target.attachToTarget",
                    {"targetId": pages[0]["targetId"], "flatten": True},
                    session=None,
                )
                session = attached["sessionId"]
                for domain in ("Page", "Runtime", "Log", "Network"):
                    self.send(f"{domain}.enable", session=session)
                return session
            time.sleep(0.1)
        raise BrowserError("chromium opened no page")

    # --- page helpers ----------------------------------------------------------------------------
    def navigate(self, url: str, timeout: float = 60) -> None:
        """Open ``url`` and wait for its load event."""
        mark = len(self.events)
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e.get("method") == "Page.loadEventFired" for e in self.events[mark:]):
                return
            time.sleep(0.02)
        raise BrowserError(f"{url} did not load within {timeout}s")

    def evaluate(self, expression: str, timeout: float = 60) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 60, interval: float = 0.05) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout}s waiting for: {expression}")
            time.sleep(interval)

    def set_viewport(self, width: int, height: int = 1000) -> None:
        """Lay the page out at ``width`` x ``height`` CSS pixels (as a window of that size)."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def horizontal_overflow(self) -> int:
        """How many pixels the page is wider than its window (0: no horizontal scroll bar)."""
        return self.evaluate(
            "Math.max(0, document.documentElement.scrollWidth - document.documentElement.clientWidth)"
        )

    def empty_figures(self) -> list[str]:
        """Ids of the visible plotly graphs that draw no data."""
        return self.evaluate(
            "Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".filter(g => g.offsetParent !== null && !(g._fullData || []).some(t => t.visible !== false"
            " && ((t.x && t.x.length) || (t.z && t.z.length) || (t.dimensions && t.dimensions.length)"
            " || (t.cells && t.cells.values && t.cells.values.length))))"
            ".map(g => g.id || (g.parentElement && g.parentElement.id) || '?')"
        )

    def set_offline(self, offline: bool = True) -> None:
        """Cut (or restore) the page's network, as DevTools' "Offline" does."""
        self.send(
            "Network.emulateNetworkConditions",
            {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )

    def js_errors(self) -> list[str]:
        """Uncaught exceptions and console/log entries at level error seen so far."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                out.append(
                    details.get("exception", {}).get("description")
                    or details.get("text", "exception")
                )
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                out.append(
                    " ".join(
                        str(a.get("value", a.get("description", "")))
                        for a in params.get("args", [])
                    )
                )
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(params["entry"].get("text", "") + " " + params["entry"].get("url", ""))
        return out

    def requested_urls(self) -> list[str]:
        """Every URL the page asked the network for."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def screenshot(self, path: str | Path) -> Path:
        """Save a PNG of the whole page."""
        data = self.send(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )["data"]
        out = Path(path)
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close", session=None, timeout=5)
        except BrowserError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
