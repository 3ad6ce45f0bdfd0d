"""The watchdog internals docproc.inbox.events builds on are still there, as it uses them.

When watchdog changes them, this fails by name, before any watcher test times out on a
burst of renames that no longer pairs.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import time
from pathlib import Path

import pytest

from docproc.inbox import events as inbox_events

pytestmark = pytest.mark.skipif(not inbox_events.HAVE_INOTIFY, reason="inotify is Linux's")


def test_the_private_watchdog_classes_have_what_the_adapters_use() -> None:
    from watchdog.observers.inotify import InotifyEmitter, InotifyWatchGroup
    from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
    from watchdog.utils.delayed_queue import DelayedQueue

    build = inspect.signature(InotifyEmitter.build_and_queue_event).parameters
    assert "full_events" in build
    assert {"inotify_fd", "timeout", "event_filter"} <= set(
        inspect.signature(InotifyEmitter.__init__).parameters)
    for method in ("get_event_mask_from_filter", "on_thread_start"):
        assert callable(getattr(InotifyEmitter, method, None)), method
    fields = {f.name for f in dataclasses.fields(InotifyWatchGroup)}
    assert {"_move_event_grouper", "event_mask", "is_recursive", "follow_symlink"} <= fields
    assert callable(getattr(InotifyWatchGroup, "on_queue_overflow", None))
    for method in ("_group_moved_to_event", "get_queued_moved_from_event"):
        assert callable(getattr(InotifyMoveEventGrouper, method, None)), method
    assert "_queue" in vars(InotifyMoveEventGrouper())
    assert {"delay", "_lock", "_not_empty", "_queue", "_closed"} <= set(vars(DelayedQueue(0.1)))
    assert "delay" in inspect.signature(DelayedQueue.put).parameters


def test_renames_pair_and_a_move_from_beside_comes_as_a_move(tmp_path: Path) -> None:
    from watchdog.events import FileSystemEvent, FileSystemEventHandler

    inbox, beside = tmp_path / "inbox", tmp_path / "beside"
    inbox.mkdir()
    beside.mkdir()
    seen: list[FileSystemEvent] = []

    class Record(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            seen.append(event)

    observer = inbox_events.event_observer(lambda: None, lambda why: None)
    observer.schedule(Record(), str(inbox), recursive=True,
                      event_filter=inbox_events.EVENT_FILTER)
    observer.start()
    try:
        (inbox / ".a.part").write_bytes(b"a")
        (beside / "b.txt").write_bytes(b"b")
        os.rename(inbox / ".a.part", inbox / "a.txt")
        os.rename(beside / "b.txt", inbox / "b.txt")
        deadline = time.monotonic() + 10
        moves = []
        while time.monotonic() < deadline and len(moves) < 2:
            moves = [e for e in list(seen) if e.event_type == "moved"]
            time.sleep(0.02)
    finally:
        observer.stop()
        observer.join(10)
    pairs = {(os.fsdecode(e.src_path), os.fsdecode(e.dest_path)) for e in moves}
    assert pairs == {(str(inbox / ".a.part"), str(inbox / "a.txt")), ("", str(inbox / "b.txt"))}
