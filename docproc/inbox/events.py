"""watchdog, adapted: the only module that reaches into watchdog's private classes.

Its events reach the claim loop as (kind, path) items through InboxEventHandler.

The inotify observer here pairs a rename's two halves by cookie in constant time (watchdog
scans its delay queue twice per rename: quadratic in a burst), reports kernel queue
overflows and the inbox itself going away, and emits full events (a file moved in from
beside the inbox is a move with no source, not a created file still being written). The
polling observer stats with lstat and keeps less per file.

This is worth the coupling: a 10,000-file burst costs seconds instead of minutes.
`tests/unit/inbox/test_events.py` fails loudly when watchdog changes what is used here.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import DEFAULT_OBSERVER_TIMEOUT, BaseObserver
from watchdog.observers.polling import PollingObserverVFS

# watchdog holds every unpaired IN_MOVED_FROM for 0.5 s at the head of its queue, delaying all
# later events; each claim is such a move. The kernel queues a rename's two halves together.
MOVE_PAIR_SECONDS = 0.05

# watchdog warns, with a repr of every watched path, when a folder created quickly gets its watch
# added twice (by the parent's recursive walk and by its own IN_CREATE); the watch is the same.
warnings.filterwarnings(
    "ignore", message="Callback with id", category=RuntimeWarning, module="watchdog"
)

# Kinds of work the event handler passes to the claim loop.
(CREATED, WRITTEN, ATTRIB, CLOSED, MOVED_IN, GONE, SCAN, SCAN_MOVED_IN, RESCAN,
 INBOX_EVENT) = range(10)


class _PollStat(NamedTuple):
    """The part of an lstat result that watchdog's polling snapshots compare."""

    st_mode: int
    st_ino: int
    st_dev: int
    st_size: int
    st_mtime: float
    st_uid: int
    st_gid: int


def poll_lstat(path: str) -> os.stat_result:
    """Lstat for polling snapshots: never follow links, keep 40 % less per file than lstat."""
    st = os.lstat(path)
    slim = _PollStat(
        st.st_mode, st.st_ino, st.st_dev, st.st_size, st.st_mtime, st.st_uid, st.st_gid
    )
    return cast(os.stat_result, slim)


EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileModifiedEvent, FileAttribEvent, FileClosedEvent, FileMovedEvent,
    FileDeletedEvent, DirCreatedEvent, DirMovedEvent, DirDeletedEvent,
]


try:
    from watchdog.observers.inotify import InotifyEmitter, InotifyWatchGroup
    from watchdog.observers.inotify_c import InotifyConstants, InotifyFD
    from watchdog.observers.inotify_move_event_grouper import (
        GroupedInotifyEvent,
        InotifyMoveEventGrouper,
        PathedInotifyEvent,
    )
    from watchdog.utils.delayed_queue import DelayedQueue
except Exception:  # not Linux: the platform's own observer is used instead
    HAVE_INOTIFY = False
