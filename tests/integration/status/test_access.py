"""Who may read the status: host names, cross-site requests, the token and its sign-in page."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from docproc.settings import Settings, load_settings
from docproc.status.web import access
from docproc.status_api import create_app
from tests.conftest import wait_until


def _settings(config: Path) -> Settings:
    return load_settings(config, environ={})


def test_the_api_serves_only_its_own_host_names_with_security_headers(
    embedded: dict[str, Any], make_config: Callable[..., Path],
) -> None:
    client = create_app(_settings(make_config(**embedded))).test_client()
    ok = client.get("/api/stats", headers={"Host": "127.0.0.1:8750"})
    assert ok.status_code == 200
    assert "script-src 'self'" in ok.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in ok.headers["Content-Security-Policy"]
    assert ok.headers["X-Frame-Options"] == "DENY"
    assert ok.headers["X-Content-Type-Options"] == "nosniff"
    assert ok.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/", headers={"Host": "localhost:8750"}).status_code == 200

    # DNS rebinding: a page on attacker.example whose name now points at 127.0.0.1.
    for path in ("/", "/api/documents", "/metrics"):
        refused = client.get(path, headers={"Host": "attacker.example:8750"})
        assert refused.status_code == 403, path
        assert "status_api.allowed_hosts" in refused.get_json()["error"]
    assert client.get("/healthz", headers={"Host": "attacker.example"}).status_code == 503
    cross = client.post("/api/documents/aaaaaaaaaaaa/retry",
                        headers={"Host": "127.0.0.1:8750", "Origin": "http://attacker.example"})
    assert cross.status_code == 403 and "cross-site" in cross.get_json()["error"]

    named = create_app(_settings(make_config(
        **embedded, status_api={"allowed_hosts": ["docproc.example.org"]}))).test_client()
    assert named.get("/api/stats", headers={"Host": "docproc.example.org:8750"}).status_code == 200
    assert named.get("/api/stats", headers={"Host": "other.example.org"}).status_code == 403


def test_token_guards_everything_but_healthz_and_the_page_signs_in(
    embedded: dict[str, Any], make_config: Callable[..., Path],
) -> None:
    settings = _settings(make_config(**embedded, status_api={"token": "s3cret-token"}))
    client = create_app(settings).test_client()
    assert client.get("/healthz").status_code == 503  # no worker here, but no token needed
    for path in ("/api/stats", "/api/documents", "/metrics", "/api/documents/aaaaaaaaaaaa"):
        response = client.get(path)
        assert response.status_code == 401 and "token" in response.get_json()["error"], path
        # From another address: this one's wrong tokens are counted (a test of their own).
        wrong = client.get(path, headers={"Authorization": "Bearer s3cret-tokeN"},
                           environ_base={"REMOTE_ADDR": "192.0.2.1"})
        assert wrong.status_code == 401
    good = {"Authorization": "Bearer s3cret-token"}
    assert client.get("/api/stats", headers=good).status_code == 200
    assert client.get("/metrics", headers=good).status_code == 200
    page = client.get("/")
    assert page.status_code == 401 and b'name="token"' in page.data
    assert client.post("/login", data={"token": "guess"}).status_code == 401
    signed_in = client.post("/login", data={"token": "s3cret-token"})
    assert signed_in.status_code == 303
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "s3cret-token" not in cookie
    assert b"/static/app.js" in client.get("/").data
    assert client.get("/api/stats").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    cross_site = client.post("/api/documents/aaaaaaaaaaaa/retry",
                             headers={"Origin": "https://elsewhere.example"})
    assert cross_site.status_code == 403
    assert json.loads(client.post("/api/documents/aaaaaaaaaaaa/retry").data)["status"] == 404


def test_wrong_tokens_from_one_address_are_answered_429_for_a_while(
    embedded: dict[str, Any], make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(access, "LOGIN_WINDOW_SECONDS", 2.0)
    settings = _settings(make_config(**embedded, status_api={"token": "s3cret-token"}))
    client = create_app(settings).test_client()
    good = {"Authorization": "Bearer s3cret-token"}
    guesser = {"REMOTE_ADDR": "192.0.2.66"}
    for number in range(5):
        guess = client.get("/api/stats", headers={"Authorization": f"Bearer guess-{number}"},
                           environ_base=guesser)
        assert guess.status_code == 401
    # The sixth attempt is refused unread, the right token too: a guesser learns nothing.
    refused = client.get("/api/stats", headers=good, environ_base=guesser)
    assert refused.status_code == 429 and "too many wrong tokens" in refused.get_json()["error"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    signing_in = client.post("/login", data={"token": "s3cret-token"}, environ_base=guesser)
    assert signing_in.status_code == 429 and "Retry-After" in signing_in.headers
    # Other addresses are not held up; a page without its cookie yet is no wrong token.
    assert client.get("/api/stats", headers=good).status_code == 200
    for _ in range(8):
        assert client.get("/api/stats", environ_base={"REMOTE_ADDR": "192.0.2.8"}
                          ).status_code == 401
    assert client.get("/api/stats", headers=good,
                      environ_base={"REMOTE_ADDR": "192.0.2.8"}).status_code == 200
    # Wrong tokens through the sign-in form count the same.
    form = {"REMOTE_ADDR": "192.0.2.99"}
    for number in range(5):
        assert client.post("/login", data={"token": f"guess-{number}"},
                           environ_base=form).status_code == 401
    assert client.post("/login", data={"token": "guess-5"}, environ_base=form).status_code == 429
    # Once the window has passed, the right token works again.
    wait_until(lambda: client.get("/api/stats", headers=good, environ_base=guesser
                                  ).status_code == 200, 10, message="the refusal to end")
