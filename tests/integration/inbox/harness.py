"""A watcher running in a thread over real folders, and the polling helpers its tests share."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docproc.inbox.spool import Claimed
from docproc.settings import WatcherSettings
from docproc.watcher import InboxWatcher
from tests.conftest import wait_until


def wait_for(condition: Callable[[], Any], timeout: float = 8.0, what: str = "condition") -> Any:
    """Poll condition until it is truthy; fail after timeout seconds."""
    return wait_until(condition, timeout, interval=0.01, message=what)


def holds(condition: Callable[[], Any], seconds: float) -> None:
    """Assert condition stays truthy for the given number of seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition()
        time.sleep(0.02)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Running:
    """A watcher running in a thread, with the claims it handed over."""

    def __init__(self, inbox: Path, spool: Path, settings: WatcherSettings,
                 on_claimed: Callable[[Claimed], None] | None = None,
                 can_claim: Callable[[], bool] = lambda: True) -> None:
        self.inbox, self.spool = inbox, spool
        self.claims: list[Claimed] = []
        self._lock = threading.Lock()
        self._extra = on_claimed
        self.watcher = InboxWatcher(inbox, spool, settings, self._collect, can_claim=can_claim)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watcher.run, args=(self.stop,), daemon=True)

    def _collect(self, claimed: Claimed) -> None:
        if self._extra is not None:
            self._extra(claimed)
        with self._lock:
            self.claims.append(claimed)

    def start(self) -> Running:
        self.thread.start()
        wait_for(self.watcher.ready.is_set, what="the watcher to be ready")
        return self

    def relpaths(self) -> list[str]:
        with self._lock:
            return [c.relpath for c in self.claims]

    def claimed(self, relpath: str, timeout: float = 8.0) -> Claimed:
        return wait_for(
            lambda: next((c for c in list(self.claims) if c.relpath == relpath), None),
            timeout, what=f"{relpath} to be claimed",
        )

    def sentinel(self, name: str = "zz-sentinel.txt") -> Claimed:
        """Drop a normal file and wait for its claim: what came before has been looked at."""
        (self.inbox / name).write_bytes(b"sentinel " + name.encode())
        return self.claimed(name)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the watcher did not stop"
