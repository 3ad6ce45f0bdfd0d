"""Tell which files under a folder local processes hold open for writing, from /proc."""

from __future__ import annotations

import os
import time

# O_ACCMODE bits of the flags in /proc/<pid>/fdinfo/<fd>: O_WRONLY or O_RDWR.
_WRITE_MODES = (os.O_WRONLY, os.O_RDWR)


def open_for_writing(prefix: str, proc: str = "/proc") -> set[str]:
    """Return the paths starting with prefix that some process has open for writing.

    Only processes this one may inspect are seen (all of them as root); a writer on
    another machine of a network share never is.
    """
    found: set[str] = set()
    try:
        pids = [entry.name for entry in os.scandir(proc) if entry.name.isdigit()]
    except OSError:
        return found
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or not ours to look at
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target.startswith(prefix) and target not in found and _writable(proc, pid, fd):
                found.add(target)
    return found


def _writable(proc: str, pid: str, fd: str) -> bool:
    try:
        with open(f"{proc}/{pid}/fdinfo/{fd}", encoding="ascii") as info:
            for line in info:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & os.O_ACCMODE in _WRITE_MODES
    except (OSError, ValueError, IndexError):
        pass
    return False


class WriterScan:
    """Answer "is this file open for writing?" from one /proc scan reused for a short while."""

    def __init__(self, prefix: str, max_age: float = 0.5) -> None:
        self.prefix = prefix
        self.max_age = max_age
        self._paths: set[str] = set()
        self._taken = float("-inf")

    def holds(self, path: str) -> bool:
        """Return True when a local process has path open for writing (as of max_age ago)."""
        now = time.monotonic()
        if now - self._taken > self.max_age:
            self._paths = open_for_writing(self.prefix)
            self._taken = time.monotonic()
        return path in self._paths
