"""Who may read the status: the token, the page's session cookie, host names, wrong-token limits."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
from urllib.parse import urlsplit

from flask import Request

from docproc.settings import Settings
from docproc.status.web.failure_limiter import FailureLimiter

SESSION_COOKIE = "docproc_session"
# Wrong tokens (a Bearer header, or the sign-in form) from one client address: this many
# within the window, and its further attempts are answered 429 until the oldest leaves it.
LOGIN_FAILURES = 5
LOGIN_WINDOW_SECONDS = 60.0
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::"})


class Access:
    """Check a request's token or session cookie, and the host names it may name."""

    def __init__(self, settings: Settings) -> None:
        self.token = settings.status_api.token
        self.session = session_value(self.token) if self.token else None
        self.hosts = served_hosts(settings.status_api.host, settings.status_api.allowed_hosts)
        self.failures = FailureLimiter(LOGIN_FAILURES, LOGIN_WINDOW_SECONDS)

    def authorized(self, request: Request) -> bool:
        """Return True when no token is set, or the request shows it or the session cookie."""
        if self.token is None:
            return True
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and hmac.compare_digest(
            header.removeprefix("Bearer ").strip().encode(), self.token.encode()
        ):
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return self.session is not None and hmac.compare_digest(cookie.encode(),
                                                                self.session.encode())

    def offers_token(self, request: Request) -> bool:
        """Return True when a token is set and the request offers one in its header."""
        # Only a token offered counts: a page without its cookie yet is no guess.
        return self.token is not None and request.headers.get("Authorization", "").startswith(
            "Bearer ")

    def serves_host(self, request: Request) -> bool:
        """Return False for a Host this API does not answer (DNS rebinding)."""
        return self.hosts is None or _hostname(request.host) in self.hosts

    def same_origin(self, request: Request) -> bool:
        """Return False for a browser's cross-site request (a form or script on another site)."""
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        if self.hosts is None:
            return urlsplit(origin).netloc == request.host
        return (urlsplit(origin).hostname or "") in self.hosts


def client_address(request: Request) -> str:
    """Return the address wrong tokens are counted against."""
    return request.remote_addr or "unknown"


def session_value(token: str) -> str:
    """Return the page's cookie value: derived from the token, never the token itself."""
    return hmac.new(token.encode(), b"docproc status page", hashlib.sha256).hexdigest()


def served_hosts(bound: str, allowed: tuple[str, ...]) -> frozenset[str] | None:
    """Return the host names requests may name, or None when any may (a wildcard, none listed)."""
    names = {name.lower().strip("[]") for name in allowed}
    if bound in WILDCARD_ADDRESSES:
        return frozenset(names) if names else None
    names.add(bound.lower().strip("[]"))
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(bound.strip("[]")).is_loopback:
            names |= LOOPBACK_NAMES
    if bound == "localhost":
        names |= LOOPBACK_NAMES
    return frozenset(names)


def _hostname(host: str) -> str:
    return (urlsplit(f"//{host}").hostname or "").lower()
