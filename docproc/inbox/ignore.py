"""Tell which inbox paths the watcher leaves alone: partial downloads, sync and OS droppings."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Sequence

BUILTIN_IGNORE = (
    "._*", ".syncthing.*", "*.filepart", "*.download", "*.swp", "__MACOSX", "$RECYCLE.BIN",
)


@functools.lru_cache(maxsize=32)
def ignore_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """Return one regex matching a name component against the built-in and given patterns."""
    return re.compile("|".join(fnmatch.translate(p) for p in (*BUILTIN_IGNORE, *patterns)))


def is_ignored(relpath: str, patterns: Sequence[str]) -> bool:
    """Return True when any component of the '/'-separated relpath matches an ignore pattern."""
    match = ignore_regex(tuple(patterns)).match
    return any(match(part) for part in relpath.split("/") if part)
