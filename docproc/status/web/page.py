"""The status page: its HTML and assets, and the sign-in form that sets its session cookie."""

from __future__ import annotations

import hmac
from pathlib import Path

from flask import Blueprint, Response, request, send_from_directory

from docproc.status.web.access import SESSION_COOKIE, client_address
from docproc.status.web.context import current
from docproc.status.web.responses import see_page, too_many

STATIC_DIR = Path(__file__).resolve().parent / "static"

page = Blueprint("page", __name__)


@page.post("/login")
def login() -> Response:
    """Check the token from the sign-in form; set the session cookie and go to the page."""
    access = current().access
    given = request.form.get("token", "")
    if access.token is None:
        return see_page()
    wait = access.failures.retry_after(client_address(request))
    if wait is not None:
        return too_many(login_page(429, "Too many wrong tokens from this address: try "
                                        f"again in {wait} seconds."), wait)
    if not hmac.compare_digest(given.encode(), access.token.encode()):
        access.failures.failed(client_address(request))
        return login_page(401, "That token is not the one in status_api.token.")
    access.failures.succeeded(client_address(request))
    response = see_page()
    response.set_cookie(SESSION_COOKIE, access.session or "", httponly=True, samesite="Strict",
                        secure=request.is_secure)
    return response


@page.get("/")
def index() -> Response:
    """Serve the status page, never from a stale cache."""
    response = send_from_directory(STATIC_DIR, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@page.get("/static/<path:name>")
def static_file(name: str) -> Response:
    """Serve the page's script and styles."""
    return send_from_directory(STATIC_DIR, name, max_age=0)


def login_page(status: int, problem: str = "") -> Response:
    """Return the sign-in form, with why the last attempt failed."""
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
