"""The daily batch report (issue #6 builds it)."""

from __future__ import annotations

import datetime
import sys

from docproc.settings import Settings


def report_command(settings: Settings, day: datetime.date | None) -> int:
    """Build the daily report now (not built yet)."""
    print("docproc report: not built yet", file=sys.stderr)
    return 1
