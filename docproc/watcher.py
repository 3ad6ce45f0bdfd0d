"""Watch the inbox, decide when a dropped file is complete, and claim it into the spool."""

from __future__ import annotations

import heapq
import logging
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.observers.api import BaseObserver

from docproc.inbox.candidates import (
    OPEN,
    RENAMED,
    Candidate,
    WaitingSummary,
    summarize_waiting,
)
from docproc.inbox.events import (
    CLOSED,
    GONE,
    INBOX_EVENT,
    MOVED_IN,
    RESCAN,
    SCAN,
    SCAN_MOVED_IN,
    InboxEventHandler,
)
from docproc.inbox.handover import Handover
from docproc.inbox.ignore import ignore_regex
from docproc.inbox.mounts import WatchMode, choose_mode
from docproc.inbox.observer import start_observer, stop_observer
from docproc.inbox.presence import PRESENCE_CHECK_SECONDS, InboxPresence
from docproc.inbox.scan import describe_mode, scan_entries
from docproc.inbox.spool import Claimed, claim_regular
from docproc.inbox.writers import WriterScan
from docproc.settings import WatcherSettings

log = logging.getLogger("docproc.watcher")

# How long the claim loop waits before asking can_claim() again while it says no.
CLAIM_RECHECK_SECONDS = 1.0
# A claim batch yields after this long so that new events and can_claim() are looked at.
BATCH_SECONDS = 0.2
# How often a file a local process holds open for writing is looked at again.
WRITER_RECHECK_SECONDS = 1.0


