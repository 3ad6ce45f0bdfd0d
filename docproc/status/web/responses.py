"""Responses every blueprint answers with: JSON errors, 429 waits, redirects to the page."""

from __future__ import annotations

from flask import Response, jsonify


class UnknownDocument(Exception):
    """A document the URL names does not exist."""


def error(status: int, message: str) -> Response:
    """Return the API's JSON error body with its status code."""
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    return response


def too_many(response: Response, wait: int) -> Response:
    """Return response telling the client in how many seconds it may try again."""
    response.headers["Retry-After"] = str(wait)
    return response


def see_page() -> Response:
    """Return a redirect to the status page after a form."""
    return Response("", status=303, headers={"Location": "/"})
