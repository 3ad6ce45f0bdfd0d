"""List what lies under an inbox folder: every entry but folders, ignored names and the spool."""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Container, Iterator

# The watcher's logger: an unreadable folder is part of what it says about the inbox.
log = logging.getLogger("docproc.watcher")


def scan_entries(
    root: str, *, ignore: re.Pattern[str], recursive: bool, spool: str | None,
    known: Container[str],
) -> Iterator[tuple[str, os.stat_result]]:
    """Yield the path and lstat of each non-folder under root that is not in known.

    Folders are entered when recursive, except the spool; unreadable ones are skipped.
    """
    ignored = ignore.match
    stack = [root]
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
                        if recursive and path != spool:
                            stack.append(path)
                        continue
                    if path in known:
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                yield path, st


def describe_mode(mode: int) -> str:
    """Return what an entry that is not a regular file is, in words, from its st_mode."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
        return "a device"
    return "not a regular file"
