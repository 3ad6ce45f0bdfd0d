"""`/healthz`: answered without a token, for load balancers and supervisors."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from docproc.status.health import health_check
from docproc.status.web.context import current

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz() -> Response:
    """Answer 200 when docproc can take documents, else 503 with the reason."""
    ctx = current()
    body = health_check(ctx.settings, ctx.probe)
    response = jsonify(body)
    response.status_code = 200 if body["status"] == "ok" else 503
    return response
