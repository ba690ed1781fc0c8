"""Access to the live dashboard from other machines: a token on every request.

The server (Flask, under Dash) answers only requests that carry the token: as the ``token``
query parameter (the URL printed at start), the ``X-Nasplat-Token`` header or an
``Authorization: Bearer`` header, or the cookie it sets on the first such request (so the
page's own requests need nothing more). Anything else is ``401``.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

COOKIE = "nasplat_token"
HEADER = "X-Nasplat-Token"
LOOPBACK = ("localhost", "::1", "ip6-localhost")


def new_token() -> str:
    """A fresh random token (URL-safe, 32 characters)."""
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` exposes the server to this machine only."""
    import ipaddress

    host = host.strip().strip("[]").lower()
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_token(server: Any, token: str) -> None:
    """Make the Flask ``server`` refuse every request without ``token`` (see the module doc)."""
    from flask import Response, request

    def given() -> tuple[str | None, bool]:
        """The token the request carries, and whether it came as a cookie."""
        bearer = request.headers.get("Authorization", "")
        for candidate in (
            request.args.get("token"),
            request.headers.get(HEADER),
            bearer[7:] if bearer.lower().startswith("bearer ") else None,
        ):
            if candidate:
                return candidate, False
        return request.cookies.get(COOKIE), True

    def matches(candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(
            candidate.encode("utf-8", "replace"), token.encode()
        )

    @server.before_request
    def _check() -> Any:
        candidate, from_cookie = given()
        if not matches(candidate):
            return Response(
                "401 unauthorized: open the address nasplat printed at start (with ?token=...)\n",
                status=401,
                mimetype="text/plain",
            )
        request.environ["nasplat.set_cookie"] = not from_cookie
        return None

    @server.after_request
    def _remember(response: Any) -> Any:
        if request.environ.get("nasplat.set_cookie"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response