class InboxWatcher:
    """Watch one inbox and claim every complete file into the spool, exactly once."""

    def __init__(
        self,
        inbox: Path,
        spool_dir: Path,
        settings: WatcherSettings,
        on_claimed: Callable[[Claimed], None],
        *,
        can_claim: Callable[[], bool] = lambda: True,
        on_batch_end: Callable[[], None] | None = None,
    ) -> None:
        self.inbox = Path(inbox).resolve()
        self.spool_dir = Path(spool_dir).resolve()
        self.settings = settings
        self.mode: WatchMode = choose_mode(settings, self.inbox)
        self._can_claim = can_claim
        self._handover = Handover(on_claimed, on_batch_end)
        self._ignore = ignore_regex(tuple(settings.ignore))
        self._prefix = os.fspath(self.inbox).rstrip("/") + "/"
        spool = os.fspath(self.spool_dir)
        self._spool_in_inbox = spool if spool.startswith(self._prefix) else None
        self._events: deque[tuple[int, str]] = deque()
        self._wake = threading.Event()
        self._pending: dict[str, Candidate] = {}
        self._heap: list[tuple[float, str]] = []
        self._blocked_until = 0.0
        self._seen = 0
        self._claimed = 0
        self._writers = WriterScan(self._prefix)
        self._told_irregular: set[str] = set()  # symlinks, FIFOs… already named in the log
        self._presence = InboxPresence(self.inbox)
        self._observer: BaseObserver | None = None
        self._handler: InboxEventHandler | None = None
        # What an event said about the inbox folder itself; it is looked at before anything else.
        self._inbox_hint: str | None = None
        # Set once the watch is in place and the inbox has been scanned (or found missing).
        self.ready = threading.Event()

    def stats(self) -> dict[str, int]:
        """Return counters for metrics: files seen, waiting in the inbox, claimed, retrying."""
        return {
            "seen": self._seen,
            "pending": len(self._pending),
            "claimed": self._claimed,
            "retrying": len(self._handover),
        }

    def inbox_state(self) -> dict[str, Any]:
        """Return whether the inbox is watched or missing, since when and why, for publishing."""
        return self._presence.state.to_dict(self.inbox)

    def waiting(self, limit: int = 20) -> WaitingSummary:
        """Return the files waiting for their writer: counts by reason, the `limit` oldest.

        Safe to call from another thread.
        """
        return summarize_waiting(self._pending, self._prefix, limit)

    def _post(self, kind: int, path: str) -> None:
        self._events.append((kind, path))
        self._wake.set()

    def _request_rescan(self) -> None:
        log.warning("the inotify queue overflowed; rescanning %s", self.inbox)
        self._post(RESCAN, "")

    def _watch(self, again: bool = False) -> bool:
        """Watch the folder now at the inbox's path and scan it; return False when there is none.

        Never makes the folder: the inbox may be a share's mount point, which a folder made
        there while it is unmounted would hide.
        """
        found = self._presence.look()
        if found is None:
            return False
        if again:
            # Another folder, maybe another share: the mode is chosen anew (and events retried).
            self.mode = choose_mode(self.settings, self.inbox)
        handler = InboxEventHandler(self._post, os.fspath(self.inbox))
        try:
            self._observer, self.mode = start_observer(
                handler, self.inbox, self.mode, self.settings, self._request_rescan
            )
        except (FileNotFoundError, NotADirectoryError):
            return False
        self._handler = handler
        self._presence.arm(found)
        # The watch exists before this scan, so no file can fall between the two.
        self._scan(os.fspath(self.inbox))
        return True

    def _unwatch(self, join: bool = False) -> None:
        """Stop the observer; its events, if any still come, are dropped."""
        if self._handler is not None:
            self._handler.close()
        observer, self._observer, self._handler = self._observer, None, None
        if observer is not None:
            stop_observer(observer, join)

    def _check_inbox(self) -> None:
        """Notice the inbox folder removed, replaced or unmounted; watch it again once back."""
        hint, self._inbox_hint = self._inbox_hint, None
        if self._observer is not None:
            why = self._presence.lost(hint)
            if why is None:
                return
            self._unwatch()
            log.warning("the inbox %s was %s; files dropped there are not seen until it is back",
                        self.inbox, why)
            # Files of the folder that vanished are not in the inbox any more: forget them.
            self._pending.clear()
            self._heap.clear()
            self._events.clear()
            self._told_irregular.clear()
        if self._watch(again=True):
            # WARNING like the loss: a log read at WARNING shows the end of it too.
            log.warning("watching %s again (%s mode)", self.inbox, self.mode)

    def run(self, stop: threading.Event) -> None:
        """Watch and claim until stop is set."""
        try:
            # Made at the start only (a first run); while running, a vanished inbox is waited for.
            self.inbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("cannot make the inbox %s (%s)", self.inbox, exc)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        if self._watch():
            log.info("watching %s (%s mode)", self.inbox, self.mode)
        else:
            self._presence.not_there("missing at start")
            log.warning("the inbox %s is missing or not a folder; it is watched once it is there",
                        self.inbox)
        threading.Thread(
            target=self._wake_on_stop, args=(stop,), name="docproc-watcher-stop", daemon=True
        ).start()
        try:
            self.ready.set()
            now = time.monotonic()
            next_rescan = now + self.settings.rescan_interval
            next_presence = now + PRESENCE_CHECK_SECONDS
            while not stop.is_set():
                self._wake.clear()
                rescan = self._drain()
                now = time.monotonic()
                if self._inbox_hint is not None or now >= next_presence:
                    self._check_inbox()
                    next_presence = time.monotonic() + PRESENCE_CHECK_SECONDS
                if self._observer is None:
                    rescan = False  # nothing there is the inbox (an unmounted share's folder)
                    next_rescan = now + self.settings.rescan_interval
                if rescan or time.monotonic() >= next_rescan:
                    self._scan(os.fspath(self.inbox))
                    next_rescan = time.monotonic() + self.settings.rescan_interval
                wait = self._work(stop)
                if wait > 0 and not self._handover.batch_end():
                    wait = min(wait, CLAIM_RECHECK_SECONDS)
                if wait > 0:
                    until = min(next_rescan, next_presence) - time.monotonic()
                    self._wake.wait(min(wait, max(until, 0.0)))
        finally:
            self._unwatch(join=True)
            if self._handover:
                log.warning(
                    "%d claimed files were not handed over; they stay in the spool %s and are "
                    "recovered at the next start", len(self._handover), self.spool_dir,
                )

    def _wake_on_stop(self, stop: threading.Event) -> None:
        stop.wait()
        self._wake.set()

    def _relpath(self, path: str) -> str | None:
        """Return path relative to the inbox, or None for paths the watcher must not look at."""
        if not path.startswith(self._prefix):
            return None
        spool = self._spool_in_inbox
        if spool is not None and (path == spool or path.startswith(spool + "/")):
            return None
        relpath = path[len(self._prefix):]
        if not relpath or (not self.settings.recursive and "/" in relpath):
            return None
        return relpath

    def _schedule(self, path: str, cand: Candidate, when: float) -> None:
        cand.deadline = when
        heapq.heappush(self._heap, (when, path))

    def _drain(self) -> bool:
        """Apply queued events to the candidates; return True when a full rescan is needed."""
        rescan = False
        pending = self._pending
        events_mode = self.mode == "events"
        while self._events:
            kind, path = self._events.popleft()
            if kind == RESCAN:
                rescan = True
                self._forget_writes()
                continue
            if kind == INBOX_EVENT:
                # What follows may be of the folder that went away: the inbox is looked at first.
                self._inbox_hint = path
                break
            if kind == GONE:
                pending.pop(path, None)
                continue
            cand = pending.get(path)
            now = time.monotonic()
            if cand is None:
                relpath = self._relpath(path)
                if relpath is None or any(map(self._ignore.match, relpath.split("/"))):
                    continue
                if kind in (SCAN, SCAN_MOVED_IN):
                    self._scan(path, moved_in=kind == SCAN_MOVED_IN)
                    continue
                cand = pending[path] = Candidate(now)
                self._seen += 1
                if kind not in (CLOSED, MOVED_IN):  # those schedule their own look below
                    # Look at it now: the first observation of its size and mtime.
                    self._schedule(path, cand, now)
            look_at = cand.apply(kind, now, self.settings, events_mode)
            if look_at is not None:
                self._schedule(path, cand, look_at)
        return rescan

    def _forget_writes(self) -> None:
        """Forget which files were open for writing: events were lost, a close among them."""
        now = time.monotonic()
        for path, cand in self._pending.items():
            if cand.written:
                cand.written = False
                self._schedule(path, cand, now)

    def _scan(self, root: str, moved_in: bool = False) -> None:
        """Add every claimable file under root that is not a candidate yet.

        Files of a folder moved into the inbox (moved_in) are whole; others may be written.
        """
        pending = self._pending
        found = 0
        for path, st in scan_entries(root, ignore=self._ignore, recursive=self.settings.recursive,
                                     spool=self._spool_in_inbox, known=pending):
            if not stat.S_ISREG(st.st_mode):
                self._left_alone(path, st.st_mode)
                continue
            now = time.monotonic()
            cand = pending[path] = Candidate(now, st.st_size, st.st_mtime_ns)
            if moved_in:
                cand.state = RENAMED
            self._seen += 1
            found += 1
            self._schedule(path, cand, now + cand.quiet_seconds(self.settings))
        if found:
            log.debug("found %d new files under %s", found, root)

    def _work(self, stop: threading.Event) -> float:
        """Hand over due retries and claim due candidates; return seconds until more is due."""
        now = time.monotonic()
        next_due = min(
            self._heap[0][0] if self._heap else float("inf"),
            self._handover.next_due(),
        )
        if next_due > now:
            return next_due - now
        if now < self._blocked_until:
            return self._blocked_until - now
        if not self._claim_allowed():
            self._blocked_until = now + CLAIM_RECHECK_SECONDS
            return CLAIM_RECHECK_SECONDS
        self._handover.retry_due(now, stop)
        batch_end = time.monotonic() + BATCH_SECONDS
        heap, pending = self._heap, self._pending
        while heap and not stop.is_set():
            now = time.monotonic()
            if heap[0][0] > now:
                break
            if now > batch_end:
                return 0.0
            deadline, path = heapq.heappop(heap)
            cand = pending.get(path)
            if cand is not None and cand.deadline == deadline:
                self._check(path, cand)
        return 0.0 if stop.is_set() else 0.001

    def _claim_allowed(self) -> bool:
        try:
            return bool(self._can_claim())
        except Exception:
            log.exception("can_claim() failed; not claiming for now")
            return False

    def _check(self, path: str, cand: Candidate) -> None:
        """Claim the file if it is whole, else look at it again when it could be."""
        try:
            st = os.lstat(path)
        except OSError as exc:
            del self._pending[path]
            if not isinstance(exc, FileNotFoundError):
                log.debug("cannot look at %s: %s", path, exc)
            return
        if not stat.S_ISREG(st.st_mode):
            del self._pending[path]
            self._left_alone(path, st.st_mode)
            return
        now = time.monotonic()
        if st.st_size != cand.size or st.st_mtime_ns != cand.mtime_ns:
            first_look = cand.size < 0
            cand.size, cand.mtime_ns = st.st_size, st.st_mtime_ns
            # A closed or renamed file got its last write before that; later ones come as events.
            if cand.state == OPEN and not first_look:
                cand.since, cand.missing = now, None
        ready_at = cand.since + cand.quiet_seconds(self.settings)
        if cand.written or now < ready_at:
            # A file still open after a write waits for its close event, however long.
            if not cand.written:
                self._schedule(path, cand, ready_at)
            return
        incomplete = None
        if cand.state != RENAMED:
            cand.writer = self._writers.holds(path)
            if cand.writer:
                self._schedule(path, cand, now + WRITER_RECHECK_SECONDS)
                return
            incomplete, again = cand.judge_structure(
                path, now, self.settings, polling=self.mode == "polling"
            )
            if again is not None:
                self._schedule(path, cand, again)
                return
        del self._pending[path]
        relpath = path[len(self._prefix):]
        claimed = claim_regular(path, relpath, self.spool_dir, incomplete)
        if claimed is None:
            return
        self._claimed += 1
        log.info("claimed %s (%d bytes) as %s%s", claimed.relpath, claimed.bytes, claimed.token,
                 "" if incomplete is None else f", incomplete: {cand.missing}")
        self._handover.deliver(claimed)

    def _left_alone(self, path: str, mode: int) -> None:
        """Say once, at WARNING, why an object in the inbox stays there: it is not a file."""
        if path in self._told_irregular:
            return
        self._told_irregular.add(path)
        # %r: a name is data; its newlines and escapes must not forge or colour log lines.
        log.warning("leaving %r in the inbox: it is %s; only regular files are processed "
                    "(copy the file itself in)", path[len(self._prefix):], describe_mode(mode))
