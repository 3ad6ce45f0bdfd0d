"""What runs around every request of every blueprint: access checks, headers, error bodies."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request
from redis import RedisError
from werkzeug.exceptions import HTTPException

from docproc.status.web.access import client_address
from docproc.status.web.context import current
from docproc.status.web.page import login_page
from docproc.status.web.responses import UnknownDocument, error, too_many

log = logging.getLogger("docproc.api")

# The page loads only its own script and styles (the sign-in page has one inline style).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def guard() -> Any:
    """Refuse a request for a foreign host, from another site, or without the token."""
    if request.path == "/healthz":
        return None
    access = current().access
    if not access.serves_host(request):
        # A page whose name was pointed at this address (DNS rebinding) reads nothing.
        return error(403, f"this API does not serve the host {request.host!r}; add it to "
                          "status_api.allowed_hosts")
    if request.method == "POST" and not access.same_origin(request):
        return error(403, "cross-site requests are refused")
    if request.path == "/login":
        return None
    offered = access.offers_token(request)
    if offered:
        wait = access.failures.retry_after(client_address(request))
        if wait is not None:
            return too_many(error(429, "too many wrong tokens from this address; try "
                                       f"again in {wait} s"), wait)
    if not access.authorized(request):
        if offered:
            access.failures.failed(client_address(request))
        if request.path == "/":
            return login_page(401)
        return error(401, "missing or wrong token: send 'Authorization: Bearer <token>'")
    return None


def add_security_headers(response: Response) -> Response:
    """Add the headers that keep the page in its own frame and to its own scripts."""
    response.headers.update(SECURITY_HEADERS)
    return response


def http_error(exc: HTTPException) -> Response:
    """Answer an HTTP error (404, 405, ...) with the API's JSON error body."""
    return error(exc.code or 500, exc.description or exc.name)


def unknown_document(exc: UnknownDocument) -> Response:
    """Answer a document the URL names that does not exist with 404."""
    return error(404, str(exc))


def ledger_away(exc: RedisError) -> Response:
    """Answer 503 when the ledger's Redis does not answer."""
    log.warning("the ledger does not answer: %s", exc)
    return error(503, f"the ledger's Redis at {current().settings.redis_url} does not answer: "
                      f"{exc}")


def unexpected(exc: Exception) -> Response:
    """Answer 500 for anything else, and log it."""
    log.exception("%s %s failed", request.method, request.path)
    return error(500, f"internal error: {type(exc).__name__}: {exc}")


def install(app: Flask) -> None:
    """Register the guard, the security headers and the error bodies on app, for every route."""
    app.before_request(guard)
    app.after_request(add_security_headers)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(UnknownDocument, unknown_document)
    app.register_error_handler(RedisError, ledger_away)
    app.register_error_handler(Exception, unexpected)
