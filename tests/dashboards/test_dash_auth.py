"""The live dashboard off loopback: a token on every request, or an explicit ``--no-auth``.

Tested on the server's request handling (Flask's test client) and with the server's ``run``
replaced, so no socket is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dash_studies import Built

from tests.conftest import run_main

pytest.importorskip("dash")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Each ``app.run`` call (the app and its arguments) instead of a running server."""
    import dash

    calls: list[dict[str, Any]] = []

    def fake_run(self: Any, **kwargs: Any) -> None:
        calls.append({"app": self, **kwargs})

    monkeypatch.setattr(dash.Dash, "run", fake_run)
    return calls


def serve(built: Built, *args: str) -> tuple[int, str, str]:
    folder = Path(built.store.url.split("///", 1)[1]).parent
    return run_main("dashboard", "--serve", "--storage", built.url, *args, cwd=folder)


def test_a_token_guards_every_request(built: Built) -> None:
    from dashboards.app import create_app
    from dashboards.auth import COOKIE, HEADER

    app = create_app(built.url, refresh_s=1, token="s3cret-token")
    client = app.server.test_client()
    for path in ("/", "/_dash-layout", "/_dash-dependencies"):
        assert client.get(path).status_code == 401
        assert client.get(path + "?token=wrong").status_code == 401
        assert client.get(path, headers={HEADER: "wrong"}).status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401

    first = client.get("/?token=s3cret-token")
    assert first.status_code == 200
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=s3cret-token") and "HttpOnly" in cookie
    # the page's own requests carry the cookie only
    assert client.get("/_dash-layout").status_code == 200
    other = app.server.test_client()
    assert other.get("/_dash-layout", headers={HEADER: "s3cret-token"}).status_code == 200
    assert other.get("/", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    stranger = app.server.test_client()
    stranger.set_cookie(COOKIE, "guess")
    assert stranger.get("/_dash-layout").status_code == 401


def test_no_token_on_loopback(built: Built, served: list[dict[str, Any]]) -> None:
    code, _, stderr = serve(built, "--port", "8123")
    assert code == 0, stderr
    (call,) = served
    assert (call["host"], call["port"]) == ("127.0.0.1", 8123)
    assert "token" not in stderr
    assert call["app"].server.test_client().get("/").status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_another_host_needs_the_printed_token(
    built: Built, served: list[dict[str, Any]], host: str
) -> None:
    code, _, stderr = serve(built, "--host", host)
    assert code == 0, stderr
    (call,) = served
    assert call["host"] == host
    line = stderr.strip().splitlines()[-1]
    assert "?token=" in line
    token = line.split("?token=")[1].split()[0]
    assert len(token) >= 24
    client = call["app"].server.test_client()
    assert client.get("/").status_code == 401
    assert client.get(f"/?token={token}").status_code == 200
    assert client.get("/_dash-layout").status_code == 200  # the cookie from now on


def test_no_auth_is_explicit_and_warned(built: Built, served: list[dict[str, Any]]) -> None:
    code, _, stderr = serve(built, "--host", "0.0.0.0", "--no-auth")
    assert code == 0, stderr
    (call,) = served
    assert "warning" in stderr and "--no-auth" in stderr and "token" not in stderr
    assert call["app"].server.test_client().get("/").status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "99999"], "--port"),
        (["--port", "-1"], "--port"),
        (["--port", "0"], "--port"),
        (["--port", "http"], "--port"),
        (["--refresh", "nan"], "--refresh"),
        (["--refresh", "inf"], "--refresh"),
        (["--refresh", "-2"], "--refresh"),
    ],
)
def test_bad_serve_values_are_one_line(
    built: Built, served: list[dict[str, Any]], args: list[str], message: str
) -> None:
    code, _, stderr = serve(built, *args)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert lines[0].startswith("nasplat: error:") and message in lines[0]
    assert not served


def test_is_loopback() -> None:
    from dashboards.auth import is_loopback

    for host in ("127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "10.0.0.1", "example.org", ""):
        assert not is_loopback(host), host


@pytest.mark.slow
def test_the_server_stops_at_once_on_sigterm_with_a_connection_open(built: Built) -> None:
    import http.client
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "NASPLAT_STORAGE"}
    server = subprocess.Popen(
        [sys.executable, "-m", "nasplat", "dashboard", "--serve", "--port", str(port)]
        + ["--storage", built.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/")
                assert connection.getresponse().read()
                break  # keep the (keep-alive) connection open
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.2)
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=10)
        connection.close()
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "nasplat: terminated by SIGTERM"
