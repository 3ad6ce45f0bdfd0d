"""The status API and the status page: a Flask app factory, served by waitress."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, request, send_file, send_from_directory
from redis import RedisError
from werkzeug.exceptions import HTTPException

from docproc import metrics, stats
from docproc.broker import broker_problem, probe_client, redis_client
from docproc.failure_limiter import FailureLimiter
from docproc.holding import Holding
from docproc.ledger import STATES, Ledger
from docproc.retry import RetryError, retry_document
from docproc.settings import Settings

log = logging.getLogger("docproc.api")
MAX_LIMIT = 500
WEB_DIR = Path(__file__).resolve().parent / "web"
KEY_PATTERN = re.compile(r"^[0-9a-f]{12}(-[0-9]+)?$")
SESSION_COOKIE = "docproc_session"
# /api/stats is read by every open page every few seconds; one computation serves them all.
STATS_CACHE_SECONDS = 1.0
LISTED_STATES = frozenset({*STATES, "retried"})
# The HTTP status of each reason a retry is refused.
RETRY_REFUSED_STATUS = {"unknown": 404, "not_failed": 409, "gone": 410, "not_copied": 500,
                        "crowded": 409}
# The page loads only its own script and styles (the sign-in page has one inline style).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Wrong tokens (a Bearer header, or the sign-in form) from one client address: this many
# within the window, and its further attempts are answered 429 until the oldest leaves it.
LOGIN_FAILURES = 5
LOGIN_WINDOW_SECONDS = 60.0


def create_app(settings: Settings, ledger: Ledger | None = None) -> Flask:
    """Build the status API and page for these settings."""
    app = Flask(__name__, static_folder=None)
    app.config["DOCPROC_SETTINGS"] = settings
    app.json.sort_keys = False  # type: ignore[attr-defined]
    the_ledger = ledger or Ledger(redis_client(settings))
    reports = stats.ReportCache(settings)
    collectors = metrics.registry(settings, the_ledger)
    token = settings.status_api.token
    session = _session_value(token) if token else None
    cached_stats = _TimedCache(STATS_CACHE_SECONDS)
    failures = FailureLimiter(LOGIN_FAILURES, LOGIN_WINDOW_SECONDS)

    def authorized() -> bool:
        if token is None:
            return True
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and hmac.compare_digest(
            header.removeprefix("Bearer ").strip().encode(), token.encode()
        ):
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return session is not None and hmac.compare_digest(cookie.encode(), session.encode())

    hosts = served_hosts(settings.status_api.host, settings.status_api.allowed_hosts)

    @app.before_request
    def _guard() -> Any:
        if request.path == "/healthz":
            return None
        if hosts is not None and _hostname(request.host) not in hosts:
            # A page whose name was pointed at this address (DNS rebinding) reads nothing.
            return _error(403, f"this API does not serve the host {request.host!r}; add it to "
                               "status_api.allowed_hosts")
        if request.method == "POST" and not _same_origin(hosts):
            return _error(403, "cross-site requests are refused")
        if request.path == "/login":
            return None
        # Only a token offered counts: a page without its cookie yet is no guess.
        offered = token is not None and request.headers.get("Authorization", "").startswith(
            "Bearer ")
        if offered:
            wait = failures.retry_after(_client())
            if wait is not None:
                return _too_many(_error(429, "too many wrong tokens from this address; try "
                                             f"again in {wait} s"), wait)
        if not authorized():
            if offered:
                failures.failed(_client())
            if request.path == "/":
                return _login_page(401)
            return _error(401, "missing or wrong token: send 'Authorization: Bearer <token>'")
        return None

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(RedisError)
    def _redis_error(exc: RedisError) -> Response:
        log.warning("the ledger does not answer: %s", exc)
        return _error(503, f"the ledger's Redis at {settings.redis_url} does not answer: {exc}")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.path)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    probe = Ledger(probe_client(settings))

    @app.get("/healthz")
    def healthz() -> Response:
        problem = broker_problem(settings, probe.redis)
        workers: list[str] = []
        status = "unavailable"
        if problem is None:
            workers = online_workers(probe)
            if not workers:
                problem = "no worker sent a heartbeat in the last few seconds"
            else:
                problem = watched_inbox_problem(probe)
        if problem is None and (held := Holding(probe.redis).state()).count:
            status = "degraded"
            problem = (f"the outbox cannot be written since {stats.iso(held.since)}: "
                       f"{held.reason}; {held.count} documents held")
        body: dict[str, Any] = {"status": "ok" if problem is None else status,
                                "workers": workers}
        if problem is not None:
            body["reason"] = problem
        response = jsonify(body)
        response.status_code = 200 if problem is None else 503
        return response

    @app.post("/login")
    def login() -> Response:
        given = request.form.get("token", "")
        if token is None:
            return _see_page()
        wait = failures.retry_after(_client())
        if wait is not None:
            return _too_many(_login_page(429, "Too many wrong tokens from this address: try "
                                              f"again in {wait} seconds."), wait)
        if not hmac.compare_digest(given.encode(), token.encode()):
            failures.failed(_client())
            return _login_page(401, "That token is not the one in status_api.token.")
        failures.succeeded(_client())
        response = _see_page()
        response.set_cookie(SESSION_COOKIE, session or "", httponly=True, samesite="Strict",
                            secure=request.is_secure)
        return response

    @app.get("/")
    def page() -> Response:
        response = send_from_directory(WEB_DIR, "index.html", max_age=0)
        response.headers["Cache-Control"] = "no-cache"
        return response

    @app.get("/static/<path:name>")
    def static_file(name: str) -> Response:
        return send_from_directory(WEB_DIR, name, max_age=0)

    @app.get("/api/stats")
    def api_stats() -> Response:
        def compute() -> dict[str, Any]:
            body = stats.collect(settings, the_ledger)
            body["failures"] = stats.failures(the_ledger, reports, limit=10)
            return body

        return jsonify(cached_stats.get(compute))

    @app.get("/api/documents")
    def documents() -> Response:
        args = request.args
        try:
            limit = min(MAX_LIMIT, max(1, int(args.get("limit", 50))))
        except ValueError:
            return _error(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
        statuses = {s.strip() for s in args.get("status", "").split(",") if s.strip()}
        unknown = statuses - LISTED_STATES
        if unknown:
            return _error(400, f"unknown status {sorted(unknown)[0]!r}: use one or more of "
                               f"{', '.join(sorted(LISTED_STATES))}, separated by commas")
        since = None
        if args.get("since"):
            try:
                since = stats.parse_since(args["since"])
            except ValueError:
                return _error(400, "since must be an ISO 8601 date or time "
                                   "(2026-11-23T10:15:02Z) or seconds since the epoch")
        try:
            records, next_cursor = the_ledger.page(statuses, since, limit, args.get("cursor"))
        except ValueError:
            return _error(400, "cursor must be a next_cursor value from an earlier page")
        return jsonify({
            "documents": [stats.summary(record, reports.get(record)) for record in records],
            "next_cursor": next_cursor,
        })

    def record_or_404(key: str) -> dict[str, Any]:
        record = the_ledger.get(key) if KEY_PATTERN.match(key) else None
        if record is None:
            raise _NotFound(f"no document {key}")
        return record

    @app.get("/api/documents/<key>")
    def document(key: str) -> Response:
        return jsonify(stats.detail(the_ledger, reports, record_or_404(key)))

    @app.get("/api/documents/<key>/text")
    def text(key: str) -> Response:
        path = stats.output_file(settings, record_or_404(key), "text.txt")
        if path is None:
            return _error(404, f"{key} has no text (only done documents have)")
        # text/* gets "; charset=utf-8" from werkzeug: naming it here doubled it.
        return send_file(path, mimetype="text/plain", max_age=0)

    @app.get("/api/documents/<key>/thumbnail")
    def thumbnail(key: str) -> Response:
        path = stats.output_file(settings, record_or_404(key), "thumbnail.png")
        if path is None:
            return _error(404, f"{key} has no thumbnail")
        response = send_file(path, mimetype="image/png")
        # A key's thumbnail never changes once written; it may be behind the token.
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    @app.post("/api/documents/<key>/retry")
    def retry(key: str) -> Response:
        record_or_404(key)
        try:
            retried = retry_document(settings, the_ledger, key)
        except RetryError as exc:
            return _error(RETRY_REFUSED_STATUS[exc.reason], exc.message)
        cached_stats.clear()
        log.info("%s sent again as %s (retry from %s)", key, retried.relpath,
                 request.remote_addr)
        response = jsonify({
            "key": key, "status": "retried", "sent_as": retried.relpath,
            "message": f"{key} was sent again as {retried.relpath}; it comes out as a new "
                       "document",
        })
        response.status_code = 202
        return response

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.exposition(collectors),
                        content_type="text/plain; version=0.0.4; charset=utf-8")

    @app.errorhandler(_NotFound)
    def _not_found(exc: _NotFound) -> Response:
        return _error(404, str(exc))

    return app


class _NotFound(Exception):
    """A document the URL names does not exist."""


def _client() -> str:
    return request.remote_addr or "unknown"


def _too_many(response: Response, wait: int) -> Response:
    response.headers["Retry-After"] = str(wait)
    return response


class _TimedCache:
    """Keep one computed value for a short time, shared by the server's threads."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._value: Any = None
        self._at = float("-inf")
        self._lock = threading.Lock()

    def get(self, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if time.monotonic() - self._at > self.seconds:
                self._value = compute()
                self._at = time.monotonic()
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._at = float("-inf")


def _session_value(token: str) -> str:
    """Return the page's cookie value: derived from the token, never the token itself."""
    return hmac.new(token.encode(), b"docproc status page", hashlib.sha256).hexdigest()


def _same_origin(hosts: frozenset[str] | None) -> bool:
    """Return False for a browser's cross-site request (a form or script on another site)."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if hosts is None:
        return urlsplit(origin).netloc == request.host
    return (urlsplit(origin).hostname or "") in hosts


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::"})


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


def _login_page(status: int, problem: str = "") -> Response:
    message = f'<p class="problem">{problem}</p>' if problem else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>docproc: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px system-ui,sans-serif;margin:4rem auto;max-width:26rem;color:#1d2430}}
input{{font:inherit;padding:.4rem;width:100%;box-sizing:border-box;margin:.5rem 0}}
button{{font:inherit;padding:.4rem 1rem}}.problem{{color:#b42318}}</style></head>
<body><h1>docproc</h1><p>This status page needs the token set in <code>status_api.token</code>.</p>
{message}<form method="post" action="/login"><label>Token
<input type="password" name="token" autocomplete="current-password" autofocus></label>
<button type="submit">Open the status page</button></form></body></html>"""
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def _see_page() -> Response:
    return Response("", status=303, headers={"Location": "/"})


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    return response


def online_workers(ledger: Ledger) -> list[str]:
    """Return the names of the workers whose heartbeat is current (every second, 4 s TTL).

    Read from Redis, not by pinging the workers: a health check answers in milliseconds.
    """
    try:
        nodes = ledger.live_nodes()
    except RedisError as exc:  # the broker went away between the checks
        log.warning("cannot read the workers' heartbeats: %s", exc)
        return []
    return sorted({node.rsplit("/", 1)[0] for node in nodes})


def watched_inbox_problem(ledger: Ledger) -> str | None:
    """Return why the watchers cannot see the inbox, as they published it, or None."""
    try:
        published = ledger.published("watcher")
    except RedisError as exc:  # the broker went away between the checks
        return f"cannot read the watchers' state: {exc}"
    return stats.inbox_problem(published.values(), time.time())


def serve(settings: Settings) -> None:
    """Serve the status API with waitress until interrupted."""
    from waitress import serve as waitress_serve

    api = settings.status_api
    log.info("status API on http://%s:%d/", api.host, api.port)
    waitress_serve(create_app(settings), host=api.host, port=api.port, threads=api.threads,
                   ident="docproc")
