"""What the ledger records and hands back: receipts, endings, and a claim's shape."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

# Upper bounds (seconds) of the duration histograms kept in Redis; the last bucket is +Inf.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0, 300.0, 900.0, 3600.0)
# Per-minute throughput buckets live this long (the status page charts the last hour).
MINUTE_TTL_SECONDS = 7200


@dataclass(frozen=True)
class Receipt:
    """What the ledger assigned to a claimed file: its key and the document it repeats, if any."""

    key: str
    duplicate_of: str | None


@dataclass(frozen=True)
class Ending:
    """How a document ended: what the ledger records once it is finished."""

    key: str
    status: str
    outdir: str
    error_type: str | None
    stages: str = ""  # JSON of the stage times
    kind: str = ""


class ClaimInfo(Protocol):
    """What the ledger needs of a claimed file."""

    @property
    def token(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def relpath(self) -> str: ...
    @property
    def bytes(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def received_at(self) -> str: ...
    @property
    def mtime_ns(self) -> int: ...
    @property
    def incomplete(self) -> str | None: ...


def now() -> float:
    """Return the time the ledger writes: epoch seconds to the millisecond."""
    return round(time.time(), 3)
