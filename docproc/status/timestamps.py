"""Times as the status shows them (ISO 8601 UTC) and as a caller may give them."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def iso(timestamp: float | str | None) -> str | None:
    """Return a Unix time as ISO 8601 UTC with a Z, to the second."""
    if not timestamp:
        return None
    return datetime.fromtimestamp(float(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_since(text: str) -> float:
    """Return the Unix time of `since`: seconds since the epoch, or an ISO 8601 date or time."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"not a time: {text!r}")
        return seconds
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
