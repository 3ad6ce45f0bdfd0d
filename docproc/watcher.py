"""Watch the inbox, decide when a dropped file is complete, and claim it into the spool."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import heapq
import itertools
import logging
import os
import re
import stat
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from watchdog.events import (
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver

from docproc.inbox.events import EVENT_FILTER, event_observer, polling_observer
from docproc.inbox.presence import PRESENCE_CHECK_SECONDS, InboxPresence
from docproc.inbox.spool import Claimed, claim_regular, utc_iso
from docproc.inbox.wholeness import missing_end
from docproc.inbox.writers import WriterScan
from docproc.settings import WatcherSettings

log = logging.getLogger("docproc.watcher")

BUILTIN_IGNORE = (
    "._*", ".syncthing.*", "*.filepart", "*.download", "*.swp", "__MACOSX", "$RECYCLE.BIN",
)
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "fuse.smbnetfs", "sshfs", "fuse.sshfs",
    "9p", "virtiofs", "vboxsf", "vmhgfs", "fuse.vmhgfs-fuse", "prl_fs", "afs", "openafs", "coda",
    "ncpfs", "ceph", "fuse.ceph", "fuse.ceph-fuse", "glusterfs", "fuse.glusterfs", "lustre",
    "gpfs", "beegfs", "orangefs", "pvfs2", "gfs2", "ocfs2", "davfs", "fuse.davfs2", "fuse.rclone",
    "fuse.s3fs", "fuse.gcsfuse", "fuse.goofys", "fuse.juicefs", "fuse.mfs", "fuse.moosefs",
    "fuse.lizardfs", "fuse.curlftpfs", "fuse.ftpfs",
})
# How long the claim loop waits before asking can_claim() again while it says no.
CLAIM_RECHECK_SECONDS = 1.0
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0
# A claim batch yields after this long so that new events and can_claim() are looked at.
BATCH_SECONDS = 0.2
# How often a file a local process holds open for writing is looked at again.
WRITER_RECHECK_SECONDS = 1.0

# watchdog warns, with a repr of every watched path, when a folder created quickly gets its watch
# added twice (by the parent's recursive walk and by its own IN_CREATE); the watch is the same.
warnings.filterwarnings(
    "ignore", message="Callback with id", category=RuntimeWarning, module="watchdog"
)

# Kinds of work the event handler passes to the claim loop.
(_CREATED, _WRITTEN, _ATTRIB, _CLOSED, _MOVED_IN, _GONE, _SCAN, _SCAN_MOVED_IN, _RESCAN,
 _INBOX_EVENT) = range(10)
# How a candidate came to be as it is: written in place (no close seen since the last write,
# or nothing known), closed by its writer, or renamed into place (its writer is done).
_OPEN, _CLOSED_BY_WRITER, _RENAMED = range(3)


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


@functools.lru_cache(maxsize=32)
def _ignore_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(fnmatch.translate(p) for p in (*BUILTIN_IGNORE, *patterns)))


def is_ignored(relpath: str, patterns: Sequence[str]) -> bool:
    """Return True when any component of the '/'-separated relpath matches an ignore pattern."""
    match = _ignore_regex(tuple(patterns)).match
    return any(match(part) for part in relpath.split("/") if part)


def _unescape_mount(field_text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field_text)


def _is_network_fstype(fstype: str) -> bool:
    return fstype in NETWORK_FILESYSTEMS or (fstype.startswith(("nfs", "smb")) and fstype != "nfsd")


def network_filesystem(path: Path, mounts: str | None = None) -> str | None:
    """Return the fstype of the network filesystem holding path, or None for a local one."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            return None
    target = os.fspath(Path(path).resolve())
    best_len, best_type = -1, None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point, fstype = _unescape_mount(fields[1]), fields[2]
        prefix = mount_point.rstrip("/") + "/"
        inside = target == mount_point or (target + "/").startswith(prefix)
        # ">=": a later line for the same mount point is a mount on top of the earlier one.
        if inside and len(mount_point) >= best_len:
            best_len, best_type = len(mount_point), fstype
    if best_type is not None and _is_network_fstype(best_type):
        return best_type
    return None