else:
    HAVE_INOTIFY = True

    class _PairingQueue(DelayedQueue[GroupedInotifyEvent]):
        """watchdog's delayed event queue, finding a rename's first half by its cookie at once.

        watchdog scans the whole queue for it, twice per rename: quadratic in a burst.
        """

        def __init__(self, delay: float) -> None:
            super().__init__(delay)
            self._moved_from: dict[int, PathedInotifyEvent] = {}

        def put(self, element: GroupedInotifyEvent, *, delay: bool = False) -> None:
            with self._lock:
                if delay and isinstance(element, PathedInotifyEvent):
                    self._moved_from[element.ev.cookie] = element
                # Wake the reader only when it waits for an empty queue: one waiting out a
                # rename's first half would only wake to wait again, once per event of a burst.
                if not self._queue:
                    self._not_empty.notify()
                self._queue.append((element, time.monotonic(), delay))

        def moved_from(self, cookie: int) -> PathedInotifyEvent | None:
            with self._lock:
                return self._moved_from.get(cookie)

        def take_moved_from(self, cookie: int) -> PathedInotifyEvent | None:
            """Remove and return the queued first half of a rename; it is skipped when due."""
            with self._lock:
                event = self._moved_from.pop(cookie, None)
                if event is not None and self._queue and self._queue[0][0] is event:
                    self._not_empty.notify()  # the reader waits this one out: no longer
                return event

        def clear(self) -> None:
            with self._lock:
                self._moved_from.clear()
            super().clear()

        def get(self) -> GroupedInotifyEvent | None:
            while True:
                with self._not_empty:
                    while not self._queue and not self._closed:
                        self._not_empty.wait()
                    if self._closed:
                        return None
                    head, inserted, delayed = self._queue[0]
                    if not delayed:
                        return self._queue.popleft()[0]
                    assert isinstance(head, PathedInotifyEvent)
                    if self._moved_from.get(head.ev.cookie) is not head:
                        self._queue.popleft()  # paired meanwhile: its moved-to carries it
                        continue
                    wait = inserted + self.delay - time.monotonic()
                    if wait <= 0:
                        del self._moved_from[head.ev.cookie]
                        return self._queue.popleft()[0]
                    # Pairing this rename's second half wakes the reader early.
                    self._not_empty.wait(wait)

    class _FastMoveGrouper(InotifyMoveEventGrouper):
        """Pair renames within MOVE_PAIR_SECONDS, in constant time per event."""

        delay = MOVE_PAIR_SECONDS

        def __init__(self) -> None:
            self._queue: _PairingQueue = _PairingQueue(self.delay)

        def _group_moved_to_event(self, to_event: PathedInotifyEvent) -> GroupedInotifyEvent:
            from_event = self._queue.take_moved_from(to_event.ev.cookie)
            return (from_event, to_event) if from_event is not None else to_event

        def get_queued_moved_from_event(self, cookie: int) -> PathedInotifyEvent | None:
            return self._queue.moved_from(cookie)

    @dataclass
    class _WatchGroup(InotifyWatchGroup):
        overflow_hook: Callable[[], None] | None = None
        _move_event_grouper: InotifyMoveEventGrouper = field(
            default_factory=_FastMoveGrouper, init=False
        )

        def on_queue_overflow(self) -> None:
            super().on_queue_overflow()
            if self.overflow_hook is not None:
                self.overflow_hook()

    _ROOT_GONE = (
        (InotifyConstants.IN_UNMOUNT, "unmounted"),
        (InotifyConstants.IN_DELETE_SELF, "removed"),
        (InotifyConstants.IN_MOVE_SELF, "moved away"),
    )

    class _InotifyEmitter(InotifyEmitter):
        def __init__(
            self, *args: Any, on_overflow: Callable[[], None],
            on_root_gone: Callable[[str], None], **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self._on_overflow = on_overflow
            self._on_root_gone = on_root_gone

        def get_event_mask_from_filter(self) -> Any:
            # A renamed inbox keeps its watch, under a path that is no longer the inbox.
            return super().get_event_mask_from_filter() | InotifyConstants.IN_MOVE_SELF

        def build_and_queue_event(
            self, event: GroupedInotifyEvent, *, full_events: bool = True
        ) -> None:
            if isinstance(event, PathedInotifyEvent) and event.path == os.fsencode(
                self.watch.path
            ):
                for mask, why in _ROOT_GONE:
                    if event.ev.mask & mask:
                        self._on_root_gone(why)
                        break
            # Full events: a file moved in from beside the inbox is a move with no source,
            # not a "created" file that may still be written.
            super().build_and_queue_event(event, full_events=full_events)

        def on_thread_start(self) -> None:
            self._inotify = _WatchGroup(
                self._inotify_fd,
                os.fsencode(self.watch.path),
                is_recursive=self.watch.is_recursive,
                event_mask=self.get_event_mask_from_filter(),
                follow_symlink=self.watch.follow_symlink,
                overflow_hook=self._on_overflow,
            )

    class _InotifyObserver(BaseObserver):
        """Inotify observer that pairs renames quickly and reports kernel queue overflows."""

        def __init__(
            self, on_overflow: Callable[[], None], on_root_gone: Callable[[str], None]
        ) -> None:
            self._inotify_fd = InotifyFD()
            self._inotify_fd.start()
            super().__init__(
                _InotifyEmitter,
                timeout=DEFAULT_OBSERVER_TIMEOUT,
                inotify_fd=self._inotify_fd,
                on_overflow=on_overflow,
                on_root_gone=on_root_gone,
            )

        def on_thread_stop(self) -> None:
            super().on_thread_stop()
            self._inotify_fd.stop()
            self._inotify_fd.join()


def event_observer(
    on_overflow: Callable[[], None], on_root_gone: Callable[[str], None]
) -> BaseObserver:
    """Return an inotify observer that reports overflows and the inbox going (else watchdog's)."""
    if HAVE_INOTIFY:
        return _InotifyObserver(on_overflow, on_root_gone)
    from watchdog.observers import Observer

    return Observer()


def polling_observer(interval: float) -> BaseObserver:
    """Return a polling observer (network shares): lstat, never following links."""
    return PollingObserverVFS(poll_lstat, os.scandir, polling_interval=interval)


class InboxEventHandler(FileSystemEventHandler):
    """Translate watchdog events into work for the claim loop; never touch the disk here."""

    def __init__(self, post: Callable[[int, str], None], root: str) -> None:
        self._post = post
        self._root = root

    def close(self) -> None:
        """Pass nothing on any more: the folder watched is no longer the inbox."""
        self._post = lambda kind, path: None

    def root_gone(self, why: str) -> None:
        """Say that the watched folder itself was removed, moved away or unmounted ("": gone)."""
        self._post(INBOX_EVENT, why)

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
                self._post(SCAN, src)
            elif kind == "moved" and dest:
                # A folder renamed into place, from inside the inbox or beside it: done too.
                self._post(SCAN_MOVED_IN, dest)
        elif kind == "created":
            # Synthetic: a file inside a folder that was moved in.
            self._post(MOVED_IN if event.is_synthetic else CREATED, src)
        elif kind == "modified":
            self._post(WRITTEN, src)
        elif kind == "attrib":
            self._post(ATTRIB, src)
        elif kind == "closed":
            self._post(CLOSED, src)
        elif kind == "moved":
            # Unpaired halves have an empty side: moved out of the inbox, or in from beside it.
            if src:
                self._post(GONE, src)
            if dest:
                self._post(MOVED_IN, dest)
        elif kind == "deleted":
            self._post(GONE, src)
