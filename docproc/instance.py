"""One docproc per state_dir, and no process outliving the supervisord that started it."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
from pathlib import Path

from docproc.errors import DocprocError

PR_SET_PDEATHSIG = 1
# Set in supervisord's environment by deploy/supervisord.conf: its programs die with it.
DIE_WITH_PARENT_ENV = "DOCPROC_DIE_WITH_PARENT"


class AlreadyRunning(DocprocError):
    """Another process holds this state_dir's lock; the message names it."""


def hold_lock(state_dir: Path, name: str) -> int:
    """Take state_dir/<name>.lock for this process and whatever it execs; return its fd.

    The lock lives as long as the open file does: it goes with the process that holds it,
    however it dies, so a stale lock file never blocks a start.
    """
    path = state_dir / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise AlreadyRunning(
            f"docproc {name} is already running with state_dir {state_dir} (pid {holder}); "
            "stop it first, or give this one a state_dir of its own"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    # Kept across exec: supervisord or valkey-server, which replace this process, hold it.
    os.set_inheritable(fd, True)
    return fd


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Have the kernel send sig to this process when its parent dies (Linux only)."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent:  # the parent died before the request was made
        os.kill(os.getpid(), sig)


def dies_with_supervisor() -> bool:
    """Return True when this process was started by docproc's supervisord configuration."""
    return os.environ.get(DIE_WITH_PARENT_ENV) == "1"