def choose_mode(settings: WatcherSettings, inbox: Path) -> Literal["events", "polling"]:
    """Return the watch mode to use: the configured one, or polling on a network share."""
    if settings.mode != "auto":
        return settings.mode
    fstype = network_filesystem(inbox)
    if fstype is not None:
        log.info("inbox %s is on a network filesystem (%s): polling it", inbox, fstype)
        return "polling"
    return "events"


def _size_now(path: str, known: int) -> int:
    """Return a waiting file's size now (the claim loop's is from its last look)."""
    try:
        return os.lstat(path).st_size
    except OSError:
        return max(known, 0)


class _Candidate:
    """What the claim loop remembers about a file that may not be complete yet."""

    __slots__ = ("deadline", "missing", "mtime_ns", "since", "size", "state", "writer", "written")

    def __init__(self, since: float, size: int = -1, mtime_ns: int = -1) -> None:
        self.size = size
        self.mtime_ns = mtime_ns
        self.since = since  # when the file was last seen changing, closed or renamed in
        self.state = _OPEN
        # A write event came and no close since: its writer still has it open (events mode).
        self.written = False
        self.writer = False  # a local process held it open for writing at the last look
        self.missing: str | None = None  # what its structure lacked at the last look
        self.deadline = 0.0  # the one live heap entry for this file


