"""The status API: a Flask app factory, served by waitress."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from docproc.broker import broker_problem, redis_client
from docproc.ledger import Ledger
from docproc.settings import Settings

log = logging.getLogger("docproc.api")
MAX_LIMIT = 500


def create_app(settings: Settings, ledger: Ledger | None = None) -> Flask:
    """Build the status API for these settings."""
    app = Flask("docproc")
    app.config["DOCPROC_SETTINGS"] = settings
    the_ledger = ledger or Ledger(redis_client(settings))
    token = settings.status_api.token

    @app.before_request
    def _require_token() -> Any:
        if token is None or request.path == "/healthz":
            return None
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return _error(401, "missing or wrong token: send 'Authorization: Bearer <token>'")
        return None

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return _error(exc.code or 500, exc.description or exc.name)

    @app.get("/healthz")
    def healthz() -> Response:
        problem = broker_problem(settings)
        workers: list[str] = []
        if problem is None:
            workers = online_workers(settings)
            if not workers:
                problem = "no worker answers a ping"
        body = {"status": "ok" if problem is None else "unavailable", "workers": workers}
        if problem is not None:
            body["reason"] = problem
        response = jsonify(body)
        response.status_code = 200 if problem is None else 503
        return response

    @app.get("/api/documents")
    def documents() -> Response:
        try:
            limit = min(MAX_LIMIT, max(1, int(request.args.get("limit", 50))))
            cursor = float(request.args["cursor"]) if "cursor" in request.args else None
        except ValueError:
            return _error(400, "limit must be an integer and cursor a value from next_cursor")
        records = the_ledger.recent(limit, before=cursor)
        items = [_summary(record) for record in records]
        next_cursor = records[-1]["received_ts"] if len(records) == limit else None
        return jsonify({"documents": items, "next_cursor": next_cursor})

    @app.get("/api/documents/<key>")
    def document(key: str) -> Response:
        record = the_ledger.get(key)
        if record is None:
            return _error(404, f"no document {key}")
        return jsonify(_summary(record))

    return app


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    fields = ("key", "id", "name", "relpath", "bytes", "status", "stage", "worker", "retries",
              "received_at", "duplicate_of", "error_type", "stages")
    return {name: record.get(name) for name in fields}


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    return response


def online_workers(settings: Settings, timeout: float = 1.0) -> list[str]:
    """Return the names of the workers that answer a ping."""
    from docproc.tasks import configure

    app = configure(settings)
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:  # the broker went away between the checks
        log.warning("worker ping failed: %s", exc)
        return []
    return sorted(name for reply in replies for name in reply)


def serve(settings: Settings) -> None:
    """Serve the status API with waitress until interrupted."""
    from waitress import serve as waitress_serve

    api = settings.status_api
    log.info("status API on http://%s:%d/", api.host, api.port)
    waitress_serve(create_app(settings), host=api.host, port=api.port, threads=api.threads,
                   ident="docproc")
