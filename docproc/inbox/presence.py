"""Tell whether the inbox folder is still the one the watch was set on."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

# How often the watcher looks at the inbox's identity (one stat of it and one of its parent).
PRESENCE_CHECK_SECONDS = 1.0

InboxStateName = Literal["starting", "ok", "missing"]


@dataclass(frozen=True)
class InboxState:
    """Whether the inbox is watched, since when (Unix time), and why it is not."""

    state: InboxStateName
    since: float
    reason: str | None = None  # removed, replaced, unmounted, not a folder

    def to_dict(self, path: Path) -> dict[str, Any]:
        """Return the JSON form published with the watcher's counters."""
        return {"state": self.state, "since": self.since, "reason": self.reason,
                "path": os.fspath(path)}


def _is_mount_point(path: Path, found: os.stat_result) -> bool:
    try:
        parent = os.stat(path.parent)
    except OSError:
        return False
    return found.st_dev != parent.st_dev or found.st_ino == parent.st_ino


class InboxPresence:
    """The identity (device, inode) of the inbox folder a watch was set on, and looks at it.

    A watch follows a folder, not a path: once the folder is removed, renamed away or
    unmounted, nothing dropped at the inbox's path is seen until a new watch is set there.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._armed: tuple[int, int] | None = None
        # Once seen as a mount point, the inbox is a share: the bare folder under it is not it.
        self._mounted = False
        # Not a problem yet: the watch is being set (its first publish may come first).
        self.state = InboxState("starting", time.time(), "not watched yet")

    def look(self) -> os.stat_result | None:
        """Return the stat of the folder at the inbox's path when it can be watched, else None."""
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        if not stat.S_ISDIR(found.st_mode):
            return None
        if self._mounted and not _is_mount_point(self.path, found):
            return None
        return found

    def arm(self, found: os.stat_result) -> None:
        """Remember found as the folder now watched."""
        self._armed = (found.st_dev, found.st_ino)
        self._mounted = self._mounted or _is_mount_point(self.path, found)
        self.state = InboxState("ok", time.time())

    def lost(self, hint: str | None = None) -> str | None:
        """Return how the watched folder stopped being the inbox, or None while it still is.

        hint names what an event said (removed, moved away, unmounted), used when the path
        alone cannot tell: a folder removed and made again is a replacement at the path.
        """
        if self._armed is None:
            return None
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return self._lose(hint or "removed or moved away")
        except NotADirectoryError:
            return self._lose("removed")
        except OSError:
            return None  # unreadable for now (permissions, a share's hiccup): cannot tell
        if not stat.S_ISDIR(found.st_mode):
            return self._lose("replaced by something that is not a folder")
        if self._mounted and not _is_mount_point(self.path, found):
            return self._lose("unmounted")
        if (found.st_dev, found.st_ino) != self._armed:
            return self._lose(hint or "replaced")
        return None

    def _lose(self, why: str) -> str:
        self._armed = None
        self.state = InboxState("missing", time.time(), why)
        return why

    def not_there(self, why: str) -> None:
        """Record that the inbox could not be watched at all (at start)."""
        self._armed = None
        self.state = InboxState("missing", time.time(), why)