class _Handler(FileSystemEventHandler):
    """Translate watchdog events into work for the claim loop; never touch the disk here."""

    def __init__(self, post: Callable[[int, str], None], root: str) -> None:
        self._post = post
        self._root = root

    def close(self) -> None:
        """Pass nothing on any more: the folder watched is no longer the inbox."""
        self._post = lambda kind, path: None

    def root_gone(self, why: str) -> None:
        """Say that the watched folder itself was removed, moved away or unmounted ("": gone)."""
        self._post(_INBOX_EVENT, why)

    def dispatch(self, event: FileSystemEvent) -> None:
        """Pass the event on as (kind, path) items."""
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if event.dest_path else ""
        kind = event.event_type
        if event.is_directory:
            if kind == "deleted" and src == self._root:
                # The poller found the inbox gone or another folder in its place: look now.
                self.root_gone("")
            elif kind == "created":
                self._post(_SCAN, src)
            elif kind == "moved" and dest:
                # A folder renamed into place, from inside the inbox or beside it: done too.
                self._post(_SCAN_MOVED_IN, dest)
        elif kind == "created":
            # Synthetic: a file inside a folder that was moved in.
            self._post(_MOVED_IN if event.is_synthetic else _CREATED, src)
        elif kind == "modified":
            self._post(_WRITTEN, src)
        elif kind == "attrib":
            self._post(_ATTRIB, src)
        elif kind == "closed":
            self._post(_CLOSED, src)
        elif kind == "moved":
            # Unpaired halves have an empty side: moved out of the inbox, or in from beside it.
            if src:
                self._post(_GONE, src)
            if dest:
                self._post(_MOVED_IN, dest)
        elif kind == "deleted":
            self._post(_GONE, src)


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
        self.mode: Literal["events", "polling"] = choose_mode(settings, self.inbox)
        self._on_claimed = on_claimed
        self._can_claim = can_claim
        # Called whenever claiming pauses, so that a receiver may gather claims into batches.
        self._on_batch_end = on_batch_end
        self._ignore = _ignore_regex(tuple(settings.ignore))
        self._prefix = os.fspath(self.inbox).rstrip("/") + "/"
        spool = os.fspath(self.spool_dir)
        self._spool_in_inbox = spool if spool.startswith(self._prefix) else None
        self._events: deque[tuple[int, str]] = deque()
        self._wake = threading.Event()
        self._pending: dict[str, _Candidate] = {}
        self._heap: list[tuple[float, str]] = []
        self._retries: list[tuple[float, int, int, Claimed]] = []
        self._retry_seq = itertools.count()
        self._blocked_until = 0.0
        self._seen = 0
        self._claimed = 0
        self._writers = WriterScan(self._prefix)
        self._told_irregular: set[str] = set()  # symlinks, FIFOs… already named in the log
        self._presence = InboxPresence(self.inbox)
        self._observer: BaseObserver | None = None
        self._handler: _Handler | None = None
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
            "retrying": len(self._retries),
        }

    def inbox_state(self) -> dict[str, Any]:
        """Return whether the inbox is watched or missing, since when and why, for publishing."""
        return self._presence.state.to_dict(self.inbox)

    def waiting(self, limit: int = 20) -> WaitingSummary:
        """Return the files waiting for their writer: counts by reason, the `limit` oldest.

        Safe to call from another thread.
        """
        pending = list(self._pending.items())
        counts: dict[WaitReason, int] = dict.fromkeys(WAIT_REASONS, 0)
        for _, cand in pending:
            counts[self._reason(cand)] += 1
        offset = time.time() - time.monotonic()
        oldest = [
            Waiting(path[len(self._prefix):], _size_now(path, cand.size), cand.since + offset,
                    self._reason(cand))
            for path, cand in heapq.nsmallest(limit, pending, key=lambda item: item[1].since)
        ]
        return WaitingSummary(counts, oldest)

    @staticmethod
    def _reason(cand: _Candidate) -> WaitReason:
        if cand.written or cand.writer:
            return "open_for_writing"
        if cand.size == 0:
            return "empty"
        if cand.missing is not None:
            return "incomplete"
        return "quiet_period" if cand.state == _CLOSED_BY_WRITER else "settling"

    def _post(self, kind: int, path: str) -> None:
        self._events.append((kind, path))
        self._wake.set()

    def _request_rescan(self) -> None:
        log.warning("the inotify queue overflowed; rescanning %s", self.inbox)
        self._post(_RESCAN, "")

    def _start_observer(self, handler: _Handler) -> BaseObserver:
        path = os.fspath(self.inbox)
        if self.mode == "events":
            observer: BaseObserver | None = None
            try:
                observer = event_observer(self._request_rescan, handler.root_gone)
                observer.schedule(
                    handler, path, recursive=self.settings.recursive, event_filter=EVENT_FILTER
                )
                observer.start()
                return observer
            except OSError as exc:
                if observer is not None:
                    with contextlib.suppress(Exception):
                        observer.stop()
                if isinstance(exc, FileNotFoundError | NotADirectoryError):
                    raise  # the inbox went away meanwhile: nothing to poll either
                log.warning("cannot watch %s for events (%s); polling it instead", path, exc)
                self.mode = "polling"
        observer = polling_observer(self.settings.poll_interval)
        observer.schedule(
            handler, path, recursive=self.settings.recursive, event_filter=EVENT_FILTER
        )
        observer.start()
        return observer

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
        handler = _Handler(self._post, os.fspath(self.inbox))
        try:
            self._observer = self._start_observer(handler)
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
        if observer is None:
            return
        with contextlib.suppress(Exception):
            observer.stop()
        if join:
            with contextlib.suppress(RuntimeError):
                observer.join(timeout=10)

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
                if wait > 0 and not self._hand_over_batch():
                    wait = min(wait, CLAIM_RECHECK_SECONDS)
                if wait > 0:
                    until = min(next_rescan, next_presence) - time.monotonic()
                    self._wake.wait(min(wait, max(until, 0.0)))
        finally:
            self._unwatch(join=True)
            if self._retries:
                log.warning(
                    "%d claimed files were not handed over; they stay in the spool %s and are "
                    "recovered at the next start", len(self._retries), self.spool_dir,
                )

    def _hand_over_batch(self) -> bool:
        """Tell on_batch_end that claiming paused; return False when it failed."""
        if self._on_batch_end is None:
            return True
        try:
            self._on_batch_end()
        except Exception:
            log.exception("handing over the claimed batch failed; trying again shortly")
            return False
        return True

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

    def _quiet(self, cand: _Candidate) -> float:
        """Return how long the file must stay unchanged before it is looked at as a whole."""
        settings = self.settings
        if cand.size == 0:
            grace = settings.empty_grace_seconds
            return max(grace, settings.settle_seconds) if cand.state == _OPEN else grace
        if cand.state == _RENAMED:
            return 0.0
        if cand.state == _CLOSED_BY_WRITER:
            return settings.quiet_seconds
        return settings.settle_seconds

    def _schedule(self, path: str, cand: _Candidate, when: float) -> None:
        cand.deadline = when
        heapq.heappush(self._heap, (when, path))

    def _drain(self) -> bool:
        """Apply queued events to the candidates; return True when a full rescan is needed."""
        rescan = False
        pending = self._pending
        events_mode = self.mode == "events"
        while self._events:
            kind, path = self._events.popleft()
            if kind == _RESCAN:
                rescan = True
                self._forget_writes()
                continue
            if kind == _INBOX_EVENT:
                # What follows may be of the folder that went away: the inbox is looked at first.
                self._inbox_hint = path
                break
            if kind == _GONE:
                pending.pop(path, None)
                continue
            cand = pending.get(path)
            now = time.monotonic()
            if cand is None:
                relpath = self._relpath(path)
                if relpath is None or any(map(self._ignore.match, relpath.split("/"))):
                    continue
                if kind in (_SCAN, _SCAN_MOVED_IN):
                    self._scan(path, moved_in=kind == _SCAN_MOVED_IN)
                    continue
                cand = pending[path] = _Candidate(now)
                self._seen += 1
                if kind not in (_CLOSED, _MOVED_IN):  # those schedule their own look below
                    # Look at it now: the first observation of its size and mtime.
                    self._schedule(path, cand, now)
            if kind == _WRITTEN:
                cand.since, cand.state, cand.missing = now, _OPEN, None
                # Events: it waits for its close. Polling reports changes, not writes in
                # progress: it waits to settle, filled or not (a placeholder waits longer).
                cand.written = events_mode
                if not events_mode and cand.deadline > now + self.settings.settle_seconds:
                    self._schedule(path, cand, now + self.settings.settle_seconds)
            elif kind == _CREATED:
                cand.since, cand.state = now, _OPEN
            elif kind == _ATTRIB:
                if cand.state != _RENAMED:
                    cand.since = now
            elif kind == _CLOSED:
                # Closed after writing: whole unless it is reopened within the quiet period.
                # The size known here may be stale (seen empty before it was written): the
                # look gives a file still empty its grace.
                cand.since, cand.state, cand.written = now, _CLOSED_BY_WRITER, False
                self._schedule(path, cand, now + self.settings.quiet_seconds)
            elif kind == _MOVED_IN:
                cand.since, cand.state, cand.written = now, _RENAMED, False
                self._schedule(path, cand, now)
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
        pending, ignored = self._pending, self._ignore.match
        recursive = self.settings.recursive
        stack = [root]
        found = 0
        while stack:
            folder = stack.pop()
            try:
                entries = os.scandir(folder)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot read %s: %s", folder, exc)
                continue
            with entries:
                for entry in entries:
                    if ignored(entry.name):
                        continue
                    path = entry.path
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if recursive and path != self._spool_in_inbox:
                                stack.append(path)
                            continue
                        if path in pending:
                            continue
                        if not entry.is_file(follow_symlinks=False):
                            self._left_alone(path, entry.stat(follow_symlinks=False).st_mode)
                            continue
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    now = time.monotonic()
                    cand = pending[path] = _Candidate(now, st.st_size, st.st_mtime_ns)
                    if moved_in:
                        cand.state = _RENAMED
                    self._seen += 1
                    found += 1
                    self._schedule(path, cand, now + self._quiet(cand))
        if found:
            log.debug("found %d new files under %s", found, root)

    def _work(self, stop: threading.Event) -> float:
        """Hand over due retries and claim due candidates; return seconds until more is due."""
        now = time.monotonic()
        next_due = min(
            self._heap[0][0] if self._heap else float("inf"),
            self._retries[0][0] if self._retries else float("inf"),
        )
        if next_due > now:
            return next_due - now
        if now < self._blocked_until:
            return self._blocked_until - now
        if not self._claim_allowed():
            self._blocked_until = now + CLAIM_RECHECK_SECONDS
            return CLAIM_RECHECK_SECONDS
        while self._retries and self._retries[0][0] <= now and not stop.is_set():
            _, _, attempt, claimed = heapq.heappop(self._retries)
            self._deliver(claimed, attempt)
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

    def _check(self, path: str, cand: _Candidate) -> None:
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
            if cand.state == _OPEN and not first_look:
                cand.since, cand.missing = now, None
        ready_at = cand.since + self._quiet(cand)
        if cand.written or now < ready_at:
            # A file still open after a write waits for its close event, however long.
            if not cand.written:
                self._schedule(path, cand, ready_at)
            return
        incomplete = None
        if cand.state != _RENAMED:
            cand.writer = self._writers.holds(path)
            if cand.writer:
                self._schedule(path, cand, now + WRITER_RECHECK_SECONDS)
                return
            incomplete = self._incomplete(path, cand, now)
            if cand.missing is not None and incomplete is None:
                return
        del self._pending[path]
        relpath = path[len(self._prefix):]
        claimed = claim_regular(path, relpath, self.spool_dir, incomplete)
        if claimed is None:
            return
        self._claimed += 1
        log.info("claimed %s (%d bytes) as %s%s", claimed.relpath, claimed.bytes, claimed.token,
                 "" if incomplete is None else f", incomplete: {cand.missing}")
        self._deliver(claimed, 0)

    def _incomplete(self, path: str, cand: _Candidate, now: float) -> str | None:
        """Look at the file's structure; return why to claim it incomplete, if it is time.

        A whole file, or one of a format whose end cannot be checked, leaves cand.missing None.
        Else the file waits (rescheduled here) until incomplete_grace_seconds pass unchanged.
        """
        cand.missing = missing_end(path) if cand.size > 0 else None
        if cand.missing is None:
            return None
        grace = self.settings.incomplete_grace_seconds
        if now - cand.since < grace:
            again = cand.since + grace
            if self.mode == "polling":
                # No events tell of a change: look for one as often as the poller does.
                again = min(again, now + max(self.settings.settle_seconds,
                                             self.settings.poll_interval))
            self._schedule(path, cand, again)
            return None
        unchanged_since = utc_iso(time.time_ns() - int((now - cand.since) * 1e9))
        return (f"{cand.missing}; the file has not changed since {unchanged_since} "
                f"(watcher.incomplete_grace_seconds: {grace:g})")

    def _left_alone(self, path: str, mode: int) -> None:
        """Say once, at WARNING, why an object in the inbox stays there: it is not a file."""
        if path in self._told_irregular:
            return
        self._told_irregular.add(path)
        what = ("a symbolic link" if stat.S_ISLNK(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISBLK(mode)
                or stat.S_ISCHR(mode) else "not a regular file")
        # %r: a name is data; its newlines and escapes must not forge or colour log lines.
        log.warning("leaving %r in the inbox: it is %s; only regular files are processed "
                    "(copy the file itself in)", path[len(self._prefix):], what)

    def _deliver(self, claimed: Claimed, attempt: int) -> None:
        """Call on_claimed; on failure keep the claim for a later attempt."""
        try:
            self._on_claimed(claimed)
        except Exception:
            delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2**attempt)
            log.exception(
                "handing over %s (%s) failed; trying again in %.1f s",
                claimed.relpath, claimed.token, delay,
            )
            heapq.heappush(
                self._retries,
                (time.monotonic() + delay, next(self._retry_seq), attempt + 1, claimed),
            )
