"""`/api/...`: the numbers, the documents, their text and thumbnails, and retrying one."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Response, jsonify, request, send_file

from docproc.model import COUNTED, State
from docproc.retry import RetryError, retry_document
from docproc.status.documents import detail, failures, summary
from docproc.status.reports import output_file
from docproc.status.snapshot import collect
from docproc.status.timestamps import parse_since
from docproc.status.web.context import current
from docproc.status.web.responses import UnknownDocument, error

log = logging.getLogger("docproc.api")
MAX_LIMIT = 500
KEY_PATTERN = re.compile(r"^[0-9a-f]{12}(-[0-9]+)?$")
LISTED_STATES = frozenset({*COUNTED, State.RETRIED})
# The HTTP status of each reason a retry is refused.
RETRY_REFUSED_STATUS = {"unknown": 404, "not_failed": 409, "gone": 410, "not_copied": 500,
                        "crowded": 409}
# /api/stats is read by every open page every few seconds; one computation serves them all.
STATS_CACHE_SECONDS = 1.0

api = Blueprint("api", __name__, url_prefix="/api")


@api.get("/stats")
def stats() -> Response:
    """Return every number of the status page and the newest failures."""
    ctx = current()

    def compute() -> dict[str, Any]:
        body = collect(ctx.settings, ctx.ledger)
        body["failures"] = failures(ctx.ledger, ctx.reports, limit=10)
        return body

    return jsonify(ctx.stats_cache.get(compute))


@api.get("/documents")
def documents() -> Response:
    """Return a page of documents, newest first, filtered by status and time."""
    ctx, args = current(), request.args
    try:
        limit = min(MAX_LIMIT, max(1, int(args.get("limit", 50))))
    except ValueError:
        return error(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    statuses = {s.strip() for s in args.get("status", "").split(",") if s.strip()}
    unknown = statuses - LISTED_STATES
    if unknown:
        return error(400, f"unknown status {sorted(unknown)[0]!r}: use one or more of "
                          f"{', '.join(sorted(LISTED_STATES))}, separated by commas")
    since = None
    if args.get("since"):
        try:
            since = parse_since(args["since"])
        except ValueError:
            return error(400, "since must be an ISO 8601 date or time "
                              "(2026-11-23T10:15:02Z) or seconds since the epoch")
    try:
        records, next_cursor = ctx.ledger.page(statuses, since, limit, args.get("cursor"))
    except ValueError:
        return error(400, "cursor must be a next_cursor value from an earlier page")
    return jsonify({
        "documents": [summary(record, ctx.reports.get(record)) for record in records],
        "next_cursor": next_cursor,
    })


def _record_or_404(key: str) -> dict[str, Any]:
    record = current().ledger.get(key) if KEY_PATTERN.match(key) else None
    if record is None:
        raise UnknownDocument(f"no document {key}")
    return record


@api.get("/documents/<key>")
def document(key: str) -> Response:
    """Return everything about one document."""
    ctx = current()
    return jsonify(detail(ctx.ledger, ctx.reports, _record_or_404(key)))


@api.get("/documents/<key>/text")
def text(key: str) -> Response:
    """Serve a done document's extracted text."""
    path = output_file(current().settings, _record_or_404(key), "text.txt")
    if path is None:
        return error(404, f"{key} has no text (only done documents have)")
    # text/* gets "; charset=utf-8" from werkzeug: naming it here doubled it.
    return send_file(path, mimetype="text/plain", max_age=0)


@api.get("/documents/<key>/thumbnail")
def thumbnail(key: str) -> Response:
    """Serve a document's thumbnail."""
    path = output_file(current().settings, _record_or_404(key), "thumbnail.png")
    if path is None:
        return error(404, f"{key} has no thumbnail")
    response = send_file(path, mimetype="image/png")
    # A key's thumbnail never changes once written; it may be behind the token.
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@api.post("/documents/<key>/retry")
def retry(key: str) -> Response:
    """Send a failed document's original again as a new receipt."""
    ctx = current()
    _record_or_404(key)
    try:
        retried = retry_document(ctx.settings, ctx.ledger, key)
    except RetryError as exc:
        return error(RETRY_REFUSED_STATUS[exc.reason], exc.message)
    ctx.stats_cache.clear()
    log.info("%s sent again as %s (retry from %s)", key, retried.relpath, request.remote_addr)
    response = jsonify({
        "key": key, "status": "retried", "sent_as": retried.relpath,
        "message": f"{key} was sent again as {retried.relpath}; it comes out as a new document",
    })
    response.status_code = 202
    return response
