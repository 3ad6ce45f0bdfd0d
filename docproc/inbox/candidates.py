"""What the watcher knows of each file it waits on, why it waits, and the waiting summary."""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from docproc.inbox.events import ATTRIB, CLOSED, CREATED, MOVED_IN, WRITTEN
from docproc.inbox.spool import utc_iso
from docproc.inbox.wholeness import missing_end
from docproc.settings import WatcherSettings

# How a candidate came to be as it is: written in place (no close seen since the last write,
# or nothing known), closed by its writer, or renamed into place (its writer is done).
OPEN, CLOSED_BY_WRITER, RENAMED = range(3)

WaitReason = Literal["open_for_writing", "quiet_period", "incomplete", "settling", "empty"]
WAIT_REASONS: tuple[WaitReason, ...] = (
    "open_for_writing", "quiet_period", "incomplete", "settling", "empty",
)


@dataclass(frozen=True)
class Waiting:
    """A file in the inbox the watcher waits on before claiming it, and why."""

    relpath: str
    bytes: int
    since: float  # Unix time of the file's last change seen (or of its first sighting)
    reason: WaitReason

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form published for the status API and `docproc status`."""
        return {"relpath": self.relpath, "bytes": self.bytes, "since": self.since,
                "reason": self.reason}


@dataclass(frozen=True)
class WaitingSummary:
    """How many files wait for each reason, and the longest-waiting few."""

    counts: dict[WaitReason, int]
    oldest: list[Waiting]


class Candidate:
    """What the claim loop remembers about a file that may not be complete yet."""

    __slots__ = ("deadline", "missing", "mtime_ns", "since", "size", "state", "writer", "written")

    def __init__(self, since: float, size: int = -1, mtime_ns: int = -1) -> None:
        self.size = size
        self.mtime_ns = mtime_ns
        self.since = since  # when the file was last seen changing, closed or renamed in
        self.state = OPEN
        # A write event came and no close since: its writer still has it open (events mode).
        self.written = False
        self.writer = False  # a local process held it open for writing at the last look
        self.missing: str | None = None  # what its structure lacked at the last look
        self.deadline = 0.0  # the one live heap entry for this file

    def reason(self) -> WaitReason:
        """Return why the file is not claimed yet."""
        if self.written or self.writer:
            return "open_for_writing"
        if self.size == 0:
            return "empty"
        if self.missing is not None:
            return "incomplete"
        return "quiet_period" if self.state == CLOSED_BY_WRITER else "settling"

    def apply(
        self, kind: int, now: float, settings: WatcherSettings, events_mode: bool
    ) -> float | None:
        """Take in what an event of kind says of the file; return when to look at it, if anew."""
        if kind == WRITTEN:
            self.since, self.state, self.missing = now, OPEN, None
            # Events: it waits for its close. Polling reports changes, not writes in
            # progress: it waits to settle, filled or not (a placeholder waits longer).
            self.written = events_mode
            if not events_mode and self.deadline > now + settings.settle_seconds:
                return now + settings.settle_seconds
        elif kind == CREATED:
            self.since, self.state = now, OPEN
        elif kind == ATTRIB:
            if self.state != RENAMED:
                self.since = now
        elif kind == CLOSED:
            # Closed after writing: whole unless it is reopened within the quiet period.
            # The size known here may be stale (seen empty before it was written): the
            # look gives a file still empty its grace.
            self.since, self.state, self.written = now, CLOSED_BY_WRITER, False
            return now + settings.quiet_seconds
        elif kind == MOVED_IN:
            self.since, self.state, self.written = now, RENAMED, False
            return now
        return None

    def quiet_seconds(self, settings: WatcherSettings) -> float:
        """Return how long the file must stay unchanged before it is looked at as a whole."""
        if self.size == 0:
            grace = settings.empty_grace_seconds
            return max(grace, settings.settle_seconds) if self.state == OPEN else grace
        if self.state == RENAMED:
            return 0.0
        if self.state == CLOSED_BY_WRITER:
            return settings.quiet_seconds
        return settings.settle_seconds

    def judge_structure(
        self, path: str, now: float, settings: WatcherSettings, polling: bool
    ) -> tuple[str | None, float | None]:
        """Look at the file's structure; return why to claim it incomplete, or when to look again.

        A whole file, or one of a format whose end cannot be checked, leaves missing None and
        gives (None, None). Else the file waits until incomplete_grace_seconds pass unchanged.
        """
        self.missing = missing_end(path) if self.size > 0 else None
        if self.missing is None:
            return None, None
        grace = settings.incomplete_grace_seconds
        if now - self.since < grace:
            again = self.since + grace
            if polling:
                # No events tell of a change: look for one as often as the poller does.
                again = min(again, now + max(settings.settle_seconds, settings.poll_interval))
            return None, again
        unchanged_since = utc_iso(time.time_ns() - int((now - self.since) * 1e9))
        return (f"{self.missing}; the file has not changed since {unchanged_since} "
                f"(watcher.incomplete_grace_seconds: {grace:g})"), None


def summarize_waiting(
    pending: Mapping[str, Candidate], prefix: str, limit: int
) -> WaitingSummary:
    """Return the counts by reason and the `limit` longest-waiting of the pending files.

    Safe to call from another thread than the claim loop's.
    """
    items = list(pending.items())
    counts: dict[WaitReason, int] = dict.fromkeys(WAIT_REASONS, 0)
    for _, cand in items:
        counts[cand.reason()] += 1
    offset = time.time() - time.monotonic()
    oldest = [
        Waiting(path[len(prefix):], _size_now(path, cand.size), cand.since + offset,
                cand.reason())
        for path, cand in heapq.nsmallest(limit, items, key=lambda item: item[1].since)
    ]
    return WaitingSummary(counts, oldest)


def _size_now(path: str, known: int) -> int:
    """Return a waiting file's size now (the claim loop's is from its last look)."""
    try:
        return os.lstat(path).st_size
    except OSError:
        return max(known, 0)
