"""Retention: purge what is older than retention.days (issue #6 builds it)."""

from __future__ import annotations

import sys

from docproc.settings import Settings


def purge_command(settings: Settings, dry_run: bool) -> int:
    """Apply retention now (not built yet)."""
    print("docproc purge: not built yet", file=sys.stderr)
    return 1
