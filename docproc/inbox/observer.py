"""Start and stop the watchdog observer of the inbox: events, or polling where events fail."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from watchdog.observers.api import BaseObserver

from docproc.inbox.events import (
    EVENT_FILTER,
    InboxEventHandler,
    event_observer,
    polling_observer,
)
from docproc.inbox.mounts import WatchMode
from docproc.settings import WatcherSettings

# The watcher's logger: falling back to polling is part of what it says about its watch.
log = logging.getLogger("docproc.watcher")


def start_observer(
    handler: InboxEventHandler, inbox: Path, mode: WatchMode, settings: WatcherSettings,
    on_overflow: Callable[[], None],
) -> tuple[BaseObserver, WatchMode]:
    """Start watching inbox in mode, or by polling when events cannot be had; return the mode.

    Raises FileNotFoundError or NotADirectoryError when the inbox went away meanwhile.
    """
    path = os.fspath(inbox)
    if mode == "events":
        observer: BaseObserver | None = None
        try:
            observer = event_observer(on_overflow, handler.root_gone)
            observer.schedule(
                handler, path, recursive=settings.recursive, event_filter=EVENT_FILTER
            )
            observer.start()
            return observer, mode
        except OSError as exc:
            if observer is not None:
                with contextlib.suppress(Exception):
                    observer.stop()
            if isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise  # the inbox went away meanwhile: nothing to poll either
            log.warning("cannot watch %s for events (%s); polling it instead", path, exc)
    observer = polling_observer(settings.poll_interval)
    observer.schedule(handler, path, recursive=settings.recursive, event_filter=EVENT_FILTER)
    observer.start()
    return observer, "polling"


def stop_observer(observer: BaseObserver, join: bool = False) -> None:
    """Stop the observer, waiting a while for its thread to end when join is set."""
    with contextlib.suppress(Exception):
        observer.stop()
    if join:
        with contextlib.suppress(RuntimeError):
            observer.join(timeout=10)
