"""`/metrics`: the Prometheus exposition."""

from __future__ import annotations

from flask import Blueprint, Response

from docproc.status.metrics import exposition
from docproc.status.web.context import current

metrics = Blueprint("metrics", __name__)


@metrics.get("/metrics")
def prometheus() -> Response:
    """Serve docproc's metrics in Prometheus's text format."""
    return Response(exposition(current().collectors),
                    content_type="text/plain; version=0.0.4; charset=utf-8")
